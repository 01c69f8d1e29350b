// Connection: SCSI Command, Data-Out and R2T (RFC 7143 11.3, 11.7, 11.8), execution on the
// worker pool, and Data-In / SCSI Response with residuals (11.4, 11.7).
#include <algorithm>
#include <cstring>
#include <utility>

#include "scsi/lun_map.h"
#include "scsi/sense.h"
#include "target/connection_internal.h"
#include "util/log.h"

namespace freevsa::target {

namespace asio = boost::asio;

namespace {
constexpr std::uint8_t kAbortedCommand = scsi::sense_key::kAbortedCommand;
constexpr std::uint8_t kIllegalRequest = scsi::sense_key::kIllegalRequest;
}  // namespace

std::vector<std::uint8_t> fixed_sense(std::uint8_t key, std::uint8_t asc, std::uint8_t ascq) {
  return scsi::build_fixed_sense(scsi::Sense::make(key, asc, ascq));
}

void Connection::handle_scsi_command(Pdu& pdu, Admission admission) {
  const Bhs& bhs = pdu.bhs;
  if (login_.session_type != SessionType::Normal) {
    send_reject(bhs, reject_reason::kProtocolError);  // no SCSI on a discovery session
    return;
  }
  if (admission == Admission::Queue) {
    // Hold its CmdSN whatever becomes of the command, so ExpCmdSN can move past it later.
    Pdu marker;
    marker.bhs = bhs;
    hold(bhs.u32(field::kCmdSN), HeldCommand{std::move(marker), true});
  }
  const std::uint32_t itt = bhs.initiator_task_tag();
  const std::uint8_t flags = bhs.flags();
  const std::uint32_t expected = bhs.u32(20);
  const bool reads = (flags & scsi_flags::kRead) != 0;
  const bool writes = (flags & scsi_flags::kWrite) != 0;
  const std::uint32_t immediate = pdu.data_length;
  const SessionParams& session = login_.session;

  if (tasks_.count(itt) != 0) {
    send_reject(bhs, reject_reason::kTaskInProgress);
    return;
  }
  if (immediate > 0 && (!writes || !session.immediate_data || immediate > expected ||
                        immediate > session.first_burst_length)) {
    util::log_warn("{}: SCSI command ITT 0x{:08x} carries {} bytes of data it may not; rejected", peer_, itt, immediate);
    send_reject(bhs, reject_reason::kProtocolError);
    return;
  }
  if (tasks_.size() >= kMaxTasksPerConnection) {
    send_scsi_response(ScsiResponse{itt, scsi::Status::TaskSetFull, 0, 0, 0, {}});
    return;
  }
  if ((reads && writes) || expected > kMaxTransferBytes) {
    // Bidirectional commands and transfers beyond our limit: refuse the command, not the session.
    send_check_condition(itt, expected, fixed_sense(kIllegalRequest, 0x24, 0x00));
    return;
  }
  // Immediate data was read into a buffer only if its grant was taken (data_destination).
  std::optional<DataOutGrant> grant = std::exchange(incoming_grant_, std::nullopt);
  if (writes && expected > 0 && !grant) {
    if (immediate == 0) grant = take_data_out(expected);
    if (!grant) {
      if (auto suppressed = budget_log_.admit()) {
        util::log_warn("{}: write ITT 0x{:08x} of {} bytes answered TASK SET FULL: Data-Out buffers in use {} of {} "
                       "bytes on this connection, {} of {} in the target{}",
                       peer_, itt, expected, data_out_budget_->in_use(), data_out_budget_->limit(),
                       server_.data_out->in_use(), server_.data_out->limit(),
                       util::LogThrottle::note(*suppressed));
      }
      send_scsi_response(ScsiResponse{itt, scsi::Status::TaskSetFull, 0, 0, 0, {}});
      return;
    }
  }

  auto task = std::make_shared<ScsiTask>();
  task->itt = itt;
  task->cmd_sn = bhs.u32(field::kCmdSN);
  task->lun_field = bhs.lun_field();
  task->lun = decode_lun(task->lun_field);
  task->reads = reads;
  task->writes = writes && expected > 0;
  task->expected_length = expected;
  scsi::Task& t = task->task;
  t.lun = task->lun;
  std::memcpy(t.cdb.data(), &bhs.bytes[32], 16);
  t.cdb_length = 16;
  t.attribute = static_cast<scsi::TaskAttribute>(flags & scsi_flags::kAttributeMask);
  t.initiator_port = initiator_port_;
  t.expected_data_in_length = reads ? expected : 0;
  task->last_data_out = last_receive_;
  if (task->writes) {
    task->buffer_grant = std::move(*grant);
    if (pdu.data.size() >= expected) {
      t.data_out = std::move(pdu.data);  // immediate data already sits at offset 0
    } else {
      t.data_out = util::AlignedBuffer(expected);
    }
    task->received = immediate;
    task->unsolicited_next = immediate;
    const bool final = (flags & scsi_flags::kFinal) != 0;
    task->unsolicited_end =
        (!final && !session.initial_r2t) ? std::min(session.first_burst_length, expected) : immediate;
    task->next_r2t_offset = task->unsolicited_end;
  }
  tasks_[itt] = task;
  if (admission == Admission::Process) deliver(*task);
}

void Connection::deliver(ScsiTask& task) {
  task.delivered = true;
  if (task.writes) send_r2ts(task);
  maybe_execute(task);
}

void Connection::send_r2ts(ScsiTask& task) {
  const SessionParams& session = login_.session;
  while (task.bursts.size() < session.max_outstanding_r2t && task.next_r2t_offset < task.expected_length) {
    const std::uint32_t length = std::min(session.max_burst_length, task.expected_length - task.next_r2t_offset);
    std::uint32_t ttt = next_ttt_++;
    if (next_ttt_ == kReservedTag) next_ttt_ = 1;
    task.bursts[ttt] = ScsiTask::Burst{task.next_r2t_offset, length, task.next_r2t_offset, 0};
    r2t_owner_[ttt] = task.itt;
    OutPdu r2t;
    r2t.bhs.set_opcode(Opcode::ReadyToTransfer);
    r2t.bhs.set_flags(0x80);
    r2t.bhs.set_lun_field(task.lun_field);
    r2t.bhs.set_initiator_task_tag(task.itt);
    r2t.bhs.set_u32(field::kTargetTransferTag, ttt);
    stamp(r2t.bhs, false);
    r2t.bhs.set_u32(36, task.r2t_sn++);
    r2t.bhs.set_u32(40, task.next_r2t_offset);
    r2t.bhs.set_u32(44, length);
    send(std::move(r2t));
    task.next_r2t_offset += length;
  }
}

void Connection::handle_data_out(Pdu& pdu) {
  const Bhs& bhs = pdu.bhs;
  const std::uint32_t itt = bhs.initiator_task_tag();
  auto found = tasks_.find(itt);
  if (found == tasks_.end() || !found->second->writes || found->second->executing) {
    // Data for a task that ended (aborted, failed) or never existed: nothing to write it to.
    util::log_debug("{}: Data-Out for unknown ITT 0x{:08x} ignored", peer_, itt);
    return;
  }
  ScsiTask& task = *found->second;
  const std::uint32_t ttt = bhs.u32(field::kTargetTransferTag);
  const std::uint32_t data_sn = bhs.u32(36);
  const std::uint32_t offset = bhs.u32(40);
  const std::uint32_t length = bhs.data_segment_length();
  const bool final = bhs.final_bit();
  const bool landed = data_out_task_.get() == &task;  // data_destination() put it in the task buffer

  std::vector<std::uint8_t> error;
  if (!landed && length > 0) {
    error = fixed_sense(kAbortedCommand, 0x4b, 0x05);  // DATA OFFSET ERROR
  } else if (ttt == kReservedTag) {
    if (offset != task.unsolicited_next || offset + length > task.unsolicited_end) {
      error = fixed_sense(kAbortedCommand, 0x4b, 0x05);
    } else if (data_sn != task.unsolicited_data_sn) {
      error = fixed_sense(kAbortedCommand, 0x4b, 0x00);  // DATA PHASE ERROR
    } else {
      task.unsolicited_next += length;
      ++task.unsolicited_data_sn;
      task.received += length;
      task.last_data_out = last_receive_;
    }
  } else {
    auto burst_it = task.bursts.find(ttt);
    if (burst_it == task.bursts.end()) {
      error = fixed_sense(kAbortedCommand, 0x4b, 0x01);  // INVALID TARGET PORT TRANSFER TAG RECEIVED
    } else {
      ScsiTask::Burst& burst = burst_it->second;
      const std::uint32_t end = burst.offset + burst.length;
      if (offset != burst.next_offset || offset + length > end) {
        error = fixed_sense(kAbortedCommand, 0x4b, 0x05);
      } else if (data_sn != burst.data_sn) {
        error = fixed_sense(kAbortedCommand, 0x4b, 0x00);
      } else if (final != (offset + length == end)) {
        error = fixed_sense(kAbortedCommand, 0x4b, 0x00);  // the F bit must close the burst exactly
      } else {
        burst.next_offset += length;
        ++burst.data_sn;
        task.received += length;
        task.last_data_out = last_receive_;
        if (burst.next_offset == end) {
          task.bursts.erase(burst_it);
          r2t_owner_.erase(ttt);
        }
      }
    }
  }
  if (!error.empty()) {
    util::log_warn("{}: Data-Out sequence error for ITT 0x{:08x} (TTT 0x{:08x}, DataSN {}, offset {}, length {}); "
                   "command failed",
                   peer_, itt, ttt, data_sn, offset, length);
    send_check_condition(itt, task.expected_length, std::move(error));
    finish_task(itt);
    return;
  }
  if (task.delivered) send_r2ts(task);
  maybe_execute(task);
}

void Connection::maybe_execute(ScsiTask& task) {
  if (!task.delivered || task.executing || task.aborted || !task.data_complete()) return;
  task.executing = true;
  ++executing_;
  task.task.data_out_length = task.writes ? std::min(task.received, task.expected_length) : 0;
  std::shared_ptr<ScsiTask> shared = tasks_.at(task.itt);
  auto self = shared_from_this();
  const scsi::LunMap* luns = login_.target->luns.get();
  server_.workers.post([self, shared, luns] {
    luns->execute(shared->task);
    asio::post(self->socket_.get_executor(), [self, shared] { self->on_task_done(shared); });
  });
}

void Connection::on_task_done(const std::shared_ptr<ScsiTask>& task) {
  task->executing = false;
  --executing_;
  if (phase_ == Phase::Closed) {
    if (executing_ == 0) end_nexus();
    return;
  }
  if (task->aborted) {
    aborted_executing_.erase(task->itt);
    settle_tmfs();
    return;
  }
  if (phase_ != Phase::LoggingOut) send_scsi_result(*task);
  finish_task(task->itt);
}

void Connection::send_scsi_result(ScsiTask& task) {
  const scsi::Task& t = task.task;
  const ConnectionParams& connection = login_.connection;
  const SessionParams& session = login_.session;

  // Residuals (RFC 7143 11.4.5): what the command wanted against what the initiator expected.
  std::uint8_t residual_flags = 0;
  std::uint32_t residual = 0;
  std::uint32_t produced = 0;
  if (task.reads || (!task.writes && t.data_in_length > 0)) {
    produced = t.data_in_length;
  } else if (task.writes || t.data_out_needed > 0) {
    produced = t.data_out_needed;
  }
  if (produced > task.expected_length) {
    residual_flags = 0x04;  // O: overflow
    residual = produced - task.expected_length;
  } else if (produced < task.expected_length) {
    residual_flags = 0x02;  // U: underflow
    residual = task.expected_length - produced;
  }

  const std::uint32_t data_length = task.reads ? std::min(t.data_in_length, task.expected_length) : 0;
  const bool collapse_status = t.status == scsi::Status::Good && t.sense.empty();
  std::uint32_t offset = 0;
  std::uint32_t burst_used = 0;
  std::uint32_t data_sn = 0;
  auto shared = tasks_.at(task.itt);
  while (offset < data_length) {
    const std::uint32_t room_in_burst = session.max_burst_length - burst_used;
    const std::uint32_t length =
        std::min({connection.max_send_data_segment_length, data_length - offset, room_in_burst});
    const bool last = offset + length == data_length;
    burst_used += length;
    const bool end_of_burst = last || burst_used == session.max_burst_length;
    if (end_of_burst) burst_used = 0;
    OutPdu pdu;
    pdu.bhs.set_opcode(Opcode::DataIn);
    std::uint8_t flags = end_of_burst ? 0x80 : 0x00;
    if (last && collapse_status) flags |= 0x01 | residual_flags;  // S: status travels with the data
    pdu.bhs.set_flags(flags);
    if (last && collapse_status) pdu.bhs.bytes[3] = static_cast<std::uint8_t>(t.status);
    pdu.bhs.set_lun_field(0);
    pdu.bhs.set_initiator_task_tag(task.itt);
    pdu.bhs.set_u32(field::kTargetTransferTag, kReservedTag);
    stamp(pdu.bhs, last && collapse_status);
    pdu.bhs.set_u32(36, data_sn++);
    pdu.bhs.set_u32(40, offset);
    if (last && collapse_status) pdu.bhs.set_u32(44, residual);
    pdu.data = t.data_in.data() + offset;
    pdu.data_length = length;
    pdu.keepalive = shared;
    send(std::move(pdu));
    offset += length;
  }
  task.data_in_pdus = data_sn;
  if (data_length > 0 && collapse_status) return;

  send_scsi_response(ScsiResponse{task.itt, t.status, residual_flags, residual,
                                   task.reads ? task.data_in_pdus : task.r2t_sn, t.sense});
}

void Connection::send_check_condition(std::uint32_t itt, std::uint32_t expected_length, std::vector<std::uint8_t> sense) {
  // Nothing of the transfer happened: all of it is residual.
  send_scsi_response(ScsiResponse{itt, scsi::Status::CheckCondition,
                                  static_cast<std::uint8_t>(expected_length > 0 ? 0x02 : 0x00), expected_length, 0,
                                  sense});
}

void Connection::send_scsi_response(const ScsiResponse& r) {
  OutPdu response;
  response.bhs.set_opcode(Opcode::ScsiResponse);
  response.bhs.set_flags(static_cast<std::uint8_t>(0x80 | r.residual_flags));
  response.bhs.bytes[2] = 0;  // command completed at target
  response.bhs.bytes[3] = static_cast<std::uint8_t>(r.status);
  response.bhs.set_initiator_task_tag(r.itt);
  stamp(response.bhs, true);
  response.bhs.set_u32(36, r.exp_data_sn);
  response.bhs.set_u32(44, r.residual);
  if (!r.sense.empty()) {
    // The data segment is SenseLength followed by the sense data (RFC 7143 11.4.7).
    const auto sense_length = static_cast<std::uint16_t>(std::min<std::size_t>(r.sense.size(), 252));
    response.owned = util::AlignedBuffer(2u + sense_length);
    util::put_be16(response.owned.data(), sense_length);
    std::memcpy(response.owned.data() + 2, r.sense.data(), sense_length);
    response.data = response.owned.data();
    response.data_length = 2u + sense_length;
  }
  send(std::move(response));
}

std::optional<DataOutGrant> Connection::take_data_out(std::uint32_t bytes) {
  return DataOutGrant::take(data_out_budget_, server_.data_out, bytes);
}

void Connection::expire_stalled_writes(std::chrono::steady_clock::time_point now) {
  const auto timeout = std::chrono::seconds(server_.config.resources.data_out_timeout_seconds);
  std::vector<std::uint32_t> stalled;
  for (const auto& [itt, task] : tasks_) {
    if (task->writes && !task->executing && !task->aborted && !task->data_complete() &&
        now - task->last_data_out >= timeout) {
      stalled.push_back(itt);
    }
  }
  if (stalled.empty()) return;
  util::log_warn("{}: {} write(s) got no Data-Out for {} s (ITT 0x{:08x}{}); failed with INITIATOR RESPONSE TIMEOUT, "
                 "their buffers freed",
                 peer_, stalled.size(), timeout.count(), stalled.front(), stalled.size() > 1 ? ", ..." : "");
  for (std::uint32_t itt : stalled) {
    // ABORTED COMMAND / INITIATOR RESPONSE TIMEOUT (SPC-4 table F.1)
    send_check_condition(itt, tasks_.at(itt)->expected_length, fixed_sense(kAbortedCommand, 0x4b, 0x06));
    finish_task(itt);
  }
}

void Connection::finish_task(std::uint32_t itt) {
  auto it = tasks_.find(itt);
  if (it == tasks_.end()) return;
  for (const auto& [ttt, burst] : it->second->bursts) r2t_owner_.erase(ttt);
  tasks_.erase(it);
}

}  // namespace freevsa::target
