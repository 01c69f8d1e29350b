// libFuzzer target: arbitrary CDBs and Data-Out through LunMap::execute on small in-memory
// volumes (512- and 4096-byte blocks, plus a LUN that does not exist), with unit attention
// and reset events mixed in. Must never crash, and the outputs must stay self-consistent:
// GOOD, CHECK CONDITION with fixed-format sense, or RESERVATION CONFLICT without sense.
//
// Input layout: [0] control bits, [1] CDB length, [2..17] CDB, [18..] Data-Out.
//   control bit 0-1: LUN (0, 1, or 9 = missing)   bit 2: port B instead of A
//   bit 3: nexus_created first                     bit 4: LUN reset by the other port first
//   bit 5: target reset first                      bit 6: volume read error   bit 7: write error
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "replication/memory_volume.h"
#include "scsi/lun_map.h"

namespace {

using freevsa::replication::MemoryVolume;
using freevsa::scsi::LogicalUnit;
using freevsa::scsi::LunIdentity;
using freevsa::scsi::LunMap;
using freevsa::scsi::Status;
using freevsa::scsi::Task;

struct Target {
  MemoryVolume small{64 * 512, 512};
  MemoryVolume large{16 * 4096, 4096};
  LunMap map;
  Target() {
    map.add(0, std::make_shared<LogicalUnit>(small, LunIdentity::from_name("fuzz/lun0")));
    map.add(1, std::make_shared<LogicalUnit>(large, LunIdentity::from_name("fuzz/lun1")));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Target* target = new Target();
  if (size < 2) return 0;
  const std::uint8_t control = data[0];
  const std::uint8_t cdb_length = data[1];
  data += 2;
  size -= 2;

  Task task;
  static constexpr std::uint64_t kLuns[] = {0, 1, 9, 0};
  task.lun = kLuns[control & 0x03];
  const char* port = (control & 0x04) ? "iqn.b,i,0x2" : "iqn.a,i,0x1";
  const char* other = (control & 0x04) ? "iqn.a,i,0x1" : "iqn.b,i,0x2";
  task.initiator_port = port;
  const std::size_t cdb_bytes = std::min<std::size_t>(size, 16);
  std::memcpy(task.cdb.data(), data, cdb_bytes);
  task.cdb_length = static_cast<std::uint8_t>(cdb_length % 17);
  data += cdb_bytes;
  size -= cdb_bytes;
  task.data_out = freevsa::util::AlignedBuffer(size);
  if (size != 0) std::memcpy(task.data_out.data(), data, size);
  task.data_out_length = static_cast<std::uint32_t>(size);
  task.expected_data_in_length = 1u << 20;

  if (control & 0x08) target->map.nexus_created(port);
  if (control & 0x10) target->map.lun_reset(task.lun, other);
  if (control & 0x20) target->map.target_reset(other);
  target->small.fail_reads_with((control & 0x40) ? EIO : 0);
  target->large.fail_reads_with((control & 0x40) ? EIO : 0);
  target->small.fail_writes_with((control & 0x80) ? ENOSPC : 0);
  target->large.fail_writes_with((control & 0x80) ? ENOSPC : 0);

  target->map.execute(task);

  if (task.status == Status::CheckCondition) {
    if (task.sense.size() != 18 || (task.sense[0] & 0x7F) != 0x70) std::abort();
    if (task.data_in_length != 0) std::abort();
  } else if (task.status == Status::ReservationConflict) {
    // An earlier input may have left a reservation of the other port: no sense, no data.
    if (!task.sense.empty() || task.data_in_length != 0) std::abort();
  } else if (task.status != Status::Good) {
    std::abort();
  }
  if (task.data_in_length > task.data_in.size()) std::abort();
  return 0;
}
