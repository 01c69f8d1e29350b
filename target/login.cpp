// LoginNegotiator: the login phase state machine (RFC 7143 sections 6.3, 11.12, 11.13).
//
// Decisions (see also negotiation.h and chap.h):
// - StatSN of the first Login Response is the first request's ExpStatSN (open-iscsi and
//   libiscsi take whatever the first response carries), then +1 per response (RFC 7143 11.13.4).
// - A login with TSIH != 0 (a connection for an existing session) is refused with 0x020a
//   "session does not exist": we negotiate MaxConnections=1 and ErrorRecoveryLevel=0, and this
//   class sees no session table (RFC 7143 6.3.1, 11.13.5).
// - Operational keys in the security stage are an initiator error (RFC 7143 section 13: only
//   Any-Stage keys may appear there), as are security keys in the operational stage.
// - InitiatorName/TargetName/SessionType repeated in a later PDU with the same value are
//   tolerated (libiscsi re-sends them in its operational stage); a different value is an error.
//   A key twice within one (possibly continued) text is an error (RFC 7143 6.2).
// - The target declares TargetPortalGroupTag (and TargetAlias when configured) in its first
//   Login Response of a normal session (RFC 7143 13.9), and MaxRecvDataSegmentLength in its
//   first operational-stage response (RFC 7143 13.12).
#include "target/login.h"

#include <algorithm>
#include <optional>

#include "target/chap.h"
#include "target/negotiation.h"
#include "target/text_keys.h"
#include "util/log.h"

namespace freevsa::target {

namespace {

constexpr std::size_t kMaxLoginText = 64 * 1024;   // continued text we buffer at most
constexpr std::size_t kMaxIscsiNameLength = 223;   // RFC 7143 4.2.7.1

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; };
           return lower(x) == lower(y);
         });
}

bool is_security_key(std::string_view key) {
  return key == "AuthMethod" || key.starts_with("CHAP_") || key.starts_with("SRP_") ||
         key.starts_with("KRB_") || key.starts_with("SPKM_");
}

bool is_target_only_key(std::string_view key) {
  return key == "TargetAlias" || key == "TargetAddress" || key == "TargetPortalGroupTag";
}

struct Failure {
  std::uint16_t status;
  std::string reason;
};

}  // namespace

struct LoginNegotiator::Impl {
  const TargetServerConfig& config;
  std::function<std::uint16_t()> allocate_tsih;
  LoginResult result;
  State state = State::InProgress;

  bool first_pdu = true;
  LoginRequestFields first;            // identity fields of the first request
  LoginStage stage = LoginStage::Security;
  std::uint32_t stat_sn = 0;
  std::uint32_t cmd_sn = 0;
  std::string pending;                 // text of PDUs with C=1, not yet complete

  bool identified = false;             // InitiatorName/SessionType/TargetName processed
  bool sent_identity_keys = false;     // TargetPortalGroupTag/TargetAlias sent
  std::optional<ChapSecret> chap_credentials;
  std::optional<ChapSecret> chap_mutual;
  enum class Auth { NotChosen, None, Chap } auth = Auth::NotChosen;
  bool authenticated = false;
  std::optional<ChapAuthenticator> chap;
  std::optional<OperationalNegotiator> ops;

  Impl(const TargetServerConfig& c, std::function<std::uint16_t()> a) : config(c), allocate_tsih(std::move(a)) {}

  std::string target_label() const {
    if (result.session_type == SessionType::Discovery) return "discovery";
    return result.target ? result.target->iqn : std::string("?");
  }

