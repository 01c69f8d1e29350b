// Persistent reservations (SPC-4 5.13) as a plain state machine: registrations by I_T nexus,
// the reservation, PRgeneration and APTPL, and what each PERSISTENT RESERVE OUT service action
// does to them. No locking and no I/O: ReservationTable (reservation_table.h) serialises the
// operations and stores the record this class encodes with the volume.
//
// An I_T nexus is the initiator port ("<iqn>,i,0x<isid>") and the relative identifier of the
// target port the command came through. Every node that exports a volume is its own target
// port, so a registration made with ALL_TG_PT holds on every node and survives a failover.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "replication/metadata.h"
#include "scsi/sense.h"

namespace freevsa::scsi {

struct Nexus {
  std::string initiator;         // initiator port name, "<iqn>,i,0x<isid>"
  std::uint16_t target_port = 1; // relative target port identifier
  bool operator==(const Nexus&) const = default;
};

// The TYPE field of PERSISTENT RESERVE OUT (SPC-4 table 193).
enum class PrType : std::uint8_t {
  WriteExclusive = 1,
  ExclusiveAccess = 3,
  WriteExclusiveRegistrantsOnly = 5,
  ExclusiveAccessRegistrantsOnly = 6,
  WriteExclusiveAllRegistrants = 7,
  ExclusiveAccessAllRegistrants = 8,
};
bool valid_pr_type(std::uint8_t type);
// "All registrants" types have every registered I_T nexus as a holder (SPC-4 5.13.10).
bool all_registrants(PrType type);

// How a command uses the logical unit, for the reservation conflict rules (SPC-4 5.13.1,
// SBC-3 4.17): reads (and MODE SENSE) conflict only with exclusive-access reservations;
// everything else that is not exempt conflicts with every reservation the nexus does not share.
enum class MediumUse : std::uint8_t { Read, Write };

struct Registration {
  Nexus nexus;
  std::uint64_t key = 0;
  bool all_target_ports = false;  // registered with ALL_TG_PT (reported in READ FULL STATUS)
  bool operator==(const Registration&) const = default;
};

struct Reservation {
  Nexus holder;  // for the all-registrants types, the nexus that created it
  PrType type = PrType::WriteExclusive;
  bool operator==(const Reservation&) const = default;
};

// What a PERSISTENT RESERVE OUT parameter list carries (SPC-4 6.16.3).
struct PrOutParameters {
  std::uint64_t key = 0;                 // RESERVATION KEY
  std::uint64_t service_action_key = 0;  // SERVICE ACTION RESERVATION KEY
  bool all_target_ports = false;         // ALL_TG_PT
  bool aptpl = false;                    // APTPL
  bool unregister = false;               // REGISTER AND MOVE: UNREG
  std::optional<Nexus> move_to;          // REGISTER AND MOVE: the destination I_T nexus
};

// A unit attention one I_T nexus gets because of another's PERSISTENT RESERVE OUT: 2A/ascq
// (03 RESERVATIONS PREEMPTED, 04 RESERVATIONS RELEASED, 05 REGISTRATIONS PREEMPTED).
struct PrNotice {
  Nexus nexus;
  std::uint8_t ascq = 0;
};

class PersistentReservations {
 public:
  // The largest encoded record; a REGISTER that would exceed it fails with INSUFFICIENT
  // REGISTRATION RESOURCES (it must fit the replica's metadata superblock).
  static constexpr std::size_t kMaxRecordBytes = replication::kMaxReservationRecordBytes;

  std::uint32_t generation() const { return generation_; }
  bool aptpl() const { return aptpl_; }
  const std::vector<Registration>& registrations() const { return registrations_; }
  const std::optional<Reservation>& reservation() const { return reservation_; }
  const Registration* find(const Nexus& nexus) const;
  // Whether `nexus` holds the reservation (any registrant does, for the all-registrants types).
  bool holds(const Nexus& nexus) const;
  // Whether a command from `nexus` that uses the medium so is refused with RESERVATION CONFLICT.
  bool conflicts(const Nexus& nexus, MediumUse use) const;
  bool empty() const { return registrations_.empty() && !reservation_; }

  // The PERSISTENT RESERVE OUT service actions. `all_ports` are the target ports a registration
  // with ALL_TG_PT covers. Each returns GOOD, RESERVATION CONFLICT or the sense data SPC-4
  // prescribes, and on success appends the unit attentions other nexuses get to `notices`.
  Result register_key(const Nexus& nexus, const PrOutParameters& p, bool ignore_existing,
                      std::span<const std::uint16_t> all_ports, std::vector<PrNotice>& notices);
  Result reserve(const Nexus& nexus, const PrOutParameters& p, PrType type);
  Result release(const Nexus& nexus, const PrOutParameters& p, PrType type, std::vector<PrNotice>& notices);
  Result clear(const Nexus& nexus, const PrOutParameters& p, std::vector<PrNotice>& notices);
  Result preempt(const Nexus& nexus, const PrOutParameters& p, PrType type, std::vector<PrNotice>& notices);
  Result register_and_move(const Nexus& nexus, const PrOutParameters& p, std::vector<PrNotice>& notices);

  // The state that persists (APTPL) and follows the volume to another node, as bytes.
  std::vector<std::uint8_t> encode() const;
  // False (and no change) when `record` is malformed; an empty record is the empty state.
  bool decode(std::span<const std::uint8_t> record);

  bool operator==(const PersistentReservations&) const = default;

 private:
  Registration* find_mutable(const Nexus& nexus);
  // Removes the registrations `remove` selects, except `keep`'s, noting 2A/05 for each.
  template <typename Predicate>
  void remove_registrations(const Nexus& keep, Predicate remove, std::vector<PrNotice>& notices);
  void drop_reservation_if_holder_gone();
  std::size_t encoded_size_with(const Nexus& extra) const;

  std::uint32_t generation_ = 0;
  bool aptpl_ = false;
  std::vector<Registration> registrations_;
  std::optional<Reservation> reservation_;
};

}  // namespace freevsa::scsi
