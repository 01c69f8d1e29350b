// A volume's replication metadata as one unit: format it ("create-md"), open and validate it,
// recover after a crash, and stop cleanly. It owns the superblock slots, the dirty bitmap (with
// its store) and the activity log of one metadata area.
//
// Start-up edges throw or return a MetadataStatus with a message naming the device; everything
// after open() returns errno values.
//
// Threading: after open(), all members are thread-safe (see each class). update_superblock
// calls are serialised. `device` must outlive the MetadataStore.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "replication/activity_log.h"
#include "replication/dirty_bitmap.h"
#include "replication/metadata.h"
#include "replication/metadata_device.h"

namespace freevsa::replication {

struct FormatOptions {
  MetadataPlacement placement = MetadataPlacement::Internal;
  // External: the data device's size (required). Internal: 0 computes it from the metadata
  // device's size (internal_metadata_split); a non-zero value must equal that.
  std::uint64_t data_size = 0;
  std::uint32_t block_size = 512;
  std::uint64_t node_id = 0;
  // Both replicas of a volume should carry the same UUID (the control plane makes one and hands
  // it to both); unset: a random one.
  std::optional<Uuid> volume_uuid;
  // "Both sides new and empty": every replica formatted this way starts UpToDate with the same
  // well-known current generation (kFreshAndEmpty) and a clear bitmap, so the first connect
  // decides InSync and copies nothing. Only correct when no replica holds data yet.
  bool start_in_sync = false;
  // Without start_in_sync: set every bitmap bit (the initial sync copies everything), or clear.
  bool bitmap_all_set = true;
  ActivityLogGeometry activity_log;
};

struct OpenOptions {
  MetadataPlacement placement = MetadataPlacement::Internal;
  // External only: the size of the data device, which must equal the recorded data size.
  std::uint64_t data_device_size = 0;
  // 0: any; otherwise must equal the recorded logical block size.
  std::uint32_t block_size = 0;
};

// What open() found and did.
struct RecoveryReport {
  bool crashed_primary = false;          // the superblock said primary when it went down
  // It went down as a secondary with an UpToDate disk and is Outdated now: writes it had
  // acknowledged but not flushed may be gone, and only its peer knows which (docs/durability.md).
  bool outdated_after_crash = false;
  std::uint64_t extents_marked_dirty = 0;  // activity-log extents added to the bitmap
};

class MetadataStore {
 public:
  // Formats the metadata area: erases both superblock slots, writes an empty activity log and
  // the initial bitmap, then both superblock slots; everything durable on return. An
  // interrupted format leaves no valid superblock. Throws std::runtime_error naming the device
  // on invalid options, a device that is too small, or an I/O error. Returns the superblock.
  static Superblock format(MetadataDevice& device, const FormatOptions& options);

  // Loads and validates the superblock, the bitmap and the activity log. If the activity log
  // still holds extents (the node did not stop cleanly), marks them dirty in the bitmap, makes
  // the bitmap durable and empties the log. On failure `out` is unchanged.
  static MetadataStatus open(MetadataDevice& device, const OpenOptions& options, std::unique_ptr<MetadataStore>& out);

  Superblock superblock() const;
  // Applies `change` to a copy of the superblock and stores it durably; the in-memory copy
  // changes only on success. 0 or an errno. REQUIRES: `change` leaves the geometry (data size,
  // block size, activity-log geometry, placement, metadata size) and the volume UUID alone.
  int update_superblock(const std::function<void(Superblock&)>& change);

  DirtyBitmap& bitmap() { return *bitmap_; }
  BitmapStore& bitmap_store() { return *bitmap_store_; }
  ActivityLog& activity_log() { return *activity_log_; }
  const MetadataLayout& layout() const { return layout_; }
  std::uint64_t area_offset() const { return area_offset_; }  // absolute start of the metadata area
  const RecoveryReport& recovery() const { return recovery_; }

  // Clean stop: writes the whole bitmap, empties the activity log, and clears the
  // crashed-primary flag. EBUSY while writes are in flight.
  int close_clean();

 private:
  MetadataStore(MetadataDevice& device, const Superblock& superblock, std::uint64_t area_offset);

  SuperblockSlots slots_;
  mutable std::mutex superblock_mutex_;
  Superblock superblock_;
  MetadataLayout layout_;
  std::uint64_t area_offset_;
  std::unique_ptr<DirtyBitmap> bitmap_;
  std::unique_ptr<BitmapStore> bitmap_store_;
  std::unique_ptr<ActivityLog> activity_log_;
  RecoveryReport recovery_;
};

}  // namespace freevsa::replication
