// The metadata format: layout and sizes, the two-slot superblock, create-md and the loader.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <stdexcept>

#include "replication/file_volume.h"
#include "replication/memory_volume.h"
#include "replication/metadata.h"
#include "util/crc32c.h"
#include "util/endian.h"
#include "replication/metadata_device.h"
#include "replication/metadata_store.h"

namespace freevsa::replication {
namespace {

using ::testing::HasSubstr;

constexpr std::uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

Superblock sample_superblock() {
  Superblock sb;
  sb.sequence = 41;
  for (std::size_t i = 0; i < sb.volume_uuid.size(); ++i) sb.volume_uuid[i] = static_cast<std::uint8_t>(i * 7 + 1);
  sb.data_size = 1 * GiB;
  sb.block_size = 4096;
  sb.node_id = node_id_from_name("node-a");
  sb.generations = {0x1111, 0x2222, {0x3333, 0x4444}};
  sb.disk_state = DiskState::Outdated;
  sb.flags = metadata_flag::kConsistent | metadata_flag::kCrashedPrimary;
  sb.activity_log = {4 * MiB, 61, 16};
  sb.placement = MetadataPlacement::External;
  sb.metadata_size = metadata_layout(sb.data_size, sb.activity_log).size;
  return sb;
}

std::span<std::uint8_t, kMetadataBlockSize> block_of(std::vector<std::uint8_t>& bytes) {
  return std::span<std::uint8_t, kMetadataBlockSize>(bytes.data(), kMetadataBlockSize);
}

std::unique_ptr<MetadataStore> open_or_fail(MetadataDevice& device, const OpenOptions& options = {}) {
  std::unique_ptr<MetadataStore> store;
  MetadataStatus status = MetadataStore::open(device, options, store);
  EXPECT_TRUE(status.ok()) << status.message;
  return store;
}

// A small internal-metadata device: 256 MiB, of which the metadata takes the tail.
struct InternalDevice {
  MemoryMetadataDevice device{256 * MiB, "data/vol0.img"};
  Superblock formatted = MetadataStore::format(device, {});
  std::uint64_t slot_offset(int slot) const { return 256 * MiB - 2 * kMetadataBlockSize + slot * kMetadataBlockSize; }
};

TEST(MetadataLayout, InternalMetadataOfA1GiBDeviceTakes72KiB) {
  // 32 KiB of bitmap (262144 bits), 8 ring blocks of activity log, 2 superblock slots.
  const InternalSplit split = internal_metadata_split(1 * GiB);
  EXPECT_EQ(split.metadata_size, 72 * KiB);
  EXPECT_EQ(split.data_size, 1 * GiB - 72 * KiB);
  EXPECT_EQ(split.metadata_offset, split.data_size);
}

TEST(MetadataLayout, A1TiBDeviceNeeds32MiBOfBitmap) {
  const InternalSplit split = internal_metadata_split(1024 * GiB);
  const MetadataLayout layout = metadata_layout(split.data_size, {});
  EXPECT_EQ(layout.bitmap_bytes, 32 * MiB);
  EXPECT_EQ(split.metadata_size, 32 * MiB + 40 * KiB);
  EXPECT_EQ(split.data_size + split.metadata_size, 1024 * GiB);
}

TEST(MetadataLayout, DeviceSizeIsRoundedDownToWholeBlocks) {
  const InternalSplit split = internal_metadata_split(1 * GiB + 1000);
  EXPECT_EQ(split.data_size, 1 * GiB - 72 * KiB);
  EXPECT_EQ(split.metadata_offset + split.metadata_size, 1 * GiB);
}

TEST(MetadataLayout, DataGrowsIntoWhatTheUpperBoundOverReserved) {
  // 128 MiB + 44 KiB: metadata for the whole device would need two bitmap pages, but 128 MiB of
  // data needs only one, and exactly fits with its 44 KiB of metadata.
  const InternalSplit split = internal_metadata_split(128 * MiB + 44 * KiB);
  EXPECT_EQ(split.metadata_size, 44 * KiB);
  EXPECT_EQ(split.data_size, 128 * MiB);
  EXPECT_EQ(metadata_layout(split.data_size, {}).bitmap_bytes, 4 * KiB);
}

TEST(MetadataLayout, TooSmallDeviceHoldsNoData) {
  EXPECT_EQ(internal_metadata_split(16 * KiB).data_size, 0u);
}

TEST(MetadataLayout, PartsFollowEachOtherInOrder) {
  const MetadataLayout layout = metadata_layout(1 * GiB, {4 * MiB, 257, 8});
  EXPECT_EQ(layout.bitmap_offset, 0u);
  EXPECT_EQ(layout.activity_log_offset, 32 * KiB);
  EXPECT_EQ(layout.superblock_offset, 64 * KiB);
  EXPECT_EQ(layout.size, 72 * KiB);
}

TEST(Superblock, RoundTripsEveryField) {
  const Superblock sb = sample_superblock();
  std::vector<std::uint8_t> bytes(kMetadataBlockSize);
  encode_superblock(sb, block_of(bytes));
  Superblock decoded;
  ASSERT_EQ(decode_superblock(block_of(bytes), decoded), SuperblockDefect::None);
  EXPECT_EQ(decoded, sb);
}

TEST(Superblock, CarriesThePersistentReservationRecord) {
  Superblock sb = sample_superblock();
  sb.reservations.assign(kMaxReservationRecordBytes, 0);
  for (std::size_t i = 0; i < sb.reservations.size(); ++i) sb.reservations[i] = static_cast<std::uint8_t>(i * 13 + 1);
  std::vector<std::uint8_t> bytes(kMetadataBlockSize);
  encode_superblock(sb, block_of(bytes));
  Superblock decoded;
  ASSERT_EQ(decode_superblock(block_of(bytes), decoded), SuperblockDefect::None);
  EXPECT_EQ(decoded.reservations, sb.reservations);
  // A length beyond the field cannot come from us: the superblock is rejected.
  bytes[1024] = 0x7F;
  util::put_be32(&bytes[kMetadataBlockSize - 4], util::crc32c({bytes.data(), kMetadataBlockSize - 4}));
  EXPECT_EQ(decode_superblock(block_of(bytes), decoded), SuperblockDefect::BadFields);
}

TEST(Superblock, AnyFlippedBitFailsTheChecksum) {
  std::vector<std::uint8_t> bytes(kMetadataBlockSize);
  encode_superblock(sample_superblock(), block_of(bytes));
  bytes[2000] ^= 0x10;
  Superblock decoded;
  EXPECT_EQ(decode_superblock(block_of(bytes), decoded), SuperblockDefect::BadChecksum);
}

TEST(Superblock, InconsistentGeometryIsRejectedEvenWithAValidChecksum) {
  Superblock sb = sample_superblock();
  sb.metadata_size += kMetadataBlockSize;
  std::vector<std::uint8_t> bytes(kMetadataBlockSize);
  encode_superblock(sb, block_of(bytes));
  Superblock decoded;
  EXPECT_EQ(decode_superblock(block_of(bytes), decoded), SuperblockDefect::BadFields);
}

TEST(SuperblockSlots, StoresAlternateSlotsWithIncreasingSequenceDurably) {
  InternalDevice d;
  SuperblockSlots slots(d.device);
  Superblock sb;
  ASSERT_TRUE(slots.load(sb).ok());
  EXPECT_EQ(sb.sequence, 2u);  // format wrote 1 into slot 0 and 2 into slot 1
  d.device.clear_write_log();
  ASSERT_EQ(slots.store(sb), 0);
  ASSERT_EQ(slots.store(sb), 0);
  EXPECT_EQ(sb.sequence, 4u);
  const auto writes = d.device.writes();
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].offset, d.slot_offset(0));
  EXPECT_EQ(writes[1].offset, d.slot_offset(1));
  EXPECT_TRUE(writes[0].durable && writes[1].durable);
}

