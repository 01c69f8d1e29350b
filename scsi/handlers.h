// Command handlers (one per command family) and what they are handed. Internal to scsi/.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>

#include "scsi/command_table.h"
#include "scsi/logical_unit.h"
#include "scsi/sense.h"
#include "scsi/task.h"
#include "scsi/unit_state.h"

namespace freevsa::scsi {

using LunList = std::map<std::uint64_t, std::shared_ptr<LogicalUnit>>;

struct CommandContext {
  Task& task;
  const CommandInfo& info;
  LogicalUnit* unit;          // null: no logical unit at task.lun (kWithoutLogicalUnit commands)
  LogicalUnitState* state;    // null iff unit is null
  const LunList* luns;        // the target's LUNs; null when a LogicalUnit runs on its own
};

// Runs one command to completion: lookup, unit attention, handler, sense. Fills task outputs.
void dispatch(Task& task, LogicalUnit* unit, LogicalUnitState* state, const LunList* luns);

// Largest READ/WRITE/VERIFY length accepted, in bytes (reported in the Block Limits VPD page).
inline constexpr std::uint32_t kMaxTransferBytes = 16u << 20;
inline std::uint32_t max_transfer_blocks(std::uint32_t block_size) {
  return kMaxTransferBytes / block_size;
}

// Helpers shared by the handlers.
// Copies min(data.size(), allocation_length) bytes to task.data_in.
Result send_data_in(Task& task, std::span<const std::uint8_t> data, std::uint32_t allocation_length);
// Records the Data-Out the CDB asks for and fails with 05/0E/03 if the initiator sent less.
Result require_data_out(Task& task, std::uint64_t bytes);
// For writes: how much of `bytes` can be written given the Data-Out that arrived (whole blocks).
Result usable_data_out(Task& task, std::uint64_t bytes, std::uint32_t block_size, std::uint64_t& usable);
// Volume errno -> sense (documented in sbc_commands.cpp).
Sense read_error_sense(int error);
Sense write_error_sense(int error);

// SPC (spc_commands.cpp)
Result handle_test_unit_ready(CommandContext& ctx);
Result handle_request_sense(CommandContext& ctx);
Result handle_inquiry(CommandContext& ctx);
Result handle_report_luns(CommandContext& ctx);
Result handle_report_supported_opcodes(CommandContext& ctx);
// mode_commands.cpp
Result handle_mode_sense(CommandContext& ctx);
Result handle_mode_select(CommandContext& ctx);
// SBC (sbc_commands.cpp)
Result handle_read_capacity10(CommandContext& ctx);
Result handle_read_capacity16(CommandContext& ctx);
Result handle_read(CommandContext& ctx);
Result handle_write(CommandContext& ctx);
Result handle_write_and_verify(CommandContext& ctx);
Result handle_verify(CommandContext& ctx);
Result handle_prefetch(CommandContext& ctx);
Result handle_synchronize_cache(CommandContext& ctx);
Result handle_start_stop_unit(CommandContext& ctx);
Result handle_prevent_allow_medium_removal(CommandContext& ctx);

}  // namespace freevsa::scsi
