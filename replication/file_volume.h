// A Volume on a local regular file or block device.
//
// Opens with O_DIRECT where the medium allows it (buffers handed in must then be aligned to
// util::AlignedBuffer::kAlignment; unaligned requests are bounced through an aligned copy), and
// falls back to buffered I/O where it does not (tmpfs), in which case FUA and flush() use
// fdatasync so that the durability contract of Volume still holds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "replication/volume.h"

namespace freevsa::replication {

struct FileVolumeOptions {
  std::string path;
  std::uint64_t size_bytes = 0;   // 0: use the existing file/device size
  std::uint32_t block_size = 512;
  bool create = true;             // create a sparse regular file of size_bytes if missing
  bool direct_io = true;          // try O_DIRECT first
  // Where persistent reservations are kept (record_file.h); empty: in memory only (a replica's
  // backing file, whose reservations live in the replication metadata).
  std::string reservations_path;
};

class FileVolume final : public Volume {
 public:
  // Throws std::runtime_error naming the path and the reason (start-up edge, not the data path).
  static std::unique_ptr<FileVolume> open(const FileVolumeOptions& options);
  ~FileVolume() override;

  std::uint64_t size_bytes() const override { return size_; }
  std::uint32_t block_size() const override { return block_size_; }
  const std::string& name() const override { return path_; }
  bool direct_io() const { return direct_; }

  int read(std::uint64_t offset, std::span<std::uint8_t> dst) override;
  int write(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) override;
  int flush() override;
  int discard(std::uint64_t offset, std::uint64_t length) override;
  // Files: holes (SEEK_HOLE) are deallocated. Block devices: all mapped.
  int allocation(std::uint64_t offset, std::uint64_t length, std::size_t max_extents,
                 std::vector<AllocationExtent>& out) override;
  int store_reservations(std::span<const std::uint8_t> record) override;

 private:
  FileVolume(int fd, std::string path, std::uint64_t size, std::uint32_t block_size, bool direct, bool block_device);

  int fd_;
  std::string path_;
  std::uint64_t size_;
  std::uint32_t block_size_;
  bool direct_;
  bool block_device_;
  std::string reservations_path_;
};

}  // namespace freevsa::replication
