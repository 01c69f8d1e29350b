#include "replication/activity_log.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "util/aligned_buffer.h"
#include "util/crc32c.h"
#include "util/endian.h"
#include "util/log.h"

namespace freevsa::replication {
namespace {

// Transaction block field offsets (big-endian); docs/metadata-format.md.
constexpr std::size_t kMagicAt = 0;
constexpr std::size_t kVersionAt = 4;
constexpr std::size_t kSequenceAt = 8;
constexpr std::size_t kUuidAt = 16;
constexpr std::size_t kSlotCountAt = 32;
constexpr std::size_t kActiveCountAt = 36;
constexpr std::size_t kSlotsAt = 64;
constexpr std::size_t kChecksumAt = kMetadataBlockSize - 4;
static_assert(kSlotsAt + 4 * kMaxActivityLogSlots <= kChecksumAt);

}  // namespace

void encode_activity_log_transaction(const ActivityLogTransaction& transaction,
                                     std::span<std::uint8_t, kMetadataBlockSize> block) {
  std::uint8_t* p = block.data();
  std::memset(p, 0, block.size());
  util::put_be32(p + kMagicAt, kActivityLogMagic);
  util::put_be32(p + kVersionAt, kActivityLogFormatVersion);
  util::put_be64(p + kSequenceAt, transaction.sequence);
  std::memcpy(p + kUuidAt, transaction.volume_uuid.data(), transaction.volume_uuid.size());
  util::put_be32(p + kSlotCountAt, static_cast<std::uint32_t>(transaction.slots.size()));
  std::uint32_t active = 0;
  for (std::size_t i = 0; i < transaction.slots.size(); ++i) {
    util::put_be32(p + kSlotsAt + 4 * i, static_cast<std::uint32_t>(transaction.slots[i]));
    if (transaction.slots[i] != ActivityLogTransaction::kEmptySlot) ++active;
  }
  util::put_be32(p + kActiveCountAt, active);
  util::put_be32(p + kChecksumAt, util::crc32c({p, kChecksumAt}));
}

bool decode_activity_log_transaction(std::span<const std::uint8_t, kMetadataBlockSize> block,
                                     ActivityLogTransaction& out) {
  const std::uint8_t* p = block.data();
  if (util::get_be32(p + kMagicAt) != kActivityLogMagic) return false;
  if (util::get_be32(p + kVersionAt) != kActivityLogFormatVersion) return false;
  if (util::get_be32(p + kChecksumAt) != util::crc32c({p, kChecksumAt})) return false;
  const std::uint32_t slot_count = util::get_be32(p + kSlotCountAt);
  if (slot_count > kMaxActivityLogSlots) return false;
  ActivityLogTransaction transaction;
  transaction.sequence = util::get_be64(p + kSequenceAt);
  std::memcpy(transaction.volume_uuid.data(), p + kUuidAt, transaction.volume_uuid.size());
  transaction.slots.resize(slot_count);
  std::uint32_t active = 0;
  for (std::size_t i = 0; i < slot_count; ++i) {
    transaction.slots[i] = util::get_be32(p + kSlotsAt + 4 * i);
    if (transaction.slots[i] != ActivityLogTransaction::kEmptySlot) ++active;
  }
  if (active != util::get_be32(p + kActiveCountAt)) return false;
  out = std::move(transaction);
  return true;
}

ActivityLog::ActivityLog(MetadataDevice& device, std::uint64_t ring_offset, const ActivityLogGeometry& geometry,
                         std::uint64_t data_size, const Uuid& volume_uuid, PersistBits persist_bits,
                         std::uint64_t sequential_ahead)
    : device_(device),
      ring_offset_(ring_offset),
      geometry_(geometry),
      data_size_(data_size),
      extent_count_((data_size + geometry.extent_bytes - 1) / geometry.extent_bytes),
      volume_uuid_(volume_uuid),
      persist_bits_(std::move(persist_bits)),
      sequential_ahead_(sequential_ahead),
      slots_(geometry.slots) {}

std::uint64_t ActivityLog::extent_length(std::uint64_t extent) const {
  const std::uint64_t start = extent * geometry_.extent_bytes;
  return std::min<std::uint64_t>(geometry_.extent_bytes, data_size_ - start);
}

int ActivityLog::load() {
  util::AlignedBuffer ring(std::uint64_t{geometry_.ring_blocks} * kMetadataBlockSize);
  if (int error = device_.read(ring_offset_, ring.span()); error != 0) return error;
  ActivityLogTransaction newest;
  bool found = false;
  for (std::uint32_t block = 0; block < geometry_.ring_blocks; ++block) {
    ActivityLogTransaction candidate;
    std::span<const std::uint8_t, kMetadataBlockSize> image(ring.data() + block * kMetadataBlockSize,
                                                            kMetadataBlockSize);
    if (!decode_activity_log_transaction(image, candidate)) continue;
    if (candidate.volume_uuid != volume_uuid_ || candidate.slots.size() != geometry_.slots) continue;
    if (candidate.sequence % geometry_.ring_blocks != block) continue;  // not where its writer put it
    const bool in_range = std::all_of(candidate.slots.begin(), candidate.slots.end(), [this](std::uint64_t e) {
      return e == ActivityLogTransaction::kEmptySlot || e < extent_count_;
    });
    if (!in_range) continue;
    if (!found || candidate.sequence > newest.sequence) {
      newest = std::move(candidate);
      found = true;
    }
  }
  std::lock_guard lock(mutex_);
  slots_.assign(geometry_.slots, Slot{});
  slot_of_.clear();
  next_sequence_ = found ? newest.sequence + 1 : 1;
  if (!found) return 0;
  for (std::size_t i = 0; i < newest.slots.size(); ++i) {
    const std::uint64_t extent = newest.slots[i];
    if (extent == ActivityLogTransaction::kEmptySlot || slot_of_.contains(extent)) continue;
    slots_[i].extent = extent;
    slot_of_[extent] = i;
  }
  return 0;
}

ActivityLogTransaction ActivityLog::snapshot_locked() {
  ActivityLogTransaction transaction;
  transaction.sequence = next_sequence_++;
  transaction.volume_uuid = volume_uuid_;
  transaction.slots.reserve(slots_.size());
  for (const Slot& slot : slots_) transaction.slots.push_back(slot.extent);
  return transaction;
}

int ActivityLog::write_transaction(const ActivityLogTransaction& transaction) {
  util::AlignedBuffer block(kMetadataBlockSize);
  encode_activity_log_transaction(transaction,
                                  std::span<std::uint8_t, kMetadataBlockSize>(block.data(), kMetadataBlockSize));
  const std::uint64_t offset = ring_offset_ + (transaction.sequence % geometry_.ring_blocks) * kMetadataBlockSize;
  return device_.write(offset, block.span(), /*durable=*/true);
}

int ActivityLog::begin_write(std::uint64_t offset, std::uint64_t length) {
  if (length == 0) return 0;
  if (offset >= data_size_ || length > data_size_ - offset) return EINVAL;
  const std::uint64_t first = offset / geometry_.extent_bytes;
  const std::uint64_t last = (offset + length - 1) / geometry_.extent_bytes;
  if (last - first + 1 > geometry_.slots) return EINVAL;
  auto in_range = [&](std::uint64_t extent) { return extent >= first && extent <= last; };

  std::unique_lock lock(mutex_);
  bool told_starved = false;
  for (;;) {
    bool all_hot = true;
    for (std::uint64_t e = first; e <= last && all_hot; ++e) {
      auto it = slot_of_.find(e);
      all_hot = it != slot_of_.end() && slots_[it->second].committed;
    }
    if (all_hot) {
      for (std::uint64_t e = first; e <= last; ++e) {
        Slot& slot = slots_[slot_of_[e]];
        ++slot.writers;
        slot.last_use = ++clock_;
      }
      return 0;
    }
    // One transaction at a time; the slot table must not change under the one being written.
    if (transaction_running_) {
      changed_.wait(lock);
      continue;
    }

    std::vector<std::uint64_t> missing;
    for (std::uint64_t e = first; e <= last; ++e)
      if (!slot_of_.contains(e)) missing.push_back(e);
    // A sequential stream (the extent before is active) soon wants the following extents too:
    // they join this transaction if slots allow, so a stream pays one durable write per
    // sequential_ahead_ + 1 extents instead of one per extent.
    const std::size_t required = missing.size();
    if (first > 0 && slot_of_.contains(first - 1)) {
      for (std::uint64_t e = last + 1; e <= last + sequential_ahead_ && e < extent_count_; ++e)
        if (!slot_of_.contains(e)) missing.push_back(e);
    }
    // Free slots first, then the least recently used extents nobody is writing to.
    std::vector<std::size_t> candidates;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const Slot& slot = slots_[i];
      if (slot.writers == 0 && (slot.extent == ActivityLogTransaction::kEmptySlot || !in_range(slot.extent))) {
        candidates.push_back(i);
      }
    }
    if (candidates.size() < required) {
      if (starved_ && !told_starved) {
        told_starved = true;
        lock.unlock();
        starved_();
        lock.lock();
        continue;
      }
      changed_.wait(lock);  // every slot is busy: wait for an end_write
      continue;
    }
    missing.resize(std::min(missing.size(), candidates.size()));  // the extents ahead only where slots allow
    std::partial_sort(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(missing.size()),
                      candidates.end(), [this](std::size_t a, std::size_t b) {
                        const bool free_a = slots_[a].extent == ActivityLogTransaction::kEmptySlot;
                        const bool free_b = slots_[b].extent == ActivityLogTransaction::kEmptySlot;
                        if (free_a != free_b) return free_a;
                        return slots_[a].last_use < slots_[b].last_use;
                      });

    struct Eviction {
      std::size_t slot;
      std::uint64_t extent;  // kEmptySlot when the slot was free
      std::uint64_t last_use;
    };
    std::vector<Eviction> evictions;
    for (std::size_t k = 0; k < missing.size(); ++k) {
      Slot& slot = slots_[candidates[k]];
      evictions.push_back({candidates[k], slot.extent, slot.last_use});
      if (slot.extent != ActivityLogTransaction::kEmptySlot) slot_of_.erase(slot.extent);
      slot = Slot{missing[k], 0, 0, /*committed=*/false};
      slot_of_[missing[k]] = candidates[k];
    }
    // Our writers count from now on, so that no other transaction evicts the extents we touch.
    for (std::uint64_t e = first; e <= last; ++e) {
      Slot& slot = slots_[slot_of_[e]];
      ++slot.writers;
      slot.last_use = ++clock_;
    }
    const ActivityLogTransaction transaction = snapshot_locked();
    transaction_running_ = true;
    lock.unlock();

    // An extent may leave the on-disk log only once its bitmap bits are durable.
    int persist_error = 0;
    for (const Eviction& eviction : evictions) {
      if (eviction.extent == ActivityLogTransaction::kEmptySlot) continue;
      persist_error = persist_bits_(eviction.extent * geometry_.extent_bytes, extent_length(eviction.extent));
      if (persist_error != 0) break;
    }
    const int write_error = persist_error != 0 ? 0 : write_transaction(transaction);

    lock.lock();
    transaction_running_ = false;
    const int error = persist_error != 0 ? persist_error : write_error;
    if (error == 0) {
      for (const Eviction& eviction : evictions) slots_[eviction.slot].committed = true;
      ++transactions_written_;
    } else {
      for (std::uint64_t e = first; e <= last; ++e) --slots_[slot_of_[e]].writers;
      for (const Eviction& eviction : evictions) {
        Slot& slot = slots_[eviction.slot];
        slot_of_.erase(slot.extent);
        slot = Slot{};
        // Nothing was written, so the on-disk log still lists the evicted extents and their bits
        // may not be durable: keep them. After a failed transaction write the disk may hold
        // either table; dropping them is safe because their bits were made durable first.
        if (persist_error != 0 && eviction.extent != ActivityLogTransaction::kEmptySlot) {
          slot.extent = eviction.extent;
          slot.last_use = eviction.last_use;
          slot_of_[eviction.extent] = eviction.slot;
        }
      }
      util::log_warn("{}: activity log transaction {} failed: error {}", device_.name(), transaction.sequence, error);
    }
    changed_.notify_all();
    return error;
  }
}

