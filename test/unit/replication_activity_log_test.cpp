// The activity log: hot and cold extents, LRU eviction, the on-disk ring and crash recovery.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "replication/activity_log.h"
#include "replication/dirty_bitmap.h"
#include "replication/metadata_device.h"
#include "replication/metadata_store.h"

namespace freevsa::replication {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr std::uint64_t MiB = 1024 * 1024, GiB = 1024 * MiB;
constexpr std::uint64_t kExtent = 4 * MiB;
constexpr std::uint64_t kRing = 64 * 1024;  // where the ring starts on the device

std::uint64_t extent(std::uint64_t n) { return n * kExtent; }

// A log of 4 slots in a ring of 4 blocks over 1 GiB of data, recording every bitmap persist
// and every device write in one event list. Without the sequential read-ahead unless asked
// for, so that each transaction is exactly the test's own.
struct Fixture {
  ActivityLogGeometry geometry{static_cast<std::uint32_t>(kExtent), 4, 4};
  Uuid uuid{9, 9, 9};
  MemoryMetadataDevice device{kRing + 4 * kMetadataBlockSize};
  std::vector<std::string> persisted;  // "persist <extent>"
  std::atomic<int> persist_error{0};

  ActivityLog make_log(std::uint64_t sequential_ahead = 0) {
    return ActivityLog(
        device, kRing, geometry, 1 * GiB, uuid,
        [this](std::uint64_t offset, std::uint64_t length) {
          EXPECT_EQ(length, kExtent);
          persisted.push_back("persist " + std::to_string(offset / kExtent) + " after " +
                              std::to_string(device.writes().size()) + " writes");
          return persist_error.load();
        },
        sequential_ahead);
  }
  // Writes to one extent that has completed.
  static void touch(ActivityLog& log, std::uint64_t n) {
    ASSERT_EQ(log.begin_write(extent(n), 4096), 0);
    log.end_write(extent(n), 4096);
  }
  ActivityLogTransaction block(std::uint64_t sequence) {
    auto bytes = device.snapshot(kRing + (sequence % 4) * kMetadataBlockSize, kMetadataBlockSize);
    ActivityLogTransaction transaction;
    EXPECT_TRUE(decode_activity_log_transaction(
        std::span<const std::uint8_t, kMetadataBlockSize>(bytes.data(), kMetadataBlockSize), transaction));
    return transaction;
  }
};

TEST(ActivityLog, ColdExtentWritesOneDurableTransactionBeforeReturning) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  ASSERT_EQ(log.begin_write(extent(7) + 8192, 4096), 0);
  const auto writes = f.device.writes();
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_EQ(writes[0].offset, kRing + 1 * kMetadataBlockSize);  // transaction 1 in block 1
  EXPECT_TRUE(writes[0].durable);
  const ActivityLogTransaction transaction = f.block(1);
  EXPECT_EQ(transaction.sequence, 1u);
  EXPECT_EQ(transaction.volume_uuid, f.uuid);
  EXPECT_THAT(transaction.slots, ::testing::Contains(7u));
  log.end_write(extent(7) + 8192, 4096);
}

TEST(ActivityLog, HotExtentNeedsNoTransaction) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  Fixture::touch(log, 3);
  f.device.clear_write_log();
  ASSERT_EQ(log.begin_write(extent(3) + 4096, 64 * 1024), 0);
  log.end_write(extent(3) + 4096, 64 * 1024);
  EXPECT_THAT(f.device.writes(), IsEmpty());
  EXPECT_EQ(log.transactions_written(), 1u);
}

TEST(ActivityLog, WriteAcrossTwoColdExtentsTakesOneTransaction) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  ASSERT_EQ(log.begin_write(extent(2) - 4096, 8192), 0);
  EXPECT_EQ(f.device.writes().size(), 1u);
  EXPECT_THAT(log.active_extents(), ElementsAre(1u, 2u));
  log.end_write(extent(2) - 4096, 8192);
}

