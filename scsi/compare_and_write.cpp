// COMPARE AND WRITE (SBC-4 5.3), VMware's "atomic test and set": VMFS takes every lock and
// heartbeat with it. The Data-Out holds N blocks to compare and then N blocks to write. With
// the blocks' range held (LogicalUnit::lock_blocks) no other write reaches them between the
// compare and the write; on a replicated volume the write replicates as one write.
#include "scsi/handlers.h"
#include "util/endian.h"

namespace freevsa::scsi {

Result handle_compare_and_write(CommandContext& ctx) {
  Task& task = ctx.task;
  const std::uint8_t* cdb = task.cdb.data();
  const std::uint64_t lba = util::get_be64(cdb + 2);
  const std::uint8_t blocks = cdb[13];
  const bool fua = (cdb[1] & 0x08) != 0;
  const Geometry g = geometry(ctx);
  const std::uint64_t length = std::uint64_t{blocks} * g.block_size;
  task.data_out_needed = static_cast<std::uint32_t>(2 * length);

  if ((cdb[1] & 0xE0) != 0) return Sense::invalid_field_in_cdb(1, 7);  // no protection information
  if (blocks > kMaxCompareAndWriteBlocks) return Sense::invalid_field_in_cdb(13);
  if (Result res = check_range(g, lba, blocks); !res.ok()) return res;
  // Zero blocks is no operation - unless Data-Out came with it: then the initiator meant blocks
  // the one-byte field cannot hold (256 wraps to 0), and GOOD would tell it they were written.
  if (blocks == 0) return task.data_out_length == 0 ? good() : Sense::invalid_field_in_cdb(13);
  if (Result res = require_data_out(task, 2 * length); !res.ok()) return res;
  // More Data-Out than the blocks take: the buffer's halves would not be what the initiator
  // meant to compare and to write.
  if (task.data_out_length > 2 * length) return Sense::invalid_field_in_command_iu();

  const std::uint64_t offset = lba * g.block_size;
  replication::Volume& volume = ctx.unit->volume();
  const auto guard = ctx.unit->lock_blocks(offset, length);
  // A miscompare names the first differing byte, counted from the start of the Data-Out.
  if (Result res = compare_with_medium(volume, offset, length, task.data_out.data(), g.block_size, false);
      !res.ok()) {
    return res;
  }
  const std::span<const std::uint8_t> data(task.data_out.data() + length, static_cast<std::size_t>(length));
  if (int e = volume.write(offset, data, fua || !ctx.state->write_cache_enabled()); e != 0) {
    return write_error_sense(e);
  }
  return good();
}

}  // namespace freevsa::scsi
