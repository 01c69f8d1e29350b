// EXTENDED COPY(LID1) (SPC-4 6.4), VMware's VAAI "XCOPY": the initiator names source and
// destination logical units of this target by their NAA designator and lists the block ranges
// to copy; the data moves from one Volume to the other here and never crosses the network.
//
// Everything is checked before the first block moves: the parameter list, that every CSCD
// descriptor a segment uses names a logical unit of this target active on this node, and every
// range. A copy that fails after that (an I/O error) may have copied some segments, as SPC-4
// allows; RECEIVE COPY RESULTS reports how far it got.
#include <algorithm>
#include <optional>
#include <vector>

#include "scsi/extended_copy_parameters.h"
#include "scsi/handlers.h"
#include "scsi/reservation_table.h"
#include "util/endian.h"

namespace freevsa::scsi {
namespace {

// What a copy buffer holds: the destination's blocks are locked one chunk at a time, so a long
// copy never keeps COMPARE AND WRITE waiting for long.
constexpr std::uint64_t kCopyChunkBytes = 1u << 20;

// COPY ABORTED: the sense-key specific segment pointer (SPC-4 4.5.2.4.5, SD=0) names the byte of
// the parameter list that was being processed, if one was.
Sense copy_aborted(std::uint8_t asc, std::uint8_t ascq, std::optional<std::uint32_t> list_byte) {
  Sense s = Sense::make(sense_key::kCopyAborted, asc, ascq);
  if (list_byte) s.field = FieldPointer{false, static_cast<std::uint16_t>(*list_byte), {}};
  return s;
}
// 0A/0D/02 COPY TARGET DEVICE NOT REACHABLE: no logical unit of this target, active on this
// node, answers to the CSCD descriptor.
Sense target_not_reachable(std::uint32_t list_byte) { return copy_aborted(0x0D, 0x02, list_byte); }
// An I/O error of a copy target: its additional sense code, under COPY ABORTED.
Sense aborted_by(const Sense& io_error, std::optional<std::uint32_t> list_byte) {
  return copy_aborted(io_error.asc, io_error.ascq, list_byte);
}

Geometry unit_geometry(LogicalUnit& unit) {
  const replication::Volume& v = unit.volume();
  return {v.block_size(), v.size_bytes() / v.block_size()};
}

// The designator VPD page 83h reports for every logical unit (SPC-4 7.8.6): NAA (type 3),
// binary code set, logical unit association.
bool designates(const CopyTargetDescriptor& d, const LogicalUnit& unit) {
  const auto& naa = unit.identity().naa;
  return d.code_set == 0x1 && d.association == 0x0 && d.designator_type == 0x3 &&
         std::equal(d.designator.begin(), d.designator.end(), naa.begin(), naa.end());
}

LogicalUnit* find_designated(const CommandContext& ctx, const CopyTargetDescriptor& d) {
  if (ctx.luns == nullptr) return designates(d, *ctx.unit) ? ctx.unit : nullptr;
  for (const auto& [lun, unit] : *ctx.luns) {
    if (designates(d, *unit)) return unit.get();
  }
  return nullptr;
}

// The logical unit a segment's CSCD descriptor ID names: an index into the CSCD descriptor
// list, or FFFFh for the logical unit the command came to. `id_byte` is where the ID stands.
Result resolve(const CommandContext& ctx, const ExtendedCopyParameters& p, std::uint16_t id,
               std::uint32_t id_byte, LogicalUnit*& out) {
  if (id == kCopyManagerLuId) {
    out = ctx.unit;
    return good();
  }
  if (id >= p.targets.size()) return target_not_reachable(id_byte);
  const CopyTargetDescriptor& d = p.targets[id];
  LogicalUnit* unit = find_designated(ctx, d);
  // Only the node where a volume is active reads or writes it, as dispatch requires of the
  // logical unit a command is addressed to.
  if (unit == nullptr || unit->volume().access() != replication::Access::Active) {
    return target_not_reachable(d.offset);
  }
  if (d.disk_block_length != unit->volume().block_size()) {
    return Sense::invalid_field_in_parameter_list(static_cast<std::uint16_t>(d.offset + kCscdDiskBlockLengthOffset));
  }
  out = unit;
  return good();
}

// One segment, resolved: what to copy where, in bytes.
struct CopyRange {
  LogicalUnit* source = nullptr;
  LogicalUnit* destination = nullptr;
  std::uint64_t source_offset = 0;
  std::uint64_t destination_offset = 0;
  std::uint64_t length = 0;
  std::uint16_t descriptor_offset = 0;  // the segment descriptor, for sense data
};

// SPC-4 6.4.6.5: with DC=0 the block count is in source blocks, with DC=1 in destination
// blocks. Both logical units must take the bytes in whole blocks (no pad or residue here).
Result resolve_segment(const CommandContext& ctx, const ExtendedCopyParameters& p, const BlockCopySegment& s,
                       CopyRange& out) {
  if (Result res = resolve(ctx, p, s.source_id, s.offset + kSegmentSourceIdOffset, out.source); !res.ok()) {
    return res;
  }
  if (Result res = resolve(ctx, p, s.destination_id, s.offset + kSegmentDestinationIdOffset, out.destination);
      !res.ok()) {
    return res;
  }
  // The copy reads and writes on behalf of the initiator: another logical unit's reservations
  // apply to it as if it had sent the READ or the WRITE there (dispatch checked the addressed one).
  const std::string& initiator = ctx.task.initiator_port;
  if ((out.source != ctx.unit && out.source->reservations().conflicts(initiator, MediumUse::Read)) ||
      (out.destination != ctx.unit && out.destination->reservations().conflicts(initiator, MediumUse::Write))) {
    return Result::reservation_conflict();
  }
  const Geometry source = unit_geometry(*out.source);
  const Geometry destination = unit_geometry(*out.destination);
  out.length = std::uint64_t{s.blocks} * (s.destination_count ? destination.block_size : source.block_size);
  const auto blocks_byte = static_cast<std::uint16_t>(s.offset + kSegmentBlocksOffset);
  if (out.length % source.block_size != 0 || out.length % destination.block_size != 0) {
    return Sense::invalid_field_in_parameter_list(blocks_byte);
  }
  if (out.length > kMaxSegmentBytes) return Sense::invalid_field_in_parameter_list(blocks_byte);
  // A range beyond a copy target's capacity is found processing a segment descriptor: COPY
  // ABORTED (what libiscsi expects), not ILLEGAL REQUEST, and before any block moves.
  if (!check_range(source, s.source_lba, out.length / source.block_size).ok()) {
    return copy_aborted(0x00, 0x00, s.offset + kSegmentSourceLbaOffset);
  }
  if (!check_range(destination, s.destination_lba, out.length / destination.block_size).ok()) {
    return copy_aborted(0x00, 0x00, s.offset + kSegmentDestinationLbaOffset);
  }
  out.source_offset = s.source_lba * source.block_size;
  out.destination_offset = s.destination_lba * destination.block_size;
  out.descriptor_offset = s.offset;
  return good();
}

// Copies one segment a chunk at a time, each chunk's destination blocks locked while it is
// read and written (atomic against COMPARE AND WRITE). When source and destination overlap on
// one logical unit with the destination after the source, the chunks go from the end
// backwards, so every chunk is read before anything overwrites it.
Result copy_range(const CopyRange& r, util::AlignedBuffer& buffer, std::uint64_t& copied) {
  const bool backwards = r.source == r.destination && r.destination_offset > r.source_offset &&
                         r.destination_offset < r.source_offset + r.length;
  for (std::uint64_t done = 0; done < r.length;) {
    const std::uint64_t n = std::min<std::uint64_t>(buffer.size(), r.length - done);
    const std::uint64_t at = backwards ? r.length - done - n : done;
    const std::span<std::uint8_t> chunk(buffer.data(), static_cast<std::size_t>(n));
    const auto guard = r.destination->lock_blocks(r.destination_offset + at, n);
    if (int e = r.source->volume().read(r.source_offset + at, chunk); e != 0) {
      return aborted_by(read_error_sense(e), r.descriptor_offset);
    }
    if (int e = r.destination->volume().write(r.destination_offset + at, chunk, false); e != 0) {
      return aborted_by(write_error_sense(e), r.descriptor_offset);
    }
    done += n;
    copied += n;
  }
  return good();
}

// Copies every range in order, then makes the writes durable on every destination whose write
// cache is off (as WRITE SAME does: one flush rather than a FUA write per chunk).
Result copy_ranges(const std::vector<CopyRange>& ranges, CopyStatus& outcome) {
  std::uint64_t largest = 0;
  for (const CopyRange& r : ranges) largest = std::max(largest, r.length);
  util::AlignedBuffer buffer(static_cast<std::size_t>(std::min(largest, kCopyChunkBytes)));
  std::vector<LogicalUnit*> written;
  for (const CopyRange& r : ranges) {
    if (Result res = copy_range(r, buffer, outcome.bytes_copied); !res.ok()) return res;
    ++outcome.segments_processed;
    if (std::find(written.begin(), written.end(), r.destination) == written.end()) written.push_back(r.destination);
  }
  for (LogicalUnit* unit : written) {
    if (unit->write_cache_enabled()) continue;
    if (int e = unit->volume().flush(); e != 0) return aborted_by(write_error_sense(e), std::nullopt);
  }
  return good();
}

// A started copy in the copy manager's table, finished whatever way the handler leaves.
class RunningCopy {
 public:
  RunningCopy(CopyStatusTable& table, const std::string& port, const ExtendedCopyParameters& p)
      : table_(table), port_(port), list_id_(p.list_id), identified_(p.usage != ListIdUsage::NoList) {}
  CopyStatusTable::Start start() {
    const CopyStatusTable::Start started = table_.start(port_, list_id_, identified_);
    running_ = started == CopyStatusTable::Start::Started;
    return started;
  }
  ~RunningCopy() {
    if (running_) table_.finish(port_, list_id_, identified_, outcome);
  }
  RunningCopy(const RunningCopy&) = delete;
  RunningCopy& operator=(const RunningCopy&) = delete;