TEST(SuperblockSlots, TornWriteOfTheNewerSlotFallsBackToTheOlder) {
  InternalDevice d;
  auto store = open_or_fail(d.device);
  ASSERT_EQ(store->update_superblock([](Superblock& sb) { sb.disk_state = DiskState::UpToDate; }), 0);
  d.device.tear_next_write(512);  // power lost 512 bytes into the next superblock write
  EXPECT_EQ(store->update_superblock([](Superblock& sb) { sb.disk_state = DiskState::Outdated; }), EIO);
  EXPECT_EQ(store->superblock().disk_state, DiskState::UpToDate);  // memory follows only durable changes

  SuperblockSlots slots(d.device);
  Superblock loaded;
  ASSERT_TRUE(slots.load(loaded).ok());
  EXPECT_EQ(loaded.disk_state, DiskState::UpToDate);
  EXPECT_EQ(loaded.sequence, 3u);
  // The next store repairs the torn slot, never the one holding the newest copy.
  d.device.clear_write_log();
  ASSERT_EQ(slots.store(loaded), 0);
  EXPECT_EQ(d.device.writes().at(0).offset, d.slot_offset(1));
}

TEST(SuperblockSlots, StoreBeforeLoadIsRefused) {
  InternalDevice d;
  SuperblockSlots slots(d.device);
  Superblock sb = d.formatted;
  EXPECT_EQ(slots.store(sb), EINVAL);
}

