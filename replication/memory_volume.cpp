#include "replication/memory_volume.h"

#include <cerrno>
#include <cstring>

namespace freevsa::replication {

MemoryVolume::MemoryVolume(std::uint64_t size_bytes, std::uint32_t block_size)
    : data_(size_bytes, 0), block_size_(block_size) {}

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
  return 0;
}

}  // namespace freevsa::replication
