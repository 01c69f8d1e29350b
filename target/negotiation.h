// Operational parameter negotiation (RFC 7143 sections 6.2 and 13), target side: the answer to
// every operational key an initiator offers, the keys the target declares or offers itself, and
// the resulting session and connection parameters.
//
// Result functions (RFC 7143 section 13): HeaderDigest/DataDigest first of the initiator's list
// we support; MaxBurstLength, FirstBurstLength, MaxOutstandingR2T, DefaultTime2Retain,
// ErrorRecoveryLevel, MaxConnections minimum; DefaultTime2Wait maximum; InitialR2T,
// DataPDUInOrder, DataSequenceInOrder OR; ImmediateData AND; MaxRecvDataSegmentLength
// declarative in both directions. Keys irrelevant in discovery sessions are answered Irrelevant.
// Not thread-safe; one instance per login.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "target/params.h"
#include "target/target_config.h"
#include "target/text_keys.h"

namespace freevsa::target {

// The keys this file negotiates (including the obsolete marker keys and X- keys' absence).
bool is_operational_key(std::string_view key);

class OperationalNegotiator {
 public:
  OperationalNegotiator(const TargetLimits& limits, bool discovery);

  struct Answers {
    std::vector<KeyValue> keys;   // answers, in the order the offers came
    bool failed = false;          // a fatal error (an invalid declaration): refuse the login
    std::string error;
  };
  // Answers the operational keys among keys; other keys are skipped. Keys the initiator sends
  // again in a later PDU are answered again by the same rule.
  Answers negotiate(const std::vector<KeyValue>& keys);

  // Keys the target sends on its own in an operational-stage response: its
  // MaxRecvDataSegmentLength declaration (RFC 7143 13.12) in the first one, and - once the
  // initiator asks to transit - offers for keys whose RFC default exceeds what we accept and
  // that the initiator has not sent (MaxBurstLength, FirstBurstLength, ImmediateData). Offers
  // need an answer, so the response carrying them must not transit (see has_open_offers()).
  // Each key is sent at most once.
  std::vector<KeyValue> target_keys(bool initiator_wants_transit);
  bool has_open_offers() const { return !open_offers_.empty(); }
  // Forget unanswered offers: their offered values stand (we only offer values below the
  // defaults, so keeping them is the conservative side).
  void close_offers() { open_offers_.clear(); }

  const SessionParams& session() const { return session_; }
  const ConnectionParams& connection() const { return connection_; }

 private:
  void answer_number(const KeyValue& kv, std::uint64_t lo, std::uint64_t hi, std::uint64_t ours,
                     bool minimum, std::uint32_t& result, Answers& out);
  void answer_bool(const KeyValue& kv, bool ours, bool is_or, bool& result, Answers& out);
  void answer_digest(const KeyValue& kv, bool allowed, bool& result, Answers& out);

  TargetLimits limits_;
  bool discovery_;
  SessionParams session_;
  ConnectionParams connection_;
  bool declared_mrdsl_ = false;
  std::set<std::string, std::less<>> seen_;         // keys the initiator has sent
  std::set<std::string, std::less<>> open_offers_;  // keys we offered, awaiting an answer
  std::set<std::string, std::less<>> offered_;      // keys we ever offered
};

}  // namespace freevsa::target
