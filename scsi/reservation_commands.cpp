// PERSISTENT RESERVE IN/OUT (SPC-4 6.15, 6.16) and RESERVE/RELEASE(6)/(10) (SPC-2 7.21, 7.17):
// CDB and parameter list decoding, and the parameter data PERSISTENT RESERVE IN returns. The
// rules themselves are in persistent_reservations.cpp, the locking and storage in
// reservation_table.cpp.
#include <algorithm>
#include <array>
#include <cctype>

#include "scsi/cdb.h"
#include "scsi/handlers.h"
#include "scsi/reservation_forwarding.h"
#include "scsi/reservation_table.h"
#include "util/endian.h"

namespace freevsa::scsi {
namespace {

constexpr std::uint8_t kLuScope = 0x0;
constexpr std::uint32_t kBasicParameterListLength = 24;
constexpr std::uint8_t kProtocolIscsi = 0x5;
constexpr std::uint8_t kFormatInitiatorPort = 0x1;  // TransportID "<name>,i,0x<isid>"

// ---- PERSISTENT RESERVE IN

std::vector<std::uint8_t> header(std::uint32_t generation, std::size_t additional) {
  std::vector<std::uint8_t> d(8 + additional, 0);
  util::put_be32(&d[0], generation);
  util::put_be32(&d[4], static_cast<std::uint32_t>(additional));
  return d;
}

std::vector<std::uint8_t> read_keys(const PersistentReservations& pr) {
  auto d = header(pr.generation(), 8 * pr.registrations().size());
  std::size_t at = 8;
  for (const Registration& r : pr.registrations()) {
    util::put_be64(&d[at], r.key);
    at += 8;
  }
  return d;
}

std::uint8_t scope_and_type(PrType type) { return static_cast<std::uint8_t>(kLuScope << 4 | static_cast<std::uint8_t>(type)); }

// The key READ RESERVATION and READ FULL STATUS report for the holder: an all-registrants
// reservation has none (SPC-4 6.15.3).
std::uint64_t holder_key(const PersistentReservations& pr) {
  if (!pr.reservation() || all_registrants(pr.reservation()->type)) return 0;
  const Registration* r = pr.find(pr.reservation()->holder);
  return r == nullptr ? 0 : r->key;
}

std::vector<std::uint8_t> read_reservation(const PersistentReservations& pr) {
  if (!pr.reservation()) return header(pr.generation(), 0);
  auto d = header(pr.generation(), 16);
  util::put_be64(&d[8], holder_key(pr));
  d[21] = scope_and_type(pr.reservation()->type);
  return d;
}

// SPC-4 6.15.4: what each capability bit says about this device server.
std::vector<std::uint8_t> report_capabilities(const PersistentReservations& pr) {
  std::vector<std::uint8_t> d(8, 0);
  util::put_be16(&d[0], 8);
  // CRH: RESERVE/RELEASE follow SPC-4 5.13.3; ATP_C: ALL_TG_PT; PTPL_C: APTPL. No SPEC_I_PT.
  d[2] = 0x10 | 0x04 | 0x01;
  d[3] = static_cast<std::uint8_t>(0x80 | (pr.aptpl() ? 0x01 : 0x00));  // TMV, PTPL_A
  d[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;  // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
  d[5] = 0x01;                              // EX_AC_AR
  return d;
}

// iSCSI initiator port TransportID (SPC-4 7.6.4.6): the name with ",i,0x<isid>", NUL
// terminated and padded to a multiple of 4.
std::vector<std::uint8_t> transport_id(const std::string& initiator_port) {
  const std::size_t name_bytes = (initiator_port.size() + 1 + 3) / 4 * 4;
  std::vector<std::uint8_t> d(4 + name_bytes, 0);
  d[0] = kFormatInitiatorPort << 6 | kProtocolIscsi;
  util::put_be16(&d[2], static_cast<std::uint16_t>(name_bytes));
  std::copy(initiator_port.begin(), initiator_port.end(), d.begin() + 4);
  return d;
}

std::vector<std::uint8_t> read_full_status(const PersistentReservations& pr) {
  std::vector<std::uint8_t> body;
  for (const Registration& r : pr.registrations()) {
    std::array<std::uint8_t, 24> fixed{};
    util::put_be64(&fixed[0], r.key);
    const bool holder = pr.holds(r.nexus);
    fixed[12] = static_cast<std::uint8_t>((r.all_target_ports ? 0x02 : 0) | (holder ? 0x01 : 0));
    if (holder) fixed[13] = scope_and_type(pr.reservation()->type);
    util::put_be16(&fixed[18], r.nexus.target_port);
    const auto id = transport_id(r.nexus.initiator);
    util::put_be32(&fixed[20], static_cast<std::uint32_t>(id.size()));
    body.insert(body.end(), fixed.begin(), fixed.end());
    body.insert(body.end(), id.begin(), id.end());
  }
  auto d = header(pr.generation(), body.size());
  std::copy(body.begin(), body.end(), d.begin() + 8);
  return d;
}

using PrInReport = std::vector<std::uint8_t> (*)(const PersistentReservations&);
constexpr std::array<PrInReport, 4> kPrInReports = {read_keys, read_reservation, report_capabilities,
                                                    read_full_status};

// ---- PERSISTENT RESERVE OUT

enum class PrOutAction : std::uint8_t {
  Register = 0,
  Reserve = 1,
  Release = 2,
  Clear = 3,
  Preempt = 4,
  PreemptAndAbort = 5,
  RegisterAndIgnoreExistingKey = 6,
  RegisterAndMove = 7,
};

// Parses the TransportID of REGISTER AND MOVE; only the iSCSI initiator port form names one
// I_T nexus. The ISID is compared in lower case, as the target writes it.
std::optional<std::string> parse_transport_id(const std::uint8_t* p, std::size_t length) {
  if (length < 4 || (p[0] & 0x0F) != kProtocolIscsi || (p[0] >> 6) != kFormatInitiatorPort) return std::nullopt;
  const std::size_t name_bytes = util::get_be16(p + 2);
  if (name_bytes + 4 > length) return std::nullopt;
  const char* name = reinterpret_cast<const char*>(p + 4);
  std::string port(name, strnlen(name, name_bytes));
  const auto separator = port.rfind(",i,0x");
  if (separator == std::string::npos) return std::nullopt;
  std::transform(port.begin() + static_cast<std::ptrdiff_t>(separator), port.end(),
                 port.begin() + static_cast<std::ptrdiff_t>(separator),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return port;
}

Result parse_parameters(const Task& task, PrOutAction action, std::uint32_t length, const ReservationTable& table,
                        PrOutParameters& p) {
  const std::uint8_t* d = task.data_out.data();
  if (action == PrOutAction::RegisterAndMove) {
    if (length < kBasicParameterListLength) return Sense::parameter_list_length_error();
    p.key = util::get_be64(d);
    p.service_action_key = util::get_be64(d + 8);
    p.unregister = (d[17] & 0x02) != 0;
    p.aptpl = (d[17] & 0x01) != 0;
    const std::uint16_t port = util::get_be16(d + 18);
    const std::uint32_t id_length = util::get_be32(d + 20);
    if (std::uint64_t{kBasicParameterListLength} + id_length != length) return Sense::parameter_list_length_error();
    const auto initiator = parse_transport_id(d + 24, id_length);
    if (!initiator) return Sense::invalid_field_in_parameter_list(24);
    const auto ports = table.all_target_ports();
    if (std::find(ports.begin(), ports.end(), port) == ports.end()) return Sense::invalid_field_in_parameter_list(18);
    p.move_to = Nexus{*initiator, port};
    return good();
  }
  if (length != kBasicParameterListLength) return Sense::parameter_list_length_error();
  p.key = util::get_be64(d);
  p.service_action_key = util::get_be64(d + 8);
  if (d[20] & 0x08) return Sense::invalid_field_in_parameter_list(20, 3);  // SPEC_I_PT: not offered
  p.all_target_ports = (d[20] & 0x04) != 0;
  p.aptpl = (d[20] & 0x01) != 0;
  const bool registering = action == PrOutAction::Register || action == PrOutAction::RegisterAndIgnoreExistingKey;
  if (p.all_target_ports && !registering) return Sense::invalid_field_in_parameter_list(20, 2);
  return good();
}

bool needs_scope_and_type(PrOutAction action) {
  return action == PrOutAction::Reserve || action == PrOutAction::Release || action == PrOutAction::Preempt ||
         action == PrOutAction::PreemptAndAbort;
}

void raise_notices(LogicalUnitState& state, const std::vector<PrNotice>& notices, std::uint16_t local_port) {
  for (const PrNotice& n : notices) {
    // A nexus through another node's port is not told: that node does not serve the volume.
    if (n.nexus.target_port == local_port) state.raise_for(n.nexus.initiator, 0x2A, n.ascq);
  }
}

// PERSISTENT RESERVE OUT from `nexus`, which may have come through another node's port.
Result persistent_reserve_out(ReservationTable& table, LogicalUnitState& state, Task& task, const Nexus& nexus) {
  const std::uint8_t* cdb = task.cdb.data();
  const auto action = static_cast<PrOutAction>(cdb[1] & 0x1F);
  const std::uint8_t scope = cdb[2] >> 4;
  const std::uint8_t type_code = cdb[2] & 0x0F;
  const std::uint32_t length = util::get_be32(cdb + 5);

  if (Result r = require_data_out(task, length); !r.ok()) return r;
  if (table.reserved_by_other(nexus)) return Result::reservation_conflict();
  if (needs_scope_and_type(action)) {
    if (scope != kLuScope) return Sense::invalid_field_in_cdb(2, 7);
    if (!valid_pr_type(type_code)) return Sense::invalid_field_in_cdb(2, 3);
  }
  PrOutParameters p;
  if (Result r = parse_parameters(task, action, length, table, p); !r.ok()) return r;
  const auto type = static_cast<PrType>(type_code);
  const auto all_ports = table.all_target_ports();

  std::vector<PrNotice> notices;
  Result result = table.update(
      [&](PersistentReservations& pr, std::vector<PrNotice>& out) -> Result {
        switch (action) {
          case PrOutAction::Register: return pr.register_key(nexus, p, false, all_ports, out);
          case PrOutAction::RegisterAndIgnoreExistingKey: return pr.register_key(nexus, p, true, all_ports, out);
          case PrOutAction::Reserve: return pr.reserve(nexus, p, type);
          case PrOutAction::Release: return pr.release(nexus, p, type, out);
          case PrOutAction::Clear: return pr.clear(nexus, p, out);
          // Commands run to completion one by one on the workers, so a preempted nexus has no
          // task left for PREEMPT AND ABORT to abort once its registration is gone.
          case PrOutAction::Preempt:
          case PrOutAction::PreemptAndAbort: return pr.preempt(nexus, p, type, out);
          case PrOutAction::RegisterAndMove: return pr.register_and_move(nexus, p, out);
        }
        return Sense::invalid_field_in_cdb(1, 4);
      },
      notices);
  if (result.ok()) raise_notices(state, notices, table.local_port());
  return result;
}

// A standby port takes PERSISTENT RESERVE OUT (SPC-4 5.15.2.4.4): the primary runs it, and its
// new state is on this node before the answer comes back.
Result forward_persistent_reserve_out(CommandContext& ctx) {
  Task& task = ctx.task;
  const std::uint32_t length = util::get_be32(task.cdb.data() + 5);
  if (Result r = require_data_out(task, length); !r.ok()) return r;
  ForwardedCommand command;
  command.nexus = ctx.unit->reservations().nexus(task.initiator_port);
  std::copy_n(task.cdb.begin(), command.cdb.size(), command.cdb.begin());
  command.parameters.assign(task.data_out.data(), task.data_out.data() + std::min<std::uint32_t>(length, task.data_out_length));
  std::vector<std::uint8_t> answer;
  replication::Volume& volume = ctx.unit->volume();
  if (volume.forward_reservation_command(encode_forwarded_command(command), answer) != 0) {
    return access_state_sense(volume.access());
  }
  const std::optional<Result> result = decode_forwarded_result(answer);
  return result ? *result : Sense::internal_target_failure();
}

}  // namespace

Result handle_persistent_reserve_in(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  ReservationTable& table = ctx.unit->reservations();
  if (table.reserved_by_other(table.nexus(ctx.task.initiator_port))) return Result::reservation_conflict();
  const std::uint8_t action = cdb[1] & 0x1F;  // the table only lets 00h..03h through
  return send_data_in(ctx.task, kPrInReports[action](table.snapshot()), allocation_length(cdb));
}

Result handle_persistent_reserve_out(CommandContext& ctx) {
  if (ctx.unit->volume().access() != replication::Access::Active) return forward_persistent_reserve_out(ctx);
  ReservationTable& table = ctx.unit->reservations();
  return persistent_reserve_out(table, *ctx.state, ctx.task, table.nexus(ctx.task.initiator_port));
}

std::vector<std::uint8_t> run_forwarded_persistent_reserve_out(LogicalUnit& unit, LogicalUnitState& state,
                                                               std::span<const std::uint8_t> request) {
  const std::optional<ForwardedCommand> command = decode_forwarded_command(request);
  if (!command || command->cdb[0] != 0x5F) return encode_forwarded_result(Sense::invalid_field_in_cdb(0));
  Task task;
  std::copy(command->cdb.begin(), command->cdb.end(), task.cdb.begin());
  task.cdb_length = static_cast<std::uint8_t>(command->cdb.size());
  task.initiator_port = command->nexus.initiator;
  task.data_out = util::AlignedBuffer(command->parameters.size());
  std::copy(command->parameters.begin(), command->parameters.end(), task.data_out.data());
  task.data_out_length = static_cast<std::uint32_t>(command->parameters.size());
  const Lookup found = lookup_command(task.cdb.data());
  if (found.info == nullptr) return encode_forwarded_result(Sense::invalid_field_in_cdb(1, 4));
  return encode_forwarded_result(persistent_reserve_out(unit.reservations(), state, task, command->nexus));
}

// RESERVE(6)/(10): third-party and long-identifier reservations are not offered.
Result handle_reserve(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  if (cdb[1] != 0) return Sense::invalid_field_in_cdb(1);
  ReservationTable& table = ctx.unit->reservations();
  return table.reserve(table.nexus(ctx.task.initiator_port));
}

Result handle_release(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  if (cdb[1] != 0) return Sense::invalid_field_in_cdb(1);
  ReservationTable& table = ctx.unit->reservations();
  return table.release(table.nexus(ctx.task.initiator_port));
}

}  // namespace freevsa::scsi