  Reply respond(const LoginRequestFields& f, bool transit, LoginStage next, std::uint16_t status,
                const std::vector<KeyValue>& keys) {
    LoginResponseFields r;
    r.transit = transit;
    r.current_stage = f.current_stage;
    r.next_stage = transit ? next : LoginStage::Security;
    r.isid = f.isid;
    r.tsih = f.tsih;
    r.itt = f.itt;
    r.stat_sn = stat_sn++;
    r.exp_cmd_sn = f.cmd_sn;
    const std::uint32_t window = std::max<std::uint32_t>(config.limits.command_window, 1);
    r.max_cmd_sn = f.cmd_sn + window - 1;
    r.status_class = static_cast<std::uint8_t>(status >> 8);
    r.status_detail = static_cast<std::uint8_t>(status & 0xff);
    if (transit && next == LoginStage::FullFeature && status == login_status::kSuccess) {
      r.tsih = f.tsih != 0 ? f.tsih : allocate_tsih();
    }
    Reply reply;
    reply.response.bhs = encode_login_response(r);
    reply.response.set_data(format_text(keys));
    if (status != login_status::kSuccess) {
      reply.state = State::Failed;
    } else if (transit && next == LoginStage::FullFeature) {
      reply.state = State::Complete;
      complete(f, r);
    }
    state = reply.state;
    return reply;
  }

  Reply fail(const LoginRequestFields& f, const Failure& failure) {
    const bool auth = failure.status == login_status::kAuthenticationFailure ||
                      failure.status == login_status::kAuthorizationFailure;
    if (auth) {
      util::log_warn("login refused (status 0x{:04x}): initiator '{}', target '{}': {}", failure.status,
                     result.initiator_name, target_label(), failure.reason);
    } else {
      util::log_info("login failed (status 0x{:04x}): initiator '{}', target '{}': {}", failure.status,
                     result.initiator_name, target_label(), failure.reason);
    }
    LoginRequestFields g = f;
    return respond(g, false, LoginStage::Security, failure.status, {});
  }

  void complete(const LoginRequestFields& f, const LoginResponseFields& r) {
    result.isid = f.isid;
    result.tsih = r.tsih;
    result.cid = f.cid;
    result.exp_cmd_sn = f.cmd_sn;
    result.next_stat_sn = r.stat_sn + 1;
    result.session = ops->session();
    result.connection = ops->connection();
  }

  // Declarations that may appear in any stage. Returns a failure or nothing.
  std::optional<Failure> identify(const std::vector<KeyValue>& keys) {
    const KeyValue* name = nullptr;
    const KeyValue* target = nullptr;
    const KeyValue* type = nullptr;
    for (const auto& kv : keys) {
      if (kv.key == "InitiatorName") name = &kv;
      else if (kv.key == "TargetName") target = &kv;
      else if (kv.key == "SessionType") type = &kv;
      else if (kv.key == "InitiatorAlias") result.initiator_alias = kv.value;
    }
    if (identified) {
      if (name && !iequals(name->value, result.initiator_name))
        return Failure{login_status::kInitiatorError, "InitiatorName changed during login"};
      if (type && type->value != (result.session_type == SessionType::Discovery ? "Discovery" : "Normal"))
        return Failure{login_status::kInitiatorError, "SessionType changed during login"};
      if (target && result.target && !iequals(target->value, result.target->iqn))
        return Failure{login_status::kInitiatorError, "TargetName changed during login"};
      return std::nullopt;
    }
    identified = true;
    if (!name || name->value.empty()) return Failure{login_status::kMissingParameter, "no InitiatorName"};
    if (name->value.size() > kMaxIscsiNameLength) return Failure{login_status::kInitiatorError, "InitiatorName too long"};
    result.initiator_name = name->value;
    if (type && type->value == "Discovery") {
      result.session_type = SessionType::Discovery;
    } else if (!type || type->value == "Normal") {
      result.session_type = SessionType::Normal;
    } else {
      return Failure{login_status::kSessionTypeNotSupported, "SessionType=" + type->value};
    }
    if (result.session_type == SessionType::Normal) {
      if (!target || target->value.empty()) return Failure{login_status::kMissingParameter, "no TargetName"};
      for (const auto& t : config.targets)
        if (iequals(t.iqn, target->value)) result.target = &t;
      if (!result.target) return Failure{login_status::kNotFound, "no target '" + target->value + "'"};
      const auto& allowed = result.target->allowed_initiators;
      if (!allowed.empty() && std::none_of(allowed.begin(), allowed.end(), [&](const std::string& a) {
            return iequals(a, result.initiator_name);
          })) {
        return Failure{login_status::kAuthorizationFailure, "initiator not in the target's allowed list"};
      }
      chap_credentials = result.target->chap;
      chap_mutual = result.target->mutual_chap;
    } else {
      chap_credentials = config.discovery_chap;
      chap_mutual = config.discovery_mutual_chap;
    }
    ops.emplace(config.limits, result.session_type == SessionType::Discovery);
    return std::nullopt;
  }

