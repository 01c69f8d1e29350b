// SPC-4 primary commands: TEST UNIT READY, REQUEST SENSE, INQUIRY (standard data and VPD
// pages), REPORT LUNS, REPORT SUPPORTED OPERATION CODES.
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "scsi/cdb.h"
#include "scsi/handlers.h"
#include "util/endian.h"

namespace freevsa::scsi {
namespace {

// Version descriptors (SPC-4 table 29): SAM-5, SPC-4, SBC-3, iSCSI (no version claimed).
constexpr std::array<std::uint16_t, 4> kVersionDescriptors = {0x00A0, 0x0460, 0x04C0, 0x0960};
constexpr std::uint8_t kStandardInquiryLength = 96;

// Copies an identification string into a fixed, space-padded ASCII field (SPC-4 4.4.1 allows
// only 20h..7Eh).
void put_ascii(std::uint8_t* out, std::size_t width, const std::string& text) {
  for (std::size_t i = 0; i < width; ++i) {
    char c = i < text.size() ? text[i] : ' ';
    out[i] = (c >= 0x20 && c <= 0x7E) ? static_cast<std::uint8_t>(c) : '_';
  }
}

std::vector<std::uint8_t> standard_inquiry(const LunIdentity& id, bool present) {
  std::vector<std::uint8_t> d(kStandardInquiryLength, 0);
  d[0] = present ? 0x00 : 0x7F;  // PQ 000b / 011b, direct access (00h) / unknown (1Fh)
  d[1] = 0x00;                   // RMB=0: the medium is not removable
  d[2] = 0x06;                   // VERSION: SPC-4
  d[3] = 0x12;                   // HISUP=1, RESPONSE DATA FORMAT=2
  d[4] = kStandardInquiryLength - 5;
  // TPGS=01b: implicit ALUA - the target changes port group states by itself (failover); an
  // initiator follows them with REPORT TARGET PORT GROUPS.
  // 3PC=1: EXTENDED COPY and the Third-party Copy VPD page; ESXi looks for it before it offloads
  // clones with XCOPY.
  d[5] = present ? 0x18 : 0x00;  // SCCS, ACC=0, TPGS, 3PC, PROTECT=0
  d[6] = 0x00;
  d[7] = 0x02;                   // CMDQUE=1
  put_ascii(&d[8], 8, id.vendor);
  put_ascii(&d[16], 16, id.product);
  put_ascii(&d[32], 4, id.revision);
  for (std::size_t i = 0; i < kVersionDescriptors.size(); ++i) {
    util::put_be16(&d[58 + 2 * i], kVersionDescriptors[i]);
  }
  return d;
}

constexpr std::array<std::uint8_t, 7> kSupportedVpdPages = {0x00, 0x80, 0x83, 0x8F, 0xB0, 0xB1, 0xB2};

std::vector<std::uint8_t> vpd_header(std::uint8_t page, std::size_t length) {
  std::vector<std::uint8_t> d(4 + length, 0);
  d[0] = 0x00;  // PQ 000b, direct access
  d[1] = page;
  util::put_be16(&d[2], static_cast<std::uint16_t>(length));
  return d;
}

std::vector<std::uint8_t> vpd_supported_pages() {
  auto d = vpd_header(0x00, kSupportedVpdPages.size());
  std::copy(kSupportedVpdPages.begin(), kSupportedVpdPages.end(), d.begin() + 4);
  return d;
}

std::vector<std::uint8_t> vpd_unit_serial(const LunIdentity& id) {
  const std::string serial = id.serial.empty() ? std::string(" ") : id.serial;
  auto d = vpd_header(0x80, serial.size());
  put_ascii(&d[4], serial.size(), serial);
  return d;
}

// Device Identification (SPC-4 7.8.6): the NAA designator (binary, LU association) and a T10
// vendor ID designator (ASCII: 8-byte vendor id + serial), both identifying the logical unit -
// the same on every node, so a multipath initiator sees one device - and, for the target port
// the command came through, its relative target port and target port group (this node's).
std::vector<std::uint8_t> vpd_device_identification(const LunIdentity& id, std::uint16_t port_group) {
  std::vector<std::uint8_t> body;
  // NAA
  body.insert(body.end(), {0x01, 0x03, 0x00, static_cast<std::uint8_t>(id.naa.size())});
  body.insert(body.end(), id.naa.begin(), id.naa.end());
  // T10 vendor ID
  const std::string serial = id.serial.empty() ? std::string("0") : id.serial;
  const std::size_t t10_length = 8 + serial.size();
  body.insert(body.end(), {0x02, 0x01, 0x00, static_cast<std::uint8_t>(t10_length)});
  const std::size_t at = body.size();
  body.resize(at + t10_length);
  put_ascii(&body[at], 8, id.vendor);
  put_ascii(&body[at + 8], serial.size(), serial);
  // Relative target port (type 4h) and target port group (type 5h), association: target port.
  for (const std::uint8_t type : {std::uint8_t{0x04}, std::uint8_t{0x05}}) {
    body.insert(body.end(), {0x01, static_cast<std::uint8_t>(0x10 | type), 0x00, 0x04, 0x00, 0x00});
    body.push_back(static_cast<std::uint8_t>(port_group >> 8));
    body.push_back(static_cast<std::uint8_t>(port_group));
  }

  auto d = vpd_header(0x83, body.size());
  std::copy(body.begin(), body.end(), d.begin() + 4);
  return d;
}

// Block Limits (SBC-3 6.5.3), page length 3Ch.
std::vector<std::uint8_t> vpd_block_limits(std::uint32_t block_size) {
  auto d = vpd_header(0xB0, 0x3C);
  const std::uint16_t granularity =
      static_cast<std::uint16_t>(block_size < 4096 ? 4096 / block_size : 1);
  d[4] = 0x01;                                             // WSNZ: WRITE SAME of zero blocks is refused
  d[5] = kMaxCompareAndWriteBlocks;                        // MAXIMUM COMPARE AND WRITE LENGTH
  util::put_be16(&d[6], granularity);                      // OPTIMAL TRANSFER LENGTH GRANULARITY
  util::put_be32(&d[8], max_transfer_blocks(block_size));  // MAXIMUM TRANSFER LENGTH
  // OPTIMAL TRANSFER LENGTH, MAXIMUM PREFETCH LENGTH: 0 (not reported).
  util::put_be32(&d[20], kMaxUnmapBlocks);                 // MAXIMUM UNMAP LBA COUNT
  util::put_be32(&d[24], kMaxUnmapDescriptors);            // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
  util::put_be32(&d[28], unmap_granularity_blocks(block_size));  // OPTIMAL UNMAP GRANULARITY
  util::put_be32(&d[32], 0x80000000u);                     // UGAVALID, UNMAP GRANULARITY ALIGNMENT 0
  util::put_be64(&d[36], max_write_same_blocks(block_size));  // MAXIMUM WRITE SAME LENGTH
  return d;
}

// Block Device Characteristics (SBC-3 6.5.2).
std::vector<std::uint8_t> vpd_block_device_characteristics() {
  auto d = vpd_header(0xB1, 0x3C);
  util::put_be16(&d[4], 0x0001);  // MEDIUM ROTATION RATE: non-rotating medium
  return d;
}

// Logical Block Provisioning (SBC-4 6.6.4): thin provisioned; UNMAP and WRITE SAME(10/16)
// with UNMAP deallocate, and deallocated blocks read as zeroes. Matches LBPME/LBPRZ in READ
// CAPACITY(16).
std::vector<std::uint8_t> vpd_logical_block_provisioning() {
  auto d = vpd_header(0xB2, 4);
  d[4] = 0x00;  // THRESHOLD EXPONENT: no thresholds
  d[5] = 0xE4;  // LBPU, LBPWS, LBPWS10, LBPRZ 001b; ANC_SUP=0, DP=0
  d[6] = 0x02;  // PROVISIONING TYPE: thin
  return d;
}

void put_lun(std::uint8_t* out, std::uint64_t lun) {
  // SAM-5 4.7: peripheral device addressing below 256, flat space addressing up to 16383.
  if (lun < 256) {
    out[0] = 0x00;
    out[1] = static_cast<std::uint8_t>(lun);
  } else {
    out[0] = static_cast<std::uint8_t>(0x40 | ((lun >> 8) & 0x3F));
    out[1] = static_cast<std::uint8_t>(lun);
  }
}

void put_timeouts_descriptor(std::vector<std::uint8_t>& out) {
  const std::size_t at = out.size();
  out.resize(at + 12, 0);
  util::put_be16(&out[at], 0x000A);
  util::put_be32(&out[at + 4], kNominalTimeoutSeconds);
  util::put_be32(&out[at + 8], kRecommendedTimeoutSeconds);
}

}  // namespace

Result handle_test_unit_ready(CommandContext&) { return good(); }

Result handle_request_sense(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  // DESC=1 asks for descriptor format, which we do not produce (SPC-4 6.39).
  if (cdb[1] & 0x01) return Sense::invalid_field_in_cdb(1, 0);
  Sense sense = Sense::no_sense();
  if (ctx.unit == nullptr) {
    sense = Sense::logical_unit_not_supported();
  } else if (auto ua = ctx.state->unit_attention(ctx.task.initiator_port, /*consume=*/true)) {
    sense = *ua;
  }
  return send_data_in(ctx.task, build_fixed_sense(sense), cdb[4]);
}

Result handle_inquiry(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  const std::uint32_t alloc = allocation_length(cdb);
  if (cdb[1] & 0x02) return Sense::invalid_field_in_cdb(1, 1);  // CMDDT (obsolete)
  const bool evpd = (cdb[1] & 0x01) != 0;
  const std::uint8_t page = cdb[2];
  if (!evpd) {
    if (page != 0) return Sense::invalid_field_in_cdb(2);
    if (ctx.unit == nullptr) return send_data_in(ctx.task, standard_inquiry(LunIdentity{}, false), alloc);
    return send_data_in(ctx.task, standard_inquiry(ctx.unit->identity(), true), alloc);
  }
  if (ctx.unit == nullptr) return Sense::logical_unit_not_supported();
  const LunIdentity& id = ctx.unit->identity();
  switch (page) {
    case 0x00: return send_data_in(ctx.task, vpd_supported_pages(), alloc);
    case 0x80: return send_data_in(ctx.task, vpd_unit_serial(id), alloc);
    case 0x83:
      return send_data_in(ctx.task, vpd_device_identification(id, ctx.unit->volume().port_groups().front().id), alloc);
    case 0x8F: return send_data_in(ctx.task, vpd_third_party_copy(ctx.unit->volume().block_size()), alloc);
    case 0xB0: return send_data_in(ctx.task, vpd_block_limits(ctx.unit->volume().block_size()), alloc);
    case 0xB1: return send_data_in(ctx.task, vpd_block_device_characteristics(), alloc);
    case 0xB2: return send_data_in(ctx.task, vpd_logical_block_provisioning(), alloc);
    default: return Sense::invalid_field_in_cdb(2);
  }
}

Result handle_report_luns(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  const std::uint32_t alloc = allocation_length(cdb);
  if (alloc < 16) return Sense::invalid_field_in_cdb(6);  // SPC-4 6.33
  std::vector<std::uint64_t> luns;
  switch (cdb[2]) {
    case 0x00:  // all logical units (we have no well-known LUs)
    case 0x02:
      if (ctx.luns != nullptr) {
        for (const auto& [lun, unit] : *ctx.luns) luns.push_back(lun);
      } else if (ctx.unit != nullptr) {
        luns.push_back(ctx.task.lun);
      }
      break;
    case 0x01:  // well-known logical units only: none
      break;
    default:
      return Sense::invalid_field_in_cdb(2);
  }
  std::vector<std::uint8_t> d(8 + 8 * luns.size(), 0);
  util::put_be32(&d[0], static_cast<std::uint32_t>(8 * luns.size()));
  for (std::size_t i = 0; i < luns.size(); ++i) put_lun(&d[8 + 8 * i], luns[i]);
  return send_data_in(ctx.task, d, alloc);
}

// REPORT SUPPORTED OPERATION CODES (SPC-4 6.35), generated from the command table.
Result handle_report_supported_opcodes(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  const std::uint32_t alloc = allocation_length(cdb);
  const bool rctd = (cdb[2] & 0x80) != 0;
  const std::uint8_t options = cdb[2] & 0x07;
  const std::uint8_t opcode = cdb[3];
  const std::uint16_t sa = util::get_be16(cdb + 4);
  std::vector<std::uint8_t> d;

  if (options == 0) {  // all commands
    d.resize(4, 0);
    for (const CommandInfo& c : command_table()) {
      const std::size_t at = d.size();
      d.resize(at + 8, 0);
      d[at] = c.opcode;
      if (c.has_service_action()) util::put_be16(&d[at + 2], c.service_action);
      d[at + 5] = static_cast<std::uint8_t>((rctd ? 0x02 : 0) | (c.has_service_action() ? 0x01 : 0));
      util::put_be16(&d[at + 6], c.cdb_length);
      if (rctd) put_timeouts_descriptor(d);
    }
    util::put_be32(&d[0], static_cast<std::uint32_t>(d.size() - 4));
    return send_data_in(ctx.task, d, alloc);
  }

  const bool has_sa = opcode_has_service_actions(opcode);
  const CommandInfo* c = nullptr;
  switch (options) {
    case 1:  // opcode only; invalid for opcodes with service actions
      if (has_sa) return Sense::invalid_field_in_cdb(2, 2);
      c = find_command(opcode, 0);
      break;
    case 2:  // opcode + service action; invalid for opcodes without
      if (!has_sa) return Sense::invalid_field_in_cdb(2, 2);
      if (sa <= 0x1F) c = find_command(opcode, static_cast<std::uint8_t>(sa));
      break;
    case 3:  // opcode + service action, either kind of opcode
      if (has_sa ? sa <= 0x1F : sa == 0) c = find_command(opcode, static_cast<std::uint8_t>(sa));
      break;
    default:
      return Sense::invalid_field_in_cdb(2, 2);
  }
  if (c == nullptr) {
    d.assign(4, 0);
    d[1] = 0x01;  // SUPPORT 001b: not supported
    return send_data_in(ctx.task, d, alloc);
  }
  d.assign(4, 0);
  d[1] = static_cast<std::uint8_t>((rctd ? 0x80 : 0) | 0x03);  // CTDP, SUPPORT 011b
  util::put_be16(&d[2], c->cdb_length);
  d.insert(d.end(), c->usage.begin(), c->usage.begin() + c->cdb_length);
  if (rctd) put_timeouts_descriptor(d);
  return send_data_in(ctx.task, d, alloc);
}

}  // namespace freevsa::scsi
