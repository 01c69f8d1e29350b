#include "scsi/lun_map.h"

#include <algorithm>

#include "scsi/handlers.h"

namespace freevsa::scsi {

void LunMap::add(std::uint64_t lun, std::shared_ptr<LogicalUnit> unit) {
  units_[lun] = std::move(unit);
}

LogicalUnit* LunMap::find(std::uint64_t lun) const {
  auto it = units_.find(lun);
  return it == units_.end() ? nullptr : it->second.get();
}

void LunMap::execute(Task& task) const {
  if (LogicalUnit* unit = find(task.lun)) {
    unit->run(task, &units_);
  } else {
    dispatch(task, nullptr, nullptr, &units_);
  }
}

// SAM-5 / RFC 7143: the I_T nexus that requested the reset knows about it; every other nexus
// learns from a unit attention. LUN reset: 29/03 BUS DEVICE RESET FUNCTION OCCURRED. Target
// (warm/cold) reset: 29/02 SCSI BUS RESET OCCURRED, the reset of the whole target port, as
// the closest SAM-5 reset class (TARGET RESET itself is obsolete in SAM-5).
void LunMap::lun_reset(std::uint64_t lun, const std::string& requesting_port) const {
  if (LogicalUnit* unit = find(lun)) unit->reset(requesting_port, 0x03);
}

void LunMap::target_reset(const std::string& requesting_port) const {
  for (const auto& [lun, unit] : units_) unit->reset(requesting_port, 0x02);
}

void LunMap::nexus_created(const std::string& initiator_port) const {
  for (const auto& [lun, unit] : units_) unit->nexus_created(initiator_port);
}

void LunMap::nexus_lost(const std::string& initiator_port) const {
  for (const auto& [lun, unit] : units_) unit->nexus_lost(initiator_port);
}

std::size_t LunMap::initiator_ports_with_state() const {
  std::size_t most = 0;
  for (const auto& [lun, unit] : units_) most = std::max(most, unit->initiator_ports_with_state());
  return most;
}

}  // namespace freevsa::scsi
