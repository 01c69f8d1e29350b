#include "scsi/persistent_reservations.h"

#include <algorithm>
#include <utility>

#include "util/endian.h"

namespace freevsa::scsi {

bool valid_pr_type(std::uint8_t type) {
  switch (type) {
    case 1: case 3: case 5: case 6: case 7: case 8: return true;
    default: return false;
  }
}

bool all_registrants(PrType type) {
  return type == PrType::WriteExclusiveAllRegistrants || type == PrType::ExclusiveAccessAllRegistrants;
}

namespace {

bool exclusive_access(PrType type) {
  return type == PrType::ExclusiveAccess || type == PrType::ExclusiveAccessRegistrantsOnly ||
         type == PrType::ExclusiveAccessAllRegistrants;
}

// Registrants-only and all-registrants reservations give every registered nexus access.
bool registrants_have_access(PrType type) {
  return type != PrType::WriteExclusive && type != PrType::ExclusiveAccess;
}

constexpr std::uint8_t kRegistrationsPreempted = 0x05;
constexpr std::uint8_t kReservationsPreempted = 0x03;
constexpr std::uint8_t kReservationsReleased = 0x04;

}  // namespace

const Registration* PersistentReservations::find(const Nexus& nexus) const {
  auto it = std::find_if(registrations_.begin(), registrations_.end(),
                         [&](const Registration& r) { return r.nexus == nexus; });
  return it == registrations_.end() ? nullptr : &*it;
}

Registration* PersistentReservations::find_mutable(const Nexus& nexus) {
  return const_cast<Registration*>(std::as_const(*this).find(nexus));
}

bool PersistentReservations::holds(const Nexus& nexus) const {
  if (!reservation_) return false;
  if (all_registrants(reservation_->type)) return find(nexus) != nullptr;
  return reservation_->holder == nexus;
}

bool PersistentReservations::conflicts(const Nexus& nexus, MediumUse use) const {
  if (!reservation_ || holds(nexus)) return false;
  if (registrants_have_access(reservation_->type) && find(nexus) != nullptr) return false;
  return use == MediumUse::Write || exclusive_access(reservation_->type);
}

template <typename Predicate>
void PersistentReservations::remove_registrations(const Nexus& keep, Predicate remove,
                                                  std::vector<PrNotice>& notices) {
  std::erase_if(registrations_, [&](const Registration& r) {
    if (r.nexus == keep || !remove(r)) return false;
    notices.push_back({r.nexus, kRegistrationsPreempted});
    return true;
  });
}

// A reservation whose holder is no longer registered is gone (SPC-4 5.13.11.2.3); for the
// all-registrants types that is when the last registration went.
void PersistentReservations::drop_reservation_if_holder_gone() {
  if (!reservation_) return;
  const bool gone = all_registrants(reservation_->type) ? registrations_.empty()
                                                        : find(reservation_->holder) == nullptr;
  if (gone) reservation_.reset();
}

// SPC-4 5.13.7 (REGISTER) and 5.13.8 (REGISTER AND IGNORE EXISTING KEY).
Result PersistentReservations::register_key(const Nexus& nexus, const PrOutParameters& p, bool ignore_existing,
                                            std::span<const std::uint16_t> all_ports,
                                            std::vector<PrNotice>& notices) {
  Registration* existing = find_mutable(nexus);
  if (existing == nullptr) {
    if (!ignore_existing && p.key != 0) return Result::reservation_conflict();
    if (p.service_action_key == 0) return good();  // nothing to register, nothing changes
    std::vector<Nexus> nexuses{nexus};
    if (p.all_target_ports) {
      for (std::uint16_t port : all_ports) {
        if (port != nexus.target_port) nexuses.push_back(Nexus{nexus.initiator, port});
      }
    }
    for (const Nexus& n : nexuses) {
      if (find(n) != nullptr) continue;
      if (encoded_size_with(n) > kMaxRecordBytes) return Sense::insufficient_registration_resources();
    }
    for (const Nexus& n : nexuses) {
      if (Registration* r = find_mutable(n)) {
        r->key = p.service_action_key;
      } else {
        registrations_.push_back({n, p.service_action_key, p.all_target_ports});
      }
    }
  } else {
    if (!ignore_existing && p.key != existing->key) return Result::reservation_conflict();
    if (p.service_action_key != 0) {
      existing->key = p.service_action_key;
    } else {
      // Unregistering: a registrants-only reservation it held is released and the other
      // registrants learn of it; an all-registrants one stays while anyone is registered.
      const bool released_reservation =
          reservation_ && !all_registrants(reservation_->type) && reservation_->holder == nexus;
      const bool notify = released_reservation && registrants_have_access(reservation_->type);
      std::erase_if(registrations_, [&](const Registration& r) { return r.nexus == nexus; });
      drop_reservation_if_holder_gone();
      if (notify) {
        for (const Registration& r : registrations_) notices.push_back({r.nexus, kReservationsReleased});
      }
    }
  }
  aptpl_ = p.aptpl;
  ++generation_;
  return good();
}

// SPC-4 5.13.9: a registered nexus creates the reservation, or asks again for the one it holds.
Result PersistentReservations::reserve(const Nexus& nexus, const PrOutParameters& p, PrType type) {
  const Registration* r = find(nexus);
  if (r == nullptr || r->key != p.key) return Result::reservation_conflict();
  if (reservation_) {
    if (!holds(nexus) || reservation_->type != type) return Result::reservation_conflict();
    return good();
  }
  reservation_ = Reservation{nexus, type};
  return good();
}

// SPC-4 5.13.11.2: only the holder releases; a release by any other registrant changes nothing.
Result PersistentReservations::release(const Nexus& nexus, const PrOutParameters& p, PrType type,
                                       std::vector<PrNotice>& notices) {
  const Registration* r = find(nexus);
  if (r == nullptr || r->key != p.key) return Result::reservation_conflict();
  if (!reservation_ || !holds(nexus)) return good();
  if (reservation_->type != type) return Sense::invalid_release_of_persistent_reservation();
  if (registrants_have_access(type)) {
    for (const Registration& other : registrations_) {
      if (!(other.nexus == nexus)) notices.push_back({other.nexus, kReservationsReleased});
    }
  }
  reservation_.reset();
  return good();
}

// SPC-4 5.13.11.2.6: every registration and the reservation go; the others learn of it.
Result PersistentReservations::clear(const Nexus& nexus, const PrOutParameters& p, std::vector<PrNotice>& notices) {
  const Registration* r = find(nexus);
  if (r == nullptr || r->key != p.key) return Result::reservation_conflict();
  for (const Registration& other : registrations_) {
    if (!(other.nexus == nexus)) notices.push_back({other.nexus, kReservationsPreempted});
  }
  registrations_.clear();
  reservation_.reset();
  ++generation_;
  return good();
}

// SPC-4 5.13.11.4 (PREEMPT; PREEMPT AND ABORT differs only in the tasks it aborts).
Result PersistentReservations::preempt(const Nexus& nexus, const PrOutParameters& p, PrType type,
                                       std::vector<PrNotice>& notices) {
  const Registration* r = find(nexus);
  if (r == nullptr || r->key != p.key) return Result::reservation_conflict();
  const std::uint64_t victim = p.service_action_key;
  auto has_victim_key = [victim](const Registration& reg) { return reg.key == victim; };

  if (reservation_ && all_registrants(reservation_->type) && victim == 0) {
    // Preempting an all-registrants reservation with key 0: everyone else goes and the
    // preempting nexus holds a new reservation.
    remove_registrations(nexus, [](const Registration&) { return true; }, notices);
    reservation_ = Reservation{nexus, type};
  } else if (reservation_ && !all_registrants(reservation_->type) &&
             find(reservation_->holder) != nullptr && find(reservation_->holder)->key == victim) {
    // Preempting the holder: its registrations go, the reservation passes to the preempter.
    const bool type_changed = reservation_->type != type;
    remove_registrations(nexus, has_victim_key, notices);
    reservation_ = Reservation{nexus, type};
    if (type_changed) {
      for (const Registration& other : registrations_) {
        if (!(other.nexus == nexus)) notices.push_back({other.nexus, kReservationsReleased});
      }
    }
  } else {
    // No reservation, or not the holder's key: only registrations go.
    if (victim == 0) return Sense::invalid_field_in_parameter_list(8);
    if (std::none_of(registrations_.begin(), registrations_.end(), has_victim_key))
      return Result::reservation_conflict();
    remove_registrations(nexus, has_victim_key, notices);
  }
  ++generation_;
  return good();
}

// SPC-4 5.13.12: the holder registers another I_T nexus and hands it the reservation.
Result PersistentReservations::register_and_move(const Nexus& nexus, const PrOutParameters& p,
                                                 std::vector<PrNotice>& notices) {
  (void)notices;  // the destination learns from its own commands; nobody else is affected
  const Registration* r = find(nexus);
  if (r == nullptr || r->key != p.key) return Result::reservation_conflict();
  if (!reservation_ || all_registrants(reservation_->type) || !(reservation_->holder == nexus))
    return Result::reservation_conflict();
  if (!p.move_to || *p.move_to == nexus) return Sense::invalid_field_in_parameter_list(24);
  if (p.service_action_key == 0) return Sense::invalid_field_in_parameter_list(8);
  if (find(*p.move_to) == nullptr && encoded_size_with(*p.move_to) > kMaxRecordBytes)
    return Sense::insufficient_registration_resources();
  if (Registration* dest = find_mutable(*p.move_to)) {
    dest->key = p.service_action_key;
  } else {
    registrations_.push_back({*p.move_to, p.service_action_key, false});
  }
  reservation_->holder = *p.move_to;
  if (p.unregister) std::erase_if(registrations_, [&](const Registration& reg) { return reg.nexus == nexus; });
  aptpl_ = p.aptpl;
  ++generation_;
  return good();
}

// Record layout (big-endian): version (1), flags (1: bit 0 APTPL), PRgeneration (4),
// reservation present (1) [type (1), holder port (2), holder name length (2), name],
// registration count (2), each: key (8), target port (2), flags (1: bit 0 ALL_TG_PT),
// name length (2), name.
namespace {
constexpr std::uint8_t kRecordVersion = 1;

void put_nexus(std::vector<std::uint8_t>& out, const Nexus& n) {
  std::uint8_t buf[4];
  util::put_be16(buf, n.target_port);
  util::put_be16(buf + 2, static_cast<std::uint16_t>(n.initiator.size()));
  out.insert(out.end(), buf, buf + 4);
  out.insert(out.end(), n.initiator.begin(), n.initiator.end());
}

std::size_t nexus_bytes(const Nexus& n) { return 4 + n.initiator.size(); }
constexpr std::size_t kRegistrationFixedBytes = 8 + 1;

class RecordReader {
 public:
  explicit RecordReader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  bool take(std::size_t n, const std::uint8_t*& p) {
    if (bytes_.size() - pos_ < n) return false;
    p = bytes_.data() + pos_;
    pos_ += n;
    return true;
  }
  bool u8(std::uint8_t& v) {
    const std::uint8_t* p;
    if (!take(1, p)) return false;
    v = *p;
    return true;
  }
  bool nexus(Nexus& n) {
    const std::uint8_t* p;
    if (!take(4, p)) return false;
    n.target_port = util::get_be16(p);
    const std::uint16_t length = util::get_be16(p + 2);
    if (!take(length, p)) return false;
    n.initiator.assign(reinterpret_cast<const char*>(p), length);
    return true;
  }
  bool at_end() const { return pos_ == bytes_.size(); }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
};
}  // namespace

std::vector<std::uint8_t> PersistentReservations::encode() const {
  std::vector<std::uint8_t> out{kRecordVersion, static_cast<std::uint8_t>(aptpl_ ? 1 : 0), 0, 0, 0, 0};
  util::put_be32(&out[2], generation_);
  out.push_back(reservation_ ? 1 : 0);
  if (reservation_) {
    out.push_back(static_cast<std::uint8_t>(reservation_->type));
    put_nexus(out, reservation_->holder);
  }
  std::uint8_t buf[8];
  util::put_be16(buf, static_cast<std::uint16_t>(registrations_.size()));
  out.insert(out.end(), buf, buf + 2);
  for (const Registration& r : registrations_) {
    util::put_be64(buf, r.key);
    out.insert(out.end(), buf, buf + 8);
    out.push_back(r.all_target_ports ? 1 : 0);
    put_nexus(out, r.nexus);
  }
  return out;
}

std::size_t PersistentReservations::encoded_size_with(const Nexus& extra) const {
  std::size_t size = 6 + 1 + 2;
  if (reservation_) size += 1 + nexus_bytes(reservation_->holder);
  for (const Registration& r : registrations_) size += kRegistrationFixedBytes + nexus_bytes(r.nexus);
  return size + kRegistrationFixedBytes + nexus_bytes(extra);
}

bool PersistentReservations::decode(std::span<const std::uint8_t> record) {
  if (record.empty()) {
    *this = PersistentReservations{};
    return true;
  }
  PersistentReservations next;
  RecordReader in(record);
  const std::uint8_t* p;
  std::uint8_t version, flags, has_reservation;
  if (!in.u8(version) || version != kRecordVersion || !in.u8(flags) || (flags & ~1u) != 0) return false;
  next.aptpl_ = (flags & 1) != 0;
  if (!in.take(4, p)) return false;
  next.generation_ = util::get_be32(p);
  if (!in.u8(has_reservation) || has_reservation > 1) return false;
  if (has_reservation) {
    std::uint8_t type;
    Reservation res;
    if (!in.u8(type) || !valid_pr_type(type) || !in.nexus(res.holder)) return false;
    res.type = static_cast<PrType>(type);
    next.reservation_ = res;
  }
  if (!in.take(2, p)) return false;
  const std::uint16_t count = util::get_be16(p);
  for (std::uint16_t i = 0; i < count; ++i) {
    Registration r;
    std::uint8_t reg_flags;
    if (!in.take(8, p)) return false;
    r.key = util::get_be64(p);
    if (!in.u8(reg_flags) || (reg_flags & ~1u) != 0 || !in.nexus(r.nexus)) return false;
    r.all_target_ports = (reg_flags & 1) != 0;
    if (next.find(r.nexus) != nullptr) return false;
    next.registrations_.push_back(std::move(r));
  }
  if (!in.at_end()) return false;
  if (next.reservation_ && !all_registrants(next.reservation_->type) && next.find(next.reservation_->holder) == nullptr)
    return false;
  *this = std::move(next);
  return true;
}

}  // namespace freevsa::scsi
