// The activity log (DESIGN.md): the set of "hot" extents (4 MiB of data each by default) that
// may hold writes the bitmap does not record yet. Before a write the write path calls
// begin_write(); a write into extents that are already active costs a mutex and a lookup. A
// write into a cold extent first makes the extent active on disk: it takes a free slot or evicts
// the least recently used extent with no write in flight (after `persist_bits` made that
// extent's bitmap bits durable), and appends a transaction to the on-disk ring, durably, before
// begin_write returns. After a crash, the extents of the newest valid transaction are exactly the
// ones that may differ from the peer beyond what the persisted bitmap says; recovery marks them
// dirty.
//
// On disk: a ring of `ring_blocks` 4 KiB transaction blocks; transaction n goes to block
// n % ring_blocks. Each block holds its sequence number, the volume UUID, the complete slot
// table (extent numbers) and a CRC32C, so the newest valid block alone tells the active set and a
// torn block just falls back to the one before (docs/metadata-format.md).
//
// Threading: all methods are thread-safe. begin_write may block: while another thread's
// transaction is being written, or until a slot becomes free (an end_write). Contract: every
// begin_write that returned 0 is matched by exactly one end_write with the same range.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "replication/metadata.h"
#include "replication/metadata_device.h"
#include "replication/out_of_sync.h"

namespace freevsa::replication {

constexpr std::uint32_t kActivityLogMagic = 0x4656414cu;  // "FVAL"
constexpr std::uint32_t kActivityLogFormatVersion = 1;

// One decoded transaction block.
struct ActivityLogTransaction {
  std::uint64_t sequence = 0;
  Uuid volume_uuid{};
  std::vector<std::uint64_t> slots;  // extent number per slot; kEmptySlot when free
  static constexpr std::uint64_t kEmptySlot = 0xffffffffu;
};
void encode_activity_log_transaction(const ActivityLogTransaction& transaction,
                                     std::span<std::uint8_t, kMetadataBlockSize> block);
// False when the block is not a valid transaction (zeroes, torn, foreign, wrong version).
bool decode_activity_log_transaction(std::span<const std::uint8_t, kMetadataBlockSize> block,
                                     ActivityLogTransaction& out);

class ActivityLog {
 public:
  // Extents after a cold one that a sequential write stream activates in the same transaction
  // (a runtime policy, not part of the on-disk format).
  static constexpr std::uint64_t kSequentialAhead = 3;

  // Makes the bitmap bits of data range [offset, offset + length) durable (BitmapStore::
  // flush_range); called before that range's extent leaves the log. 0 or an errno.
  using PersistBits = std::function<int(std::uint64_t offset, std::uint64_t length)>;

  // `ring_offset`: absolute offset of the ring on `device`, which must outlive this object.
  ActivityLog(MetadataDevice& device, std::uint64_t ring_offset, const ActivityLogGeometry& geometry,
              std::uint64_t data_size, const Uuid& volume_uuid, PersistBits persist_bits,
              std::uint64_t sequential_ahead = kSequentialAhead);

  // Start-up: reads the ring and takes the newest valid transaction's extents as active (no
  // write in flight). 0 or an errno (read error).
  int load();

  // Before a write to [offset, offset + length): 0 once every extent it touches is active on
  // disk; EINVAL if the range lies beyond the data or touches more extents than there are slots;
  // otherwise the errno of the failed bitmap or transaction write (the write must then fail).
  int begin_write(std::uint64_t offset, std::uint64_t length);
  void end_write(std::uint64_t offset, std::uint64_t length);
  // One more reference on the extents of [offset, offset + length), which a begin_write not yet
  // ended holds already: the range stays hot until the matching end_write, after the write
  // itself ended (the replicator keeps a write there until the peer has it durably). Never
  // blocks. False (and nothing held) if an extent is not active.
  bool hold(std::uint64_t offset, std::uint64_t length);
  // Called (on the writer's thread, with no lock held) when a begin_write must wait because
  // every slot is in use, so that the owner of held ranges can release some. Set before I/O
  // starts.
  void set_starved_handler(std::function<void()> starved) { starved_ = std::move(starved); }

  // Recovery after a crash: marks the data range of every active extent out of sync.
  void mark_active_extents(OutOfSyncRecorder& recorder) const;
  // Empties the log durably (clean shutdown, or after recovery made the bitmap durable). EBUSY
  // while writes are in flight.
  int clear();

  std::vector<std::uint64_t> active_extents() const;  // sorted
  std::uint64_t transactions_written() const;
  std::uint64_t next_sequence() const;
  const ActivityLogGeometry& geometry() const { return geometry_; }

 private:
  struct Slot {
    std::uint64_t extent = ActivityLogTransaction::kEmptySlot;
    std::uint32_t writers = 0;    // begin_write without end_write yet
    std::uint64_t last_use = 0;   // LRU clock
    bool committed = true;        // false while the transaction adding it is being written
  };

  // Writes the current slot table as the next transaction. Called with transaction_running_ set
  // and the mutex released.
  int write_transaction(const ActivityLogTransaction& transaction);
  ActivityLogTransaction snapshot_locked();
  std::uint64_t extent_length(std::uint64_t extent) const;

  MetadataDevice& device_;
  const std::uint64_t ring_offset_;
  const ActivityLogGeometry geometry_;
  const std::uint64_t data_size_;
  const std::uint64_t extent_count_;
  const Uuid volume_uuid_;
  const PersistBits persist_bits_;
  const std::uint64_t sequential_ahead_;
  std::function<void()> starved_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Slot> slots_;
  std::unordered_map<std::uint64_t, std::size_t> slot_of_;  // extent -> slot index
  bool transaction_running_ = false;
  std::uint64_t clock_ = 0;
  std::uint64_t next_sequence_ = 1;
  std::uint64_t transactions_written_ = 0;
};

}  // namespace freevsa::replication
