#include "replication/interval_lock.h"

namespace freevsa::replication {

IntervalLock::Guard::Guard(Guard&& other) noexcept : owner_(other.owner_), entry_(other.entry_) {
  other.owner_ = nullptr;
}

IntervalLock::Guard& IntervalLock::Guard::operator=(Guard&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = other.owner_;
    entry_ = other.entry_;
    other.owner_ = nullptr;
  }
  return *this;
}

void IntervalLock::Guard::release() {
  if (owner_ != nullptr) {
    owner_->unlock(entry_);
    owner_ = nullptr;
  }
}

bool IntervalLock::blocked(Entry entry) const {
  for (auto it = ranges_.begin(); it != entry; ++it) {
    if (it->begin < entry->end && entry->begin < it->end) return true;
  }
  return false;
}

IntervalLock::Guard IntervalLock::lock(std::uint64_t offset, std::uint64_t length) {
  std::unique_lock lock(mutex_);
  // An empty range still takes its place in line, so it is ordered like a one-byte write.
  const Entry entry = ranges_.insert(ranges_.end(), Range{offset, offset + (length == 0 ? 1 : length)});
  released_.wait(lock, [&] { return !blocked(entry); });
  return Guard(this, entry);
}

void IntervalLock::unlock(Entry entry) {
  {
    std::lock_guard lock(mutex_);
    ranges_.erase(entry);
  }
  released_.notify_all();
}

std::size_t IntervalLock::size() const {
  std::lock_guard lock(mutex_);
  return ranges_.size();
}

}  // namespace freevsa::replication
