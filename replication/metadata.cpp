#include "replication/metadata.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "util/aligned_buffer.h"
#include "util/crc32c.h"
#include "util/endian.h"
#include "util/log.h"

namespace freevsa::replication {
namespace {

// Superblock field offsets (big-endian); docs/metadata-format.md.
constexpr std::size_t kMagicAt = 0;
constexpr std::size_t kVersionAt = 8;
constexpr std::size_t kSequenceAt = 16;
constexpr std::size_t kUuidAt = 24;
constexpr std::size_t kDataSizeAt = 40;
constexpr std::size_t kBlockSizeAt = 48;
constexpr std::size_t kGranularityAt = 52;
constexpr std::size_t kNodeIdAt = 56;
constexpr std::size_t kGenCurrentAt = 64;
constexpr std::size_t kGenBitmapAt = 72;
constexpr std::size_t kGenHistoryAt = 80;  // two u64
constexpr std::size_t kDiskStateAt = 96;
constexpr std::size_t kFlagsAt = 100;
constexpr std::size_t kExtentBytesAt = 104;
constexpr std::size_t kSlotsAt = 108;
constexpr std::size_t kRingBlocksAt = 112;
constexpr std::size_t kPlacementAt = 116;
constexpr std::size_t kMetadataSizeAt = 120;
constexpr std::size_t kReservationsAt = 1024;  // u32 length, then the record
constexpr std::size_t kChecksumAt = kMetadataBlockSize - 4;
static_assert(kReservationsAt + 4 + kMaxReservationRecordBytes <= kChecksumAt);

constexpr std::uint64_t kBlock = kMetadataBlockSize;

std::uint64_t round_up(std::uint64_t value, std::uint64_t unit) { return (value + unit - 1) / unit * unit; }

}  // namespace

bool valid_activity_log_geometry(const ActivityLogGeometry& al) {
  const bool power_of_two = al.extent_bytes != 0 && (al.extent_bytes & (al.extent_bytes - 1)) == 0;
  return power_of_two && al.extent_bytes >= kBitmapGranularity && al.extent_bytes <= (1u << 30) && al.slots >= 1 &&
         al.slots <= kMaxActivityLogSlots && al.ring_blocks >= 2 && al.ring_blocks <= 1024;
}

namespace {

std::string error_text(int error) { return std::error_code(error, std::generic_category()).message(); }

}  // namespace

std::string to_string(const Uuid& uuid) {
  std::string text;
  for (std::size_t i = 0; i < uuid.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    text += fmt::format("{:02x}", uuid[i]);
  }
  return text;
}

std::uint64_t node_id_from_name(const std::string& node_name) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : node_name) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

std::string to_string(DiskState state) {
  switch (state) {
    case DiskState::Diskless: return "Diskless";
    case DiskState::Inconsistent: return "Inconsistent";
    case DiskState::Outdated: return "Outdated";
    case DiskState::UpToDate: return "UpToDate";
  }
  return "?";
}

MetadataLayout metadata_layout(std::uint64_t data_size, const ActivityLogGeometry& al) {
  MetadataLayout layout;
  layout.data_size = data_size;
  layout.bitmap_bits = (data_size + kBitmapGranularity - 1) / kBitmapGranularity;
  layout.bitmap_offset = 0;
  layout.bitmap_bytes = round_up((layout.bitmap_bits + 7) / 8, kBlock);
  layout.activity_log_offset = layout.bitmap_offset + layout.bitmap_bytes;
  layout.superblock_offset = layout.activity_log_offset + std::uint64_t{al.ring_blocks} * kBlock;
  layout.size = layout.superblock_offset + 2 * kBlock;
  return layout;
}

InternalSplit internal_metadata_split(std::uint64_t device_size, const ActivityLogGeometry& al) {
  const std::uint64_t end = device_size / kBlock * kBlock;
  auto fits = [&](std::uint64_t data) { return data + metadata_layout(data, al).size <= end; };
  // Metadata for the whole device is an upper bound; growing the data into what that bound
  // over-reserved converges in a step or two because the bitmap grows by 4 KiB per 128 MiB.
  const std::uint64_t upper = metadata_layout(end, al).size;
  if (upper + kBlock > end) return {};
  std::uint64_t data = end - upper;
  for (;;) {
    std::uint64_t next = end - metadata_layout(data, al).size;
    if (next <= data || !fits(next)) break;
    data = next;
  }
  InternalSplit split;
  split.data_size = data;
  split.metadata_size = metadata_layout(data, al).size;
  split.metadata_offset = end - split.metadata_size;
  return split;
}

