// The replication metadata format (docs/metadata-format.md has the byte-by-byte layout): where
// the bitmap, the activity log and the superblock lie in the metadata area, what the superblock
// holds, and its crash-safe storage in two slots.
//
// Parsers are separate from I/O: encode_superblock/decode_superblock work on plain bytes;
// SuperblockSlots does the reads and writes.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "replication/generation.h"
#include "replication/metadata_device.h"

namespace freevsa::replication {

using Uuid = std::array<std::uint8_t, 16>;
std::string to_string(const Uuid& uuid);  // 8-4-4-4-12 hex

// A stable 64-bit identifier for a node name (FNV-1a), recorded in the superblock.
std::uint64_t node_id_from_name(const std::string& node_name);

enum class DiskState : std::uint32_t { Diskless = 0, Inconsistent = 1, Outdated = 2, UpToDate = 3 };
std::string to_string(DiskState state);

enum class MetadataPlacement : std::uint32_t { Internal = 0, External = 1 };

// Superblock flag bits.
namespace metadata_flag {
constexpr std::uint32_t kConsistent = 1u << 0;      // the data is a consistent image (maybe outdated)
constexpr std::uint32_t kWasPrimary = 1u << 1;      // this node was primary at some point since the last sync
constexpr std::uint32_t kCrashedPrimary = 1u << 2;  // primary now; still set after a crash, cleared by a clean stop
constexpr std::uint32_t kPeerOutdated = 1u << 3;    // we know the peer's disk is Outdated
constexpr std::uint32_t kPrimaryAtStop = 1u << 4;   // primary when it last stopped cleanly
// Set while the replica is in service (from the replicator's start), cleared by a clean stop:
// found set when the metadata is opened, the node went down without stopping.
constexpr std::uint32_t kInService = 1u << 5;
constexpr std::uint32_t kKnown =
    kConsistent | kWasPrimary | kCrashedPrimary | kPeerOutdated | kPrimaryAtStop | kInService;
}  // namespace metadata_flag

constexpr std::uint32_t kBitmapGranularity = 4096;  // bytes of data per bitmap bit
constexpr std::uint32_t kDefaultExtentBytes = 4u << 20;
constexpr std::uint32_t kDefaultActivityLogSlots = 257;
constexpr std::uint32_t kDefaultActivityLogRingBlocks = 8;
// One activity-log transaction block holds the whole slot table (see activity_log.h).
constexpr std::uint32_t kMaxActivityLogSlots = 1007;

struct ActivityLogGeometry {
  std::uint32_t extent_bytes = kDefaultExtentBytes;  // data bytes per extent, a power of two >= 4 KiB
  std::uint32_t slots = kDefaultActivityLogSlots;    // extents that may be hot at once
  std::uint32_t ring_blocks = kDefaultActivityLogRingBlocks;  // 4 KiB transaction blocks in the ring
  bool operator==(const ActivityLogGeometry&) const = default;
};

// extent_bytes a power of two in [4 KiB, 1 GiB], 1..kMaxActivityLogSlots slots, 2..1024 ring blocks.
bool valid_activity_log_geometry(const ActivityLogGeometry& al);

// Where each part lies, as offsets from the start of the metadata area. The area is the last
// `size` bytes of its device (rounded down to 4 KiB): bitmap, activity log ring, superblock slot
// 0, superblock slot 1, in that order.
struct MetadataLayout {
  std::uint64_t data_size = 0;
  std::uint64_t bitmap_bits = 0;
  std::uint64_t bitmap_offset = 0;
  std::uint64_t bitmap_bytes = 0;  // whole 4 KiB pages
  std::uint64_t activity_log_offset = 0;
  std::uint64_t superblock_offset = 0;  // slot 0; slot 1 follows
  std::uint64_t size = 0;
};
MetadataLayout metadata_layout(std::uint64_t data_size, const ActivityLogGeometry& al);

// Internal metadata: how a device of `device_size` bytes splits into data and metadata. The data
// size is the largest multiple of 4 KiB whose metadata still fits behind it; both are 0 when the
// device is too small to hold any data.
struct InternalSplit {
  std::uint64_t data_size = 0;
  std::uint64_t metadata_size = 0;
  std::uint64_t metadata_offset = 0;  // absolute: where the metadata area starts on the device
};
InternalSplit internal_metadata_split(std::uint64_t device_size, const ActivityLogGeometry& al = {});

// The SCSI layer's persistent reservation record (opaque here) travels in the superblock, so
// that it is written as crash-safely as the rest; this is the most it may take.
constexpr std::size_t kMaxReservationRecordBytes = 2048;

struct Superblock {
  std::uint64_t sequence = 0;  // set by SuperblockSlots::store
  Uuid volume_uuid{};
  std::uint64_t data_size = 0;
  std::uint32_t block_size = 512;
  std::uint32_t bitmap_granularity = kBitmapGranularity;
  std::uint64_t node_id = 0;
  Generations generations;
  DiskState disk_state = DiskState::Inconsistent;
  std::uint32_t flags = 0;
  ActivityLogGeometry activity_log;
  MetadataPlacement placement = MetadataPlacement::Internal;
  std::uint64_t metadata_size = 0;  // == metadata_layout(data_size, activity_log).size
  std::vector<std::uint8_t> reservations;  // at most kMaxReservationRecordBytes

