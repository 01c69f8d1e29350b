// The byte-addressed store under the replication metadata (superblock, activity log, bitmap),
// and the two ways a volume's data and metadata share one backing device.
//
// A MetadataDevice reads and writes whole 4 KiB blocks at 4 KiB-aligned offsets, from buffers
// aligned to util::AlignedBuffer::kAlignment (so O_DIRECT works). The metadata area always ends
// at the end of its device, rounded down to 4 KiB (docs/metadata-format.md).
//
// Threading: every method is thread-safe and blocks until the I/O completed.
// Durability: write(..., durable=true) returning 0 means the block is on stable storage (FUA or
// write + fdatasync); after flush() returned 0, every write that returned 0 before it is too.
// Errors are values: 0 on success, otherwise a positive errno.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "replication/volume.h"

namespace freevsa::replication {

constexpr std::uint32_t kMetadataBlockSize = 4096;

class MetadataDevice {
 public:
  virtual ~MetadataDevice() = default;

  virtual std::uint64_t size_bytes() const = 0;
  virtual const std::string& name() const = 0;  // for error messages: "data/vol0.img"

  virtual int read(std::uint64_t offset, std::span<std::uint8_t> dst) = 0;
  virtual int write(std::uint64_t offset, std::span<const std::uint8_t> src, bool durable) = 0;
  virtual int flush() = 0;
};

// Where the metadata area ends: the device's size rounded down to whole metadata blocks.
inline std::uint64_t metadata_area_end(const MetadataDevice& device) {
  return device.size_bytes() / kMetadataBlockSize * kMetadataBlockSize;
}

// A MetadataDevice over a Volume: the whole backing device for internal metadata (the data side
// then sees it through DataAreaVolume), or a separate file for external metadata. `volume`
// must outlive this object.
class VolumeMetadataDevice final : public MetadataDevice {
 public:
  explicit VolumeMetadataDevice(Volume& volume) : volume_(volume) {}

  std::uint64_t size_bytes() const override { return volume_.size_bytes(); }
  const std::string& name() const override { return volume_.name(); }
  int read(std::uint64_t offset, std::span<std::uint8_t> dst) override;
  int write(std::uint64_t offset, std::span<const std::uint8_t> src, bool durable) override;
  int flush() override { return volume_.flush(); }

 private:
  Volume& volume_;
};

// The data part of a backing device that carries internal metadata at its end: a Volume of
// `data_size` bytes that forwards to `backing` and refuses anything beyond, so that no initiator
// write can reach the metadata. `backing` must outlive this object; same threading as Volume.
class DataAreaVolume final : public Volume {
 public:
  DataAreaVolume(Volume& backing, std::uint64_t data_size) : backing_(backing), data_size_(data_size) {}

  std::uint64_t size_bytes() const override { return data_size_; }
  std::uint32_t block_size() const override { return backing_.block_size(); }
  const std::string& name() const override { return backing_.name(); }
  int read(std::uint64_t offset, std::span<std::uint8_t> dst) override;
  int write(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) override;
  int flush() override { return backing_.flush(); }
  int discard(std::uint64_t offset, std::uint64_t length) override;
  int allocation(std::uint64_t offset, std::uint64_t length, std::size_t max_extents,
                 std::vector<AllocationExtent>& out) override;
  Access access() const override { return backing_.access(); }

 private:
  bool inside(std::uint64_t offset, std::uint64_t length) const {
    return offset <= data_size_ && length <= data_size_ - offset;
  }

  Volume& backing_;
  std::uint64_t data_size_;
};

// The test double: metadata held in memory (sparse: only written blocks take memory, so a
// "1 TiB device" is cheap), with injected faults. A "torn" write stores only the
// first bytes of the block and fails with EIO, which is what a power loss mid-write leaves; the
// test then "restarts" by building fresh objects over the same device.
class MemoryMetadataDevice final : public MetadataDevice {
 public:
  struct WriteRecord {
    std::uint64_t offset;
    std::uint64_t length;
    bool durable;
  };

  explicit MemoryMetadataDevice(std::uint64_t size_bytes, std::string name = "memory-md");

  std::uint64_t size_bytes() const override { return size_; }
  const std::string& name() const override { return name_; }
  int read(std::uint64_t offset, std::span<std::uint8_t> dst) override;
  int write(std::uint64_t offset, std::span<const std::uint8_t> src, bool durable) override;
  int flush() override;

  // Faults. Reads/writes fail with this errno until reset to 0.
  void fail_reads_with(int error);
  void fail_writes_with(int error);
  // After `writes_to_pass` more successful writes, the next one stores only its first
  // `bytes_kept` bytes, then fails with EIO.
  void tear_write(unsigned writes_to_pass, std::size_t bytes_kept);
  void tear_next_write(std::size_t bytes_kept) { tear_write(0, bytes_kept); }

  // Inspection.
  std::vector<WriteRecord> writes() const;
  void clear_write_log();
  unsigned flush_count() const;
  std::vector<std::uint8_t> snapshot(std::uint64_t offset, std::uint64_t length) const;
  void poke(std::uint64_t offset, std::span<const std::uint8_t> bytes);  // corrupt on purpose

 private:
  mutable std::mutex mutex_;
  std::uint64_t size_;
  std::string name_;
  void copy_out(std::uint64_t offset, std::uint8_t* dst, std::uint64_t length) const;
  void copy_in(std::uint64_t offset, const std::uint8_t* src, std::uint64_t length);

  std::unordered_map<std::uint64_t, std::vector<std::uint8_t>> blocks_;  // block index -> 4 KiB
  int read_error_ = 0;
  int write_error_ = 0;
  bool tear_pending_ = false;
  unsigned tear_after_ = 0;
  std::size_t tear_bytes_ = 0;
  std::vector<WriteRecord> writes_;
  unsigned flushes_ = 0;
};

}  // namespace freevsa::replication
