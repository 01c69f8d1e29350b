#include "replication/dirty_bitmap.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

namespace freevsa::replication {
namespace {

constexpr std::size_t kWordsPerPage = DirtyBitmap::kBitsPerPage / 64;

// Calls fn(word_index, mask) for the words holding bits [first, end).
template <typename Fn>
void for_each_word(std::uint64_t first, std::uint64_t end, Fn&& fn) {
  while (first < end) {
    const auto index = static_cast<std::size_t>(first / 64);
    const unsigned low = static_cast<unsigned>(first % 64);
    const std::uint64_t word_end = std::min<std::uint64_t>(end, (first / 64 + 1) * 64);
    const unsigned count = static_cast<unsigned>(word_end - first);
    const std::uint64_t mask = (count == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << count) - 1)) << low;
    fn(index, mask);
    first = word_end;
  }
}

}  // namespace

DirtyBitmap::DirtyBitmap(std::uint64_t data_size, std::uint32_t granularity)
    : data_size_(data_size),
      granularity_(granularity),
      bits_((data_size + granularity - 1) / granularity),
      words_(static_cast<std::size_t>((bits_ + 63) / 64)),
      pages_(static_cast<std::size_t>((bits_ + kBitsPerPage - 1) / kBitsPerPage)),
      word_(new std::atomic<std::uint64_t>[words_]),
      page_dirty_(new std::atomic<bool>[pages_]) {
  for (std::size_t i = 0; i < words_; ++i) word_[i].store(0, std::memory_order_relaxed);
  for (std::size_t i = 0; i < pages_; ++i) page_dirty_[i].store(false, std::memory_order_relaxed);
}

std::uint64_t DirtyBitmap::valid_mask(std::size_t index) const {
  if (index + 1 == words_ && bits_ % 64 != 0) return (std::uint64_t{1} << (bits_ % 64)) - 1;
  return ~std::uint64_t{0};
}

void DirtyBitmap::set_bits(std::size_t index, std::uint64_t mask) {
  std::atomic<std::uint64_t>& word = word_[index];
  // The hot path: a write to blocks already recorded reads one word and changes nothing.
  if ((word.load(std::memory_order_relaxed) & mask) == mask) return;
  const std::uint64_t before = word.fetch_or(mask, std::memory_order_acq_rel);
  const std::uint64_t changed = mask & ~before;
  if (changed == 0) return;
  dirty_bits_.fetch_add(static_cast<std::uint64_t>(std::popcount(changed)), std::memory_order_relaxed);
  page_dirty_[index / kWordsPerPage].store(true, std::memory_order_release);
}

void DirtyBitmap::clear_bits(std::size_t index, std::uint64_t mask) {
  std::atomic<std::uint64_t>& word = word_[index];
  if ((word.load(std::memory_order_relaxed) & mask) == 0) return;
  const std::uint64_t before = word.fetch_and(~mask, std::memory_order_acq_rel);
  const std::uint64_t changed = mask & before;
  if (changed == 0) return;
  dirty_bits_.fetch_sub(static_cast<std::uint64_t>(std::popcount(changed)), std::memory_order_relaxed);
  page_dirty_[index / kWordsPerPage].store(true, std::memory_order_release);
}

void DirtyBitmap::set_range(std::uint64_t offset, std::uint64_t length) {
  if (length == 0 || offset >= data_size_) return;
  const std::uint64_t end = length > data_size_ - offset ? data_size_ : offset + length;
  const std::uint64_t first = offset / granularity_;
  const std::uint64_t last = (end + granularity_ - 1) / granularity_;
  for_each_word(first, last, [this](std::size_t index, std::uint64_t mask) { set_bits(index, mask); });
}

void DirtyBitmap::clear_range(std::uint64_t offset, std::uint64_t length) {
  if (length == 0 || offset >= data_size_) return;
  const std::uint64_t end = length > data_size_ - offset ? data_size_ : offset + length;
  const std::uint64_t first = (offset + granularity_ - 1) / granularity_;
  // The last block ends at the data size, not at a granule boundary, when it is partial.
  const std::uint64_t last = end == data_size_ ? bits_ : end / granularity_;
  if (first >= last) return;
  for_each_word(first, last, [this](std::size_t index, std::uint64_t mask) { clear_bits(index, mask); });
}