  bool has(std::uint32_t flag) const { return (flags & flag) != 0; }
  void set(std::uint32_t flag, bool on) { flags = on ? (flags | flag) : (flags & ~flag); }
  bool operator==(const Superblock&) const = default;
};

// Why a node starting (always as secondary) becomes primary once it has met its peer as
// secondary: it was primary when it crashed or stopped, or it is a new volume's initial
// primary. "" when it stays secondary.
std::string primary_when_peer_met(const Superblock& sb, bool initial_primary);

constexpr std::uint64_t kSuperblockMagic = 0x4656534145444d31ull;  // "FVSAEDM1"
constexpr std::uint32_t kMetadataFormatVersion = 1;

// Fills one 4 KiB slot image (zeroes the unused bytes, computes the checksum).
void encode_superblock(const Superblock& superblock, std::span<std::uint8_t, kMetadataBlockSize> block);

enum class SuperblockDefect { None, BadMagic, BadChecksum, UnsupportedVersion, BadFields };
std::string to_string(SuperblockDefect defect);
// Checks magic, checksum, version and field sanity; fills `out` only when it returns None.
SuperblockDefect decode_superblock(std::span<const std::uint8_t, kMetadataBlockSize> block, Superblock& out);

// The result of loading or validating metadata: a value, with a message that names the device
// and says what is wrong ("data/vol0.img: metadata superblock: bad magic").
enum class MetadataError { None, Io, NotFormatted, Corrupt, UnsupportedVersion, SizeMismatch, Mismatch };
struct MetadataStatus {
  MetadataError error = MetadataError::None;
  int os_error = 0;  // with Io
  std::string message;

  bool ok() const { return error == MetadataError::None; }
  static MetadataStatus failure(MetadataError error, std::string message, int os_error = 0) {
    return {error, os_error, std::move(message)};
  }
};

// The two superblock slots in the last 8 KiB of the metadata area. A store writes the slot that
// does not hold the newest copy (slot = sequence % 2), with a sequence one higher, durably; a
// load takes the valid slot with the highest sequence. A write torn by a crash therefore only
// ever damages the older copy.
//
// Threading: thread-safe; stores are serialised. `device` must outlive this object.
class SuperblockSlots {
 public:
  explicit SuperblockSlots(MetadataDevice& device);

  MetadataStatus load(Superblock& out);
  // Writes `superblock` with the next sequence number (assigned to superblock.sequence only on
  // success) into the slot that does not hold the newest copy. Durable when it returns 0;
  // otherwise an errno, and the newest copy still stands. REQUIRES: load() or store_both()
  // succeeded before (EINVAL otherwise: the sequence to continue from is unknown).
  int store(Superblock& superblock);
  // Format: writes both slots (sequence 0 and 1) with the same content, durably.
  int store_both(Superblock& superblock);
  // Format: zeroes both slots durably, so that an interrupted format leaves no valid superblock.
  int erase();

  std::uint64_t slot_offset(int slot) const;

 private:
  int write_slot(int slot, const Superblock& superblock);

  std::mutex mutex_;
  MetadataDevice& device_;
  std::uint64_t last_sequence_ = 0;
  int newest_slot_ = 0;
  bool loaded_ = false;
};

}  // namespace freevsa::replication