TEST(ActivityLog, ASequentialStreamActivatesTheNextExtentsInOneTransaction) {
  Fixture f;
  f.geometry.slots = 8;
  ActivityLog log = f.make_log(3);
  ASSERT_EQ(log.load(), 0);
  Fixture::touch(log, 20);  // nothing before it is active: just 20
  EXPECT_THAT(log.active_extents(), ElementsAre(20u));
  Fixture::touch(log, 21);  // follows 20: 21 and the three after it
  EXPECT_THAT(log.active_extents(), ElementsAre(20u, 21u, 22u, 23u, 24u));
  EXPECT_EQ(log.transactions_written(), 2u);
  for (std::uint64_t n : {22, 23, 24}) Fixture::touch(log, n);
  EXPECT_EQ(log.transactions_written(), 2u);  // the stream went on without a durable write
  Fixture::touch(log, 40);  // a random write far away: no read-ahead
  EXPECT_EQ(log.active_extents().size(), 6u);
}

TEST(ActivityLog, ReadAheadTakesOnlyTheSlotsThatAreLeft) {
  Fixture f;  // 4 slots
  ActivityLog log = f.make_log(3);
  ASSERT_EQ(log.load(), 0);
  ASSERT_EQ(log.begin_write(extent(0), 4096), 0);
  ASSERT_EQ(log.begin_write(extent(1), 4096), 0);  // wants 1..4; slots for 1..3 only
  EXPECT_THAT(log.active_extents(), ElementsAre(0u, 1u, 2u, 3u));
  ASSERT_EQ(log.begin_write(extent(2), 4096), 0);
  log.end_write(extent(0), 4096);
  log.end_write(extent(1), 4096);
  log.end_write(extent(2), 4096);
  EXPECT_EQ(log.transactions_written(), 2u);
}

TEST(ActivityLog, EvictsTheLeastRecentlyUsedExtentAfterPersistingItsBits) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  for (std::uint64_t n : {10, 11, 12, 13}) Fixture::touch(log, n);
  Fixture::touch(log, 10);  // 11 is now the least recently used
  EXPECT_THAT(f.persisted, IsEmpty());  // free slots needed no eviction
  Fixture::touch(log, 14);
  EXPECT_THAT(log.active_extents(), ElementsAre(10u, 12u, 13u, 14u));
  // The bits of 11 were made durable before the transaction that drops it was written.
  EXPECT_THAT(f.persisted, ElementsAre("persist 11 after 4 writes"));
  EXPECT_EQ(f.device.writes().size(), 5u);
}

TEST(ActivityLog, NeverEvictsAnExtentWithWritesInFlight) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  ASSERT_EQ(log.begin_write(extent(0), 4096), 0);  // in flight, and the least recently used
  for (std::uint64_t n : {1, 2, 3}) Fixture::touch(log, n);
  Fixture::touch(log, 4);
  EXPECT_THAT(log.active_extents(), ElementsAre(0u, 2u, 3u, 4u));
  log.end_write(extent(0), 4096);
}

TEST(ActivityLog, ColdWriteWaitsWhileEverySlotHasWritesInFlight) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  for (std::uint64_t n : {0, 1, 2, 3}) ASSERT_EQ(log.begin_write(extent(n), 4096), 0);
  auto cold = std::async(std::launch::async, [&log] { return log.begin_write(extent(9), 4096); });
  EXPECT_EQ(cold.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  log.end_write(extent(2), 4096);
  ASSERT_EQ(cold.get(), 0);
  EXPECT_THAT(log.active_extents(), ElementsAre(0u, 1u, 3u, 9u));
  for (std::uint64_t n : {0, 1, 3, 9}) log.end_write(extent(n), 4096);
}

TEST(ActivityLog, AHeldExtentStaysActiveAfterItsWriteEndedUntilTheHoldEnds) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  ASSERT_EQ(log.begin_write(extent(0), 4096), 0);
  ASSERT_TRUE(log.hold(extent(0), 4096));
  log.end_write(extent(0), 4096);  // the write ended; the hold remains
  for (std::uint64_t n : {1, 2, 3, 4}) Fixture::touch(log, n);
  EXPECT_THAT(log.active_extents(), ::testing::Contains(0u)) << "a held extent was evicted";
  log.end_write(extent(0), 4096);
  for (std::uint64_t n : {5, 6, 7, 8}) Fixture::touch(log, n);
  EXPECT_THAT(log.active_extents(), ElementsAre(5u, 6u, 7u, 8u));
}

TEST(ActivityLog, HoldingAnExtentWithoutAWriteInItHoldsNothing) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  EXPECT_FALSE(log.hold(extent(3), 4096));  // cold
  Fixture::touch(log, 3);
  EXPECT_FALSE(log.hold(extent(3), 4096));  // hot, but no write holds it
  EXPECT_EQ(log.clear(), 0) << "a refused hold left a reference behind";
}

