// The dirty bitmap: bit arithmetic, thread safety, page tracking and persistence.
#include <gtest/gtest.h>

#include <cerrno>
#include <random>
#include <thread>
#include <vector>

#include "replication/dirty_bitmap.h"
#include "replication/metadata_device.h"

namespace freevsa::replication {
namespace {

constexpr std::uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
constexpr std::uint64_t kBlock = 4096;
constexpr std::uint64_t kPageData = DirtyBitmap::kBitsPerPage * kBlock;  // 128 MiB of data per page

TEST(DirtyBitmap, SetRangeMarksEveryBlockItTouches) {
  DirtyBitmap bitmap(1 * MiB);
  bitmap.set_range(100, 10);
  EXPECT_TRUE(bitmap.test_bit(0));
  bitmap.set_range(2 * kBlock - 1, 2);  // straddles blocks 1 and 2
  EXPECT_TRUE(bitmap.test_bit(1));
  EXPECT_TRUE(bitmap.test_bit(2));
  EXPECT_FALSE(bitmap.test_bit(3));
  EXPECT_EQ(bitmap.count_dirty_bits(), 3u);
}

TEST(DirtyBitmap, ClearRangeClearsOnlyWholeBlocks) {
  DirtyBitmap bitmap(1 * MiB);
  bitmap.set_range(0, 4 * kBlock);
  bitmap.clear_range(100, 2 * kBlock);  // block 0 and 2 only partly covered
  EXPECT_TRUE(bitmap.test_bit(0));
  EXPECT_FALSE(bitmap.test_bit(1));
  EXPECT_TRUE(bitmap.test_bit(2));
  EXPECT_EQ(bitmap.count_dirty_bits(), 3u);
}

TEST(DirtyBitmap, CountsAcrossWordBoundaries) {
  DirtyBitmap bitmap(1 * MiB);  // 256 bits, 4 words
  bitmap.set_range(60 * kBlock, 11 * kBlock);   // bits 60..70
  bitmap.set_range(120 * kBlock, 80 * kBlock);  // bits 120..199, across two boundaries
  EXPECT_EQ(bitmap.count_dirty_bits(), 91u);
  EXPECT_EQ(bitmap.count_dirty_bytes(), 91 * kBlock);
  bitmap.clear_range(64 * kBlock, 128 * kBlock);  // bits 64..191
  EXPECT_EQ(bitmap.count_dirty_bits(), 4u + 8u);
}

TEST(DirtyBitmap, FindNextDirtyAndCleanAcrossWords) {
  DirtyBitmap bitmap(1 * MiB);
  bitmap.set_range(130 * kBlock, 3 * kBlock);  // bits 130..132
  EXPECT_EQ(bitmap.find_next_dirty(0), 130 * kBlock);
  EXPECT_EQ(bitmap.find_next_dirty(131 * kBlock + 5), 131 * kBlock);
  EXPECT_EQ(bitmap.find_next_dirty(133 * kBlock), std::nullopt);
  EXPECT_EQ(bitmap.find_next_clean(130 * kBlock), 133 * kBlock);
  EXPECT_EQ(bitmap.find_next_clean(0), 0u);
  EXPECT_EQ(bitmap.find_next_dirty(2 * MiB), std::nullopt);
}

TEST(DirtyBitmap, LastPartialBlockAtTheEndOfANonMultipleOf64Size) {
  const std::uint64_t size = 100 * kBlock + 1000;  // 101 bits: 1 word + 37 bits
  DirtyBitmap bitmap(size);
  ASSERT_EQ(bitmap.bit_count(), 101u);
  bitmap.set_range(size - 10, 1 * MiB);  // clipped at the end
  EXPECT_TRUE(bitmap.test_bit(100));
  EXPECT_EQ(bitmap.count_dirty_bits(), 1u);
  EXPECT_EQ(bitmap.count_dirty_bytes(), 1000u);
  EXPECT_EQ(bitmap.find_next_dirty(64 * kBlock), 100 * kBlock);
  bitmap.set_all();
  EXPECT_EQ(bitmap.count_dirty_bits(), 101u);
  EXPECT_EQ(bitmap.count_dirty_bytes(), size);
  EXPECT_EQ(bitmap.find_next_clean(0), std::nullopt);  // bits past the end never count as clean
  bitmap.clear_range(100 * kBlock, 1000);  // the whole of the partial last block
  EXPECT_FALSE(bitmap.test_bit(100));
  EXPECT_EQ(bitmap.find_next_clean(0), 100 * kBlock);
}

TEST(DirtyBitmap, SetAllThenClearAll) {
  DirtyBitmap bitmap(1 * GiB);
  bitmap.set_all();
  EXPECT_EQ(bitmap.count_dirty_bytes(), 1 * GiB);
  bitmap.clear_all();
  EXPECT_EQ(bitmap.count_dirty_bits(), 0u);
  EXPECT_EQ(bitmap.find_next_dirty(0), std::nullopt);
}

TEST(DirtyBitmap, MergeOrsThePeersBits) {
  DirtyBitmap ours(1 * MiB), theirs(1 * MiB);
  ours.set_range(0, kBlock);
  theirs.set_range(0, kBlock);
  theirs.set_range(200 * kBlock, kBlock);
  ASSERT_EQ(ours.merge(theirs), 0);
  EXPECT_EQ(ours.count_dirty_bits(), 2u);
  EXPECT_TRUE(ours.test_bit(200));
  DirtyBitmap other_size(2 * MiB);
  EXPECT_EQ(ours.merge(other_size), EINVAL);
}

TEST(DirtyBitmap, MergeRawTakesThePeerWireEncoding) {
  DirtyBitmap bitmap(1 * MiB);
  const std::uint8_t chunk[] = {0x81, 0x00, 0x01};  // bits 0, 7 and 16 of the chunk
  ASSERT_EQ(bitmap.merge_raw(60, 17, chunk), 0);
  EXPECT_TRUE(bitmap.test_bit(60));
  EXPECT_TRUE(bitmap.test_bit(67));
  EXPECT_TRUE(bitmap.test_bit(76));
  EXPECT_EQ(bitmap.count_dirty_bits(), 3u);
  EXPECT_EQ(bitmap.merge_raw(250, 17, chunk), EINVAL);  // beyond the last bit
  EXPECT_EQ(bitmap.merge_raw(0, 100, chunk), EINVAL);   // body too short
}

TEST(DirtyBitmap, ConcurrentWritersCountEachBlockOnce) {
  DirtyBitmap bitmap(64 * MiB);  // 16384 bits
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&bitmap, t] {
      for (std::uint64_t i = 0; i < 4000; ++i) bitmap.set_range((i * 3 + t) % 16000 * kBlock, 3 * kBlock);
    });
  }
  for (auto& thread : threads) thread.join();
  std::uint64_t counted = 0;
  for (std::uint64_t bit = 0; bit < bitmap.bit_count(); ++bit) counted += bitmap.test_bit(bit) ? 1 : 0;
  EXPECT_EQ(bitmap.count_dirty_bits(), counted);
}

