#include "replication/metadata_device.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace freevsa::replication {
namespace {

bool whole_blocks(std::uint64_t offset, std::uint64_t length, std::uint64_t size) {
  return offset % kMetadataBlockSize == 0 && length % kMetadataBlockSize == 0 && offset <= size &&
         length <= size - offset;
}

}  // namespace

int VolumeMetadataDevice::read(std::uint64_t offset, std::span<std::uint8_t> dst) {
  if (!whole_blocks(offset, dst.size(), metadata_area_end(*this))) return EINVAL;
  return volume_.read(offset, dst);
}

int VolumeMetadataDevice::write(std::uint64_t offset, std::span<const std::uint8_t> src, bool durable) {
  if (!whole_blocks(offset, src.size(), metadata_area_end(*this))) return EINVAL;
  return volume_.write(offset, src, durable);
}

int DataAreaVolume::read(std::uint64_t offset, std::span<std::uint8_t> dst) {
  if (!inside(offset, dst.size())) return EINVAL;
  return backing_.read(offset, dst);
}

int DataAreaVolume::write(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) {
  if (!inside(offset, src.size())) return EINVAL;
  return backing_.write(offset, src, fua);
}

int DataAreaVolume::allocation(std::uint64_t offset, std::uint64_t length, std::size_t max_extents,
                               std::vector<AllocationExtent>& out) {
  if (!inside(offset, length)) return EINVAL;
  return backing_.allocation(offset, length, max_extents, out);
}

int DataAreaVolume::discard(std::uint64_t offset, std::uint64_t length) {
  if (!inside(offset, length)) return EINVAL;
  return backing_.discard(offset, length);
}

MemoryMetadataDevice::MemoryMetadataDevice(std::uint64_t size_bytes, std::string name)
    : size_(size_bytes), name_(std::move(name)) {}

void MemoryMetadataDevice::copy_out(std::uint64_t offset, std::uint8_t* dst, std::uint64_t length) const {
  while (length > 0) {
    const std::uint64_t index = offset / kMetadataBlockSize, within = offset % kMetadataBlockSize;
    const std::uint64_t chunk = std::min<std::uint64_t>(length, kMetadataBlockSize - within);
    auto it = blocks_.find(index);
    if (it == blocks_.end()) {
      std::memset(dst, 0, chunk);
    } else {
      std::memcpy(dst, it->second.data() + within, chunk);
    }
    dst += chunk;
    offset += chunk;
    length -= chunk;
  }
}

void MemoryMetadataDevice::copy_in(std::uint64_t offset, const std::uint8_t* src, std::uint64_t length) {
  while (length > 0) {
    const std::uint64_t index = offset / kMetadataBlockSize, within = offset % kMetadataBlockSize;
    const std::uint64_t chunk = std::min<std::uint64_t>(length, kMetadataBlockSize - within);
    std::vector<std::uint8_t>& block = blocks_[index];
    if (block.empty()) block.assign(kMetadataBlockSize, 0);
    std::memcpy(block.data() + within, src, chunk);
    src += chunk;
    offset += chunk;
    length -= chunk;
  }
}

int MemoryMetadataDevice::read(std::uint64_t offset, std::span<std::uint8_t> dst) {
  std::lock_guard lock(mutex_);
  if (read_error_ != 0) return read_error_;
  if (!whole_blocks(offset, dst.size(), size_)) return EINVAL;
  copy_out(offset, dst.data(), dst.size());
  return 0;
}

int MemoryMetadataDevice::write(std::uint64_t offset, std::span<const std::uint8_t> src, bool durable) {
  std::lock_guard lock(mutex_);
  if (write_error_ != 0) return write_error_;
  if (!whole_blocks(offset, src.size(), size_)) return EINVAL;
  if (tear_pending_ && tear_after_-- == 0) {
    tear_pending_ = false;
    copy_in(offset, src.data(), std::min<std::uint64_t>(tear_bytes_, src.size()));
    return EIO;
  }
  copy_in(offset, src.data(), src.size());
  writes_.push_back({offset, src.size(), durable});
  return 0;
}

int MemoryMetadataDevice::flush() {
  std::lock_guard lock(mutex_);
  if (write_error_ != 0) return write_error_;
  ++flushes_;
  return 0;
}

void MemoryMetadataDevice::fail_reads_with(int error) {
  std::lock_guard lock(mutex_);
  read_error_ = error;
}

void MemoryMetadataDevice::fail_writes_with(int error) {
  std::lock_guard lock(mutex_);
  write_error_ = error;
}

void MemoryMetadataDevice::tear_write(unsigned writes_to_pass, std::size_t bytes_kept) {
  std::lock_guard lock(mutex_);
  tear_pending_ = true;
  tear_after_ = writes_to_pass;
  tear_bytes_ = bytes_kept;
}

std::vector<MemoryMetadataDevice::WriteRecord> MemoryMetadataDevice::writes() const {
  std::lock_guard lock(mutex_);
  return writes_;
}

void MemoryMetadataDevice::clear_write_log() {
  std::lock_guard lock(mutex_);
  writes_.clear();
}

unsigned MemoryMetadataDevice::flush_count() const {
  std::lock_guard lock(mutex_);
  return flushes_;
}

std::vector<std::uint8_t> MemoryMetadataDevice::snapshot(std::uint64_t offset, std::uint64_t length) const {
  std::lock_guard lock(mutex_);
  std::vector<std::uint8_t> bytes(length);
  copy_out(offset, bytes.data(), length);
  return bytes;
}

void MemoryMetadataDevice::poke(std::uint64_t offset, std::span<const std::uint8_t> bytes) {
  std::lock_guard lock(mutex_);
  copy_in(offset, bytes.data(), bytes.size());
}

}  // namespace freevsa::replication