TEST(MetadataLoad, BothSlotsCorruptGiveAClearError) {
  InternalDevice d;
  const std::uint8_t garbage[] = {0xde, 0xad};
  d.device.poke(d.slot_offset(0) + 300, garbage);
  d.device.poke(d.slot_offset(1) + 300, garbage);
  std::unique_ptr<MetadataStore> store;
  const MetadataStatus status = MetadataStore::open(d.device, {}, store);
  EXPECT_EQ(status.error, MetadataError::Corrupt);
  EXPECT_EQ(status.message, "data/vol0.img: metadata superblock: both slots fail their checksum");
  EXPECT_EQ(store, nullptr);
}

TEST(MetadataLoad, UnformattedDeviceReportsBadMagic) {
  MemoryMetadataDevice device(64 * MiB, "data/vol0.img");
  std::unique_ptr<MetadataStore> store;
  const MetadataStatus status = MetadataStore::open(device, {}, store);
  EXPECT_EQ(status.error, MetadataError::NotFormatted);
  EXPECT_THAT(status.message, HasSubstr("data/vol0.img: metadata superblock: bad magic"));
}

TEST(MetadataLoad, NewerFormatVersionIsNamed) {
  InternalDevice d;
  const std::uint8_t version_9[] = {0, 0, 0, 9};
  d.device.poke(d.slot_offset(0) + 8, version_9);
  d.device.poke(d.slot_offset(1) + 8, version_9);
  std::unique_ptr<MetadataStore> store;
  const MetadataStatus status = MetadataStore::open(d.device, {}, store);
  EXPECT_EQ(status.error, MetadataError::UnsupportedVersion);
  EXPECT_THAT(status.message, HasSubstr("format version 9 (this build reads version 1)"));
}

TEST(MetadataLoad, ReadErrorIsReportedWithItsErrno) {
  InternalDevice d;
  d.device.fail_reads_with(EIO);
  std::unique_ptr<MetadataStore> store;
  const MetadataStatus status = MetadataStore::open(d.device, {}, store);
  EXPECT_EQ(status.error, MetadataError::Io);
  EXPECT_EQ(status.os_error, EIO);
}

TEST(MetadataLoad, ExternalDataDeviceOfAnotherSizeIsASizeMismatch) {
  MemoryMetadataDevice device(1 * MiB, "data/vol0.md");
  FormatOptions options;
  options.placement = MetadataPlacement::External;
  options.data_size = 1 * GiB;
  MetadataStore::format(device, options);
  std::unique_ptr<MetadataStore> store;
  const MetadataStatus status =
      MetadataStore::open(device, {MetadataPlacement::External, 2 * GiB, 0}, store);
  EXPECT_EQ(status.error, MetadataError::SizeMismatch);
  EXPECT_EQ(status.message,
            "data/vol0.md: metadata: size mismatch: metadata says 1073741824 bytes of data, the data device has "
            "2147483648");
}

TEST(MetadataLoad, InternalMetadataOnAResizedDeviceIsASizeMismatch) {
  InternalDevice small;
  // The same metadata found at the end of a device 512 MiB larger (the superblock moved along).
  MemoryMetadataDevice large(768 * MiB, "data/vol0.img");
  const auto superblocks = small.device.snapshot(small.slot_offset(0), 2 * kMetadataBlockSize);
  large.poke(768 * MiB - 2 * kMetadataBlockSize, superblocks);
  std::unique_ptr<MetadataStore> store;
  const MetadataStatus status = MetadataStore::open(large, {}, store);
  EXPECT_EQ(status.error, MetadataError::SizeMismatch);
  EXPECT_THAT(status.message, HasSubstr(fmt::format("size mismatch: metadata says {} bytes of data, the device has {}",
                                                    small.formatted.data_size, 768 * MiB)));
}

