// The login phase of one connection (RFC 7143 sections 6 and 12): security negotiation with
// CHAP (one-way or mutual), operational parameter negotiation, and the decision which target
// and session type the connection belongs to.
//
// The connection feeds every Login Request PDU to on_request() and sends back the response it
// returns. Pure protocol logic: no I/O, no session table (the connection supplies TSIHs).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "target/params.h"
#include "target/pdu.h"
#include "target/target_config.h"

namespace freevsa::target {

enum class SessionType { Normal, Discovery };

struct LoginResult {
  SessionType session_type = SessionType::Normal;
  std::string initiator_name;
  std::string initiator_alias;
  const TargetDefinition* target = nullptr;  // null for discovery sessions
  std::array<std::uint8_t, 6> isid{};
  std::uint16_t tsih = 0;                    // as assigned in the final response
  std::uint16_t cid = 0;
  std::uint32_t exp_cmd_sn = 0;              // the first CmdSN the session expects
  std::uint32_t next_stat_sn = 0;            // StatSN for the first full-feature response
  SessionParams session;
  ConnectionParams connection;
};

class LoginNegotiator {
 public:
  enum class State { InProgress, Complete, Failed };

  struct Reply {
    Pdu response;
    State state = State::InProgress;
  };

  // allocate_tsih is called once, when a normal or discovery session is about to enter the full
  // feature phase with TSIH 0 in the request (a new session); it returns a non-zero TSIH.
  LoginNegotiator(const TargetServerConfig& config, std::function<std::uint16_t()> allocate_tsih);
  ~LoginNegotiator();

  Reply on_request(const Pdu& request);
  // Valid after a reply with State::Complete.
  const LoginResult& result() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Full-feature-phase Text requests (RFC 7143 11.10): SendTargets on discovery and normal
// sessions, and answers "NotUnderstood"/"Reject" for anything else. Handles continued
// requests (C bit) and splits long answers over several responses (TTT) within the initiator's
// MaxRecvDataSegmentLength.
class TextResponder {
 public:
  TextResponder(const TargetServerConfig& config, const LoginResult& login, std::string local_address);
  ~TextResponder();

  // Returns the response PDU with everything but StatSN/ExpCmdSN/MaxCmdSN filled in (the
  // connection stamps those).
  Pdu on_request(const Pdu& request);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace freevsa::target
