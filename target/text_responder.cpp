// TextResponder: full-feature-phase Text requests (RFC 7143 11.10, 11.11, Appendix C).
//
// SendTargets=All lists every target the initiator may see (ACLs); SendTargets=<iqn> only that
// target; SendTargets= (empty) on a normal session the session's own target. Each target is a
// TargetName record followed by one TargetAddress=<address>:<port>,<tpgt> per portal (IPv6 in
// brackets; a wildcard portal advertises the connection's local address).
// Answers longer than the initiator's MaxRecvDataSegmentLength are split over several Text
// Responses with C=1, F=0 and a TTT the initiator echoes in empty Text Requests to get the rest.
#include <algorithm>

#include "target/login.h"
#include "target/negotiation.h"
#include "target/text_keys.h"

namespace freevsa::target {

namespace {

constexpr std::size_t kMaxRequestText = 64 * 1024;
constexpr std::uint8_t kRejectProtocolError = 0x04;
constexpr std::uint8_t kRejectInvalidPduField = 0x09;

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

bool initiator_allowed(const TargetDefinition& target, const std::string& initiator) {
  const auto& allowed = target.allowed_initiators;
  return allowed.empty() ||
         std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) { return iequals(a, initiator); });
}

std::string bracket_if_ipv6(const std::string& address) {
  if (address.find(':') != std::string::npos && !address.starts_with("[")) return "[" + address + "]";
  return address;
}

Pdu make_reject(const Pdu& request, std::uint8_t reason) {
  Pdu pdu;
  pdu.bhs.set_opcode(Opcode::Reject);
  pdu.bhs.set_flags(0x80);
  pdu.bhs.bytes[2] = reason;
  pdu.bhs.set_initiator_task_tag(kReservedTag);
  pdu.set_data(std::string(reinterpret_cast<const char*>(request.bhs.bytes.data()), kBhsLength));
  return pdu;
}

}  // namespace

struct TextResponder::Impl {
  const TargetServerConfig& config;
  LoginResult login;
  std::string local_address;
  std::uint32_t next_tag = 1;

  // An initiator text continued over several requests (C=1).
  bool collecting = false;
  std::uint32_t collect_ttt = kReservedTag;
  std::string request_text;

  // Our answer continued over several responses.
  bool replying = false;
  std::uint32_t reply_ttt = kReservedTag;
  std::uint32_t reply_itt = 0;
  std::string reply;
  std::size_t reply_pos = 0;

  Impl(const TargetServerConfig& c, const LoginResult& l, std::string local)
      : config(c), login(l), local_address(std::move(local)) {}

  std::uint32_t new_tag() {
    std::uint32_t tag = next_tag++;
    if (next_tag == kReservedTag) next_tag = 1;
    return tag;
  }

  void append_target(const TargetDefinition& target, std::vector<KeyValue>& out) const {
    out.push_back({"TargetName", target.iqn});
    for (const auto& portal : config.portals) {
      std::string address = portal.address;
      if (address.empty() || address == "0.0.0.0" || address == "::" || address == "[::]") address = local_address;
      if (address.empty()) continue;
      out.push_back({"TargetAddress", bracket_if_ipv6(address) + ":" + std::to_string(portal.port) + "," +
                                          std::to_string(config.target_portal_group_tag)});
    }
  }

  void send_targets(const std::string& value, std::vector<KeyValue>& out) const {
    if (value == "All") {
      for (const auto& t : config.targets)
        if (initiator_allowed(t, login.initiator_name)) append_target(t, out);
    } else if (value.empty()) {
      if (login.session_type == SessionType::Normal && login.target) append_target(*login.target, out);
    } else {
      for (const auto& t : config.targets)
        if (iequals(t.iqn, value) && initiator_allowed(t, login.initiator_name)) append_target(t, out);
    }
  }

  Pdu text_response(const TextRequestFields& f, bool final, bool cont, std::uint32_t ttt, const std::string& data) {
    TextResponseFields r;
    r.final = final;
    r.cont = cont;
    r.lun = f.lun;
    r.itt = f.itt;
    r.ttt = ttt;
    Pdu pdu;
    pdu.bhs = encode_text_response(r);
    pdu.set_data(data);
    return pdu;
  }

  Pdu next_reply_piece(const TextRequestFields& f) {
    const std::size_t limit = std::max<std::uint32_t>(login.connection.max_send_data_segment_length, 512);
    const std::size_t left = reply.size() - reply_pos;
    if (left <= limit) {
      std::string piece = reply.substr(reply_pos);
      replying = false;
      reply.clear();
      reply_pos = 0;
      return text_response(f, true, false, kReservedTag, piece);
    }
    std::string piece = reply.substr(reply_pos, limit);
    reply_pos += limit;
    return text_response(f, false, true, reply_ttt, piece);
  }

  Pdu answer(const Pdu& request, const TextRequestFields& f, const std::string& text) {
    ParsedText parsed = parse_text(text);
    if (!parsed.ok()) return make_reject(request, kRejectProtocolError);
    std::vector<KeyValue> out;
    for (const auto& kv : parsed.pairs) {
      if (kv.key == "SendTargets") {
        send_targets(kv.value, out);
      } else if (is_operational_key(kv.key) || kv.key == "InitiatorName" || kv.key == "TargetName" ||
                 kv.key == "SessionType" || kv.key == "AuthMethod" || kv.key.starts_with("CHAP_")) {
        out.push_back({kv.key, std::string(kReject)});  // login-only keys: no renegotiation
      } else {
        out.push_back({kv.key, std::string(kNotUnderstood)});
      }
    }
    reply = format_text(out);
    reply_pos = 0;
    replying = true;
    reply_ttt = new_tag();
    reply_itt = f.itt;
    return next_reply_piece(f);
  }

  Pdu on_request(const Pdu& request) {
    const TextRequestFields f = decode_text_request(request.bhs);
    const std::string data(reinterpret_cast<const char*>(request.data.data()),
                           std::min<std::size_t>(request.data_length, request.data.size()));
    if (request.bhs.opcode() != Opcode::TextRequest) return make_reject(request, kRejectProtocolError);
    if (f.final && f.cont) return make_reject(request, kRejectProtocolError);

    if (f.ttt != kReservedTag) {
      if (replying && f.ttt == reply_ttt && f.itt == reply_itt) return next_reply_piece(f);
      if (collecting && f.ttt == collect_ttt) return collect(request, f, data);
      return make_reject(request, kRejectInvalidPduField);
    }
    // A new exchange resets whatever was pending (RFC 7143 11.10.4).
    replying = false;
    reply.clear();
    collecting = false;
    request_text.clear();
    return collect(request, f, data);
  }

  Pdu collect(const Pdu& request, const TextRequestFields& f, const std::string& data) {
    request_text += data;
    if (request_text.size() > kMaxRequestText) {
      collecting = false;
      request_text.clear();
      return make_reject(request, kRejectProtocolError);
    }
    if (f.cont) {
      if (!collecting) {
        collecting = true;
        collect_ttt = new_tag();
      }
      return text_response(f, false, false, collect_ttt, "");
    }
    collecting = false;
    std::string text = std::move(request_text);
    request_text.clear();
    return answer(request, f, text);
  }
};

TextResponder::TextResponder(const TargetServerConfig& config, const LoginResult& login, std::string local_address)
    : impl_(std::make_unique<Impl>(config, login, std::move(local_address))) {}

TextResponder::~TextResponder() = default;

Pdu TextResponder::on_request(const Pdu& request) { return impl_->on_request(request); }

}  // namespace freevsa::target
