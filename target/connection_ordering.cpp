// Connection: dispatch of full-feature PDUs and command ordering by CmdSN (RFC 7143 4.2.2.1,
// 3.2.2.1): commands are delivered to the SCSI layer in CmdSN order; a command ahead of
// ExpCmdSN waits for the gap to fill, one outside [ExpCmdSN, MaxCmdSN] is silently dropped.
#include "target/connection_internal.h"
#include "util/log.h"

namespace freevsa::target {

std::uint32_t Connection::max_cmd_sn() const {
  return exp_cmd_sn_ + server_.config.limits.command_window - 1;
}

Connection::Admission Connection::admit(const Bhs& bhs) {
  if (bhs.immediate()) return Admission::Process;  // immediate: not ordered, ExpCmdSN unchanged
  const std::uint32_t cmd_sn = bhs.u32(field::kCmdSN);
  if (cmd_sn == exp_cmd_sn_) {
    ++exp_cmd_sn_;
    return Admission::Process;
  }
  if (sn_less(cmd_sn, exp_cmd_sn_) || sn_less(max_cmd_sn(), cmd_sn)) {
    util::log_debug("{}: dropping opcode 0x{:02x} with CmdSN {} outside [{}, {}]", peer_,
                    static_cast<unsigned>(bhs.opcode()), cmd_sn, exp_cmd_sn_, max_cmd_sn());
    return Admission::Drop;
  }
  return Admission::Queue;
}

void Connection::hold(std::uint32_t cmd_sn, HeldCommand held) {
  // A second command with the same CmdSN is a duplicate: keep the first.
  held_.emplace(cmd_sn, std::move(held));
}

void Connection::release_held() {
  for (auto it = held_.find(exp_cmd_sn_); it != held_.end(); it = held_.find(exp_cmd_sn_)) {
    HeldCommand held = std::move(it->second);
    held_.erase(it);
    ++exp_cmd_sn_;
    if (held.scsi_registered) {
      auto task = tasks_.find(held.pdu.bhs.initiator_task_tag());
      if (task != tasks_.end()) deliver(*task->second);
    } else {
      process_ordered(held.pdu);
    }
    if (phase_ == Phase::Closed) return;
  }
}

void Connection::dispatch(Pdu& pdu) {
  if (phase_ == Phase::LoggingOut) return;  // nothing more is taken once a logout is under way
  const Opcode opcode = pdu.bhs.opcode();
  switch (opcode) {
    case Opcode::DataOut:
      handle_data_out(pdu);
      return;
    case Opcode::SnackRequest:
      // SNACK needs ErrorRecoveryLevel >= 1; we negotiate 0.
      send_reject(pdu.bhs, reject_reason::kProtocolError);
      return;
    case Opcode::NopOut:
      if (pdu.bhs.initiator_task_tag() == kReservedTag) {
        handle_nop_out(pdu);  // a ping answer carries no CmdSN of its own to order
        return;
      }
      break;
    case Opcode::ScsiCommand:
    case Opcode::TaskManagementRequest:
    case Opcode::TextRequest:
    case Opcode::LogoutRequest:
      break;
    case Opcode::LoginRequest:
      // Login is only valid on a new connection.
      send_reject(pdu.bhs, reject_reason::kProtocolError);
      return;
    default:
      send_reject(pdu.bhs, reject_reason::kCommandNotSupported);
      return;
  }
  const Admission admission = admit(pdu.bhs);
  if (admission == Admission::Drop) return;
  if (opcode == Opcode::ScsiCommand) {
    handle_scsi_command(pdu, admission);
  } else if (admission == Admission::Queue) {
    hold(pdu.bhs.u32(field::kCmdSN), HeldCommand{std::move(pdu), false});
    return;
  } else {
    process_ordered(pdu);
  }
  if (phase_ != Phase::Closed) release_held();
}

void Connection::process_ordered(Pdu& pdu) {
  switch (pdu.bhs.opcode()) {
    case Opcode::NopOut: handle_nop_out(pdu); break;
    case Opcode::TaskManagementRequest: handle_task_management(pdu); break;
    case Opcode::TextRequest: handle_text(pdu); break;
    case Opcode::LogoutRequest: handle_logout(pdu); break;
    default: break;
  }
}

}  // namespace freevsa::target
