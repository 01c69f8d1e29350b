// The command pipeline: table lookup, unit attention, generic CDB checks, handler, sense.
#include <algorithm>
#include <cstring>
#include <new>

#include "scsi/handlers.h"
#include "scsi/reservation_table.h"

namespace freevsa::scsi {
namespace {

Result run_command(Task& task, LogicalUnit* unit, LogicalUnitState* state, const LunList* luns) {
  const std::uint8_t* cdb = task.cdb.data();
  const Lookup found = lookup_command(cdb);

  if (unit == nullptr) {
    // SPC-4 / SAM-5: a LUN without a logical unit answers INQUIRY (peripheral qualifier 011b),
    // REPORT LUNS and REQUEST SENSE; everything else is LOGICAL UNIT NOT SUPPORTED.
    if (found.info == nullptr || (found.info->flags & kWithoutLogicalUnit) == 0) {
      return Sense::logical_unit_not_supported();
    }
  } else {
    state->note_port_group_states(unit->volume().port_group_states());
    // SAM-5 5.14: a pending unit attention terminates every command except INQUIRY, REPORT
    // LUNS and REQUEST SENSE (which neither report nor clear it; REQUEST SENSE returns it as
    // its parameter data). Unknown opcodes report it too.
    const bool allowed = found.info != nullptr && (found.info->flags & kAllowedWithUnitAttention);
    if (auto ua = state->unit_attention(task.initiator_port, /*consume=*/!allowed);
        ua && !allowed) {
      return *ua;
    }
  }

  if (found.info == nullptr) {
    if (found.unknown_service_action) return Sense::invalid_field_in_cdb(1, 4);
    return Sense::invalid_opcode();
  }
  const CommandInfo& info = *found.info;
  if (unit != nullptr && (info.flags & kAllowedInStandby) == 0) {
    // Only the node where the volume is active serves its data; the others send the
    // initiator to another path (and never report the device as gone).
    const replication::Access access = unit->volume().access();
    if (access != replication::Access::Active) return access_state_sense(access);
  }
  // CONTROL byte: NACA=1 needs ACA support, which we do not have (SAM-5 5.9.1.2).
  const std::uint8_t control_offset = static_cast<std::uint8_t>(info.cdb_length - 1);
  if (cdb[control_offset] & 0x04) return Sense::invalid_field_in_cdb(control_offset, 2);

  if (unit != nullptr && (info.flags & (kReservationExempt | kReservationOwnRules)) == 0) {
    const MediumUse use = (info.flags & kReservationRead) ? MediumUse::Read : MediumUse::Write;
    if (unit->reservations().conflicts(task.initiator_port, use)) return Result::reservation_conflict();
  }

  CommandContext ctx{task, info, unit, state, luns};
  return info.handler(ctx);
}

}  // namespace

void dispatch(Task& task, LogicalUnit* unit, LogicalUnitState* state, const LunList* luns) {
  task.status = Status::Good;
  task.sense.clear();
  task.data_in_length = 0;
  task.data_out_needed = 0;
  Result result;
  try {
    result = run_command(task, unit, state, luns);
  } catch (const std::bad_alloc&) {
    // The only exception the path can see (AlignedBuffer); the initiator may retry.
    result = Sense::insufficient_resources();
  }
  if (result.is_reservation_conflict()) {
    task.status = Status::ReservationConflict;
    task.data_in_length = 0;
  } else if (!result.ok()) {
    task.status = Status::CheckCondition;
    task.sense = build_fixed_sense(result.sense());
    task.data_in_length = 0;
  }
}

Result send_data_in(Task& task, std::span<const std::uint8_t> data,
                    std::uint32_t allocation_length) {
  const std::size_t n = std::min<std::size_t>(data.size(), allocation_length);
  task.data_in = util::AlignedBuffer(n);
  if (n != 0) std::memcpy(task.data_in.data(), data.data(), n);
  task.data_in_length = static_cast<std::uint32_t>(n);
  return good();
}

Result require_data_out(Task& task, std::uint64_t bytes) {
  task.data_out_needed = static_cast<std::uint32_t>(std::min<std::uint64_t>(bytes, UINT32_MAX));
  const std::uint64_t available = std::min<std::uint64_t>(task.data_out_length, task.data_out.size());
  if (available < bytes) return Sense::invalid_field_in_command_iu();
  return good();
}

// iSCSI's Expected Data Transfer Length may cut a write short (FCP-4 9.4.2 option (a), which
// libiscsi's residual tests expect): the blocks that did arrive are written and the command
// succeeds, the transport reporting the rest as residual overflow. Only a partial block cannot
// be written.
Result usable_data_out(Task& task, std::uint64_t bytes, std::uint32_t block_size, std::uint64_t& usable) {
  task.data_out_needed = static_cast<std::uint32_t>(std::min<std::uint64_t>(bytes, UINT32_MAX));
  const std::uint64_t available = std::min<std::uint64_t>(task.data_out_length, task.data_out.size());
  if (available >= bytes) {
    usable = bytes;
    return good();
  }
  if (available % block_size != 0) return Sense::invalid_field_in_command_iu();
  usable = available;
  return good();
}

}  // namespace freevsa::scsi