TEST(DirtyBitmap, SettingAlreadyDirtyBlocksDoesNotMarkThePage) {
  DirtyBitmap bitmap(1 * GiB);
  bitmap.set_range(0, 64 * KiB);
  EXPECT_TRUE(bitmap.take_dirty_page(0));
  bitmap.set_range(4 * KiB, 8 * KiB);
  EXPECT_FALSE(bitmap.page_dirty(0));
}

struct PersistedBitmap {
  static constexpr std::uint64_t kRegion = 64 * KiB;  // where the bitmap region starts on the device
  MemoryMetadataDevice device{kRegion + 8 * kMetadataBlockSize};
  DirtyBitmap bitmap{1 * GiB};  // 8 pages
  BitmapStore store{bitmap, device, kRegion};
};

TEST(BitmapStore, FlushWritesOnlyTheChangedPages) {
  PersistedBitmap p;
  p.bitmap.set_range(5 * MiB, kBlock);               // page 0
  p.bitmap.set_range(5 * kPageData + 1 * MiB, kBlock);  // page 5
  ASSERT_EQ(p.store.flush_dirty_pages(), 0);
  auto writes = p.device.writes();
  ASSERT_EQ(writes.size(), 2u);
  EXPECT_EQ(writes[0].offset, PersistedBitmap::kRegion);
  EXPECT_EQ(writes[1].offset, PersistedBitmap::kRegion + 5 * kMetadataBlockSize);
  EXPECT_EQ(p.device.flush_count(), 1u);  // durable before returning

  p.device.clear_write_log();
  ASSERT_EQ(p.store.flush_dirty_pages(), 0);
  EXPECT_TRUE(p.device.writes().empty());
  p.bitmap.clear_range(5 * MiB, kBlock);  // clearing changes the page too
  ASSERT_EQ(p.store.flush_dirty_pages(), 0);
  EXPECT_EQ(p.device.writes().size(), 1u);
}

TEST(BitmapStore, FlushRangeWritesOnlyThePagesOfThatRange) {
  PersistedBitmap p;
  p.bitmap.set_range(1 * MiB, kBlock);              // page 0
  p.bitmap.set_range(3 * kPageData, kBlock);        // page 3
  ASSERT_EQ(p.store.flush_range(3 * kPageData, 4 * MiB), 0);
  ASSERT_EQ(p.device.writes().size(), 1u);
  EXPECT_EQ(p.device.writes()[0].offset, PersistedBitmap::kRegion + 3 * kMetadataBlockSize);
  EXPECT_TRUE(p.bitmap.page_dirty(0));
}

TEST(BitmapStore, PersistenceRoundTrip) {
  PersistedBitmap p;
  std::mt19937_64 random(7);
  for (int i = 0; i < 500; ++i) p.bitmap.set_range(random() % (1 * GiB), random() % (64 * KiB) + 1);
  ASSERT_EQ(p.store.write_all(), 0);
  EXPECT_EQ(p.device.writes().size(), 8u);

  DirtyBitmap reloaded(1 * GiB);
  reloaded.set_range(0, 1 * MiB);  // replaced by what is on disk
  BitmapStore store(reloaded, p.device, PersistedBitmap::kRegion);
  ASSERT_EQ(store.read_all(), 0);
  EXPECT_EQ(reloaded.count_dirty_bits(), p.bitmap.count_dirty_bits());
  for (std::uint64_t bit = 0; bit < reloaded.bit_count(); ++bit) {
    ASSERT_EQ(reloaded.test_bit(bit), p.bitmap.test_bit(bit)) << "bit " << bit;
  }
  for (std::size_t page = 0; page < reloaded.page_count(); ++page) EXPECT_FALSE(reloaded.page_dirty(page));
}

TEST(BitmapStore, FailedFlushKeepsThePagesForTheNextOne) {
  PersistedBitmap p;
  p.bitmap.set_range(0, kBlock);
  p.device.fail_writes_with(EIO);
  EXPECT_EQ(p.store.flush_dirty_pages(), EIO);
  EXPECT_TRUE(p.bitmap.page_dirty(0));
  p.device.fail_writes_with(0);
  ASSERT_EQ(p.store.flush_dirty_pages(), 0);
  EXPECT_EQ(p.device.writes().size(), 1u);
}

}  // namespace
}  // namespace freevsa::replication