bool ActivityLog::hold(std::uint64_t offset, std::uint64_t length) {
  if (length == 0 || offset >= data_size_ || length > data_size_ - offset) return false;
  const std::uint64_t first = offset / geometry_.extent_bytes;
  const std::uint64_t last = (offset + length - 1) / geometry_.extent_bytes;
  std::lock_guard lock(mutex_);
  for (std::uint64_t e = first; e <= last; ++e) {
    auto it = slot_of_.find(e);
    if (it == slot_of_.end() || slots_[it->second].writers == 0) return false;
  }
  for (std::uint64_t e = first; e <= last; ++e) ++slots_[slot_of_[e]].writers;
  return true;
}

void ActivityLog::end_write(std::uint64_t offset, std::uint64_t length) {
  if (length == 0 || offset >= data_size_ || length > data_size_ - offset) return;
  const std::uint64_t first = offset / geometry_.extent_bytes;
  const std::uint64_t last = (offset + length - 1) / geometry_.extent_bytes;
  bool freed = false;
  {
    std::lock_guard lock(mutex_);
    for (std::uint64_t e = first; e <= last; ++e) {
      auto it = slot_of_.find(e);
      if (it == slot_of_.end() || slots_[it->second].writers == 0) {
        util::log_error("{}: activity log: end_write without begin_write for extent {}", device_.name(), e);
        continue;
      }
      freed |= --slots_[it->second].writers == 0;
    }
  }
  if (freed) changed_.notify_all();
}

