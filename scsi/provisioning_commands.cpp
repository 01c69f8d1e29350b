// Logical block provisioning (SBC-4 4.7): WRITE SAME(10/16) with and without UNMAP, UNMAP and
// GET LBA STATUS. The volume is thin: discarded blocks read as zeroes (LBPRZ), so unmapping
// zeroes never changes what an initiator reads. The limits come from handlers.h and are the
// ones the Block Limits VPD page reports.
#include <algorithm>
#include <cstring>
#include <vector>

#include "scsi/handlers.h"
#include "util/endian.h"

namespace freevsa::scsi {

namespace {

bool all_zero(std::span<const std::uint8_t> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

// Writes `pattern` (one block) to every block of [offset, offset + length), a buffer of
// repeated blocks at a time.
int write_pattern(replication::Volume& volume, std::uint64_t offset, std::uint64_t length,
                  std::span<const std::uint8_t> pattern) {
  constexpr std::uint64_t kBuffer = 1u << 20;
  const std::size_t block = pattern.size();
  util::AlignedBuffer buffer(static_cast<std::size_t>(std::min(length, kBuffer)));
  for (std::size_t at = 0; at < buffer.size(); at += block) std::memcpy(buffer.data() + at, pattern.data(), block);
  for (std::uint64_t done = 0; done < length;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), length - done));
    if (int e = volume.write(offset + done, {buffer.data(), n}, false); e != 0) return e;
    done += n;
  }
  return 0;
}

}  // namespace

// WRITE SAME(10/16): one block of Data-Out (none with NDOB: zeroes) written to every block of
// the range - or, with UNMAP and a block of zeroes, the range deallocated. ANCHOR is not
// supported (ANC_SUP=0), WSNZ=1: zero blocks is an invalid field once the range is checked.
Result handle_write_same(CommandContext& ctx) {
  Task& task = ctx.task;
  const std::uint8_t* cdb = task.cdb.data();
  const bool sixteen = ctx.info.cdb_length == 16;
  const std::uint64_t lba = sixteen ? util::get_be64(cdb + 2) : util::get_be32(cdb + 2);
  const std::uint32_t blocks = sixteen ? util::get_be32(cdb + 10) : util::get_be16(cdb + 7);
  const std::uint8_t length_byte = sixteen ? 10 : 7;
  const bool anchor = (cdb[1] & 0x10) != 0;
  const bool unmap = (cdb[1] & 0x08) != 0;
  const bool ndob = sixteen && (cdb[1] & 0x01) != 0;
  const Geometry g = geometry(ctx);
  task.data_out_needed = ndob ? 0 : g.block_size;

  if ((cdb[1] & 0xE0) != 0) return Sense::invalid_field_in_cdb(1, 7);  // no protection information
  if (anchor) return Sense::invalid_field_in_cdb(1, 4);
  if (Result res = check_range(g, lba, blocks); !res.ok()) return res;
  if (blocks == 0) return Sense::invalid_field_in_cdb(length_byte);
  if (blocks > max_write_same_blocks(g.block_size)) return Sense::invalid_field_in_cdb(length_byte);

  std::vector<std::uint8_t> zeroes;
  std::span<const std::uint8_t> pattern;
  if (ndob) {
    zeroes.assign(g.block_size, 0);
    pattern = zeroes;
  } else {
    if (Result res = require_data_out(task, g.block_size); !res.ok()) return res;
    // More than the one block the command takes is a malformed command, not data to ignore.
    if (task.data_out_length > g.block_size) return Sense::invalid_field_in_command_iu();
    pattern = {task.data_out.data(), g.block_size};
  }
  const std::uint64_t offset = lba * g.block_size;
  const std::uint64_t length = std::uint64_t{blocks} * g.block_size;
  replication::Volume& volume = ctx.unit->volume();
  const auto guard = ctx.unit->lock_blocks(offset, length);
  // Unmapped blocks read as zeroes: a block of anything else must really be written.
  const int error = unmap && all_zero(pattern) ? volume.discard(offset, length)
                                                : write_pattern(volume, offset, length, pattern);
  if (error != 0) return write_error_sense(error);
  if (!ctx.state->write_cache_enabled()) {
    if (int e = volume.flush(); e != 0) return write_error_sense(e);
  }
  return good();
}

