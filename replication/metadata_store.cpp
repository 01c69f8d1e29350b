#include "replication/metadata_store.h"

#include <fmt/format.h>

#include <random>
#include <stdexcept>
#include <system_error>

#include "util/aligned_buffer.h"
#include "util/log.h"

namespace freevsa::replication {
namespace {

std::string error_text(int error) { return std::error_code(error, std::generic_category()).message(); }

[[noreturn]] void fail(const MetadataDevice& device, const std::string& reason) {
  throw std::runtime_error(fmt::format("{}: {}", device.name(), reason));
}

std::uint64_t random_u64() {
  std::random_device source;
  return (std::uint64_t{source()} << 32) | source();
}

// A fresh generation: never 0 (meaning "none") and never the shared start-in-sync value.
std::uint64_t random_generation() {
  for (;;) {
    std::uint64_t id = random_u64();
    if (id != 0 && id != kFreshAndEmpty) return id;
  }
}

Uuid random_uuid() {
  Uuid uuid;
  for (std::size_t i = 0; i < uuid.size(); i += 8) {
    std::uint64_t bits = random_u64();
    for (std::size_t k = 0; k < 8; ++k) uuid[i + k] = static_cast<std::uint8_t>(bits >> (8 * k));
  }
  uuid[6] = static_cast<std::uint8_t>((uuid[6] & 0x0f) | 0x40);  // RFC 4122 version 4
  uuid[8] = static_cast<std::uint8_t>((uuid[8] & 0x3f) | 0x80);  // variant 1
  return uuid;
}

}  // namespace

MetadataStore::MetadataStore(MetadataDevice& device, const Superblock& superblock, std::uint64_t area_offset)
    : slots_(device),
      superblock_(superblock),
      layout_(metadata_layout(superblock.data_size, superblock.activity_log)),
      area_offset_(area_offset) {
  bitmap_ = std::make_unique<DirtyBitmap>(superblock.data_size, superblock.bitmap_granularity);
  bitmap_store_ = std::make_unique<BitmapStore>(*bitmap_, device, area_offset + layout_.bitmap_offset);
  BitmapStore* bitmap_store = bitmap_store_.get();
  activity_log_ = std::make_unique<ActivityLog>(
      device, area_offset + layout_.activity_log_offset, superblock.activity_log, superblock.data_size,
      superblock.volume_uuid,
      [bitmap_store](std::uint64_t offset, std::uint64_t length) { return bitmap_store->flush_range(offset, length); });
}

Superblock MetadataStore::format(MetadataDevice& device, const FormatOptions& options) {
  if (options.block_size != 512 && options.block_size != 4096) {
    fail(device, fmt::format("block size must be 512 or 4096, got {}", options.block_size));
  }
  const ActivityLogGeometry& al = options.activity_log;
  if (!valid_activity_log_geometry(al)) {
    fail(device, fmt::format("invalid activity log geometry: {} bytes per extent, {} slots, {} ring blocks "
                             "(extent a power of two from 4 KiB to 1 GiB, 1 to {} slots, 2 to 1024 blocks)",
                             al.extent_bytes, al.slots, al.ring_blocks, kMaxActivityLogSlots));
  }
  const std::uint64_t area_end = metadata_area_end(device);
  std::uint64_t data_size = options.data_size;
  if (options.placement == MetadataPlacement::Internal) {
    const InternalSplit split = internal_metadata_split(device.size_bytes(), al);
    if (split.data_size == 0) {
      fail(device, fmt::format("the device ({} bytes) is too small for data and internal metadata", device.size_bytes()));
    }
    if (data_size != 0 && data_size != split.data_size) {
      fail(device, fmt::format("the data size {} does not match the {} bytes the device leaves for data "
                               "with internal metadata",
                               data_size, split.data_size));
    }
    data_size = split.data_size;
  } else if (data_size == 0) {
    fail(device, "external metadata needs the data device's size");
  }
  if (data_size % options.block_size != 0) {
    fail(device, fmt::format("the data size {} is not a multiple of the block size {}", data_size, options.block_size));
  }
  if ((data_size - 1) / al.extent_bytes >= ActivityLogTransaction::kEmptySlot) {
    fail(device, fmt::format("the data size {} needs more activity log extents than the format can number", data_size));
  }
  const MetadataLayout layout = metadata_layout(data_size, al);
  if (layout.size > area_end) {
    fail(device, fmt::format("the metadata needs {} bytes, the device has {}", layout.size, device.size_bytes()));
  }
  const std::uint64_t area_offset = area_end - layout.size;

  Superblock sb;
  sb.volume_uuid = options.volume_uuid ? *options.volume_uuid : random_uuid();
  sb.data_size = data_size;
  sb.block_size = options.block_size;
  sb.bitmap_granularity = kBitmapGranularity;
  sb.node_id = options.node_id;
  sb.activity_log = al;
  sb.placement = options.placement;
  sb.metadata_size = layout.size;
  if (options.start_in_sync) {
    sb.generations = new_volume_generations(kFreshAndEmpty);
    sb.disk_state = DiskState::UpToDate;
    sb.set(metadata_flag::kConsistent, true);
  } else {
    sb.generations = new_volume_generations(random_generation());
    sb.disk_state = DiskState::Inconsistent;
  }

  SuperblockSlots slots(device);
  auto check = [&](int error, const char* step) {
    if (error != 0) fail(device, fmt::format("cannot format metadata ({}): {}", step, error_text(error)));
  };
  // Superblocks last: until both are written no valid superblock exists, so a crash mid-way
  // leaves "not formatted" rather than a superblock describing a half-written area.
  check(slots.erase(), "erasing the superblock");
  util::AlignedBuffer zeros(std::uint64_t{al.ring_blocks} * kMetadataBlockSize);
  zeros.zero();
  check(device.write(area_offset + layout.activity_log_offset, zeros.span(), false), "emptying the activity log");
  DirtyBitmap bitmap(data_size, kBitmapGranularity);
  if (!options.start_in_sync && options.bitmap_all_set) bitmap.set_all();
  BitmapStore bitmap_store(bitmap, device, area_offset + layout.bitmap_offset);
  check(bitmap_store.write_all(), "writing the bitmap");
  check(device.flush(), "flushing");
  check(slots.store_both(sb), "writing the superblock");
  util::log_info("{}: formatted {} metadata for volume {}: {} bytes of data, {} bytes of metadata{}", device.name(),
                 options.placement == MetadataPlacement::Internal ? "internal" : "external",
                 to_string(sb.volume_uuid), data_size, layout.size, options.start_in_sync ? ", in sync" : "");
  return sb;
}

MetadataStatus MetadataStore::open(MetadataDevice& device, const OpenOptions& options,
                                   std::unique_ptr<MetadataStore>& out) {
  Superblock sb;
  {
    SuperblockSlots slots(device);
    if (MetadataStatus status = slots.load(sb); !status.ok()) return status;
  }
  const std::string where = fmt::format("{}: metadata", device.name());
  auto placement_name = [](MetadataPlacement p) { return p == MetadataPlacement::Internal ? "internal" : "external"; };
  if (sb.placement != options.placement) {
    return MetadataStatus::failure(MetadataError::Mismatch,
                                   fmt::format("{}: the metadata is {}, but {} metadata was expected", where,
                                               placement_name(sb.placement), placement_name(options.placement)));
  }
  if (options.block_size != 0 && options.block_size != sb.block_size) {
    return MetadataStatus::failure(MetadataError::Mismatch,
                                   fmt::format("{}: block size mismatch: metadata says {}, the volume has {}", where,
                                               sb.block_size, options.block_size));
  }
  const std::uint64_t area_end = metadata_area_end(device);
  if (sb.placement == MetadataPlacement::Internal) {
    const InternalSplit split = internal_metadata_split(device.size_bytes(), sb.activity_log);
    if (split.data_size != sb.data_size) {
      return MetadataStatus::failure(
          MetadataError::SizeMismatch,
          fmt::format("{}: size mismatch: metadata says {} bytes of data, the device has {} bytes (room for {})", where,
                      sb.data_size, device.size_bytes(), split.data_size));
    }
  } else if (options.data_device_size != sb.data_size) {
    return MetadataStatus::failure(MetadataError::SizeMismatch,
                                   fmt::format("{}: size mismatch: metadata says {} bytes of data, the data device "
                                               "has {}",
                                               where, sb.data_size, options.data_device_size));
  }
  if (sb.metadata_size > area_end) {
    return MetadataStatus::failure(MetadataError::SizeMismatch,
                                   fmt::format("{}: size mismatch: metadata says the area is {} bytes, the device "
                                               "has {}",
                                               where, sb.metadata_size, device.size_bytes()));
  }

  std::unique_ptr<MetadataStore> store(new MetadataStore(device, sb, area_end - sb.metadata_size));
  // Continue the slot sequence from what is on disk.
  if (MetadataStatus status = store->slots_.load(store->superblock_); !status.ok()) return status;
  if (int error = store->bitmap_store_->read_all(); error != 0) {
    return MetadataStatus::failure(MetadataError::Io,
                                   fmt::format("{}: cannot read the bitmap: {}", where, error_text(error)), error);
  }
  if (int error = store->activity_log_->load(); error != 0) {
    return MetadataStatus::failure(MetadataError::Io,
                                   fmt::format("{}: cannot read the activity log: {}", where, error_text(error)), error);
  }

  store->recovery_.crashed_primary = sb.has(metadata_flag::kCrashedPrimary);
  if (sb.has(metadata_flag::kInService) && !sb.has(metadata_flag::kCrashedPrimary) &&
      sb.disk_state == DiskState::UpToDate) {
    // A secondary's acknowledged writes are durable only once its primary's next flush covered
    // them; a power loss may have taken the rest. Until the peer's resync says otherwise, this
    // replica must not pass for complete (a promotion without --force is refused).
    if (int error = store->update_superblock([](Superblock& s) { s.disk_state = DiskState::Outdated; }); error != 0) {
      return MetadataStatus::failure(MetadataError::Io,
                                     fmt::format("{}: cannot record the crash: {}", where, error_text(error)), error);
    }
    store->recovery_.outdated_after_crash = true;
    util::log_warn("{}: went down as a secondary without stopping; Outdated until its peer resyncs it", where);
  }
  const std::vector<std::uint64_t> hot = store->activity_log_->active_extents();
  if (!hot.empty()) {
    // Not stopped cleanly: writes to these extents may have reached one disk and not the other.
    store->activity_log_->mark_active_extents(*store->bitmap_);
    if (int error = store->bitmap_store_->flush_dirty_pages(); error != 0) {
      return MetadataStatus::failure(
          MetadataError::Io, fmt::format("{}: cannot write the recovered bitmap: {}", where, error_text(error)), error);
    }
    if (int error = store->activity_log_->clear(); error != 0) {
      return MetadataStatus::failure(
          MetadataError::Io, fmt::format("{}: cannot empty the activity log: {}", where, error_text(error)), error);
    }
    store->recovery_.extents_marked_dirty = hot.size();
    util::log_warn("{}: not stopped cleanly{}: {} active extents marked out of sync", where,
                   store->recovery_.crashed_primary ? " (was primary)" : "", hot.size());
  }
  out = std::move(store);
  return {};
}

Superblock MetadataStore::superblock() const {
  std::lock_guard lock(superblock_mutex_);
  return superblock_;
}

int MetadataStore::update_superblock(const std::function<void(Superblock&)>& change) {
  std::lock_guard lock(superblock_mutex_);
  Superblock next = superblock_;
  change(next);
  if (int error = slots_.store(next); error != 0) return error;
  superblock_ = next;
  return 0;
}

int MetadataStore::close_clean() {
  if (int error = bitmap_store_->write_all(); error != 0) return error;
  if (int error = activity_log_->clear(); error != 0) return error;
  return update_superblock([](Superblock& sb) {
    sb.set(metadata_flag::kCrashedPrimary, false);
    sb.set(metadata_flag::kInService, false);
  });
}

}  // namespace freevsa::replication
