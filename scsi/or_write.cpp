// ORWRITE(16) (SBC-4 5.12): each byte of the blocks becomes itself OR the Data-Out byte. With
// the blocks' range held (LogicalUnit::lock_blocks) no other write reaches them between the
// read and the write, as for COMPARE AND WRITE; on a replicated volume the result replicates
// as one write. The 16-byte CDB has no BMOP field: its operation is always the OR (the other
// bitmask operations and the ORWgeneration checks belong to ORWRITE(32), which this target
// does not implement).
#include "scsi/handlers.h"

namespace freevsa::scsi {

// Checks and transfer limits as for WRITE(16): ORPROTECT must be 0 (no protection
// information), zero blocks is no operation, FUA or a disabled write cache writes through.
Result handle_orwrite(CommandContext& ctx) {
  Task& task = ctx.task;
  const BlockRequest r = decode_block_request(ctx.info.cdb_length, task.cdb.data());
  std::uint64_t length = 0;
  if (Result res = writable_data_out(ctx, r, length); !res.ok() || length == 0) return res;

  const std::uint64_t offset = r.lba * geometry(ctx).block_size;
  replication::Volume& volume = ctx.unit->volume();
  util::AlignedBuffer blocks(static_cast<std::size_t>(length));
  const auto guard = ctx.unit->lock_blocks(offset, length);
  if (int e = volume.read(offset, blocks.span()); e != 0) return read_error_sense(e);
  const std::uint8_t* mask = task.data_out.data();
  for (std::size_t i = 0; i < blocks.size(); ++i) blocks.data()[i] |= mask[i];
  if (int e = volume.write(offset, blocks.span(), r.fua || !ctx.state->write_cache_enabled()); e != 0) {
    return write_error_sense(e);
  }
  return good();
}

}  // namespace freevsa::scsi