bool DirtyBitmap::test_bit(std::uint64_t bit) const {
  if (bit >= bits_) return false;
  return (word_[bit / 64].load(std::memory_order_relaxed) >> (bit % 64)) & 1u;
}

bool DirtyBitmap::test(std::uint64_t offset) const { return test_bit(offset / granularity_); }

std::uint64_t DirtyBitmap::count_dirty_bytes() const {
  std::uint64_t bytes = count_dirty_bits() * granularity_;
  const std::uint64_t slack = bits_ * granularity_ - data_size_;
  if (slack != 0 && test_bit(bits_ - 1)) bytes -= slack;
  return bytes;
}

std::optional<std::uint64_t> DirtyBitmap::find_next(std::uint64_t from, bool dirty) const {
  std::uint64_t bit = from / granularity_;
  if (bit >= bits_) return std::nullopt;
  auto index = static_cast<std::size_t>(bit / 64);
  std::uint64_t word = word_[index].load(std::memory_order_relaxed);
  if (!dirty) word = ~word & valid_mask(index);
  word &= ~std::uint64_t{0} << (bit % 64);
  for (;;) {
    if (word != 0) {
      return (static_cast<std::uint64_t>(index) * 64 + static_cast<std::uint64_t>(std::countr_zero(word))) *
             granularity_;
    }
    if (++index >= words_) return std::nullopt;
    word = word_[index].load(std::memory_order_relaxed);
    if (!dirty) word = ~word & valid_mask(index);
  }
}

std::optional<std::uint64_t> DirtyBitmap::find_next_dirty(std::uint64_t from) const { return find_next(from, true); }
std::optional<std::uint64_t> DirtyBitmap::find_next_clean(std::uint64_t from) const { return find_next(from, false); }

void DirtyBitmap::set_all() {
  for (std::size_t i = 0; i < words_; ++i) set_bits(i, valid_mask(i));
}

void DirtyBitmap::clear_all() {
  for (std::size_t i = 0; i < words_; ++i) clear_bits(i, ~std::uint64_t{0});
}

int DirtyBitmap::merge(const DirtyBitmap& other) {
  if (other.bits_ != bits_ || other.granularity_ != granularity_) return EINVAL;
  for (std::size_t i = 0; i < words_; ++i) {
    const std::uint64_t theirs = other.word_[i].load(std::memory_order_relaxed);
    if (theirs != 0) set_bits(i, theirs);
  }
  return 0;
}

int DirtyBitmap::merge_raw(std::uint64_t first_bit, std::uint64_t bit_count, std::span<const std::uint8_t> raw) {
  if (first_bit > bits_ || bit_count > bits_ - first_bit || raw.size() < (bit_count + 7) / 8) return EINVAL;
  std::size_t pending_index = 0;
  std::uint64_t pending_mask = 0;
  for (std::uint64_t byte = 0; byte < (bit_count + 7) / 8; ++byte) {
    const std::uint8_t value = raw[static_cast<std::size_t>(byte)];
    if (value == 0) continue;
    for (unsigned k = 0; k < 8; ++k) {
      const std::uint64_t source_bit = byte * 8 + k;
      if (source_bit >= bit_count || ((value >> k) & 1u) == 0) continue;
      const std::uint64_t bit = first_bit + source_bit;
      const auto index = static_cast<std::size_t>(bit / 64);
      if (pending_mask != 0 && index != pending_index) {
        set_bits(pending_index, pending_mask);
        pending_mask = 0;
      }
      pending_index = index;
      pending_mask |= std::uint64_t{1} << (bit % 64);
    }
  }
  if (pending_mask != 0) set_bits(pending_index, pending_mask);
  return 0;
}