void encode_superblock(const Superblock& sb, std::span<std::uint8_t, kMetadataBlockSize> block) {
  std::uint8_t* p = block.data();
  std::memset(p, 0, block.size());
  util::put_be64(p + kMagicAt, kSuperblockMagic);
  util::put_be32(p + kVersionAt, kMetadataFormatVersion);
  util::put_be64(p + kSequenceAt, sb.sequence);
  std::memcpy(p + kUuidAt, sb.volume_uuid.data(), sb.volume_uuid.size());
  util::put_be64(p + kDataSizeAt, sb.data_size);
  util::put_be32(p + kBlockSizeAt, sb.block_size);
  util::put_be32(p + kGranularityAt, sb.bitmap_granularity);
  util::put_be64(p + kNodeIdAt, sb.node_id);
  util::put_be64(p + kGenCurrentAt, sb.generations.current);
  util::put_be64(p + kGenBitmapAt, sb.generations.bitmap);
  util::put_be64(p + kGenHistoryAt, sb.generations.history[0]);
  util::put_be64(p + kGenHistoryAt + 8, sb.generations.history[1]);
  util::put_be32(p + kDiskStateAt, static_cast<std::uint32_t>(sb.disk_state));
  util::put_be32(p + kFlagsAt, sb.flags);
  util::put_be32(p + kExtentBytesAt, sb.activity_log.extent_bytes);
  util::put_be32(p + kSlotsAt, sb.activity_log.slots);
  util::put_be32(p + kRingBlocksAt, sb.activity_log.ring_blocks);
  util::put_be32(p + kPlacementAt, static_cast<std::uint32_t>(sb.placement));
  util::put_be64(p + kMetadataSizeAt, sb.metadata_size);
  const std::size_t reservations = std::min(sb.reservations.size(), kMaxReservationRecordBytes);
  util::put_be32(p + kReservationsAt, static_cast<std::uint32_t>(reservations));
  std::copy_n(sb.reservations.begin(), reservations, p + kReservationsAt + 4);
  util::put_be32(p + kChecksumAt, util::crc32c({p, kChecksumAt}));
}

std::string to_string(SuperblockDefect defect) {
  switch (defect) {
    case SuperblockDefect::None: return "valid";
    case SuperblockDefect::BadMagic: return "bad magic";
    case SuperblockDefect::BadChecksum: return "bad checksum";
    case SuperblockDefect::UnsupportedVersion: return "unsupported format version";
    case SuperblockDefect::BadFields: return "invalid field values";
  }
  return "?";
}

SuperblockDefect decode_superblock(std::span<const std::uint8_t, kMetadataBlockSize> block, Superblock& out) {
  const std::uint8_t* p = block.data();
  if (util::get_be64(p + kMagicAt) != kSuperblockMagic) return SuperblockDefect::BadMagic;
  // Magic and version keep their place in every format version; the rest may not.
  if (util::get_be32(p + kVersionAt) != kMetadataFormatVersion) return SuperblockDefect::UnsupportedVersion;
  if (util::get_be32(p + kChecksumAt) != util::crc32c({p, kChecksumAt})) return SuperblockDefect::BadChecksum;

  Superblock sb;
  sb.sequence = util::get_be64(p + kSequenceAt);
  std::memcpy(sb.volume_uuid.data(), p + kUuidAt, sb.volume_uuid.size());
  sb.data_size = util::get_be64(p + kDataSizeAt);
  sb.block_size = util::get_be32(p + kBlockSizeAt);
  sb.bitmap_granularity = util::get_be32(p + kGranularityAt);
  sb.node_id = util::get_be64(p + kNodeIdAt);
  sb.generations.current = util::get_be64(p + kGenCurrentAt);
  sb.generations.bitmap = util::get_be64(p + kGenBitmapAt);
  sb.generations.history[0] = util::get_be64(p + kGenHistoryAt);
  sb.generations.history[1] = util::get_be64(p + kGenHistoryAt + 8);
  const std::uint32_t disk_state = util::get_be32(p + kDiskStateAt);
  sb.flags = util::get_be32(p + kFlagsAt);
  sb.activity_log.extent_bytes = util::get_be32(p + kExtentBytesAt);
  sb.activity_log.slots = util::get_be32(p + kSlotsAt);
  sb.activity_log.ring_blocks = util::get_be32(p + kRingBlocksAt);
  const std::uint32_t placement = util::get_be32(p + kPlacementAt);
  sb.metadata_size = util::get_be64(p + kMetadataSizeAt);
  const std::uint32_t reservations = util::get_be32(p + kReservationsAt);

  const bool sane = (sb.block_size == 512 || sb.block_size == 4096) && sb.bitmap_granularity == kBitmapGranularity &&
                    sb.data_size != 0 && sb.data_size % sb.block_size == 0 &&
                    disk_state <= static_cast<std::uint32_t>(DiskState::UpToDate) &&
                    (sb.flags & ~metadata_flag::kKnown) == 0 && placement <= 1 && valid_activity_log_geometry(sb.activity_log) &&
                    sb.metadata_size == metadata_layout(sb.data_size, sb.activity_log).size &&
                    reservations <= kMaxReservationRecordBytes;
  if (!sane) return SuperblockDefect::BadFields;
  sb.reservations.assign(p + kReservationsAt + 4, p + kReservationsAt + 4 + reservations);
  sb.disk_state = static_cast<DiskState>(disk_state);
  sb.placement = static_cast<MetadataPlacement>(placement);
  out = sb;
  return SuperblockDefect::None;
}

SuperblockSlots::SuperblockSlots(MetadataDevice& device) : device_(device) {}