TEST(ActivityLog, AWriterWaitingForASlotTellsTheStarvedHandlerOnce) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  std::atomic<int> starved{0};
  log.set_starved_handler([&] { ++starved; });
  for (std::uint64_t n : {0, 1, 2, 3}) ASSERT_EQ(log.begin_write(extent(n), 4096), 0);
  auto cold = std::async(std::launch::async, [&log] { return log.begin_write(extent(9), 4096); });
  EXPECT_EQ(cold.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  EXPECT_EQ(starved.load(), 1);
  log.end_write(extent(2), 4096);
  ASSERT_EQ(cold.get(), 0);
  EXPECT_EQ(starved.load(), 1);
  for (std::uint64_t n : {0, 1, 3, 9}) log.end_write(extent(n), 4096);
}

TEST(ActivityLog, ConcurrentWritersNeverLeaveAnExtentInUseOrOutOfTheLog) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&log, &failures, t] {
      for (std::uint64_t i = 0; i < 300; ++i) {
        const std::uint64_t offset = extent((i * 7 + static_cast<std::uint64_t>(t) * 3) % 12) + kExtent - 4096;
        if (log.begin_write(offset, 8192) != 0) {  // spans two extents
          ++failures;
          continue;
        }
        const auto active = log.active_extents();
        const std::uint64_t first = offset / kExtent;
        if (!std::binary_search(active.begin(), active.end(), first) ||
            !std::binary_search(active.begin(), active.end(), first + 1)) {
          ++failures;
        }
        log.end_write(offset, 8192);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(log.clear(), 0);  // no writer count leaked
}

TEST(ActivityLog, WriteBeyondTheDataOrWiderThanTheLogIsInvalid) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  EXPECT_EQ(log.begin_write(1 * GiB, 4096), EINVAL);
  EXPECT_EQ(log.begin_write(0, 5 * kExtent), EINVAL);  // 5 extents, 4 slots
}

TEST(ActivityLog, CrashRecoveryMarksTheActiveExtentsDirty) {
  Fixture f;
  {
    ActivityLog log = f.make_log();
    ASSERT_EQ(log.load(), 0);
    ASSERT_EQ(log.begin_write(extent(3), 4096), 0);
    ASSERT_EQ(log.begin_write(extent(7) + 12288, 4096), 0);
    // crash: no end_write, no clean stop
  }
  ActivityLog recovered = f.make_log();
  ASSERT_EQ(recovered.load(), 0);
  EXPECT_THAT(recovered.active_extents(), ElementsAre(3u, 7u));
  DirtyBitmap bitmap(1 * GiB);
  recovered.mark_active_extents(bitmap);
  EXPECT_EQ(bitmap.count_dirty_bytes(), 2 * kExtent);
  EXPECT_EQ(bitmap.find_next_dirty(0), extent(3));
  EXPECT_EQ(bitmap.find_next_clean(extent(3)), extent(4));
  EXPECT_EQ(bitmap.find_next_dirty(extent(4)), extent(7));
}

TEST(ActivityLog, RingWrapsAroundAndRecoveryFindsTheNewestTransaction) {
  Fixture f;
  {
    ActivityLog log = f.make_log();
    ASSERT_EQ(log.load(), 0);
    for (std::uint64_t n = 0; n < 10; ++n) Fixture::touch(log, n);  // transactions 1..10, 4 blocks
    EXPECT_EQ(log.next_sequence(), 11u);
  }
  EXPECT_EQ(f.block(10).sequence, 10u);  // block 2 was rewritten twice
  ActivityLog recovered = f.make_log();
  ASSERT_EQ(recovered.load(), 0);
  EXPECT_THAT(recovered.active_extents(), ElementsAre(6u, 7u, 8u, 9u));
  EXPECT_EQ(recovered.next_sequence(), 11u);
  Fixture::touch(recovered, 20);
  EXPECT_EQ(f.block(11).sequence, 11u);
}

