// Helpers for the login and text tests: building Login/Text Request PDUs and reading responses.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "target/login.h"
#include "target/pdu.h"
#include "target/text_keys.h"

namespace freevsa::target::testing {

inline const std::string kTargetIqn = "iqn.2024-01.org.freevsa:disk1";
inline const std::string kOtherIqn = "iqn.2024-01.org.freevsa:disk2";
inline const std::string kInitiatorIqn = "iqn.1994-05.com.redhat:client";

struct LoginPdu {
  bool transit = false;
  bool cont = false;
  int csg = 0;
  int nsg = 0;
  std::string text;
  std::uint32_t itt = 0x1234;
  std::array<std::uint8_t, 6> isid{0x80, 0x00, 0x00, 0x01, 0x02, 0x03};
  std::uint16_t tsih = 0;
  std::uint16_t cid = 1;
  std::uint32_t cmd_sn = 100;
  std::uint32_t exp_stat_sn = 7;
  std::uint8_t version_max = 0;
  std::uint8_t version_min = 0;

  Pdu build() const {
    Pdu pdu;
    pdu.bhs.set_opcode(Opcode::LoginRequest, true);
    std::uint8_t flags = static_cast<std::uint8_t>((csg & 3) << 2 | (nsg & 3));
    if (transit) flags |= 0x80;
    if (cont) flags |= 0x40;
    pdu.bhs.set_flags(flags);
    pdu.bhs.bytes[2] = version_max;
    pdu.bhs.bytes[3] = version_min;
    for (int i = 0; i < 6; ++i) pdu.bhs.bytes[8 + i] = isid[i];
    pdu.bhs.set_u16(14, tsih);
    pdu.bhs.set_initiator_task_tag(itt);
    pdu.bhs.set_u16(20, cid);
    pdu.bhs.set_u32(field::kCmdSN, cmd_sn);
    pdu.bhs.set_u32(field::kExpStatSN, exp_stat_sn);
    pdu.set_data(text);
    return pdu;
  }
};

// Text from pairs.
inline std::string kv(std::vector<KeyValue> pairs) { return format_text(pairs); }

struct LoginReply {
  std::uint16_t status = 0;
  bool transit = false;
  bool cont = false;
  int csg = 0;
  int nsg = 0;
  std::uint16_t tsih = 0;
  std::uint32_t itt = 0;
  std::uint32_t stat_sn = 0;
  std::uint32_t exp_cmd_sn = 0;
  std::uint32_t max_cmd_sn = 0;
  std::array<std::uint8_t, 6> isid{};
  std::map<std::string, std::string> keys;
  std::vector<KeyValue> pairs;
  LoginNegotiator::State state = LoginNegotiator::State::InProgress;

  bool has(const std::string& k) const { return keys.count(k) != 0; }
  std::string at(const std::string& k) const {
    auto it = keys.find(k);
    return it == keys.end() ? std::string("<absent>") : it->second;
  }
};

inline LoginReply read_reply(const LoginNegotiator::Reply& reply) {
  const Bhs& b = reply.response.bhs;
  LoginReply r;
  r.status = static_cast<std::uint16_t>(b.bytes[36] << 8 | b.bytes[37]);
  r.transit = (b.flags() & 0x80) != 0;
  r.cont = (b.flags() & 0x40) != 0;
  r.csg = (b.flags() >> 2) & 3;
  r.nsg = b.flags() & 3;
  r.tsih = b.u16(14);
  r.itt = b.initiator_task_tag();
  r.stat_sn = b.u32(field::kStatSN);
  r.exp_cmd_sn = b.u32(field::kExpCmdSN);
  r.max_cmd_sn = b.u32(field::kMaxCmdSN);
  for (int i = 0; i < 6; ++i) r.isid[i] = b.bytes[8 + i];
  auto parsed = parse_text(reply.response.data_as_string());
  r.pairs = parsed.pairs;
  for (const auto& p : parsed.pairs) r.keys[p.key] = p.value;
  r.state = reply.state;
  return r;
}

inline LoginReply send(LoginNegotiator& n, const LoginPdu& p) { return read_reply(n.on_request(p.build())); }

// Independent CHAP computation for the tests: MD5(id || secret || challenge) via EVP_Digest.
inline std::string test_chap_response(std::uint8_t id, const std::string& secret, const std::vector<std::uint8_t>& challenge) {
  std::vector<std::uint8_t> input;
  input.push_back(id);
  input.insert(input.end(), secret.begin(), secret.end());
  input.insert(input.end(), challenge.begin(), challenge.end());
  unsigned char md[16];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), md, &len, EVP_md5(), nullptr);
  static const char* hex = "0123456789ABCDEF";
  std::string out = "0x";
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

inline std::vector<std::uint8_t> test_hex_decode(const std::string& s) {
  std::vector<std::uint8_t> out;
  auto nib = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  for (std::size_t i = 2; i + 1 < s.size(); i += 2) out.push_back(static_cast<std::uint8_t>(nib(s[i]) << 4 | nib(s[i + 1])));
  return out;
}

inline TargetServerConfig basic_config() {
  TargetServerConfig config;
  TargetDefinition t;
  t.iqn = kTargetIqn;
  config.targets.push_back(t);
  TargetDefinition other;
  other.iqn = kOtherIqn;
  other.allowed_initiators = {"iqn.2000-01.com.example:only-this-one"};
  config.targets.push_back(other);
  return config;
}

inline TargetServerConfig chap_config(bool mutual) {
  TargetServerConfig config = basic_config();
  config.targets[0].chap = ChapSecret{"alice", "alice-secret-123"};
  if (mutual) config.targets[0].mutual_chap = ChapSecret{"target-user", "target-secret-456"};
  return config;
}

// Operational keys as open-iscsi sends them for a normal session.
inline std::vector<KeyValue> open_iscsi_operational_keys() {
  return {{"HeaderDigest", "None"},        {"DataDigest", "None"},          {"DefaultTime2Wait", "2"},
          {"DefaultTime2Retain", "0"},     {"IFMarker", "No"},              {"OFMarker", "No"},
          {"ErrorRecoveryLevel", "0"},     {"InitialR2T", "No"},            {"ImmediateData", "Yes"},
          {"MaxBurstLength", "16776192"},  {"FirstBurstLength", "262144"},  {"MaxOutstandingR2T", "1"},
          {"MaxConnections", "1"},         {"DataPDUInOrder", "Yes"},       {"DataSequenceInOrder", "Yes"},
          {"MaxRecvDataSegmentLength", "262144"}};
}

}  // namespace freevsa::target::testing
