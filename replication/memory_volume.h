// A Volume held in memory, with optional injected faults: the test double for the SCSI layer
// and, later, for replication tests.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "replication/volume.h"

namespace freevsa::replication {

class MemoryVolume final : public Volume {
 public:
  MemoryVolume(std::uint64_t size_bytes, std::uint32_t block_size);

  std::uint64_t size_bytes() const override { return data_.size(); }
  std::uint32_t block_size() const override { return block_size_; }
  const std::string& name() const override { return name_; }

  int read(std::uint64_t offset, std::span<std::uint8_t> dst) override;
  int write(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) override;
  int flush() override;
  int discard(std::uint64_t offset, std::uint64_t length) override;
  // Blocks never written, or discarded since, are deallocated.
  int allocation(std::uint64_t offset, std::uint64_t length, std::size_t max_extents,
                 std::vector<AllocationExtent>& out) override;

  // Fault injection: the next I/O calls fail with this errno (0 = none).
  void fail_reads_with(int error) { read_error_ = error; }
  void fail_writes_with(int error) { write_error_ = error; }
  void set_access(Access access) { access_ = access; }
  Access access() const override { return access_; }

  // Test inspection.
  std::vector<std::uint8_t>& raw() { return data_; }
  unsigned flush_count() const { return flushes_; }
  unsigned fua_write_count() const { return fua_writes_; }

 private:
  std::mutex mutex_;
  std::vector<std::uint8_t> data_;
  std::uint32_t block_size_;
  std::vector<bool> mapped_;  // per block
  std::string name_ = "memory";
  int read_error_ = 0;
  int write_error_ = 0;
  std::atomic<Access> access_{Access::Active};
  unsigned flushes_ = 0;
  unsigned fua_writes_ = 0;
};

}  // namespace freevsa::replication