std::uint64_t SuperblockSlots::slot_offset(int slot) const {
  return metadata_area_end(device_) - 2 * kBlock + static_cast<std::uint64_t>(slot) * kBlock;
}

MetadataStatus SuperblockSlots::load(Superblock& out) {
  std::lock_guard lock(mutex_);
  const std::string where = fmt::format("{}: metadata superblock", device_.name());
  if (metadata_area_end(device_) < 2 * kBlock) {
    return MetadataStatus::failure(MetadataError::NotFormatted,
                                   fmt::format("{}: the device ({} bytes) is too small", where, device_.size_bytes()));
  }
  util::AlignedBuffer buffer(2 * kBlock);
  if (int error = device_.read(slot_offset(0), buffer.span()); error != 0) {
    return MetadataStatus::failure(MetadataError::Io, fmt::format("{}: cannot read: {}", where, error_text(error)),
                                   error);
  }
  Superblock copies[2];
  SuperblockDefect defects[2];
  for (int slot = 0; slot < 2; ++slot) {
    std::span<const std::uint8_t, kMetadataBlockSize> block(buffer.data() + slot * kBlock, kMetadataBlockSize);
    defects[slot] = decode_superblock(block, copies[slot]);
  }
  const bool valid0 = defects[0] == SuperblockDefect::None, valid1 = defects[1] == SuperblockDefect::None;
  if (!valid0 && !valid1) {
    if (defects[0] == SuperblockDefect::BadMagic && defects[1] == SuperblockDefect::BadMagic) {
      return MetadataStatus::failure(MetadataError::NotFormatted,
                                     fmt::format("{}: bad magic (no metadata here; create it first)", where));
    }
    if (defects[0] == SuperblockDefect::BadChecksum && defects[1] == SuperblockDefect::BadChecksum) {
      return MetadataStatus::failure(MetadataError::Corrupt, fmt::format("{}: both slots fail their checksum", where));
    }
    for (int slot = 0; slot < 2; ++slot) {
      if (defects[slot] == SuperblockDefect::UnsupportedVersion) {
        std::uint32_t version = util::get_be32(buffer.data() + slot * kBlock + kVersionAt);
        return MetadataStatus::failure(
            MetadataError::UnsupportedVersion,
            fmt::format("{}: format version {} (this build reads version {})", where, version, kMetadataFormatVersion));
      }
    }
    return MetadataStatus::failure(MetadataError::Corrupt, fmt::format("{}: slot 0: {}; slot 1: {}", where,
                                                                       to_string(defects[0]), to_string(defects[1])));
  }
  int newest = valid0 && (!valid1 || copies[0].sequence > copies[1].sequence) ? 0 : 1;
  if (!valid0 || !valid1) {
    util::log_warn("{}: slot {} is unusable ({}); using slot {} (sequence {})", where, 1 - newest,
                   to_string(defects[1 - newest]), newest, copies[newest].sequence);
  }
  out = copies[newest];
  last_sequence_ = copies[newest].sequence;
  newest_slot_ = newest;
  loaded_ = true;
  return {};
}

int SuperblockSlots::write_slot(int slot, const Superblock& superblock) {
  util::AlignedBuffer buffer(kBlock);
  encode_superblock(superblock, std::span<std::uint8_t, kMetadataBlockSize>(buffer.data(), kMetadataBlockSize));
  return device_.write(slot_offset(slot), buffer.span(), /*durable=*/true);
}

int SuperblockSlots::store(Superblock& superblock) {
  std::lock_guard lock(mutex_);
  if (!loaded_) return EINVAL;  // the sequence to continue from is unknown
  Superblock copy = superblock;
  copy.sequence = last_sequence_ + 1;
  const int slot = 1 - newest_slot_;
  if (int error = write_slot(slot, copy); error != 0) return error;
  last_sequence_ = copy.sequence;
  newest_slot_ = slot;
  superblock.sequence = copy.sequence;
  return 0;
}

int SuperblockSlots::store_both(Superblock& superblock) {
  std::lock_guard lock(mutex_);
  Superblock copy = superblock;
  for (int slot = 0; slot < 2; ++slot) {
    copy.sequence = static_cast<std::uint64_t>(slot) + 1;
    if (int error = write_slot(slot, copy); error != 0) return error;
  }
  last_sequence_ = copy.sequence;
  newest_slot_ = 1;
  loaded_ = true;
  superblock.sequence = copy.sequence;
  return 0;
}

int SuperblockSlots::erase() {
  std::lock_guard lock(mutex_);
  util::AlignedBuffer zeros(2 * kBlock);
  zeros.zero();
  loaded_ = false;
  return device_.write(slot_offset(0), zeros.span(), /*durable=*/true);
}

std::string primary_when_peer_met(const Superblock& sb, bool initial_primary) {
  if (sb.has(metadata_flag::kCrashedPrimary)) return "was primary when it crashed";
  if (sb.has(metadata_flag::kPrimaryAtStop)) return "was primary when it stopped";
  if (initial_primary && !sb.has(metadata_flag::kWasPrimary)) return "is the initial primary of this new volume";
  return "";
}

}  // namespace freevsa::replication
