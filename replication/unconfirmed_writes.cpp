#include "replication/unconfirmed_writes.h"

#include <utility>

namespace freevsa::replication {

bool UnconfirmedWrites::add(WrittenRange range, Clock::time_point now) {
  const bool first = open_.empty();
  if (first) opened_at_ = now;
  open_.push_back(range);
  open_bytes_ += range.length;
  return first;
}

bool UnconfirmedWrites::flush_due(Clock::time_point now) const {
  if (open_.empty()) return false;
  return open_.size() >= policy_.max_writes || open_bytes_ >= policy_.max_bytes || now - opened_at_ >= policy_.max_age;
}

Epoch UnconfirmedWrites::close() {
  open_bytes_ = 0;
  return std::exchange(open_, {});
}

}  // namespace freevsa::replication
