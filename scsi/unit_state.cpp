#include "scsi/unit_state.h"

#include <algorithm>

namespace freevsa::scsi {

std::optional<Sense> LogicalUnitState::unit_attention(const std::string& port, bool consume) {
  std::lock_guard lock(mutex_);
  auto& queue = unit_attentions_[port];
  if (queue.empty()) return std::nullopt;
  Sense ua = queue.front();
  if (consume) queue.pop_front();
  return ua;
}

void LogicalUnitState::nexus_created(const std::string& port) {
  std::lock_guard lock(mutex_);
  auto& queue = unit_attentions_[port];
  queue.clear();
  queue.push_back(Sense::unit_attention(0x29, 0x00));
}

void LogicalUnitState::push_locked(std::deque<Sense>& queue, const Sense& ua) {
  if (ua.asc == 0x29) {
    // Reset-class conditions: the newest one supersedes the others and is reported first.
    std::erase_if(queue, [](const Sense& s) { return s.asc == 0x29; });
    queue.push_front(ua);
  } else if (std::find(queue.begin(), queue.end(), ua) == queue.end()) {
    queue.push_back(ua);
  }
  while (queue.size() > kMaxQueuedUnitAttentions) queue.pop_back();
}

void LogicalUnitState::raise_except(const std::string& except, std::uint8_t asc,
                                    std::uint8_t ascq) {
  std::lock_guard lock(mutex_);
  const Sense ua = Sense::unit_attention(asc, ascq);
  for (auto& [port, queue] : unit_attentions_) {
    if (port != except) push_locked(queue, ua);
  }
}

void LogicalUnitState::raise_for(const std::string& port, std::uint8_t asc, std::uint8_t ascq) {
  std::lock_guard lock(mutex_);
  if (auto found = unit_attentions_.find(port); found != unit_attentions_.end())
    push_locked(found->second, Sense::unit_attention(asc, ascq));
}

void LogicalUnitState::nexus_lost(const std::string& port) {
  std::lock_guard lock(mutex_);
  unit_attentions_.erase(port);
}

void LogicalUnitState::reset(const std::string& requesting_port, std::uint8_t ascq) {
  std::lock_guard lock(mutex_);
  mode_ = ModeSettings{};
  wce_.store(mode_.write_cache_enabled, std::memory_order_relaxed);
  // SAM-5 7.7: every I_T nexus gets the unit attention, the one that asked for the reset too
  // (libiscsi's MultipathIO.Reset checks each path). The requesting port is registered here in
  // case it never sent a command before.
  unit_attentions_.try_emplace(requesting_port);
  const Sense ua = Sense::unit_attention(0x29, ascq);
  for (auto& [port, queue] : unit_attentions_) push_locked(queue, ua);
}

ModeSettings LogicalUnitState::mode() const {
  std::lock_guard lock(mutex_);
  return mode_;
}

void LogicalUnitState::set_mode(const ModeSettings& settings, const std::string& port) {
  std::lock_guard lock(mutex_);
  if (settings == mode_) return;
  mode_ = settings;
  wce_.store(mode_.write_cache_enabled, std::memory_order_relaxed);
  const Sense ua = Sense::unit_attention(0x2A, 0x01);
  for (auto& [other, queue] : unit_attentions_) {
    if (other != port) push_locked(queue, ua);
  }
}

std::size_t LogicalUnitState::known_ports() const {
  std::lock_guard lock(mutex_);
  return unit_attentions_.size();
}

void LogicalUnitState::note_port_group_states(std::uint64_t states) {
  const std::uint64_t before = port_group_states_.exchange(states);
  if (before != kNoStatesSeen && before != states) raise_except("", 0x2A, 0x06);
}

}  // namespace freevsa::scsi
