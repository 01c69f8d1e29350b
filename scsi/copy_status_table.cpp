#include "scsi/copy_status_table.h"

#include <algorithm>

#include "scsi/extended_copy_parameters.h"

namespace freevsa::scsi {

CopyStatusTable::Start CopyStatusTable::start(const std::string& port, std::uint8_t list_id, bool identified) {
  std::lock_guard lock(mutex_);
  if (running_ >= kMaxConcurrentCopies) return Start::TooManyCopies;
  if (identified) {
    const Key key{port, list_id};
    if (auto it = statuses_.find(key); it != statuses_.end() && it->second.running) return Start::ListIdInUse;
    forget_locked(key);
    statuses_[key] = CopyStatus{};
  }
  ++running_;
  return Start::Started;
}

void CopyStatusTable::finish(const std::string& port, std::uint8_t list_id, bool identified,
                             const CopyStatus& outcome) {
  std::lock_guard lock(mutex_);
  --running_;
  if (!identified) return;
  const Key key{port, list_id};
  CopyStatus& status = statuses_[key];
  status = outcome;
  status.running = false;
  finished_order_.push_back(key);
  while (finished_order_.size() > kMaxHeldOutcomes) forget_locked(Key(finished_order_.front()));
}

std::optional<CopyStatus> CopyStatusTable::take(const std::string& port, std::uint8_t list_id) {
  std::lock_guard lock(mutex_);
  const Key key{port, list_id};
  auto it = statuses_.find(key);
  if (it == statuses_.end()) return std::nullopt;
  const CopyStatus status = it->second;
  if (!status.running) forget_locked(key);
  return status;
}

void CopyStatusTable::forget_finished(const std::string& port) {
  std::lock_guard lock(mutex_);
  const std::deque<Key> finished = finished_order_;
  for (const Key& key : finished) {
    if (key.first == port) forget_locked(key);
  }
}

void CopyStatusTable::forget_all_finished() {
  std::lock_guard lock(mutex_);
  for (const Key& key : finished_order_) statuses_.erase(key);
  finished_order_.clear();
}

std::size_t CopyStatusTable::held() const {
  std::lock_guard lock(mutex_);
  return statuses_.size();
}

void CopyStatusTable::forget_locked(const Key& key) {
  statuses_.erase(key);
  finished_order_.erase(std::remove(finished_order_.begin(), finished_order_.end(), key), finished_order_.end());
}

}  // namespace freevsa::scsi