TEST(MetadataLoad, PlacementMustMatchTheConfiguration) {
  InternalDevice d;
  std::unique_ptr<MetadataStore> store;
  const MetadataStatus status = MetadataStore::open(d.device, {MetadataPlacement::External, 1 * GiB, 0}, store);
  EXPECT_EQ(status.error, MetadataError::Mismatch);
  EXPECT_THAT(status.message, HasSubstr("the metadata is internal, but external metadata was expected"));
}

TEST(MetadataLoad, BlockSizeMustMatchTheVolume) {
  InternalDevice d;
  std::unique_ptr<MetadataStore> store;
  const MetadataStatus status = MetadataStore::open(d.device, {MetadataPlacement::Internal, 0, 4096}, store);
  EXPECT_EQ(status.error, MetadataError::Mismatch);
  EXPECT_THAT(status.message, HasSubstr("block size mismatch: metadata says 512, the volume has 4096"));
}

TEST(CreateMd, NewVolumeGetsFreshIdentityAndAFullInitialSync) {
  MemoryMetadataDevice a(256 * MiB), b(256 * MiB);
  FormatOptions options;
  options.node_id = node_id_from_name("node-a");
  const Superblock sa = MetadataStore::format(a, options);
  const Superblock sb = MetadataStore::format(b, options);
  EXPECT_NE(sa.volume_uuid, sb.volume_uuid);
  EXPECT_EQ(sa.volume_uuid[6] >> 4, 4);  // random (version 4) UUID
  EXPECT_NE(sa.generations.current, 0u);
  EXPECT_NE(sa.generations.current, kFreshAndEmpty);
  EXPECT_NE(sa.generations.current, sb.generations.current);
  EXPECT_EQ(sa.generations.bitmap, 0u);
  EXPECT_EQ(sa.disk_state, DiskState::Inconsistent);
  EXPECT_FALSE(sa.has(metadata_flag::kConsistent));
  EXPECT_EQ(sa.node_id, node_id_from_name("node-a"));
  EXPECT_EQ(decide_sync(sa.generations, sb.generations, true), SyncDecision::FullSyncAsSource);

  auto store = open_or_fail(a);
  EXPECT_EQ(store->superblock(), sa);
  EXPECT_EQ(store->bitmap().count_dirty_bytes(), sa.data_size);  // everything to copy
  EXPECT_TRUE(store->activity_log().active_extents().empty());
  EXPECT_EQ(store->recovery().extents_marked_dirty, 0u);
}

TEST(CreateMd, BitmapMayStartClear) {
  MemoryMetadataDevice device(256 * MiB);
  FormatOptions options;
  options.bitmap_all_set = false;
  MetadataStore::format(device, options);
  EXPECT_EQ(open_or_fail(device)->bitmap().count_dirty_bits(), 0u);
}

TEST(CreateMd, StartInSyncLetsTwoNewReplicasAgreeWithoutCopying) {
  MemoryMetadataDevice a(256 * MiB), b(256 * MiB);
  FormatOptions options;
  options.start_in_sync = true;
  options.volume_uuid = Uuid{1, 2, 3};
  const Superblock sa = MetadataStore::format(a, options);
  const Superblock sb = MetadataStore::format(b, options);
  EXPECT_EQ(sa.generations.current, kFreshAndEmpty);
  EXPECT_EQ(sa.generations, sb.generations);
  EXPECT_EQ(sa.volume_uuid, sb.volume_uuid);
  EXPECT_EQ(sa.disk_state, DiskState::UpToDate);
  EXPECT_TRUE(sa.has(metadata_flag::kConsistent));
  EXPECT_EQ(decide_sync(sa.generations, sb.generations, true), SyncDecision::InSync);
  EXPECT_EQ(open_or_fail(a)->bitmap().count_dirty_bits(), 0u);
}

TEST(CreateMd, InvalidBlockSizeThrowsNamingTheDevice) {
  MemoryMetadataDevice device(256 * MiB, "data/vol0.img");
  FormatOptions options;
  options.block_size = 1000;
  EXPECT_THAT([&] { MetadataStore::format(device, options); },
              ::testing::ThrowsMessage<std::runtime_error>(HasSubstr("data/vol0.img: block size must be 512 or 4096")));
}