  CopyStatus outcome;

 private:
  CopyStatusTable& table_;
  const std::string& port_;
  std::uint8_t list_id_;
  bool identified_;
  bool running_ = false;
};

}  // namespace

Result handle_extended_copy(CommandContext& ctx) {
  Task& task = ctx.task;
  const std::uint32_t list_length = util::get_be32(task.cdb.data() + 10);
  task.data_out_needed = list_length;
  // SPC-4 6.4.1: a PARAMETER LIST LENGTH of zero copies nothing and is not an error.
  if (list_length == 0) return good();
  if (Result res = require_data_out(task, list_length); !res.ok()) return res;
  ExtendedCopyParameters params;
  if (Result res = parse_extended_copy_parameters({task.data_out.data(), list_length}, params); !res.ok()) {
    return res;
  }
  std::vector<CopyRange> ranges(params.segments.size());
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    if (Result res = resolve_segment(ctx, params, params.segments[i], ranges[i]); !res.ok()) return res;
  }

  RunningCopy copy(ctx.state->copies(), task.initiator_port, params);
  switch (copy.start()) {
    case CopyStatusTable::Start::Started: break;
    // SPC-4 6.4.3: a list identifier still in use by a copy from the same I_T nexus.
    case CopyStatusTable::Start::ListIdInUse: return Sense::make(sense_key::kIllegalRequest, 0x00, 0x16);
    // More copies than TOTAL CONCURRENT COPIES: the initiator may try again.
    case CopyStatusTable::Start::TooManyCopies: return Sense::insufficient_resources();
  }
  Result result = copy_ranges(ranges, copy.outcome);
  copy.outcome.failed = !result.ok();
  return result;
}

}  // namespace freevsa::scsi
