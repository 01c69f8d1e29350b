// SBC-3 block commands. Each family (READ, WRITE, WRITE AND VERIFY, VERIFY, PRE-FETCH,
// SYNCHRONIZE CACHE) has one handler for all CDB sizes; decode_block_request turns the CDB
// into a BlockRequest first. READ DEFECT DATA(10/12) share one handler too.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "scsi/cdb.h"
#include "scsi/handlers.h"
#include "util/endian.h"

namespace freevsa::scsi {

// Volume errno -> sense.
//  reads:  EIO (and the media-error family) -> 03/11/00 UNRECOVERED READ ERROR.
//  writes: EIO, EFBIG (the backing file may not grow there) -> 03/0C/00 WRITE ERROR.
//          ENOSPC/EDQUOT -> 07/27/07 SPACE ALLOCATION FAILED WRITE PROTECT: SBC-3 4.7.3.6
//          prescribes exactly this for a write that cannot get backing space (thin
//          provisioning); Linux maps it to -ENOSPC and ESXi treats it as "out of space" (pauses
//          the VM) instead of as a failing disk, which is what happens behind a sparse file or
//          a full replica.
//          EROFS -> 07/27/00 WRITE PROTECTED.
//  anything else (EINVAL, ENOMEM, ...) is our bug or resource trouble, not the medium:
//  04/44/00 INTERNAL TARGET FAILURE.
Sense read_error_sense(int error) {
  switch (error) {
    case EIO:
    case EILSEQ:
    case ENODATA:
    case EBADMSG:
      return Sense::unrecovered_read_error();
    default:
      return Sense::internal_target_failure();
  }
}

Sense write_error_sense(int error) {
  switch (error) {
    case EIO:
    case EFBIG: return Sense::write_error();
    case ENOSPC:
    case EDQUOT: return Sense::space_allocation_failed();
    case EROFS: return Sense::write_protected();
    default: return Sense::internal_target_failure();
  }
}

Geometry geometry(const CommandContext& ctx) {
  const replication::Volume& v = ctx.unit->volume();
  return {v.block_size(), v.size_bytes() / v.block_size()};
}

// SBC-3 4.5: LBA + length beyond the capacity -> 05/21/00 (overflow-safe).
Result check_range(const Geometry& g, std::uint64_t lba, std::uint64_t blocks) {
  if (lba > g.blocks || g.blocks - lba < blocks) return Sense::lba_out_of_range();
  return good();
}

namespace {

// Common checks for commands that transfer or verify logical blocks.
Result check_media_request(const Geometry& g, const BlockRequest& r) {
  // No protection information: any RDPROTECT/WRPROTECT/VRPROTECT/ORPROTECT is an invalid field.
  if (r.protect != 0) return Sense::invalid_field_in_cdb(1, 7);
  if (r.blocks > max_transfer_blocks(g.block_size)) {
    return Sense::invalid_field_in_cdb(r.length_offset);
  }
  return check_range(g, r.lba, r.blocks);
}

// Reads [offset, offset+dst.size()) in pieces that stay small enough to allocate.
int read_volume(replication::Volume& v, std::uint64_t offset, std::span<std::uint8_t> dst) {
  return v.read(offset, dst);
}

}  // namespace

Result compare_with_medium(replication::Volume& v, std::uint64_t offset, std::uint64_t length,
                           const std::uint8_t* expected, std::uint32_t block_size,
                           bool one_block) {
  constexpr std::uint64_t kChunk = 1u << 20;
  util::AlignedBuffer buffer(static_cast<std::size_t>(std::min(length, kChunk)));
  for (std::uint64_t done = 0; done < length;) {
    const std::uint64_t n = std::min<std::uint64_t>(kChunk, length - done);
    std::span<std::uint8_t> dst(buffer.data(), static_cast<std::size_t>(n));
    if (int e = read_volume(v, offset + done, dst); e != 0) return read_error_sense(e);
    if (expected != nullptr) {
      for (std::uint64_t i = 0; i < n; ++i) {
        const std::uint64_t at = done + i;
        const std::uint8_t want = one_block ? expected[at % block_size] : expected[at];
        if (dst[i] != want) return Sense::miscompare(static_cast<std::uint32_t>(at));
      }
    }
    done += n;
  }
  return good();
}

Result handle_read_capacity10(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  // SBC-3 5.15: with PMI=0 the LOGICAL BLOCK ADDRESS must be zero.
  if ((cdb[8] & 0x01) == 0 && util::get_be32(cdb + 2) != 0) return Sense::invalid_field_in_cdb(2);
  const Geometry g = geometry(ctx);
  std::uint8_t d[8];
  const std::uint64_t last = g.blocks == 0 ? 0 : g.blocks - 1;
  util::put_be32(d, last >= 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<std::uint32_t>(last));
  util::put_be32(d + 4, g.block_size);
  return send_data_in(ctx.task, d, sizeof d);
}

Result handle_read_capacity16(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  if ((cdb[14] & 0x01) == 0 && util::get_be64(cdb + 2) != 0) return Sense::invalid_field_in_cdb(2);
  const Geometry g = geometry(ctx);
  std::uint8_t d[32] = {};
  util::put_be64(d, g.blocks == 0 ? 0 : g.blocks - 1);
  util::put_be32(d + 8, g.block_size);
  // d[12]: P_TYPE/PROT_EN = 0. d[13]: LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT, so that
  // initiators align to 4 KiB with 512-byte blocks. d[14]: LBPME=1 (thin: UNMAP, WRITE SAME
  // with UNMAP, GET LBA STATUS) and LBPRZ=1 (unmapped blocks read as zeroes), as VPD B2h says.
  std::uint8_t exponent = 0;
  for (std::uint32_t per = 4096 / g.block_size; per > 1; per >>= 1) ++exponent;
  d[13] = exponent;
  d[14] = 0xC0;
  return send_data_in(ctx.task, d, allocation_length(cdb));
}

// READ(6/10/12/16): reads straight into the Data-In buffer. DPO is a hint and FUA asks for
// the data from the medium; both are accepted, and since reads go through the volume's
// coherent cache either way, neither changes what is read.
Result handle_read(CommandContext& ctx) {
  const BlockRequest r = decode_block_request(ctx.info.cdb_length, ctx.task.cdb.data());
  const Geometry g = geometry(ctx);
  if (Result res = check_media_request(g, r); !res.ok()) return res;
  if (r.blocks == 0) return good();
  const std::uint64_t bytes = std::uint64_t{r.blocks} * g.block_size;
  util::AlignedBuffer buffer(static_cast<std::size_t>(bytes));
  if (int e = ctx.unit->volume().read(r.lba * g.block_size, buffer.span()); e != 0) {
    return read_error_sense(e);
  }
  ctx.task.data_in = std::move(buffer);
  ctx.task.data_in_length = static_cast<std::uint32_t>(bytes);
  return good();
}

Result writable_data_out(CommandContext& ctx, const BlockRequest& r, std::uint64_t& usable) {
  Task& task = ctx.task;
  const Geometry g = geometry(ctx);
  const std::uint64_t bytes = std::uint64_t{r.blocks} * g.block_size;
  usable = 0;
  task.data_out_needed = static_cast<std::uint32_t>(std::min<std::uint64_t>(bytes, UINT32_MAX));
  if (Result res = check_media_request(g, r); !res.ok()) return res;
  if (r.blocks == 0) return good();
  return usable_data_out(task, bytes, g.block_size, usable);
}

namespace {
// What WRITE and WRITE AND VERIFY share: the checks, the Data-Out that arrived, the write.
// `written` is how many bytes reached the volume (0 when there was nothing to write).
Result write_request(CommandContext& ctx, const BlockRequest& r, bool fua, std::uint64_t& written) {
  Task& task = ctx.task;
  const Geometry g = geometry(ctx);
  written = 0;
  std::uint64_t usable = 0;
  if (Result res = writable_data_out(ctx, r, usable); !res.ok() || usable == 0) return res;
  std::span<const std::uint8_t> src(task.data_out.data(), static_cast<std::size_t>(usable));
  const auto guard = ctx.unit->lock_blocks(r.lba * g.block_size, usable);
  if (int e = ctx.unit->volume().write(r.lba * g.block_size, src, fua); e != 0) return write_error_sense(e);
  written = usable;
  return good();
}
}  // namespace

// WRITE(6/10/12/16): FUA=1, or a disabled write cache (WCE=0), writes through to stable storage.
Result handle_write(CommandContext& ctx) {
  const BlockRequest r = decode_block_request(ctx.info.cdb_length, ctx.task.cdb.data());
  std::uint64_t written = 0;
  return write_request(ctx, r, r.fua || !ctx.state->write_cache_enabled(), written);
}

// WRITE AND VERIFY(10/12/16): writes with FUA (the verification must see the medium), then
// reads the blocks back: BYTCHK=0 checks they are readable, BYTCHK=1 also compares them with
// the Data-Out buffer (miscompare -> 0E/1D/00).
Result handle_write_and_verify(CommandContext& ctx) {
  Task& task = ctx.task;
  const BlockRequest r = decode_block_request(ctx.info.cdb_length, task.cdb.data());
  const Geometry g = geometry(ctx);
  if (r.bytchk > 1) {
    const std::uint64_t bytes = std::uint64_t{r.blocks} * g.block_size;
    task.data_out_needed = static_cast<std::uint32_t>(std::min<std::uint64_t>(bytes, UINT32_MAX));
    return Sense::invalid_field_in_cdb(1, 2);
  }
  std::uint64_t usable = 0;
  if (Result res = write_request(ctx, r, /*fua=*/true, usable); !res.ok() || usable == 0) return res;
  replication::Volume& volume = ctx.unit->volume();
  const std::uint64_t offset = r.lba * g.block_size;
  return compare_with_medium(volume, offset, usable, r.bytchk == 1 ? task.data_out.data() : nullptr,
                             g.block_size, false);
}

// VERIFY(10/12/16): BYTCHK=0 checks the range is readable; BYTCHK=1 compares the Data-Out
// buffer with the medium; BYTCHK=3 compares one block of Data-Out with every block.
Result handle_verify(CommandContext& ctx) {
  Task& task = ctx.task;
  const BlockRequest r = decode_block_request(ctx.info.cdb_length, task.cdb.data());
  const Geometry g = geometry(ctx);
  if (r.bytchk == 2) return Sense::invalid_field_in_cdb(1, 2);
  const std::uint64_t range_bytes = std::uint64_t{r.blocks} * g.block_size;
  std::uint64_t out_bytes = 0;
  if (r.blocks != 0) {
    if (r.bytchk == 1) out_bytes = range_bytes;
    if (r.bytchk == 3) out_bytes = g.block_size;
  }
  task.data_out_needed = static_cast<std::uint32_t>(std::min<std::uint64_t>(out_bytes, UINT32_MAX));
  if (Result res = check_media_request(g, r); !res.ok()) return res;
  if (r.blocks == 0) return good();
  if (Result res = require_data_out(task, out_bytes); !res.ok()) return res;
  const std::uint8_t* expected = r.bytchk == 0 ? nullptr : task.data_out.data();
  return compare_with_medium(ctx.unit->volume(), r.lba * g.block_size, range_bytes, expected,
                             g.block_size, r.bytchk == 3);
}

// PRE-FETCH(10/16): range check only. There is no target-side cache to load, and SBC-3 5.10
// answers GOOD (not CONDITION MET) when the blocks were not all placed in cache; libiscsi's
// Prefetch tests expect GOOD.
Result handle_prefetch(CommandContext& ctx) {
  const BlockRequest r = decode_block_request(ctx.info.cdb_length, ctx.task.cdb.data());
  return check_range(geometry(ctx), r.lba, r.blocks);
}

// SYNCHRONIZE CACHE(10/16): range check (0 blocks = to the end), then flush the volume. IMMED
// is honoured by completing the flush before returning, which SBC-3 allows.
Result handle_synchronize_cache(CommandContext& ctx) {
  const BlockRequest r = decode_block_request(ctx.info.cdb_length, ctx.task.cdb.data());
  if (Result res = check_range(geometry(ctx), r.lba, r.blocks); !res.ok()) return res;
  if (int e = ctx.unit->volume().flush(); e != 0) return write_error_sense(e);
  return good();
}

// START STOP UNIT (SBC-3 5.20). The medium is not removable, so LOEJ=1 is an invalid field
// (libiscsi's StartStopUnit tests expect the eject to fail when RMB=0). Stopping (START=0,
// POWER CONDITION=0) flushes the cache unless NO_FLUSH; the unit stays ready afterwards.
// Power conditions are accepted and have no effect.
Result handle_start_stop_unit(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  const std::uint8_t power_condition = cdb[4] >> 4;
  const bool no_flush = (cdb[4] & 0x04) != 0;
  const bool loej = (cdb[4] & 0x02) != 0;
  const bool start = (cdb[4] & 0x01) != 0;
  if (power_condition == 0 && loej) return Sense::invalid_field_in_cdb(4, 1);
  if (power_condition == 0 && !start && !no_flush) {
    if (int e = ctx.unit->volume().flush(); e != 0) return write_error_sense(e);
  }
  return good();
}

// PREVENT ALLOW MEDIUM REMOVAL (SBC-3 5.11): nothing to lock; PREVENT 00b/01b accepted,
// 10b/11b (medium changer, obsolete) refused.
Result handle_prevent_allow_medium_removal(CommandContext& ctx) {
  if (ctx.task.cdb[4] & 0x02) return Sense::invalid_field_in_cdb(4, 1);
  return good();
}

// READ DEFECT DATA(10/12) (SBC-4 5.14, 5.15): a volume has no medium defects, so both lists
// are empty. The header answers what was asked: PLISTV/GLISTV as REQ_PLIST/REQ_GLIST (the list
// asked for is there, with nothing in it), the requested DEFECT LIST FORMAT (an empty list is
// valid in each of them; 111b is reserved) and a DEFECT LIST LENGTH of 0. The (12) header is
// eight bytes, its GENERATION CODE 0 (not supported); its ADDRESS DESCRIPTOR INDEX points past
// an empty list whatever its value, which leaves just the header to return.
Result handle_read_defect_data(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  const bool twelve = ctx.info.cdb_length == 12;
  const std::uint8_t request_byte = twelve ? 1 : 2;
  const std::uint8_t request = cdb[request_byte] & 0x1F;
  if ((request & 0x07) == 0x07) return Sense::invalid_field_in_cdb(request_byte, 2);
  const std::uint8_t header[8] = {0, request};
  return send_data_in(ctx.task, std::span(header, twelve ? 8 : 4), allocation_length(cdb));
}

}  // namespace freevsa::scsi
