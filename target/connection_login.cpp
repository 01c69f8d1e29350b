// Connection: login, text, logout and NOP-Out.
#include <fmt/format.h>

#include <cstring>

#include "target/connection_internal.h"
#include "util/log.h"

namespace freevsa::target {

namespace {
std::string isid_hex(const std::array<std::uint8_t, 6>& isid) {
  std::string out;
  for (auto b : isid) out += fmt::format("{:02x}", b);
  return out;
}
}  // namespace

void Connection::handle_login(Pdu& pdu) {
  LoginNegotiator::Reply reply = negotiator_->on_request(pdu);
  OutPdu out;
  out.bhs = reply.response.bhs;
  out.owned = std::move(reply.response.data);
  out.data = out.owned.data();
  out.data_length = reply.response.data_length;
  send(std::move(out));
  if (reply.state == LoginNegotiator::State::Complete) {
    enter_full_feature(negotiator_->result());
  } else if (reply.state == LoginNegotiator::State::Failed) {
    close_after_write_ = true;
    phase_ = Phase::LoggingOut;  // read nothing more; close once the answer is out
  }
}

void Connection::enter_full_feature(const LoginResult& negotiated) {
  login_ = negotiated;  // copy first: the negotiator that owns `negotiated` is released below
  const LoginResult& result = login_;
  stat_sn_ = result.next_stat_sn;
  exp_cmd_sn_ = result.exp_cmd_sn;
  tsih_ = result.tsih;
  phase_ = Phase::FullFeature;
  initiator_port_ = fmt::format("{},i,0x{}", result.initiator_name, isid_hex(result.isid));
  text_ = std::make_unique<TextResponder>(server_.config, login_, local_address_);
  negotiator_.reset();
  const bool discovery = result.session_type == SessionType::Discovery;
  session_key_ = fmt::format("{},{},{}", result.initiator_name, isid_hex(result.isid),
                             discovery ? std::string("discovery") : result.target->iqn);
  auto replaced = server_.sessions.register_session(session_key_, tsih_, weak_from_this());
  registered_ = true;
  if (replaced && replaced.get() != this) replaced->close("session reinstated by a new login with the same ISID");
  if (!discovery) result.target->luns->nexus_created(initiator_port_);
  util::log_info("{}: {} session for {} ({}) {}, TSIH {}, digests header={} data={}, MaxRecvDSL {}/{}", peer_,
                 discovery ? "discovery" : "normal", result.initiator_name, result.initiator_alias,
                 discovery ? std::string() : "to " + result.target->iqn, tsih_,
                 result.connection.header_digest ? "CRC32C" : "None", result.connection.data_digest ? "CRC32C" : "None",
                 result.connection.max_recv_data_segment_length, result.connection.max_send_data_segment_length);
}

void Connection::handle_text(Pdu& pdu) {
  Pdu response = text_->on_request(pdu);
  OutPdu out;
  out.bhs = response.bhs;
  stamp(out.bhs, true);
  out.owned = std::move(response.data);
  out.data = out.owned.data();
  out.data_length = response.data_length;
  send(std::move(out));
}

void Connection::handle_logout(Pdu& pdu) {
  const std::uint8_t reason = pdu.bhs.flags() & 0x7f;
  std::uint8_t response = 0;  // connection or session closed successfully
  if (reason == 2) {
    response = 2;  // connection recovery is not supported at ErrorRecoveryLevel 0
  } else if (reason > 2) {
    send_reject(pdu.bhs, reject_reason::kInvalidPduField);
    return;
  }
  OutPdu out;
  out.bhs.set_opcode(Opcode::LogoutResponse);
  out.bhs.set_flags(0x80);
  out.bhs.bytes[2] = response;
  out.bhs.set_initiator_task_tag(pdu.bhs.initiator_task_tag());
  stamp(out.bhs, true);
  send(std::move(out));
  if (response == 0) {
    util::log_info("{}: {} logged out", peer_, login_.initiator_name);
    phase_ = Phase::LoggingOut;
    close_after_write_ = true;
  }
}

void Connection::handle_nop_out(Pdu& pdu) {
  const std::uint32_t itt = pdu.bhs.initiator_task_tag();
  if (itt == kReservedTag) {
    // The initiator's answer to our ping (or a ping that wants no answer).
    if (pdu.bhs.u32(field::kTargetTransferTag) == ping_ttt_) ping_ttt_ = kReservedTag;
    return;
  }
  OutPdu out;
  out.bhs.set_opcode(Opcode::NopIn);
  out.bhs.set_flags(0x80);
  out.bhs.set_lun_field(pdu.bhs.lun_field());
  out.bhs.set_initiator_task_tag(itt);
  out.bhs.set_u32(field::kTargetTransferTag, kReservedTag);
  stamp(out.bhs, true);
  // Echo the ping data.
  out.data_length = std::min(pdu.data_length, login_.connection.max_send_data_segment_length);
  out.owned = std::move(pdu.data);
  out.data = out.owned.data();
  send(std::move(out));
}

}  // namespace freevsa::target