void DirtyBitmap::encode_page(std::size_t page, std::span<std::uint8_t, kMetadataBlockSize> out) const {
  std::memset(out.data(), 0, out.size());
  const std::size_t first = page * kWordsPerPage;
  const std::size_t end = std::min(words_, first + kWordsPerPage);
  for (std::size_t i = first; i < end; ++i) {
    const std::uint64_t word = word_[i].load(std::memory_order_relaxed);
    for (unsigned b = 0; b < 8; ++b) out[(i - first) * 8 + b] = static_cast<std::uint8_t>(word >> (8 * b));
  }
}

void DirtyBitmap::decode_page(std::size_t page, std::span<const std::uint8_t, kMetadataBlockSize> in) {
  const std::size_t first = page * kWordsPerPage;
  const std::size_t end = std::min(words_, first + kWordsPerPage);
  for (std::size_t i = first; i < end; ++i) {
    std::uint64_t word = 0;
    for (unsigned b = 0; b < 8; ++b) word |= std::uint64_t{in[(i - first) * 8 + b]} << (8 * b);
    word &= valid_mask(i);
    const std::uint64_t before = word_[i].exchange(word, std::memory_order_acq_rel);
    dirty_bits_.fetch_add(static_cast<std::uint64_t>(std::popcount(word)), std::memory_order_relaxed);
    dirty_bits_.fetch_sub(static_cast<std::uint64_t>(std::popcount(before)), std::memory_order_relaxed);
  }
}

void DirtyBitmap::mark_all_pages_dirty() {
  for (std::size_t i = 0; i < pages_; ++i) mark_page_dirty(i);
}

BitmapStore::BitmapStore(DirtyBitmap& bitmap, MetadataDevice& device, std::uint64_t region_offset)
    : bitmap_(bitmap), device_(device), region_offset_(region_offset), page_buffer_(kMetadataBlockSize) {}

int BitmapStore::flush_pages(std::size_t first, std::size_t end, bool all) {
  std::lock_guard lock(mutex_);
  std::vector<std::size_t> written;
  auto remark = [&](std::size_t failed) {
    bitmap_.mark_page_dirty(failed);
    for (std::size_t page : written) bitmap_.mark_page_dirty(page);
  };
  std::span<std::uint8_t, kMetadataBlockSize> image(page_buffer_.data(), kMetadataBlockSize);
  for (std::size_t page = first; page < end; ++page) {
    const bool marked = bitmap_.take_dirty_page(page);
    if (!marked && !all) continue;
    bitmap_.encode_page(page, image);
    if (int error = device_.write(region_offset_ + page * kMetadataBlockSize, page_buffer_.span(), false);
        error != 0) {
      remark(page);
      return error;
    }
    written.push_back(page);
  }
  if (written.empty()) return 0;
  if (int error = device_.flush(); error != 0) {
    remark(written.back());
    return error;
  }
  pages_written_.fetch_add(written.size(), std::memory_order_relaxed);
  return 0;
}

int BitmapStore::flush_dirty_pages() { return flush_pages(0, bitmap_.page_count(), false); }

int BitmapStore::flush_range(std::uint64_t offset, std::uint64_t length) {
  if (length == 0 || offset >= bitmap_.data_size()) return 0;
  const std::uint64_t end = std::min(bitmap_.data_size() - offset, length) + offset;
  const std::size_t first = bitmap_.page_of_bit(offset / bitmap_.granularity());
  const std::size_t last = bitmap_.page_of_bit((end - 1) / bitmap_.granularity());
  return flush_pages(first, last + 1, false);
}

int BitmapStore::write_all() { return flush_pages(0, bitmap_.page_count(), true); }

int BitmapStore::read_all() {
  std::lock_guard lock(mutex_);
  std::span<const std::uint8_t, kMetadataBlockSize> image(page_buffer_.data(), kMetadataBlockSize);
  for (std::size_t page = 0; page < bitmap_.page_count(); ++page) {
    if (int error = device_.read(region_offset_ + page * kMetadataBlockSize, page_buffer_.span()); error != 0) {
      return error;
    }
    bitmap_.decode_page(page, image);
    bitmap_.take_dirty_page(page);
  }
  return 0;
}

}  // namespace freevsa::replication
