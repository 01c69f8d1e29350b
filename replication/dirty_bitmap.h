// The dirty bitmap (DESIGN.md): one bit per 4 KiB of data, set for blocks the peer may not have.
// DirtyBitmap is the in-memory bitmap; BitmapStore persists it into the metadata area.
//
// Bit k covers data bytes [k * 4096, (k + 1) * 4096), the last bit possibly a partial block.
// On disk and on the wire bit k is in byte k / 8 under mask 1 << (k % 8); the on-disk bitmap is
// cut into 4 KiB pages (32768 bits = 128 MiB of data each).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "replication/metadata.h"
#include "replication/metadata_device.h"
#include "replication/out_of_sync.h"
#include "util/aligned_buffer.h"

namespace freevsa::replication {

// Threading: every method is thread-safe and lock-free (atomic words). set_range on bits that
// are already set only reads. Readers (test, count, find) see each word atomically but a range
// changed concurrently may be seen half changed.
// Page tracking: every change that sets or clears a bit marks the 4 KiB on-disk page holding it;
// take_dirty_page() hands out and unmarks pages so a flush writes only what changed since the
// last one. A page is unmarked before its bits are read, so a change racing with a flush is
// written by that flush or marks the page again for the next.
class DirtyBitmap final : public OutOfSyncRecorder {
 public:
  static constexpr std::uint64_t kBitsPerPage = std::uint64_t{kMetadataBlockSize} * 8;

  explicit DirtyBitmap(std::uint64_t data_size, std::uint32_t granularity = kBitmapGranularity);

  std::uint64_t data_size() const { return data_size_; }
  std::uint32_t granularity() const { return granularity_; }
  std::uint64_t bit_count() const { return bits_; }
  std::size_t page_count() const { return pages_; }

  // Sets every bit that [offset, offset + length) touches (clipped to the data size).
  void set_range(std::uint64_t offset, std::uint64_t length);
  // Clears only bits whose whole block lies inside the range: a partly covered block may still
  // hold data the peer lacks.
  void clear_range(std::uint64_t offset, std::uint64_t length);
  void mark_out_of_sync(std::uint64_t offset, std::uint64_t length) override { set_range(offset, length); }

  bool test(std::uint64_t offset) const;  // is the block holding `offset` dirty?
  bool test_bit(std::uint64_t bit) const;
  std::uint64_t count_dirty_bits() const { return dirty_bits_.load(std::memory_order_relaxed); }
  std::uint64_t count_dirty_bytes() const;  // the last block counts only its bytes inside the data
  // Byte offset of the first dirty (clean) block at or after the block holding `from`.
  std::optional<std::uint64_t> find_next_dirty(std::uint64_t from) const;
  std::optional<std::uint64_t> find_next_clean(std::uint64_t from) const;

  void set_all();  // full sync
  void clear_all();
  // ORs another bitmap of the same geometry into this one; EINVAL if the geometry differs.
  int merge(const DirtyBitmap& other);
  // ORs bits [first_bit, first_bit + bit_count) from a raw chunk (bit k in byte k / 8, mask
  // 1 << (k % 8)), as the peer sends its bitmap; EINVAL if out of range or the body is short.
  int merge_raw(std::uint64_t first_bit, std::uint64_t bit_count, std::span<const std::uint8_t> raw);

  // Persistence support (BitmapStore).
  void encode_page(std::size_t page, std::span<std::uint8_t, kMetadataBlockSize> out) const;
  // Replaces the page's bits (bits beyond the data size are ignored) without marking it.
  void decode_page(std::size_t page, std::span<const std::uint8_t, kMetadataBlockSize> in);
  bool page_dirty(std::size_t page) const { return page_dirty_[page].load(std::memory_order_acquire); }
  // Unmarks `page` and returns whether it was marked.
  bool take_dirty_page(std::size_t page) { return page_dirty_[page].exchange(false, std::memory_order_acq_rel); }
  void mark_page_dirty(std::size_t page) { page_dirty_[page].store(true, std::memory_order_release); }
  void mark_all_pages_dirty();
  std::size_t page_of_bit(std::uint64_t bit) const { return static_cast<std::size_t>(bit / kBitsPerPage); }

 private:
  // Applies `mask` to word `index`: sets (or clears) the bits, updates the count and the page.
  void set_bits(std::size_t index, std::uint64_t mask);
  void clear_bits(std::size_t index, std::uint64_t mask);
  std::uint64_t valid_mask(std::size_t index) const;  // the bits of a word that lie inside bit_count
  std::optional<std::uint64_t> find_next(std::uint64_t from, bool dirty) const;

  std::uint64_t data_size_;
  std::uint32_t granularity_;
  std::uint64_t bits_;
  std::size_t words_;
  std::size_t pages_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> word_;
  std::unique_ptr<std::atomic<bool>[]> page_dirty_;
  std::atomic<std::uint64_t> dirty_bits_{0};
};

// Writes a DirtyBitmap to, and reads it from, the bitmap region of the metadata area.
// Durable: a flush or write_all that returned 0 has every page it wrote on stable storage
// (writes, then one device flush). On an error the pages not known written stay marked.
// Threading: thread-safe; flushes are serialised. `bitmap` and `device` must outlive this object.
class BitmapStore {
 public:
  // `region_offset`: absolute offset of the bitmap region on `device`.
  BitmapStore(DirtyBitmap& bitmap, MetadataDevice& device, std::uint64_t region_offset);

  // Writes the pages changed since the last flush.
  int flush_dirty_pages();
  // Writes the changed pages that hold bits of the data range [offset, offset + length) (what an
  // activity-log eviction needs).
  int flush_range(std::uint64_t offset, std::uint64_t length);
  // Writes every page (clean shutdown, format).
  int write_all();
  // Replaces the in-memory bitmap with the persisted one; leaves no page marked.
  int read_all();

  std::uint64_t pages_written() const { return pages_written_.load(std::memory_order_relaxed); }

 private:
  int flush_pages(std::size_t first, std::size_t end, bool all);

  std::mutex mutex_;
  DirtyBitmap& bitmap_;
  MetadataDevice& device_;
  std::uint64_t region_offset_;
  util::AlignedBuffer page_buffer_;
  std::atomic<std::uint64_t> pages_written_{0};
};

}  // namespace freevsa::replication