TEST(CreateMd, TooSmallDeviceThrows) {
  MemoryMetadataDevice device(12 * KiB, "tiny.img");
  EXPECT_THROW(MetadataStore::format(device, {}), std::runtime_error);
}

TEST(CreateMd, ExternalMetadataNeedsARoomyEnoughDevice) {
  MemoryMetadataDevice device(64 * KiB, "vol0.md");
  FormatOptions options;
  options.placement = MetadataPlacement::External;
  options.data_size = 1 * GiB;  // needs 72 KiB
  EXPECT_THAT([&] { MetadataStore::format(device, options); },
              ::testing::ThrowsMessage<std::runtime_error>(HasSubstr("the metadata needs 73728 bytes")));
}

TEST(CreateMd, InterruptedFormatLeavesNoValidSuperblock) {
  InternalDevice d;  // a previous, valid format
  d.device.tear_write(2, 100);  // the format dies while writing the bitmap
  EXPECT_THROW(MetadataStore::format(d.device, {}), std::runtime_error);
  std::unique_ptr<MetadataStore> store;
  EXPECT_EQ(MetadataStore::open(d.device, {}, store).error, MetadataError::NotFormatted);
}

TEST(MetadataStore, SuperblockUpdatesAreDurableAndSurviveReopening) {
  InternalDevice d;
  {
    auto store = open_or_fail(d.device);
    d.device.clear_write_log();
    ASSERT_EQ(store->update_superblock([](Superblock& sb) {
      sb.set(metadata_flag::kWasPrimary, true);
      start_new_generation(sb.generations, 777);
    }),
              0);
    ASSERT_EQ(d.device.writes().size(), 1u);
    EXPECT_TRUE(d.device.writes()[0].durable);
  }
  auto store = open_or_fail(d.device);
  EXPECT_TRUE(store->superblock().has(metadata_flag::kWasPrimary));
  EXPECT_EQ(store->superblock().generations.current, 777u);
  EXPECT_EQ(store->superblock().generations.bitmap, d.formatted.generations.current);
}

TEST(MetadataStore, CleanStopClearsCrashedPrimaryAndLeavesNothingToRecover) {
  InternalDevice d;
  {
    auto store = open_or_fail(d.device);
    ASSERT_EQ(store->update_superblock([](Superblock& sb) { sb.set(metadata_flag::kCrashedPrimary, true); }), 0);
    ASSERT_EQ(store->activity_log().begin_write(0, 4096), 0);
    store->activity_log().end_write(0, 4096);
    ASSERT_EQ(store->close_clean(), 0);
  }
  auto store = open_or_fail(d.device);
  EXPECT_FALSE(store->recovery().crashed_primary);
  EXPECT_EQ(store->recovery().extents_marked_dirty, 0u);
}

TEST(MetadataStore, InternalMetadataOnAFileVolumeRoundTrips) {
  const auto path = std::filesystem::temp_directory_path() / fmt::format("freevsa-md-{}.img", ::getpid());
  std::filesystem::remove(path);
  {
    auto volume = FileVolume::open({path.string(), 64 * MiB, 512, true, true});
    VolumeMetadataDevice device(*volume);
    FormatOptions options;
    options.bitmap_all_set = false;
    const Superblock formatted = MetadataStore::format(device, options);
    auto store = open_or_fail(device);
    store->bitmap().set_range(5 * MiB, 8192);
    ASSERT_EQ(store->bitmap_store().flush_dirty_pages(), 0);

    DataAreaVolume data(*volume, formatted.data_size);
    std::vector<std::uint8_t> block(512, 0xab);
    EXPECT_EQ(data.write(formatted.data_size - 512, block, false), 0);
    EXPECT_EQ(data.write(formatted.data_size, block, false), EINVAL);  // the metadata is out of reach
  }
  {
    auto volume = FileVolume::open({path.string(), 0, 512, false, true});
    VolumeMetadataDevice device(*volume);
    auto store = open_or_fail(device);
    EXPECT_EQ(store->bitmap().count_dirty_bytes(), 8192u);
    EXPECT_TRUE(store->bitmap().test(5 * MiB + 4096));
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace freevsa::replication