  bool auth_required() const { return chap_credentials.has_value(); }

  // AuthMethod=<list>: CHAP when we require it, None otherwise (RFC 7143 12.1).
  std::optional<Failure> choose_auth(const KeyValue& kv, std::vector<KeyValue>& answer) {
    auto list = split_list(kv.value);
    auto offered = [&](std::string_view m) { return std::find(list.begin(), list.end(), m) != list.end(); };
    Auth choice;
    if (auth_required()) {
      if (!offered("CHAP")) return Failure{login_status::kAuthenticationFailure, "CHAP required, initiator offers AuthMethod=" + kv.value};
      choice = Auth::Chap;
    } else {
      if (!offered("None")) return Failure{login_status::kAuthenticationFailure, "no authentication configured, initiator offers AuthMethod=" + kv.value};
      choice = Auth::None;
    }
    if (auth != Auth::NotChosen && auth != choice) return Failure{login_status::kInitiatorError, "AuthMethod renegotiated"};
    if (auth == Auth::NotChosen && choice == Auth::Chap) chap.emplace(*chap_credentials, chap_mutual);
    auth = choice;
    answer.push_back({"AuthMethod", choice == Auth::Chap ? "CHAP" : "None"});
    return std::nullopt;
  }

  Reply on_request(const Pdu& pdu) {
    const LoginRequestFields f = decode_login_request(pdu.bhs);
    if (state != State::InProgress) return fail(f, {login_status::kInitiatorError, "login already finished"});
    if (pdu.bhs.opcode() != Opcode::LoginRequest) return fail(f, {login_status::kInitiatorError, "not a Login Request"});

    if (first_pdu) {
      first_pdu = false;
      first = f;
      stat_sn = f.exp_stat_sn;
      stage = f.current_stage;
    } else if (f.isid != first.isid || f.tsih != first.tsih || f.itt != first.itt || f.cid != first.cid) {
      return fail(f, {login_status::kInitiatorError, "ISID/TSIH/ITT/CID changed during login"});
    }
    cmd_sn = f.cmd_sn;

    if (f.version_min != 0) return fail(f, {login_status::kUnsupportedVersion, "VersionMin " + std::to_string(f.version_min)});
    if (f.transit && f.cont) return fail(f, {login_status::kInitiatorError, "T and C both set"});
    if (f.current_stage != LoginStage::Security && f.current_stage != LoginStage::Operational)
      return fail(f, {login_status::kInitiatorError, "invalid CSG"});
    if (f.transit && ((f.next_stage != LoginStage::Operational && f.next_stage != LoginStage::FullFeature) ||
                      static_cast<int>(f.next_stage) <= static_cast<int>(f.current_stage)))
      return fail(f, {login_status::kInitiatorError, "invalid NSG"});
    if (f.current_stage != stage) return fail(f, {login_status::kInitiatorError, "CSG does not match the login stage"});
    if (f.tsih != 0) return fail(f, {login_status::kSessionDoesNotExist, "TSIH " + std::to_string(f.tsih) + " (one connection per session)"});

    // Text continued over several PDUs (C bit): collect, answer each part with an empty response.
    pending.append(reinterpret_cast<const char*>(pdu.data.data()), std::min<std::size_t>(pdu.data_length, pdu.data.size()));
    if (pending.size() > kMaxLoginText) return fail(f, {login_status::kInitiatorError, "login text too long"});
    if (f.cont) return respond(f, false, LoginStage::Security, login_status::kSuccess, {});
    const std::string text = std::move(pending);
    pending.clear();

    ParsedText parsed = parse_text(text);
    if (!parsed.ok())
      return fail(f, {login_status::kInitiatorError, std::string("malformed text: ") + text_error_name(parsed.error) + " '" + parsed.error_key + "'"});
    const auto& keys = parsed.pairs;

    if (auto failure = identify(keys)) return fail(f, *failure);

    std::vector<KeyValue> answer;
    std::vector<KeyValue> chap_keys;
    const bool security = f.current_stage == LoginStage::Security;
    if (!security && auth_required() && !authenticated)
      return fail(f, {login_status::kAuthenticationFailure, "operational stage without authentication"});

    for (const auto& kv : keys) {
      const std::string& k = kv.key;
      if (k == "InitiatorName" || k == "TargetName" || k == "SessionType" || k == "InitiatorAlias") continue;
      if (is_security_key(k)) {
        if (!security) return fail(f, {login_status::kInitiatorError, k + " outside the security stage"});
        if (k == "AuthMethod") {
          if (auto failure = choose_auth(kv, answer)) return fail(f, *failure);
        } else if (k.starts_with("CHAP_")) {
          chap_keys.push_back(kv);
        } else {
          answer.push_back({k, std::string(kNotUnderstood)});
        }
      } else if (is_operational_key(k)) {
        if (security) return fail(f, {login_status::kInitiatorError, k + " in the security stage"});
      } else if (is_target_only_key(k) || k == "SendTargets") {
        answer.push_back({k, std::string(kReject)});
      } else {
        answer.push_back({k, std::string(kNotUnderstood)});  // X- keys and keys we do not know
      }
    }

    bool may_transit = f.transit;
    if (security) {
      if (!chap_keys.empty()) {
        if (auth != Auth::Chap) return fail(f, {login_status::kInitiatorError, "CHAP keys without AuthMethod=CHAP"});
      }
      if (auth == Auth::Chap && !authenticated) {
        auto outcome = chap->on_keys(chap_keys);
        if (outcome.step == ChapAuthenticator::Step::Failure)
          return fail(f, {login_status::kAuthenticationFailure, outcome.reason});
        answer.insert(answer.end(), outcome.answer.begin(), outcome.answer.end());
        if (outcome.step == ChapAuthenticator::Step::Success) authenticated = true;
      } else if (auth == Auth::Chap && !chap_keys.empty()) {
        return fail(f, {login_status::kInitiatorError, "CHAP keys after authentication"});
      }
      if (f.transit) {
        if (auth_required() && !authenticated) {
          if (auth == Auth::NotChosen)
            return fail(f, {login_status::kAuthenticationFailure, "leaving the security stage without authentication"});
          may_transit = false;  // CHAP exchange still running
        }
        if (!auth_required()) authenticated = true;
      }
    } else {
      auto negotiated = ops->negotiate(keys);
      if (negotiated.failed) return fail(f, {login_status::kInitiatorError, negotiated.error});
      answer.insert(answer.end(), negotiated.keys.begin(), negotiated.keys.end());
      const bool had_offers = ops->has_open_offers();
      auto own = ops->target_keys(f.transit);
      answer.insert(answer.end(), own.begin(), own.end());
      if (f.transit) {
        if (ops->has_open_offers() && !had_offers) {
          may_transit = false;  // our new offers need the initiator's answer first
        } else {
          ops->close_offers();
        }
      }
    }

    if (!sent_identity_keys && result.session_type == SessionType::Normal) {
      sent_identity_keys = true;
      answer.push_back({"TargetPortalGroupTag", std::to_string(config.target_portal_group_tag)});
      if (!result.target->alias.empty()) answer.push_back({"TargetAlias", result.target->alias});
    }

    if (may_transit) stage = f.next_stage;
    return respond(f, may_transit, f.next_stage, login_status::kSuccess, answer);
  }
};

LoginNegotiator::LoginNegotiator(const TargetServerConfig& config, std::function<std::uint16_t()> allocate_tsih)
    : impl_(std::make_unique<Impl>(config, std::move(allocate_tsih))) {}

LoginNegotiator::~LoginNegotiator() = default;

LoginNegotiator::Reply LoginNegotiator::on_request(const Pdu& request) { return impl_->on_request(request); }

const LoginResult& LoginNegotiator::result() const { return impl_->result; }

}  // namespace freevsa::target
