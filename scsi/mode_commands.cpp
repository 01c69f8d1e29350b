// MODE SENSE(6)/(10) and MODE SELECT(6)/(10): one handler each for both CDB sizes.
#include <algorithm>
#include <vector>

#include "scsi/cdb.h"
#include "scsi/handlers.h"
#include "scsi/mode_pages.h"
#include "util/endian.h"

namespace freevsa::scsi {
namespace {

// Device-specific parameter (SBC-3 6.4.1): WP=0, DPOFUA=1 (DPO and FUA are accepted).
constexpr std::uint8_t kDeviceSpecificParameter = 0x10;

std::uint64_t block_count(const replication::Volume& volume) {
  return volume.size_bytes() / volume.block_size();
}

}  // namespace

Result handle_mode_sense(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  const bool ten = ctx.info.cdb_length == 10;
  const std::uint32_t alloc = allocation_length(cdb);
  const bool dbd = (cdb[1] & 0x08) != 0;
  const bool llbaa = ten && (cdb[1] & 0x10) != 0;
  const auto pc = static_cast<PageControl>(cdb[2] >> 6);
  const std::uint8_t page = cdb[2] & 0x3F;
  const std::uint8_t subpage = cdb[3];

  if (pc == PageControl::Saved) return Sense::saving_parameters_not_supported();
  if (subpage != 0 && !(page == kModePageAll && subpage == 0xFF)) {
    return Sense::invalid_field_in_cdb(3);
  }
  std::vector<std::uint8_t> pages;
  if (!append_mode_pages(pages, page, pc, ctx.state->mode())) {
    return Sense::invalid_field_in_cdb(2, 5);
  }

  // Block descriptor (SBC-3 6.4.2): number of blocks and block length; all zero in the
  // changeable form (neither can be changed).
  const replication::Volume& volume = ctx.unit->volume();
  std::vector<std::uint8_t> descriptor;
  if (!dbd) {
    const bool changeable = pc == PageControl::Changeable;
    const std::uint64_t blocks = changeable ? 0 : block_count(volume);
    const std::uint32_t length = changeable ? 0 : volume.block_size();
    if (llbaa) {
      descriptor.assign(16, 0);
      util::put_be64(&descriptor[0], blocks);
      util::put_be32(&descriptor[12], length);
    } else {
      descriptor.assign(8, 0);
      util::put_be32(&descriptor[0], static_cast<std::uint32_t>(std::min<std::uint64_t>(blocks, 0xFFFFFFFF)));
      util::put_be24(&descriptor[5], length);
    }
  }

  std::vector<std::uint8_t> d(ten ? 8 : 4, 0);
  if (ten) {
    d[3] = kDeviceSpecificParameter;
    d[4] = llbaa ? 0x01 : 0x00;  // LONGLBA
    util::put_be16(&d[6], static_cast<std::uint16_t>(descriptor.size()));
  } else {
    d[2] = kDeviceSpecificParameter;
    d[3] = static_cast<std::uint8_t>(descriptor.size());
  }
  d.insert(d.end(), descriptor.begin(), descriptor.end());
  d.insert(d.end(), pages.begin(), pages.end());
  if (ten) {
    util::put_be16(&d[0], static_cast<std::uint16_t>(d.size() - 2));
  } else {
    d[0] = static_cast<std::uint8_t>(d.size() - 1);
  }
  return send_data_in(ctx.task, d, alloc);
}

Result handle_mode_select(CommandContext& ctx) {
  Task& task = ctx.task;
  const std::uint8_t* cdb = task.cdb.data();
  const bool ten = ctx.info.cdb_length == 10;
  const std::uint32_t length = ten ? util::get_be16(cdb + 7) : cdb[4];
  task.data_out_needed = length;
  // SP=1: the logical unit has no saved pages (SPC-4 6.11).
  if (cdb[1] & 0x01) return Sense::invalid_field_in_cdb(1, 0);
  if (length == 0) return good();
  if (Result r = require_data_out(task, length); !r.ok()) return r;

  const std::uint8_t* p = task.data_out.data();
  const std::uint32_t header = ten ? 8 : 4;
  if (length < header) return Sense::parameter_list_length_error();
  const std::uint32_t descriptor_length = ten ? util::get_be16(p + 6) : p[3];
  const bool long_lba = ten && (p[4] & 0x01) != 0;
  if (header + descriptor_length > length) return Sense::parameter_list_length_error();

  const replication::Volume& volume = ctx.unit->volume();
  if (descriptor_length != 0) {
    // One block descriptor; it may restate the capacity (or 0) and must keep the block length.
    const std::uint32_t expected = long_lba ? 16 : 8;
    if (descriptor_length != expected) {
      return Sense::invalid_field_in_parameter_list(ten ? 6 : 3);
    }
    const std::uint8_t* bd = p + header;
    const std::uint64_t capacity = block_count(volume);
    const std::uint64_t blocks = long_lba ? util::get_be64(bd) : util::get_be32(bd);
    const std::uint64_t shown = long_lba ? capacity : std::min<std::uint64_t>(capacity, 0xFFFFFFFF);
    if (blocks != 0 && blocks != shown) return Sense::invalid_field_in_parameter_list(header);
    const std::uint32_t block_length = long_lba ? util::get_be32(bd + 12) : util::get_be24(bd + 5);
    if (block_length != volume.block_size()) {
      return Sense::invalid_field_in_parameter_list(header + (long_lba ? 12 : 5));
    }
  }

  // Validate every page before applying any of them.
  ModeSettings settings = ctx.state->mode();
  std::uint32_t offset = header + descriptor_length;
  while (offset < length) {
    if (length - offset < 2) return Sense::parameter_list_length_error();
    const std::uint32_t page_size = 2u + p[offset + 1];
    if (page_size > length - offset) return Sense::parameter_list_length_error();
    if (Result r = select_mode_page({p + offset, page_size}, offset, settings); !r.ok()) return r;
    offset += page_size;
  }
  ctx.state->set_mode(settings, task.initiator_port);
  return good();
}

}  // namespace freevsa::scsi