void ActivityLog::mark_active_extents(OutOfSyncRecorder& recorder) const {
  for (std::uint64_t extent : active_extents()) {
    recorder.mark_out_of_sync(extent * geometry_.extent_bytes, extent_length(extent));
  }
}

int ActivityLog::clear() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return !transaction_running_; });
  for (const Slot& slot : slots_)
    if (slot.writers != 0) return EBUSY;
  std::vector<Slot> before = slots_;
  auto map_before = slot_of_;
  slots_.assign(geometry_.slots, Slot{});
  slot_of_.clear();
  const ActivityLogTransaction transaction = snapshot_locked();
  transaction_running_ = true;
  lock.unlock();
  const int error = write_transaction(transaction);
  lock.lock();
  transaction_running_ = false;
  if (error != 0) {
    // The log on disk may still list these extents; keep treating them as active.
    slots_ = std::move(before);
    slot_of_ = std::move(map_before);
  } else {
    ++transactions_written_;
  }
  changed_.notify_all();
  return error;
}

std::vector<std::uint64_t> ActivityLog::active_extents() const {
  std::lock_guard lock(mutex_);
  std::vector<std::uint64_t> extents;
  for (const Slot& slot : slots_)
    if (slot.extent != ActivityLogTransaction::kEmptySlot) extents.push_back(slot.extent);
  std::sort(extents.begin(), extents.end());
  return extents;
}

std::uint64_t ActivityLog::transactions_written() const {
  std::lock_guard lock(mutex_);
  return transactions_written_;
}

std::uint64_t ActivityLog::next_sequence() const {
  std::lock_guard lock(mutex_);
  return next_sequence_;
}

}  // namespace freevsa::replication
