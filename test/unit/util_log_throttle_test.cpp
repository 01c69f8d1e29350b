// At most one log line per interval, and the next one says how many were left out.
#include <gtest/gtest.h>

#include "util/log_throttle.h"

namespace freevsa::util {
namespace {

using namespace std::chrono_literals;

TEST(LogThrottle, FirstIsLoggedRepeatsWithinTheIntervalAreCounted) {
  LogThrottle throttle(10s);
  const auto t0 = LogThrottle::Clock::time_point{} + 1h;
  EXPECT_EQ(throttle.admit(t0), std::optional<std::uint64_t>(0));
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(throttle.admit(t0 + 9s).has_value());
  EXPECT_EQ(throttle.admit(t0 + 10s), std::optional<std::uint64_t>(1000));
  EXPECT_FALSE(throttle.admit(t0 + 11s).has_value());
  EXPECT_EQ(throttle.admit(t0 + 60s), std::optional<std::uint64_t>(1));
}

TEST(LogThrottle, TheNoteSaysHowManyWereLeftOut) {
  EXPECT_EQ(LogThrottle::note(0), "");
  EXPECT_EQ(LogThrottle::note(7), " (7 more since the last line)");
}

}  // namespace
}  // namespace freevsa::util
