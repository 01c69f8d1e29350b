// Where a replicated volume records the blocks its peer may not have. The dirty bitmap
// implements it; the resync later copies exactly these blocks.
#pragma once

#include <cstdint>

namespace freevsa::replication {

class OutOfSyncRecorder {
 public:
  virtual ~OutOfSyncRecorder() = default;
  // Thread-safe; cheap when the range is already recorded.
  virtual void mark_out_of_sync(std::uint64_t offset, std::uint64_t length) = 0;
};

}  // namespace freevsa::replication