TEST(ActivityLog, TornTransactionIsIgnored) {
  Fixture f;
  {
    ActivityLog log = f.make_log();
    ASSERT_EQ(log.load(), 0);
    for (std::uint64_t n : {0, 1, 2, 3}) Fixture::touch(log, n);
    f.device.tear_next_write(1000);
    EXPECT_EQ(log.begin_write(extent(5), 4096), EIO);  // the write must then fail: nothing to end
    EXPECT_THAT(log.active_extents(), ElementsAre(1u, 2u, 3u));  // 0 was dropped: its bits were persisted
  }
  ActivityLog recovered = f.make_log();
  ASSERT_EQ(recovered.load(), 0);
  EXPECT_THAT(recovered.active_extents(), ElementsAre(0u, 1u, 2u, 3u));  // transaction 4 stands
  EXPECT_EQ(recovered.next_sequence(), 5u);
}

TEST(ActivityLog, FailedBitmapPersistKeepsTheVictimActive) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  for (std::uint64_t n : {0, 1, 2, 3}) Fixture::touch(log, n);
  f.persist_error = EIO;
  const auto writes_before = f.device.writes().size();
  EXPECT_EQ(log.begin_write(extent(5), 4096), EIO);
  EXPECT_EQ(f.device.writes().size(), writes_before);  // no transaction without durable bits
  EXPECT_THAT(log.active_extents(), ElementsAre(0u, 1u, 2u, 3u));
  f.persist_error = 0;
  Fixture::touch(log, 5);
  EXPECT_THAT(log.active_extents(), ElementsAre(1u, 2u, 3u, 5u));
}

TEST(ActivityLog, TransactionsOfAnotherVolumeAreIgnored) {
  Fixture f;
  {
    ActivityLog log = f.make_log();
    ASSERT_EQ(log.load(), 0);
    ASSERT_EQ(log.begin_write(extent(1), 4096), 0);
  }
  f.uuid = Uuid{1};
  ActivityLog other = f.make_log();
  ASSERT_EQ(other.load(), 0);
  EXPECT_THAT(other.active_extents(), IsEmpty());
}

TEST(ActivityLog, ClearEmptiesTheLogDurablyButNotWithWritesInFlight) {
  Fixture f;
  ActivityLog log = f.make_log();
  ASSERT_EQ(log.load(), 0);
  ASSERT_EQ(log.begin_write(extent(1), 4096), 0);
  EXPECT_EQ(log.clear(), EBUSY);
  log.end_write(extent(1), 4096);
  ASSERT_EQ(log.clear(), 0);
  EXPECT_TRUE(f.device.writes().back().durable);
  ActivityLog reloaded = f.make_log();
  ASSERT_EQ(reloaded.load(), 0);
  EXPECT_THAT(reloaded.active_extents(), IsEmpty());
}

TEST(ActivityLog, OpeningMetadataAfterAPrimaryCrashMarksTheLogsExtentsDirty) {
  MemoryMetadataDevice device(256 * MiB, "data/vol0.img");
  FormatOptions options;
  options.start_in_sync = true;
  MetadataStore::format(device, options);
  {
    std::unique_ptr<MetadataStore> store;
    ASSERT_TRUE(MetadataStore::open(device, {}, store).ok());
    ASSERT_EQ(store->update_superblock([](Superblock& sb) { sb.set(metadata_flag::kCrashedPrimary, true); }), 0);
    ASSERT_EQ(store->activity_log().begin_write(extent(5) + 4096, 4096), 0);
    // The write reached the local disk; the peer never acknowledged it; then the node died
    // before the bitmap page was flushed.
  }
  std::unique_ptr<MetadataStore> store;
  ASSERT_TRUE(MetadataStore::open(device, {}, store).ok());
  EXPECT_TRUE(store->recovery().crashed_primary);
  EXPECT_EQ(store->recovery().extents_marked_dirty, 1u);
  EXPECT_EQ(store->bitmap().count_dirty_bytes(), kExtent);
  EXPECT_EQ(store->bitmap().find_next_dirty(0), extent(5));
  EXPECT_THAT(store->activity_log().active_extents(), IsEmpty());
  store.reset();
  // Recovery made the bits durable before emptying the log: a second crash loses nothing.
  ASSERT_TRUE(MetadataStore::open(device, {}, store).ok());
  EXPECT_EQ(store->bitmap().count_dirty_bytes(), kExtent);
  EXPECT_EQ(store->recovery().extents_marked_dirty, 0u);
}

}  // namespace
}  // namespace freevsa::replication
