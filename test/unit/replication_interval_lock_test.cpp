#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "replication/interval_lock.h"

namespace freevsa::replication {
namespace {

using namespace std::chrono_literals;

TEST(IntervalLock, DisjointRangesAreHeldAtTheSameTime) {
  IntervalLock lock;
  auto a = lock.lock(0, 4096);
  auto b = lock.lock(4096, 4096);  // would deadlock this thread if it had to wait
  EXPECT_EQ(lock.size(), 2u);
}

TEST(IntervalLock, OverlappingRangeWaitsForTheEarlierOne) {
  IntervalLock lock;
  auto first = lock.lock(0, 8192);
  std::atomic<bool> acquired{false};
  std::thread waiter([&] {
    auto second = lock.lock(4096, 4096);
    acquired = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(acquired.load()) << "an overlapping write ran while the earlier one was in flight";
  first.release();
  waiter.join();
  EXPECT_TRUE(acquired.load());
  EXPECT_EQ(lock.size(), 0u);
}

TEST(IntervalLock, LaterRequestNeverOvertakesAnEarlierOverlappingOne) {
  IntervalLock lock;
  auto holder = lock.lock(0, 4096);
  std::vector<int> order;
  std::mutex order_mutex;
  // B waits on the holder; C overlaps B (not the holder) and must still come after B.
  std::thread b([&] {
    auto g = lock.lock(0, 8192);
    std::lock_guard l(order_mutex);
    order.push_back(1);
  });
  while (lock.size() < 2) std::this_thread::yield();
  std::thread c([&] {
    auto g = lock.lock(4096, 4096);
    std::lock_guard l(order_mutex);
    order.push_back(2);
  });
  while (lock.size() < 3) std::this_thread::yield();
  std::this_thread::sleep_for(20ms);
  {
    std::lock_guard l(order_mutex);
    EXPECT_TRUE(order.empty());
  }
  holder.release();
  b.join();
  c.join();
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], 1);
  EXPECT_EQ(order[1], 2);
}

TEST(IntervalLock, MovedGuardReleasesOnce) {
  IntervalLock lock;
  IntervalLock::Guard outer;
  {
    auto inner = lock.lock(0, 512);
    outer = std::move(inner);
  }
  EXPECT_EQ(lock.size(), 1u);
  outer.release();
  EXPECT_EQ(lock.size(), 0u);
}

TEST(IntervalLock, ManyThreadsOnOneBlockNeverOverlap) {
  IntervalLock lock;
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto g = lock.lock(0, 512);
        if (++inside > 1) overlapped = true;
        --inside;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(overlapped.load());
}

}  // namespace
}  // namespace freevsa::replication
