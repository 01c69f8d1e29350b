// A test double for power-loss tests: a Volume in front of another that keeps every write the
// Volume contract does not yet call durable (no FUA, no flush() since) apart, the way a disk's
// volatile write cache or the page cache does, and loses them on power_loss(). Reads see them.
//
// A FUA write and flush() reach the volume below (flush() first writes the held blocks there).
// A discard drops the held blocks it covers and reaches the volume below at once: the double
// never loses a discard (a real disk might).
//
// Threading: thread-safe; every call holds one mutex, including the calls to the volume below,
// which must outlive this object.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "replication/volume.h"

namespace freevsa::replication {

class PowerLossVolume final : public Volume {
 public:
  explicit PowerLossVolume(Volume& durable) : durable_(durable) {}

  std::uint64_t size_bytes() const override { return durable_.size_bytes(); }
  std::uint32_t block_size() const override { return durable_.block_size(); }
  const std::string& name() const override { return durable_.name(); }

  int read(std::uint64_t offset, std::span<std::uint8_t> dst) override;
  int write(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) override;
  int flush() override;
  int discard(std::uint64_t offset, std::uint64_t length) override;

  // Faults: flush() fails with this errno (0: none) and writes nothing below.
  void fail_flushes_with(int error);
  // Drops every write not yet durable; returns how many bytes that were.
  std::uint64_t power_loss();
  std::uint64_t unflushed_bytes() const;

 private:
  void forget_locked(std::uint64_t offset, std::uint64_t length);

  Volume& durable_;
  mutable std::mutex mutex_;
  std::map<std::uint64_t, std::vector<std::uint8_t>> held_;  // block number -> one block
  int flush_error_ = 0;
};

}  // namespace freevsa::replication
