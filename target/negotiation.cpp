#include "target/negotiation.h"

#include <algorithm>
#include <array>

namespace freevsa::target {

namespace {

constexpr std::uint64_t kMinSegment = 512;
constexpr std::uint64_t kMaxSegment = (1u << 24) - 1;

// RFC 7143 section 13: keys whose "Irrelevant when" names SessionType=Discovery.
bool irrelevant_in_discovery(std::string_view key) {
  static constexpr std::array<std::string_view, 9> kKeys = {
      "MaxConnections",    "InitialR2T",     "ImmediateData",       "MaxBurstLength", "FirstBurstLength",
      "MaxOutstandingR2T", "DataPDUInOrder", "DataSequenceInOrder", "TaskReporting"};
  return std::find(kKeys.begin(), kKeys.end(), key) != kKeys.end();
}

constexpr std::array<std::string_view, 21> kOperationalKeys = {
    "HeaderDigest",      "DataDigest",          "MaxConnections",    "InitialR2T",
    "ImmediateData",     "MaxRecvDataSegmentLength", "MaxBurstLength", "FirstBurstLength",
    "DefaultTime2Wait",  "DefaultTime2Retain",  "MaxOutstandingR2T", "DataPDUInOrder",
    "DataSequenceInOrder", "ErrorRecoveryLevel", "OFMarker",         "IFMarker",
    "OFMarkInt",         "IFMarkInt",           "TaskReporting",     "iSCSIProtocolLevel",
    "RDMAExtensions"};

bool is_answer_word(std::string_view v) { return v == kReject || v == kNotUnderstood || v == kIrrelevant; }

}  // namespace

bool is_operational_key(std::string_view key) {
  return std::find(kOperationalKeys.begin(), kOperationalKeys.end(), key) != kOperationalKeys.end();
}

OperationalNegotiator::OperationalNegotiator(const TargetLimits& limits, bool discovery)
    : limits_(limits), discovery_(discovery) {
  // Keep our own offers self-consistent: FirstBurstLength <= MaxBurstLength (RFC 7143 13.14).
  limits_.max_burst_length = static_cast<std::uint32_t>(
      std::clamp<std::uint64_t>(limits_.max_burst_length, kMinSegment, kMaxSegment));
  limits_.first_burst_length = static_cast<std::uint32_t>(
      std::clamp<std::uint64_t>(limits_.first_burst_length, kMinSegment, limits_.max_burst_length));
  limits_.max_recv_data_segment_length = static_cast<std::uint32_t>(
      std::clamp<std::uint64_t>(limits_.max_recv_data_segment_length, kMinSegment, kMaxSegment));
  limits_.max_outstanding_r2t = std::clamp<std::uint32_t>(limits_.max_outstanding_r2t, 1, 65535);
  connection_.max_recv_data_segment_length = 8192;  // RFC default until we declare ours
  connection_.max_send_data_segment_length = 8192;
}

void OperationalNegotiator::answer_number(const KeyValue& kv, std::uint64_t lo, std::uint64_t hi,
                                          std::uint64_t ours, bool minimum, std::uint32_t& result,
                                          Answers& out) {
  const bool answering_our_offer = open_offers_.count(kv.key) != 0;
  if (answering_our_offer) {
    open_offers_.erase(kv.key);
    auto v = parse_number(kv.value);
    // The initiator's selection must not exceed (minimum) our offer; anything else keeps it.
    if (v && *v >= lo && *v <= hi && (minimum ? *v <= ours : *v >= ours)) result = static_cast<std::uint32_t>(*v);
    return;
  }
  auto v = parse_number(kv.value);
  if (!v || *v < lo || *v > hi) {
    out.keys.push_back({kv.key, std::string(kReject)});
    return;
  }
  const std::uint64_t selected = minimum ? std::min(*v, ours) : std::max(*v, ours);
  result = static_cast<std::uint32_t>(selected);
  out.keys.push_back({kv.key, std::to_string(selected)});
}

void OperationalNegotiator::answer_bool(const KeyValue& kv, bool ours, bool is_or, bool& result, Answers& out) {
  const bool answering_our_offer = open_offers_.count(kv.key) != 0;
  auto v = parse_bool(kv.value);
  if (answering_our_offer) {
    open_offers_.erase(kv.key);
    // For AND, a valid answer to our "No" is "No"; for OR, to our "Yes" it is "Yes".
    if (v && *v == ours) result = ours;
    return;
  }
  if (!v) {
    out.keys.push_back({kv.key, std::string(kReject)});
    return;
  }
  const bool selected = is_or ? (*v || ours) : (*v && ours);
  result = selected;
  out.keys.push_back({kv.key, selected ? "Yes" : "No"});
}

void OperationalNegotiator::answer_digest(const KeyValue& kv, bool allowed, bool& result, Answers& out) {
  for (const auto& choice : split_list(kv.value)) {
    if (choice == "CRC32C" && allowed) {
      result = true;
      out.keys.push_back({kv.key, "CRC32C"});
      return;
    }
    if (choice == "None") {
      result = false;
      out.keys.push_back({kv.key, "None"});
      return;
    }
  }
  result = false;
  out.keys.push_back({kv.key, std::string(kReject)});
}

OperationalNegotiator::Answers OperationalNegotiator::negotiate(const std::vector<KeyValue>& keys) {
  Answers out;
  std::size_t first_burst_answer = SIZE_MAX;
  for (const auto& kv : keys) {
    const std::string& k = kv.key;
    if (!is_operational_key(k)) continue;
    seen_.insert(k);
    if (is_answer_word(kv.value) && open_offers_.count(k) == 0) {
      // "Reject"/"Irrelevant"/"NotUnderstood" is an answer, never an offer: nothing to answer.
      continue;
    }
    if (is_answer_word(kv.value)) {
      open_offers_.erase(k);  // our offered value stands
      continue;
    }
    if (discovery_ && irrelevant_in_discovery(k)) {
      out.keys.push_back({k, std::string(kIrrelevant)});
      continue;
    }
    if (k == "HeaderDigest") {
      answer_digest(kv, limits_.header_digest_allowed, connection_.header_digest, out);
    } else if (k == "DataDigest") {
      answer_digest(kv, limits_.data_digest_allowed, connection_.data_digest, out);
    } else if (k == "MaxRecvDataSegmentLength") {
      // Declarative (RFC 7143 13.12): what the initiator can receive, i.e. what we may send.
      auto v = parse_number(kv.value);
      if (!v || *v < kMinSegment || *v > kMaxSegment) {
        out.failed = true;
        out.error = "MaxRecvDataSegmentLength out of range: " + kv.value;
        return out;
      }
      connection_.max_send_data_segment_length = static_cast<std::uint32_t>(*v);
    } else if (k == "MaxBurstLength") {
      answer_number(kv, kMinSegment, kMaxSegment, limits_.max_burst_length, true, session_.max_burst_length, out);
    } else if (k == "FirstBurstLength") {
      answer_number(kv, kMinSegment, kMaxSegment, limits_.first_burst_length, true, session_.first_burst_length, out);
      if (!out.keys.empty() && out.keys.back().key == k) first_burst_answer = out.keys.size() - 1;
    } else if (k == "MaxOutstandingR2T") {
      answer_number(kv, 1, 65535, limits_.max_outstanding_r2t, true, session_.max_outstanding_r2t, out);
    } else if (k == "DefaultTime2Wait") {
      answer_number(kv, 0, 3600, 2, false, session_.default_time2wait, out);
    } else if (k == "DefaultTime2Retain") {
      answer_number(kv, 0, 3600, 20, true, session_.default_time2retain, out);
    } else if (k == "ErrorRecoveryLevel") {
      answer_number(kv, 0, 2, 0, true, session_.error_recovery_level, out);
    } else if (k == "MaxConnections") {
      answer_number(kv, 1, 65535, 1, true, session_.max_connections, out);
    } else if (k == "InitialR2T") {
      answer_bool(kv, limits_.initial_r2t, true, session_.initial_r2t, out);
    } else if (k == "ImmediateData") {
      answer_bool(kv, limits_.immediate_data, false, session_.immediate_data, out);
    } else if (k == "DataPDUInOrder") {
      answer_bool(kv, true, true, session_.data_pdu_in_order, out);
    } else if (k == "DataSequenceInOrder") {
      answer_bool(kv, true, true, session_.data_sequence_in_order, out);
    } else if (k == "OFMarker" || k == "IFMarker" || k == "RDMAExtensions") {
      // Markers are obsolete in RFC 7143 and we do not speak iSER: AND with our No.
      bool ignored = false;
      answer_bool(kv, false, false, ignored, out);
    } else if (k == "OFMarkInt" || k == "IFMarkInt") {
      out.keys.push_back({k, std::string(kIrrelevant)});  // markers are off
    } else if (k == "TaskReporting") {
      auto list = split_list(kv.value);
      bool ok = std::find(list.begin(), list.end(), "RFC3720") != list.end();
      out.keys.push_back({k, ok ? "RFC3720" : std::string(kReject)});
    } else if (k == "iSCSIProtocolLevel") {
      // RFC 7144 13.24: minimum; we implement RFC 7143, level 1.
      auto v = parse_number(kv.value);
      if (!v || *v > 31) out.keys.push_back({k, std::string(kReject)});
      else out.keys.push_back({k, std::to_string(std::min<std::uint64_t>(*v, 1))});
    }
  }
  // RFC 7143 13.14: FirstBurstLength must not exceed MaxBurstLength.
  if (session_.first_burst_length > session_.max_burst_length) {
    session_.first_burst_length = session_.max_burst_length;
    if (first_burst_answer != SIZE_MAX) out.keys[first_burst_answer].value = std::to_string(session_.first_burst_length);
  }
  return out;
}

std::vector<KeyValue> OperationalNegotiator::target_keys(bool initiator_wants_transit) {
  std::vector<KeyValue> out;
  if (!declared_mrdsl_) {
    declared_mrdsl_ = true;
    connection_.max_recv_data_segment_length = limits_.max_recv_data_segment_length;
    out.push_back({"MaxRecvDataSegmentLength", std::to_string(limits_.max_recv_data_segment_length)});
  }
  if (!initiator_wants_transit || discovery_) return out;
  auto offer = [&](std::string_view key, std::string value) {
    if (seen_.count(key) || offered_.count(key)) return;
    offered_.emplace(key);
    open_offers_.emplace(key);
    out.push_back({std::string(key), std::move(value)});
  };
  if (limits_.max_burst_length < session_.max_burst_length) {
    session_.max_burst_length = limits_.max_burst_length;
    offer("MaxBurstLength", std::to_string(limits_.max_burst_length));
  }
  if (limits_.first_burst_length < session_.first_burst_length) {
    session_.first_burst_length = limits_.first_burst_length;
    offer("FirstBurstLength", std::to_string(limits_.first_burst_length));
  }
  if (!limits_.immediate_data && session_.immediate_data) {
    session_.immediate_data = false;
    offer("ImmediateData", "No");
  }
  if (session_.first_burst_length > session_.max_burst_length) session_.first_burst_length = session_.max_burst_length;
  return out;
}

}  // namespace freevsa::target
