// The Replicator's resync and verify bookkeeping, shared by its source files.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <utility>

#include "replication/replicator.h"

namespace freevsa::replication {

using Clock = std::chrono::steady_clock;

// Measures a byte rate over the last few seconds and limits one (token bucket).
class Throughput {
 public:
  void add(std::uint64_t bytes) {
    const auto now = Clock::now();
    total_ += bytes;
    samples_.emplace_back(now, total_);
    while (samples_.size() > 2 && now - samples_.front().first > std::chrono::seconds(5)) samples_.pop_front();
  }
  double bytes_per_second() const {
    if (samples_.size() < 2) return 0;
    const double seconds = std::chrono::duration<double>(samples_.back().first - samples_.front().first).count();
    return seconds <= 0 ? 0 : static_cast<double>(samples_.back().second - samples_.front().second) / seconds;
  }

 private:
  std::deque<std::pair<Clock::time_point, std::uint64_t>> samples_;
  std::uint64_t total_ = 0;
};

class TokenBucket {
 public:
  // How long to wait before `bytes` may go at `rate` bytes/s (zero: now, tokens taken).
  std::chrono::milliseconds take(std::uint64_t bytes, std::uint64_t rate) {
    const auto now = Clock::now();
    const double burst = std::max<double>(static_cast<double>(rate) / 10, 2.0 * static_cast<double>(bytes));
    tokens_ = std::min(burst, tokens_ + static_cast<double>(rate) * std::chrono::duration<double>(now - last_).count());
    last_ = now;
    if (tokens_ >= static_cast<double>(bytes)) {
      tokens_ -= static_cast<double>(bytes);
      return std::chrono::milliseconds(0);
    }
    const double missing = static_cast<double>(bytes) - tokens_;
    return std::chrono::milliseconds(static_cast<long>(1000.0 * missing / static_cast<double>(std::max<std::uint64_t>(rate, 1))) + 1);
  }

 private:
  double tokens_ = 0;
  Clock::time_point last_ = Clock::now();
};

struct Replicator::ResyncProgress {
  bool full = false;
  std::uint64_t total = 0;
  std::uint64_t done = 0;
  std::uint64_t skipped = 0;
  std::uint64_t cursor = 0;
  bool progress_this_pass = false;
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint32_t>> outstanding;  // target: request id -> range
  std::map<std::uint64_t, std::pair<std::uint64_t, std::uint32_t>> served;       // source: request id -> range
  Throughput throughput;
  TokenBucket bucket;
  Clock::time_point started = Clock::now();
};

struct Replicator::VerifyRun {
  bool driver = false;  // this node compares; the other only answers
  std::uint64_t cursor = 0;
  std::uint64_t checked = 0;
  std::uint64_t out_of_sync = 0;
  struct Range {
    std::uint64_t offset = 0;
    std::uint32_t length = 0;
    std::optional<peer::Digest> local;
    std::optional<peer::Digest> remote;
    bool failed = false;
  };
  std::map<std::uint64_t, Range> outstanding;
  Throughput throughput;
  TokenBucket bucket;
};

}  // namespace freevsa::replication
