#include "scsi/reservation_table.h"

#include <cstring>

#include "util/log.h"

namespace freevsa::scsi {

ReservationTable::ReservationTable(replication::Volume& volume)
    : volume_(volume), local_port_(volume.port_groups().front().id) {
  records_seen_ = volume_.reservations_received();
  PersistentReservations stored;
  if (!stored.decode(volume_.stored_reservations())) {
    util::log_error("{}: the stored persistent reservations are unreadable; starting without any", volume_.name());
  } else if (stored.aptpl()) {
    // Without APTPL the registrations end with the power loss (SPC-4 5.13.5).
    state_ = std::move(stored);
  }
  publish_locked();
}


std::vector<std::uint16_t> ReservationTable::all_target_ports() const {
  std::vector<std::uint16_t> ports;
  for (const replication::PortGroup& g : volume_.port_groups()) ports.push_back(g.id);
  return ports;
}

void ReservationTable::publish_locked() {
  may_conflict_.store(state_.reservation().has_value() || spc2_holder_.has_value(), std::memory_order_release);
}

void ReservationTable::refresh_locked() {
  const std::uint64_t received = volume_.reservations_received();
  if (received == records_seen_.load(std::memory_order_relaxed)) return;
  PersistentReservations next;
  if (next.decode(volume_.stored_reservations())) {
    state_ = std::move(next);
  } else {
    util::log_error("{}: persistent reservations received from the peer are unreadable; keeping ours",
                    volume_.name());
  }
  records_seen_.store(received, std::memory_order_release);
  publish_locked();
}

bool ReservationTable::conflicts(const std::string& initiator, MediumUse use) {
  if (!may_conflict_.load(std::memory_order_acquire) &&
      volume_.reservations_received() == records_seen_.load(std::memory_order_acquire)) {
    return false;
  }
  const Nexus n = nexus(initiator);
  std::lock_guard lock(mutex_);
  refresh_locked();
  if (spc2_holder_) return !(*spc2_holder_ == n);
  return state_.conflicts(n, use);
}

bool ReservationTable::reserved_by_other(const Nexus& nexus) {
  std::lock_guard lock(mutex_);
  return spc2_holder_ && !(*spc2_holder_ == nexus);
}

PersistentReservations ReservationTable::snapshot() {
  std::lock_guard lock(mutex_);
  refresh_locked();
  return state_;
}

Result ReservationTable::update(const Change& change, std::vector<PrNotice>& notices) {
  std::lock_guard serial(update_mutex_);
  PersistentReservations next = snapshot();
  const PersistentReservations before = next;
  if (Result r = change(next, notices); !r.ok()) return r;
  if (next == before) return good();
  if (int error = volume_.store_reservations(next.encode()); error != 0) {
    util::log_error("{}: storing persistent reservations failed: {}", volume_.name(), std::strerror(error));
    notices.clear();
    return Sense::internal_target_failure();
  }
  std::lock_guard lock(mutex_);
  state_ = std::move(next);
  publish_locked();
  return good();
}

Result ReservationTable::reserve(const Nexus& nexus) {
  std::lock_guard lock(mutex_);
  refresh_locked();
  // SPC-4 5.13.3 (compatible reservation handling): under persistent reservations only their
  // holder may RESERVE, and that changes nothing.
  if (state_.holds(nexus)) return good();
  if (!state_.empty()) return Result::reservation_conflict();
  if (spc2_holder_ && !(*spc2_holder_ == nexus)) return Result::reservation_conflict();
  spc2_holder_ = nexus;
  publish_locked();
  return good();
}

Result ReservationTable::release(const Nexus& nexus) {
  std::lock_guard lock(mutex_);
  refresh_locked();
  if (!state_.empty()) return state_.find(nexus) != nullptr ? good() : Result::reservation_conflict();
  // A RELEASE from a nexus that holds nothing is a no-op (SPC-2 7.17).
  if (spc2_holder_ && *spc2_holder_ == nexus) spc2_holder_.reset();
  publish_locked();
  return good();
}

void ReservationTable::reset() {
  std::lock_guard lock(mutex_);
  spc2_holder_.reset();
  publish_locked();
}

void ReservationTable::nexus_lost(const std::string& initiator) {
  std::lock_guard lock(mutex_);
  if (spc2_holder_ && spc2_holder_->initiator == initiator) spc2_holder_.reset();
  publish_locked();
}

}  // namespace freevsa::scsi
