// The reservations of one logical unit: persistent reservations (SPC-4 5.13) and the older
// RESERVE/RELEASE reservation (SPC-2), the locking around them, and the record that keeps the
// persistent ones with the volume.
//
// Persistent reservation changes are made on a copy, stored with the volume (which on a
// replicated volume also puts them on the peer) and only then become the state commands see,
// so a failed store changes nothing. A record that arrived from the peer is adopted before the
// next command looks at the state: the node that takes over serves the same registrations.
// At start-up a stored record counts only if it was made with APTPL (persist through power loss).
//
// Threading: all methods are thread-safe. Updates are serialised and hold a lock across the
// store; the checks on the command path take only a short lock, and none at all while no
// reservation exists.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <vector>

#include "replication/volume.h"
#include "scsi/persistent_reservations.h"

namespace freevsa::scsi {

class ReservationTable {
 public:
  explicit ReservationTable(replication::Volume& volume);

  // This node's target port, and the I_T nexus of a command from `initiator` through it.
  std::uint16_t local_port() const { return local_port_; }
  Nexus nexus(const std::string& initiator) const { return Nexus{initiator, local_port()}; }
  // The target ports a registration with ALL_TG_PT covers: one per node exporting the volume.
  std::vector<std::uint16_t> all_target_ports() const;

  // Whether a command from `nexus` conflicts with a reservation it does not share (SPC-4
  // 5.13.1 for persistent reservations; any command not exempt, for a RESERVE(6)/(10) one).
  bool conflicts(const std::string& initiator, MediumUse use);
  // Whether a RESERVE reservation is held by another nexus (PERSISTENT RESERVE IN and OUT
  // conflict with it).
  bool reserved_by_other(const Nexus& nexus);

  PersistentReservations snapshot();

  // Applies one PERSISTENT RESERVE OUT service action. On success the new state is stored and
  // `notices` holds the unit attentions to raise.
  using Change = std::function<Result(PersistentReservations&, std::vector<PrNotice>&)>;
  Result update(const Change& change, std::vector<PrNotice>& notices);

  // RESERVE(6)/(10) and RELEASE(6)/(10) with compatible reservation handling (SPC-4 5.13.3).
  Result reserve(const Nexus& nexus);
  Result release(const Nexus& nexus);
  // The RESERVE reservation ends with a reset or the loss of its I_T nexus; persistent ones stay.
  void reset();
  void nexus_lost(const std::string& initiator);

 private:
  // Adopts the volume's record when the peer sent a new one.
  void refresh_locked();
  void publish_locked();

  replication::Volume& volume_;
  const std::uint16_t local_port_;  // a node's port group never changes while it runs
  std::mutex update_mutex_;  // serialises updates, held across the store
  std::mutex mutex_;         // guards the fields below
  PersistentReservations state_;
  std::optional<Nexus> spc2_holder_;
  std::atomic<std::uint64_t> records_seen_{0};
  // Set while any reservation exists (or a peer record may bring one): the fast path skips
  // the lock when it is clear.
  std::atomic<bool> may_conflict_{false};
};

}  // namespace freevsa::scsi