// UNMAP (SBC-4 5.31): a parameter list of block descriptors, each range deallocated. Checked as
// a whole before anything is unmapped, so a bad descriptor leaves every block as it was.
Result handle_unmap(CommandContext& ctx) {
  Task& task = ctx.task;
  const std::uint8_t* cdb = task.cdb.data();
  const std::uint16_t list_length = util::get_be16(cdb + 7);
  task.data_out_needed = list_length;
  if (cdb[1] & 0x01) return Sense::invalid_field_in_cdb(1, 0);  // ANCHOR: ANC_SUP=0
  if (list_length == 0) return good();
  if (list_length < 8) return Sense::parameter_list_length_error();
  if (Result res = require_data_out(task, list_length); !res.ok()) return res;
  const std::uint8_t* list = task.data_out.data();
  const std::uint16_t descriptor_bytes = util::get_be16(list + 2);
  // Descriptors beyond the parameter list length are not there; SBC-4 says use what arrived.
  const std::uint32_t count = std::min<std::uint32_t>(descriptor_bytes, list_length - 8u) / 16;
  if (count > kMaxUnmapDescriptors) return Sense::invalid_field_in_parameter_list(2);

  const Geometry g = geometry(ctx);
  std::uint64_t total = 0;
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint8_t* d = list + 8 + 16 * i;
    const std::uint64_t lba = util::get_be64(d);
    const std::uint32_t blocks = util::get_be32(d + 8);
    if (Result res = check_range(g, lba, blocks); !res.ok()) return res;
    total += blocks;
  }
  if (total > kMaxUnmapBlocks) return Sense::invalid_field_in_parameter_list(8 + 8);

  replication::Volume& volume = ctx.unit->volume();
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint8_t* d = list + 8 + 16 * i;
    const std::uint64_t offset = util::get_be64(d) * g.block_size;
    const std::uint64_t length = std::uint64_t{util::get_be32(d + 8)} * g.block_size;
    if (length == 0) continue;
    const auto guard = ctx.unit->lock_blocks(offset, length);
    if (int e = volume.discard(offset, length); e != 0) return write_error_sense(e);
  }
  return good();
}

// GET LBA STATUS (SBC-4 5.6): from the starting LBA, runs of mapped and deallocated blocks, as
// many descriptors as the allocation length holds.
Result handle_get_lba_status(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  const std::uint64_t lba = util::get_be64(cdb + 2);
  const std::uint32_t allocation_length = util::get_be32(cdb + 10);
  const Geometry g = geometry(ctx);
  if (lba >= g.blocks) return Sense::lba_out_of_range();
  if (allocation_length == 0) return good();
  // At least one descriptor even if the initiator's buffer is short (the transport truncates).
  const std::size_t max_descriptors =
      std::clamp<std::size_t>(allocation_length < 8 ? 0 : (allocation_length - 8) / 16, 1, 1024);
  std::vector<replication::AllocationExtent> extents;
  const std::uint64_t offset = lba * g.block_size;
  if (int e = ctx.unit->volume().allocation(offset, g.blocks * g.block_size - offset, max_descriptors, extents);
      e != 0) {
    return read_error_sense(e);
  }
  std::vector<std::uint8_t> d(8, 0);
  for (const replication::AllocationExtent& e : extents) {
    const std::uint64_t blocks = e.length / g.block_size;
    const auto run = static_cast<std::uint32_t>(std::min<std::uint64_t>(blocks, 0xFFFFFFFFu));
    std::uint8_t descriptor[16] = {};
    util::put_be64(descriptor, e.offset / g.block_size);
    util::put_be32(descriptor + 8, run);
    descriptor[12] = e.mapped ? 0x00 : 0x01;  // PROVISIONING STATUS: mapped / deallocated
    d.insert(d.end(), descriptor, descriptor + sizeof descriptor);
    // The length field is 32 bits: a longer run is reported in part, and nothing after it.
    if (run < blocks) break;
  }
  util::put_be32(d.data(), static_cast<std::uint32_t>(d.size() - 4));  // PARAMETER DATA LENGTH
  return send_data_in(ctx.task, d, allocation_length);
}

}  // namespace freevsa::scsi
