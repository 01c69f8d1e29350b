#include "scsi/logical_unit.h"

#include "scsi/handlers.h"
#include "scsi/reservation_table.h"
#include "scsi/unit_state.h"

namespace freevsa::scsi {

LogicalUnit::LogicalUnit(replication::Volume& volume, LunIdentity identity)
    : volume_(volume),
      identity_(std::move(identity)),
      state_(std::make_unique<LogicalUnitState>()),
      reservations_(std::make_unique<ReservationTable>(volume)),
      forward_target_(std::make_shared<ForwardTarget>()) {
  forward_target_->unit = this;
  volume_.set_reservation_command_runner(
      [target = forward_target_](std::span<const std::uint8_t> request) -> std::vector<std::uint8_t> {
        std::lock_guard lock(target->mutex);
        if (target->unit == nullptr) return {};  // gone: not served here
        return run_forwarded_persistent_reserve_out(*target->unit, *target->unit->state_, request);
      });
}

// The runner stays with the volume, which may go before or after this unit: it is only told
// that this unit is gone (and a forwarded command still running is waited for).
LogicalUnit::~LogicalUnit() {
  std::lock_guard lock(forward_target_->mutex);
  forward_target_->unit = nullptr;
}

void LogicalUnit::execute(Task& task) { run(task, nullptr); }

void LogicalUnit::run(Task& task, const LunList* luns) { dispatch(task, this, state_.get(), luns); }

bool LogicalUnit::write_cache_enabled() const { return state_->write_cache_enabled(); }

void LogicalUnit::reset(const std::string& requesting_port, std::uint8_t ascq) {
  state_->reset(requesting_port, ascq);
  state_->copies().forget_all_finished();
  reservations_->reset();
}

void LogicalUnit::nexus_created(const std::string& initiator_port) {
  state_->nexus_created(initiator_port);
}

std::size_t LogicalUnit::initiator_ports_with_state() const { return state_->known_ports(); }

void LogicalUnit::nexus_lost(const std::string& initiator_port) {
  reservations_->nexus_lost(initiator_port);
  state_->nexus_lost(initiator_port);
  state_->copies().forget_finished(initiator_port);
}

}  // namespace freevsa::scsi
