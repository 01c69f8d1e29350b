// At most one log line per interval for a condition that can repeat thousands of times a second
// (a full descriptor table, a flood of refused connections): the first occurrence is logged at
// once, later ones within the interval are only counted, and the next line says how many were
// left out.
//
// Threading: not thread-safe; each throttle belongs to one strand or thread.
#pragma once

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace freevsa::util {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  explicit LogThrottle(Clock::duration interval) : interval_(interval) {}

  // Whether to log now; if so, how many occurrences since the last line were not logged.
  std::optional<std::uint64_t> admit(Clock::time_point now = Clock::now()) {
    if (logged_ && now - last_ < interval_) {
      ++suppressed_;
      return std::nullopt;
    }
    logged_ = true;
    last_ = now;
    const std::uint64_t left_out = suppressed_;
    suppressed_ = 0;
    return left_out;
  }

  // What a line admitted with `suppressed` left-out occurrences appends: "" or " (N more since
  // the last line)".
  static std::string note(std::uint64_t suppressed) {
    return suppressed == 0 ? std::string() : fmt::format(" ({} more since the last line)", suppressed);
  }

 private:
  Clock::duration interval_;
  bool logged_ = false;
  Clock::time_point last_{};
  std::uint64_t suppressed_ = 0;
};

}  // namespace freevsa::util
