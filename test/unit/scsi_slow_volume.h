// For the SCSI tests: a volume whose reads and writes take a while. It widens the window
// between the read and the write of a read-modify-write command (COMPARE AND WRITE, ORWRITE),
// where a concurrent write could slip in if nothing held the blocks.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <thread>

#include "replication/volume.h"

namespace freevsa::scsi {

class SlowReadVolume final : public replication::Volume {
 public:
  explicit SlowReadVolume(replication::Volume& inner) : inner_(inner) {}
  std::uint64_t size_bytes() const override { return inner_.size_bytes(); }
  std::uint32_t block_size() const override { return inner_.block_size(); }
  const std::string& name() const override { return inner_.name(); }
  int read(std::uint64_t offset, std::span<std::uint8_t> dst) override {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    return inner_.read(offset, dst);
  }
  int write(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) override {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    return inner_.write(offset, src, fua);
  }
  int flush() override { return inner_.flush(); }
  int discard(std::uint64_t offset, std::uint64_t length) override { return inner_.discard(offset, length); }

 private:
  replication::Volume& inner_;
};

}  // namespace freevsa::scsi
