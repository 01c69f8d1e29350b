#include "replication/power_loss_volume.h"

#include <algorithm>
#include <cerrno>

namespace freevsa::replication {

namespace {
bool in_volume(std::uint64_t offset, std::uint64_t length, std::uint64_t size) {
  return offset <= size && length <= size - offset;
}
}  // namespace

int PowerLossVolume::read(std::uint64_t offset, std::span<std::uint8_t> dst) {
  std::lock_guard lock(mutex_);
  if (int error = durable_.read(offset, dst); error != 0) return error;
  const std::uint32_t block = block_size();
  for (auto it = held_.lower_bound(offset / block); it != held_.end() && it->first * block < offset + dst.size(); ++it) {
    std::copy(it->second.begin(), it->second.end(), dst.begin() + static_cast<std::ptrdiff_t>(it->first * block - offset));
  }
  return 0;
}

int PowerLossVolume::write(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) {
  std::lock_guard lock(mutex_);
  const std::uint32_t block = block_size();
  if (!in_volume(offset, src.size(), size_bytes()) || offset % block != 0 || src.size() % block != 0) return EINVAL;
  if (fua) {
    forget_locked(offset, src.size());
    return durable_.write(offset, src, true);
  }
  for (std::size_t done = 0; done < src.size(); done += block) {
    held_[(offset + done) / block].assign(src.begin() + static_cast<std::ptrdiff_t>(done),
                                          src.begin() + static_cast<std::ptrdiff_t>(done + block));
  }
  return 0;
}

int PowerLossVolume::flush() {
  std::lock_guard lock(mutex_);
  if (flush_error_ != 0) return flush_error_;
  const std::uint32_t block = block_size();
  while (!held_.empty()) {
    auto it = held_.begin();
    if (int error = durable_.write(it->first * block, it->second, false); error != 0) return error;
    held_.erase(it);
  }
  return durable_.flush();
}

int PowerLossVolume::discard(std::uint64_t offset, std::uint64_t length) {
  std::lock_guard lock(mutex_);
  if (!in_volume(offset, length, size_bytes())) return EINVAL;
  forget_locked(offset, length);
  return durable_.discard(offset, length);
}

void PowerLossVolume::forget_locked(std::uint64_t offset, std::uint64_t length) {
  const std::uint32_t block = block_size();
  held_.erase(held_.lower_bound(offset / block), held_.lower_bound((offset + length + block - 1) / block));
}

void PowerLossVolume::fail_flushes_with(int error) {
  std::lock_guard lock(mutex_);
  flush_error_ = error;
}

std::uint64_t PowerLossVolume::power_loss() {
  std::lock_guard lock(mutex_);
  const std::uint64_t lost = held_.size() * std::uint64_t{block_size()};
  held_.clear();
  return lost;
}

std::uint64_t PowerLossVolume::unflushed_bytes() const {
  std::lock_guard lock(mutex_);
  return held_.size() * std::uint64_t{block_size()};
}

}  // namespace freevsa::replication
