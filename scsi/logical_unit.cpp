#include "scsi/logical_unit.h"

#include "scsi/handlers.h"
#include "scsi/unit_state.h"

namespace freevsa::scsi {

LogicalUnit::LogicalUnit(replication::Volume& volume, LunIdentity identity)
    : volume_(volume), identity_(std::move(identity)), state_(std::make_unique<LogicalUnitState>()) {}

LogicalUnit::~LogicalUnit() = default;

void LogicalUnit::execute(Task& task) { run(task, nullptr); }

void LogicalUnit::run(Task& task, const LunList* luns) { dispatch(task, this, state_.get(), luns); }

bool LogicalUnit::write_cache_enabled() const { return state_->write_cache_enabled(); }

void LogicalUnit::reset(const std::string& requesting_port, std::uint8_t ascq) {
  state_->reset(requesting_port, ascq);
}

void LogicalUnit::nexus_created(const std::string& initiator_port) {
  state_->nexus_created(initiator_port);
}

}  // namespace freevsa::scsi
