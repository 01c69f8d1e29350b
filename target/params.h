// Negotiated iSCSI operational parameters (RFC 7143 section 13), with the RFC's defaults.
#pragma once

#include <cstdint>

namespace freevsa::target {

struct SessionParams {
  std::uint32_t max_burst_length = 262144;
  std::uint32_t first_burst_length = 65536;
  bool initial_r2t = true;
  bool immediate_data = true;
  std::uint32_t max_outstanding_r2t = 1;
  bool data_pdu_in_order = true;
  bool data_sequence_in_order = true;
  std::uint32_t default_time2wait = 2;
  std::uint32_t default_time2retain = 20;
  std::uint32_t error_recovery_level = 0;
  std::uint32_t max_connections = 1;
};

struct ConnectionParams {
  bool header_digest = false;  // CRC32C on every BHS+AHS
  bool data_digest = false;    // CRC32C on every data segment
  // What this target accepts in one data segment (declared by us).
  std::uint32_t max_recv_data_segment_length = 8192;
  // What the initiator accepts from us in one data segment (declared by the initiator).
  std::uint32_t max_send_data_segment_length = 8192;
};

}  // namespace freevsa::target
