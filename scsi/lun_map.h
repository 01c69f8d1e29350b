// The SCSI side of one iSCSI target: its logical units by number, and the commands answered for
// the target as a whole (REPORT LUNS, commands addressed to a LUN that does not exist).
//
// Threading: execute() is called concurrently from worker threads and blocks on disk I/O.
// Ownership: holds shared ownership of its LogicalUnits.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "scsi/logical_unit.h"
#include "scsi/task.h"

namespace freevsa::scsi {

class LunMap {
 public:
  void add(std::uint64_t lun, std::shared_ptr<LogicalUnit> unit);
  LogicalUnit* find(std::uint64_t lun) const;
  const std::map<std::uint64_t, std::shared_ptr<LogicalUnit>>& units() const { return units_; }

  // Runs the command to completion and fills the task's outputs.
  void execute(Task& task) const;

  // Task management. Each raises the matching unit attention for every I_T nexus except the
  // one that asked (SAM-5: 29/03 BUS DEVICE RESET FUNCTION OCCURRED for LUN reset, 29/00 or
  // 29/02 for target reset).
  void lun_reset(std::uint64_t lun, const std::string& requesting_port) const;
  void target_reset(const std::string& requesting_port) const;
  // A new I_T nexus logged in: it gets the POWER ON, RESET, OR BUS DEVICE RESET OCCURRED
  // unit attention on its first command, as after power-on.
  void nexus_created(const std::string& initiator_port) const;
  // The I_T nexus ended (logout, connection loss, and none of its commands still running):
  // its RESERVE reservation, unit attentions and held copy results end with it. Persistent
  // reservation registrations stay.
  void nexus_lost(const std::string& initiator_port) const;
  // The most initiator ports any LUN keeps unit-attention state for (a bound the tests check).
  std::size_t initiator_ports_with_state() const;

 private:
  std::map<std::uint64_t, std::shared_ptr<LogicalUnit>> units_;
};

}  // namespace freevsa::scsi
