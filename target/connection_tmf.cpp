// Connection: task management (RFC 7143 11.5/11.6). An aborted task never gets a response; a
// task already on a worker is waited for, and the TMF response goes out only when every task it
// aborted is gone (SAM-5: the function is complete when the tasks no longer exist).
#include "scsi/lun_map.h"
#include "target/connection_internal.h"
#include "util/log.h"

namespace freevsa::target {

namespace {
namespace tmf {
constexpr std::uint8_t kAbortTask = 1;
constexpr std::uint8_t kAbortTaskSet = 2;
constexpr std::uint8_t kClearAca = 3;
constexpr std::uint8_t kClearTaskSet = 4;
constexpr std::uint8_t kLogicalUnitReset = 5;
constexpr std::uint8_t kTargetWarmReset = 6;
constexpr std::uint8_t kTargetColdReset = 7;
constexpr std::uint8_t kTaskReassign = 8;
}  // namespace tmf

namespace tmf_response {
constexpr std::uint8_t kComplete = 0;
constexpr std::uint8_t kTaskDoesNotExist = 1;
constexpr std::uint8_t kLunDoesNotExist = 2;
constexpr std::uint8_t kReassignNotSupported = 4;
constexpr std::uint8_t kNotSupported = 5;
constexpr std::uint8_t kRejected = 255;
}  // namespace tmf_response
}  // namespace

void Connection::handle_task_management(Pdu& pdu) {
  const Bhs& bhs = pdu.bhs;
  auto tmf_state = std::make_unique<PendingTmf>();
  PendingTmf& tmf = *tmf_state;
  tmf.itt = bhs.initiator_task_tag();
  tmf.function = bhs.flags() & 0x7f;
  tmf.referenced_itt = bhs.u32(20);
  tmf.response = tmf_response::kComplete;

  const scsi::LunMap* luns = login_.target ? login_.target->luns.get() : nullptr;
  tmf.lun = decode_lun(bhs.lun_field());
  const auto same_task = [&tmf](const ScsiTask& task) { return task.itt == tmf.referenced_itt; };
  const auto same_lun = [&tmf](const ScsiTask& task) { return task.lun == tmf.lun; };
  const auto any_task = [](const ScsiTask&) { return true; };

  if (luns == nullptr) {
    tmf.response = tmf_response::kRejected;
  } else {
    switch (tmf.function) {
      case tmf::kAbortTask: {
        auto it = tasks_.find(tmf.referenced_itt);
        if (it == tasks_.end()) {
          tmf.response = tmf_response::kTaskDoesNotExist;
        } else {
          abort_tasks_matching(tmf, same_task);
        }
        break;
      }
      case tmf::kAbortTaskSet:
      case tmf::kClearTaskSet:
        abort_tasks_matching(tmf, same_lun);
        break;
      case tmf::kLogicalUnitReset:
        if (luns->find(tmf.lun) == nullptr) {
          tmf.response = tmf_response::kLunDoesNotExist;
          break;
        }
        abort_tasks_matching(tmf, same_lun);
        luns->lun_reset(tmf.lun, initiator_port_);
        util::log_info("{}: LUN {} reset by {}", peer_, tmf.lun, login_.initiator_name);
        break;
      case tmf::kTargetWarmReset:
      case tmf::kTargetColdReset:
        abort_tasks_matching(tmf, any_task);
        luns->target_reset(initiator_port_);
        util::log_info("{}: target {} reset by {}", peer_, login_.target->iqn, login_.initiator_name);
        // A cold reset also ends the connections (RFC 7143 11.5.1).
        tmf.close_after = tmf.function == tmf::kTargetColdReset;
        break;
      case tmf::kTaskReassign:
        tmf.response = tmf_response::kReassignNotSupported;
        break;
      case tmf::kClearAca:
      default:
        tmf.response = tmf_response::kNotSupported;
        break;
    }
  }
  tmfs_.push_back(std::move(tmf_state));
  settle_tmfs();
}

void Connection::abort_tasks_matching(PendingTmf& tmf, const std::function<bool(const ScsiTask&)>& match) {
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    ScsiTask& task = *it->second;
    if (!match(task)) {
      ++it;
      continue;
    }
    task.aborted = true;
    if (task.executing) {
      tmf.waiting_for.insert(task.itt);
      aborted_executing_.insert(task.itt);
    }
    for (const auto& [ttt, burst] : task.bursts) r2t_owner_.erase(ttt);
    it = tasks_.erase(it);
  }
}

void Connection::settle_tmfs() {
  // Forget tasks that came back from the workers since the TMF was taken.
  for (auto& tmf : tmfs_) {
    std::erase_if(tmf->waiting_for, [this](std::uint32_t itt) { return aborted_executing_.count(itt) == 0; });
  }
  // Responses go out in the order the TMFs arrived.
  while (!tmfs_.empty() && tmfs_.front()->waiting_for.empty()) {
    PendingTmf& tmf = *tmfs_.front();
    OutPdu out;
    out.bhs.set_opcode(Opcode::TaskManagementResponse);
    out.bhs.set_flags(0x80);
    out.bhs.bytes[2] = tmf.response;
    out.bhs.set_initiator_task_tag(tmf.itt);
    stamp(out.bhs, true);
    send(std::move(out));
    if (tmf.close_after) {
      phase_ = Phase::LoggingOut;
      close_after_write_ = true;
    }
    tmfs_.erase(tmfs_.begin());
  }
}

}  // namespace freevsa::target
