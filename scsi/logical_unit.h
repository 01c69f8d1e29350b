// A direct-access block device (SBC) on a Volume: the SCSI command set for one LUN.
//
// Threading: execute() is called concurrently from worker threads and blocks on the Volume.
// The Volume must outlive the LogicalUnit.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "replication/interval_lock.h"
#include "replication/volume.h"
#include "scsi/task.h"

namespace freevsa::scsi {

// What identifies a LUN to initiators. Must be the same across restarts (and, later, on every
// node that exports the volume): derive it from configuration, never from run-time state.
struct LunIdentity {
  std::string vendor = "FREEVSA";        // T10 vendor id, up to 8 characters
  std::string product = "freevsa disk";  // up to 16 characters
  std::string revision = "0001";         // up to 4 characters
  std::string serial;                    // VPD 0x80 unit serial number
  std::array<std::uint8_t, 16> naa{};    // NAA type 6 registered extended designator (VPD 0x83)
  // Derives serial and NAA deterministically from a stable name (e.g. "<target iqn>/<lun name>").
  static LunIdentity from_name(const std::string& stable_name);
};

class LogicalUnitState;  // unit attentions, mode page settings; defined in the .cpp files
class LunMap;
class ReservationTable;  // scsi/reservation_table.h

class LogicalUnit {
 public:
  LogicalUnit(replication::Volume& volume, LunIdentity identity);
  ~LogicalUnit();
  LogicalUnit(const LogicalUnit&) = delete;
  LogicalUnit& operator=(const LogicalUnit&) = delete;

  void execute(Task& task);

  // See LunMap for the meaning of these.
  void reset(const std::string& requesting_port, std::uint8_t ascq);
  void nexus_created(const std::string& initiator_port);
  void nexus_lost(const std::string& initiator_port);
  std::size_t initiator_ports_with_state() const;

  replication::Volume& volume() { return volume_; }
  // Every command that changes blocks holds their range here while it does: COMPARE AND WRITE
  // and ORWRITE are then atomic against every other write to their blocks (VMFS locks depend
  // on the former).
  replication::IntervalLock::Guard lock_blocks(std::uint64_t offset, std::uint64_t length) {
    return block_lock_.lock(offset, length);
  }
  const LunIdentity& identity() const { return identity_; }
  ReservationTable& reservations() { return *reservations_; }
  // Caching mode page WCE: off, a write is durable before the command that made it completes.
  bool write_cache_enabled() const;

 private:
  friend class LunMap;
  // execute() as part of a LunMap: REPORT LUNS then lists all of `luns`.
  void run(Task& task, const std::map<std::uint64_t, std::shared_ptr<LogicalUnit>>* luns);

  replication::Volume& volume_;
  LunIdentity identity_;
  std::unique_ptr<LogicalUnitState> state_;
  std::unique_ptr<ReservationTable> reservations_;
  // Where PERSISTENT RESERVE OUT commands forwarded from a standby port run (the volume's
  // runner holds it); null once this unit is gone.
  struct ForwardTarget {
    std::mutex mutex;
    LogicalUnit* unit = nullptr;
  };
  std::shared_ptr<ForwardTarget> forward_target_;
  replication::IntervalLock block_lock_;
};

}  // namespace freevsa::scsi
