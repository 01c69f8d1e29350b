// What the copy manager of one logical unit remembers about its EXTENDED COPY operations:
// those running (for the concurrency limit and duplicate list identifiers) and, for RECEIVE COPY
// RESULTS (COPY STATUS, SPC-4 6.18.3), the outcome of finished ones with a list identifier,
// per I_T nexus. Internal to scsi/.
//
// Threading: every method may be called from any worker thread (one mutex, never held across
// I/O).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace freevsa::scsi {

struct CopyStatus {
  bool running = true;
  bool failed = false;
  std::uint16_t segments_processed = 0;
  std::uint64_t bytes_copied = 0;
};

class CopyStatusTable {
 public:
  enum class Start { Started, ListIdInUse, TooManyCopies };
  // A copy begins. With a list identifier (`identified`), a second copy with the same one from
  // the same nexus may not run at the same time; its earlier outcome is forgotten.
  Start start(const std::string& port, std::uint8_t list_id, bool identified);
  // A started copy ended; its outcome is kept (if identified) until asked for once.
  void finish(const std::string& port, std::uint8_t list_id, bool identified, const CopyStatus& outcome);
  // The status of the copy with this list identifier from this nexus, if known. A finished
  // copy's status is reported once, then forgotten.
  std::optional<CopyStatus> take(const std::string& port, std::uint8_t list_id);

  // Outcomes not yet asked for are dropped with their I_T nexus (`port`) or, with a reset, all
  // of them (SPC-4 6.18.3: held data does not survive either). Running copies stay counted.
  void forget_finished(const std::string& port);
  void forget_all_finished();

  std::size_t held() const;

 private:
  using Key = std::pair<std::string, std::uint8_t>;
  // Outcomes nobody asked for are dropped oldest first beyond this many.
  static constexpr std::size_t kMaxHeldOutcomes = 256;
  void forget_locked(const Key& key);

  mutable std::mutex mutex_;
  unsigned running_ = 0;
  std::map<Key, CopyStatus> statuses_;
  std::deque<Key> finished_order_;  // oldest first
};

}  // namespace freevsa::scsi
