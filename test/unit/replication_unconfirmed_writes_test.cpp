// The primary's record of writes its peer acknowledged but has not confirmed durable: when a
// flush is due, and what a flush about to be sent covers.
#include <gtest/gtest.h>

#include "replication/unconfirmed_writes.h"

namespace freevsa::replication {
namespace {

using namespace std::chrono_literals;
using Clock = UnconfirmedWrites::Clock;

TEST(UnconfirmedWrites, TheFirstWriteOpensAnEpochThatCloseHandsOver) {
  UnconfirmedWrites log(EpochPolicy{});
  const auto now = Clock::now();
  EXPECT_TRUE(log.empty());
  EXPECT_TRUE(log.add({0, 4096, true}, now));
  EXPECT_FALSE(log.add({8192, 512, false}, now));
  const Epoch epoch = log.close();
  ASSERT_EQ(epoch.size(), 2u);
  EXPECT_EQ(epoch[1].offset, 8192u);
  EXPECT_EQ(epoch[1].length, 512u);
  EXPECT_TRUE(epoch[0].held);
  EXPECT_TRUE(log.empty());
  EXPECT_TRUE(log.add({0, 4096, true}, now)) << "after close the next write opens a new epoch";
}

TEST(UnconfirmedWrites, AFlushIsDueByCountBytesOrAge) {
  const auto now = Clock::now();
  UnconfirmedWrites by_count(EpochPolicy{.max_writes = 3, .max_bytes = 1ull << 40, .max_age = 1h});
  by_count.add({0, 512}, now);
  by_count.add({0, 512}, now);
  EXPECT_FALSE(by_count.flush_due(now));
  by_count.add({0, 512}, now);
  EXPECT_TRUE(by_count.flush_due(now));

  UnconfirmedWrites by_bytes(EpochPolicy{.max_writes = 1000, .max_bytes = 8192, .max_age = 1h});
  by_bytes.add({0, 4096}, now);
  EXPECT_FALSE(by_bytes.flush_due(now));
  by_bytes.add({4096, 4096}, now);
  EXPECT_TRUE(by_bytes.flush_due(now));
  by_bytes.close();
  by_bytes.add({0, 4096}, now);
  EXPECT_FALSE(by_bytes.flush_due(now)) << "close() must start counting bytes again";

  UnconfirmedWrites by_age(EpochPolicy{.max_writes = 1000, .max_bytes = 1ull << 40, .max_age = 100ms});
  by_age.add({0, 512}, now);
  EXPECT_FALSE(by_age.flush_due(now + 99ms));
  EXPECT_TRUE(by_age.flush_due(now + 100ms));
}

TEST(UnconfirmedWrites, NothingRecordedIsNeverDue) {
  UnconfirmedWrites log(EpochPolicy{.max_writes = 0, .max_bytes = 0, .max_age = 0ms});
  EXPECT_FALSE(log.flush_due(Clock::now()));
}

}  // namespace
}  // namespace freevsa::replication
