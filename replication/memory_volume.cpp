#include "replication/memory_volume.h"

#include <cerrno>
#include <cstring>

namespace freevsa::replication {

MemoryVolume::MemoryVolume(std::uint64_t size_bytes, std::uint32_t block_size)
    : data_(size_bytes, 0), block_size_(block_size), mapped_(size_bytes / block_size, false) {}

namespace {
void mark(std::vector<bool>& mapped, std::uint64_t offset, std::uint64_t length, std::uint32_t block_size, bool value) {
  for (std::uint64_t b = offset / block_size; b < (offset + length + block_size - 1) / block_size && b < mapped.size(); ++b)
    mapped[b] = value;
}
}  // namespace

int MemoryVolume::allocation(std::uint64_t offset, std::uint64_t length, std::size_t max_extents,
                             std::vector<AllocationExtent>& out) {
  std::lock_guard lock(mutex_);
  out.clear();
  if (offset > data_.size() || length > data_.size() - offset) return EINVAL;
  for (std::uint64_t at = offset; at < offset + length && out.size() < max_extents;) {
    const bool state = mapped_[at / block_size_];
    std::uint64_t end = at + block_size_;
    while (end < offset + length && mapped_[end / block_size_] == state) end += block_size_;
    out.push_back({at, std::min(end, offset + length) - at, state});
    at = end;
  }
  return 0;
}

int MemoryVolume::read(std::uint64_t offset, std::span<std::uint8_t> dst) {
  std::lock_guard lock(mutex_);
  if (read_error_ != 0) return read_error_;
  if (offset > data_.size() || dst.size() > data_.size() - offset) return EINVAL;
  std::memcpy(dst.data(), data_.data() + offset, dst.size());
  return 0;
}

int MemoryVolume::write(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) {
  std::lock_guard lock(mutex_);
  if (write_error_ != 0) return write_error_;
  if (offset > data_.size() || src.size() > data_.size() - offset) return EINVAL;
  std::memcpy(data_.data() + offset, src.data(), src.size());
  mark(mapped_, offset, src.size(), block_size_, true);
  if (fua) ++fua_writes_;
  return 0;
}

int MemoryVolume::flush() {
  std::lock_guard lock(mutex_);
  if (write_error_ != 0) return write_error_;
  ++flushes_;
  return 0;
}

int MemoryVolume::discard(std::uint64_t offset, std::uint64_t length) {
  std::lock_guard lock(mutex_);
  if (write_error_ != 0) return write_error_;
  if (offset > data_.size() || length > data_.size() - offset) return EINVAL;
  std::memset(data_.data() + offset, 0, length);
  mark(mapped_, offset, length, block_size_, false);
  return 0;
}

}  // namespace freevsa::replication
