#include <gtest/gtest.h>

#include <atomic>

#include "util/worker_pool.h"

namespace freevsa::util {
namespace {

TEST(WorkerPool, RunsEveryPostedJobBeforeShutdownReturns) {
  std::atomic<int> done{0};
  {
    WorkerPool pool(4);
    for (int i = 0; i < 1000; ++i) pool.post([&done] { ++done; });
    pool.shutdown();
  }
  EXPECT_EQ(done.load(), 1000);
}

TEST(WorkerPool, DropsJobsPostedAfterShutdown) {
  std::atomic<int> done{0};
  WorkerPool pool(2);
  pool.shutdown();
  pool.post([&done] { ++done; });
  EXPECT_EQ(done.load(), 0);
}

}  // namespace
}  // namespace freevsa::util
