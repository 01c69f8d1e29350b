// The primary's record of the writes its peer acknowledged but has not yet confirmed durable
// (DRBD's transfer log and epochs, our way). A peer acknowledges a write once it is written,
// possibly only into its page cache or its disk's volatile write cache, so a power loss there
// may still take it. Such a write stays recorded from its acknowledgement until a flush the
// peer confirmed covers it; if the link goes down, the peer's disk fails or a flush fails first,
// the owner marks it out of sync, so that the resync copies it again.
//
// The open epoch gathers the writes acknowledged since the last flush went out; close() hands
// them to the flush about to be sent, which covers them (the peer flushes behind every write it
// received before the flush, and these were acknowledged before it was sent). flush_due() says
// when the open epoch has grown large or old enough that a flush should go out unasked.
//
// Threading: none; the peer link's thread owns it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace freevsa::replication {

// When the primary asks its peer for a flush without an initiator asking (besides every
// SYNCHRONIZE CACHE): once the open epoch holds this many writes or bytes, or is this old.
struct EpochPolicy {
  std::size_t max_writes = 1024;
  std::uint64_t max_bytes = 64ull << 20;
  std::chrono::milliseconds max_age{100};
};

struct WrittenRange {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  bool held = false;  // its activity-log extents are held until it leaves the record
};
using Epoch = std::vector<WrittenRange>;

class UnconfirmedWrites {
 public:
  using Clock = std::chrono::steady_clock;

  explicit UnconfirmedWrites(EpochPolicy policy) : policy_(policy) {}

  // Records an acknowledged write in the open epoch; true if it is the epoch's first.
  bool add(WrittenRange range, Clock::time_point now);
  bool flush_due(Clock::time_point now) const;
  bool empty() const { return open_.empty(); }
  const EpochPolicy& policy() const { return policy_; }
  // The open epoch, handed over; a new one opens.
  Epoch close();

 private:
  EpochPolicy policy_;
  Epoch open_;
  std::uint64_t open_bytes_ = 0;
  Clock::time_point opened_at_{};
};

}  // namespace freevsa::replication
