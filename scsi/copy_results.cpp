// RECEIVE COPY RESULTS (SPC-4 6.18): OPERATING PARAMETERS, the limits of the copy manager, and
// COPY STATUS, the outcome of an EXTENDED COPY with a list identifier. Copies complete within
// their command, so COPY STATUS reports a finished copy (or one still running on another
// worker).
#include "scsi/copy_status_table.h"
#include "scsi/extended_copy_parameters.h"
#include "scsi/handlers.h"
#include "util/endian.h"

namespace freevsa::scsi {
namespace {

constexpr std::uint8_t kListIdByte = 2;

std::uint32_t copy_results_allocation_length(const Task& task) { return util::get_be32(task.cdb.data() + 10); }

// COPY MANAGER STATUS (SPC-4 6.18.3).
constexpr std::uint8_t kInProgress = 0x00;
constexpr std::uint8_t kCompleted = 0x01;
constexpr std::uint8_t kCompletedWithErrors = 0x02;

}  // namespace

// SPC-4 6.18.3. TRANSFER COUNT is in bytes: the most one command copies (segments times the
// segment length) fits in 32 bits.
static_assert(std::uint64_t{kMaxSegmentDescriptors} * kMaxSegmentBytes <= 0xFFFFFFFFu);
Result handle_copy_status(CommandContext& ctx) {
  const std::optional<CopyStatus> status =
      ctx.state->copies().take(ctx.task.initiator_port, ctx.task.cdb[kListIdByte]);
  // No copy with that list identifier is known for this I_T nexus.
  if (!status) return Sense::invalid_field_in_cdb(kListIdByte);
  std::uint8_t d[12] = {};
  util::put_be32(d, sizeof d - 4);  // AVAILABLE DATA
  d[4] = status->running ? kInProgress : status->failed ? kCompletedWithErrors : kCompleted;  // HDD=0
  util::put_be16(d + 5, status->segments_processed);
  d[7] = 0x00;  // TRANSFER COUNT UNITS: bytes
  util::put_be32(d + 8, static_cast<std::uint32_t>(status->bytes_copied));
  return send_data_in(ctx.task, d, copy_results_allocation_length(ctx.task));
}

// SPC-4 6.18.4: the limits of extended_copy_parameters.h; no inline, held or stream data.
Result handle_copy_operating_parameters(CommandContext& ctx) {
  std::vector<std::uint8_t> d(44 + kImplementedDescriptorTypes.size(), 0);
  util::put_be32(&d[0], static_cast<std::uint32_t>(d.size() - 4));  // AVAILABLE DATA
  d[4] = 0x01;  // SNLID: a parameter list may go without a list identifier (LIST ID USAGE 11b)
  util::put_be16(&d[8], kMaxCscdDescriptors);
  util::put_be16(&d[10], kMaxSegmentDescriptors);
  util::put_be32(&d[12], kMaxDescriptorListLength);
  util::put_be32(&d[16], kMaxSegmentBytes);
  // MAXIMUM INLINE DATA LENGTH, HELD DATA LIMIT, MAXIMUM STREAM DEVICE TRANSFER SIZE: 0.
  util::put_be16(&d[34], kMaxConcurrentCopies);                   // TOTAL CONCURRENT COPIES
  d[36] = static_cast<std::uint8_t>(kMaxConcurrentCopies);        // MAXIMUM CONCURRENT COPIES
  d[37] = data_segment_granularity(ctx.unit->volume().block_size());
  // INLINE DATA GRANULARITY, HELD DATA GRANULARITY: 2^0.
  d[43] = static_cast<std::uint8_t>(kImplementedDescriptorTypes.size());
  std::copy(kImplementedDescriptorTypes.begin(), kImplementedDescriptorTypes.end(), d.begin() + 44);
  return send_data_in(ctx.task, d, copy_results_allocation_length(ctx.task));
}

}  // namespace freevsa::scsi
