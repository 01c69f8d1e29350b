#include "target/pdu.h"

#include <cstring>

namespace freevsa::target {

void Pdu::set_data(const std::string& text) {
  data = util::AlignedBuffer(text.size());
  if (!text.empty()) std::memcpy(data.data(), text.data(), text.size());
  data_length = static_cast<std::uint32_t>(text.size());
  bhs.set_data_segment_length(data_length);
}

std::uint64_t decode_lun(std::uint64_t field) {
  const auto first = static_cast<std::uint8_t>(field >> 56);
  const auto second = static_cast<std::uint8_t>(field >> 48);
  const std::uint64_t rest = field & 0x0000ffffffffffffull;
  if (rest != 0) return kNoSuchLun;  // a second addressing level: not ours
  switch (first >> 6) {
    case 0: return first == 0 ? second : kNoSuchLun;  // peripheral: bus identifier must be 0
    case 1: return (std::uint64_t{first & 0x3fu} << 8) | second;
    default: return kNoSuchLun;
  }
}

LoginRequestFields decode_login_request(const Bhs& bhs) {
  LoginRequestFields f;
  const auto flags = bhs.flags();
  f.transit = (flags & 0x80) != 0;
  f.cont = (flags & 0x40) != 0;
  f.current_stage = static_cast<LoginStage>((flags >> 2) & 0x3);
  f.next_stage = static_cast<LoginStage>(flags & 0x3);
  f.version_max = bhs.bytes[2];
  f.version_min = bhs.bytes[3];
  std::memcpy(f.isid.data(), &bhs.bytes[8], 6);
  f.tsih = bhs.u16(14);
  f.itt = bhs.initiator_task_tag();
  f.cid = bhs.u16(20);
  f.cmd_sn = bhs.u32(field::kCmdSN);
  f.exp_stat_sn = bhs.u32(field::kExpStatSN);
  return f;
}

Bhs encode_login_response(const LoginResponseFields& f) {
  Bhs bhs;
  bhs.set_opcode(Opcode::LoginResponse);
  std::uint8_t flags = static_cast<std::uint8_t>((static_cast<std::uint8_t>(f.current_stage) & 0x3) << 2);
  if (f.transit) flags |= 0x80 | (static_cast<std::uint8_t>(f.next_stage) & 0x3);
  if (f.cont) flags |= 0x40;
  bhs.set_flags(flags);
  bhs.bytes[2] = 0x00;  // VersionMax
  bhs.bytes[3] = 0x00;  // VersionActive
  std::memcpy(&bhs.bytes[8], f.isid.data(), 6);
  bhs.set_u16(14, f.tsih);
  bhs.set_initiator_task_tag(f.itt);
  bhs.set_u32(field::kStatSN, f.stat_sn);
  bhs.set_u32(field::kExpCmdSN, f.exp_cmd_sn);
  bhs.set_u32(field::kMaxCmdSN, f.max_cmd_sn);
  bhs.bytes[36] = f.status_class;
  bhs.bytes[37] = f.status_detail;
  return bhs;
}

TextRequestFields decode_text_request(const Bhs& bhs) {
  TextRequestFields f;
  f.final = (bhs.flags() & 0x80) != 0;
  f.cont = (bhs.flags() & 0x40) != 0;
  f.lun = bhs.lun_field();
  f.itt = bhs.initiator_task_tag();
  f.ttt = bhs.u32(field::kTargetTransferTag);
  f.cmd_sn = bhs.u32(field::kCmdSN);
  f.exp_stat_sn = bhs.u32(field::kExpStatSN);
  return f;
}

Bhs encode_text_response(const TextResponseFields& f) {
  Bhs bhs;
  bhs.set_opcode(Opcode::TextResponse);
  std::uint8_t flags = 0;
  if (f.final) flags |= 0x80;
  if (f.cont) flags |= 0x40;
  bhs.set_flags(flags);
  bhs.set_lun_field(f.lun);
  bhs.set_initiator_task_tag(f.itt);
  bhs.set_u32(field::kTargetTransferTag, f.ttt);
  bhs.set_u32(field::kStatSN, f.stat_sn);
  bhs.set_u32(field::kExpCmdSN, f.exp_cmd_sn);
  bhs.set_u32(field::kMaxCmdSN, f.max_cmd_sn);
  return bhs;
}

}  // namespace freevsa::target
