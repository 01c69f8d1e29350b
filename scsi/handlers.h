// Command handlers (one per command family) and what they are handed. Internal to scsi/.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "scsi/cdb.h"
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

// Limits reported in the Block Limits VPD page (B0h) and enforced by the handlers.
// Largest READ/WRITE/VERIFY length accepted, in bytes.
inline constexpr std::uint32_t kMaxTransferBytes = 16u << 20;
inline std::uint32_t max_transfer_blocks(std::uint32_t block_size) {
  return kMaxTransferBytes / block_size;
}
// WRITE SAME: the blocks one command may write or unmap (it writes them one buffer at a time).
inline constexpr std::uint32_t kMaxWriteSameBytes = 16u << 20;
inline std::uint32_t max_write_same_blocks(std::uint32_t block_size) { return kMaxWriteSameBytes / block_size; }
// UNMAP: descriptors per command; the LBA count has no limit (FFFFFFFFh).
inline constexpr std::uint32_t kMaxUnmapDescriptors = 256;
inline constexpr std::uint32_t kMaxUnmapBlocks = 0xFFFFFFFFu;
// Deallocation happens in file-system blocks: unmapping less than 4 KiB only zeroes.
inline std::uint32_t unmap_granularity_blocks(std::uint32_t block_size) {
  return block_size < 4096 ? 4096 / block_size : 1;
}
// COMPARE AND WRITE: blocks per command (the field is one byte).
inline constexpr std::uint8_t kMaxCompareAndWriteBlocks = 255;

// Helpers shared by the handlers.
struct Geometry {
  std::uint32_t block_size;
  std::uint64_t blocks;
};
Geometry geometry(const CommandContext& ctx);
// SBC-3 4.5: an LBA range beyond the capacity -> 05/21/00 (overflow-safe).
Result check_range(const Geometry& g, std::uint64_t lba, std::uint64_t blocks);
// Compares `expected` against what the volume holds at `offset`; a miscompare reports the byte
// offset (relative to `expected`, as SBC-3 5.3/5.43 ask) of the first difference. With
// one_block, `expected` is one block compared against every block of the range; null only
// checks the range is readable.
Result compare_with_medium(replication::Volume& v, std::uint64_t offset, std::uint64_t length,
                           const std::uint8_t* expected, std::uint32_t block_size, bool one_block);
// Copies min(data.size(), allocation_length) bytes to task.data_in.
Result send_data_in(Task& task, std::span<const std::uint8_t> data, std::uint32_t allocation_length);
// Records the Data-Out the CDB asks for and fails with 05/0E/03 if the initiator sent less.
Result require_data_out(Task& task, std::uint64_t bytes);
// For writes: how much of `bytes` can be written given the Data-Out that arrived (whole blocks).
Result usable_data_out(Task& task, std::uint64_t bytes, std::uint32_t block_size, std::uint64_t& usable);
// What every write of a BlockRequest checks first: protection, transfer length and range,
// then the Data-Out that arrived. `usable` is how many bytes there are to write (0: nothing).
Result writable_data_out(CommandContext& ctx, const BlockRequest& r, std::uint64_t& usable);
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
Result handle_read_defect_data(CommandContext& ctx);
// Thin provisioning (provisioning_commands.cpp)
Result handle_write_same(CommandContext& ctx);
Result handle_unmap(CommandContext& ctx);
Result handle_get_lba_status(CommandContext& ctx);
// compare_and_write.cpp
Result handle_compare_and_write(CommandContext& ctx);
// or_write.cpp
Result handle_orwrite(CommandContext& ctx);
// reservation_commands.cpp
Result handle_persistent_reserve_in(CommandContext& ctx);
Result handle_persistent_reserve_out(CommandContext& ctx);
Result handle_reserve(CommandContext& ctx);
Result handle_release(CommandContext& ctx);
// The primary's side of a PERSISTENT RESERVE OUT forwarded from a standby port
// (reservation_forwarding.h): the encoded result.
std::vector<std::uint8_t> run_forwarded_persistent_reserve_out(LogicalUnit& unit, LogicalUnitState& state,
                                                               std::span<const std::uint8_t> request);
// Third-party copy (extended_copy.cpp, copy_results.cpp, third_party_copy_vpd.cpp)
Result handle_extended_copy(CommandContext& ctx);
Result handle_copy_status(CommandContext& ctx);
Result handle_copy_operating_parameters(CommandContext& ctx);
std::vector<std::uint8_t> vpd_third_party_copy(std::uint32_t block_size);
// alua_commands.cpp
Result handle_report_target_port_groups(CommandContext& ctx);
// What a command that needs the volume active gets in `access` (SPC-4 5.15.2.4).
Sense access_state_sense(replication::Access access);
// The ASYMMETRIC ACCESS STATE code of a volume access state.
std::uint8_t asymmetric_access_state(replication::Access access);

}  // namespace freevsa::scsi
