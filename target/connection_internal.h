// Private state of Connection, shared by its .cpp files (one per PDU family).
#pragma once

#include <set>

#include "target/connection.h"

namespace freevsa::target {

// Flags of the SCSI Command PDU (RFC 7143 11.3.1).
namespace scsi_flags {
constexpr std::uint8_t kFinal = 0x80;
constexpr std::uint8_t kRead = 0x40;
constexpr std::uint8_t kWrite = 0x20;
constexpr std::uint8_t kAttributeMask = 0x07;
}  // namespace scsi_flags

// Reject reasons (RFC 7143 11.17.1).
namespace reject_reason {
constexpr std::uint8_t kDataDigestError = 0x02;
constexpr std::uint8_t kSnackReject = 0x03;
constexpr std::uint8_t kProtocolError = 0x04;
constexpr std::uint8_t kCommandNotSupported = 0x05;
constexpr std::uint8_t kImmediateCommandReject = 0x06;
constexpr std::uint8_t kTaskInProgress = 0x07;
constexpr std::uint8_t kInvalidPduField = 0x09;
constexpr std::uint8_t kWaitingForLogout = 0x0c;
}  // namespace reject_reason

// Commands a connection holds at once (queued, receiving data or executing). The CmdSN window
// bounds ordered commands; this also bounds immediate ones. Past it: TASK SET FULL.
constexpr std::size_t kMaxTasksPerConnection = 512;

struct Connection::ScsiTask {
  std::uint32_t itt = 0;
  std::uint32_t cmd_sn = 0;
  std::uint64_t lun = 0;
  std::uint64_t lun_field = 0;         // the 8-byte LUN as the initiator sent it
  bool reads = false;
  bool writes = false;
  std::uint32_t expected_length = 0;   // EDTL

  scsi::Task task;                     // what the SCSI layer sees

  DataOutGrant buffer_grant;           // the budget task.data_out was allocated from (writes)
  std::chrono::steady_clock::time_point last_data_out;  // when the task was created or last got data

  // Data-Out bookkeeping (writes only).
  std::uint32_t received = 0;          // bytes of Data-Out received so far
  std::uint32_t unsolicited_end = 0;   // unsolicited data covers [0, unsolicited_end)
  std::uint32_t unsolicited_next = 0;  // next offset expected in the unsolicited sequence
  std::uint32_t unsolicited_data_sn = 0;
  std::uint32_t next_r2t_offset = 0;   // first byte not yet asked for by an R2T
  std::uint32_t r2t_sn = 0;
  struct Burst {
    std::uint32_t offset;
    std::uint32_t length;
    std::uint32_t next_offset;         // next byte expected within the burst
    std::uint32_t data_sn = 0;
  };
  std::map<std::uint32_t, Burst> bursts;  // outstanding R2Ts by TTT
  // A Data-Out sequencing or digest error was seen: the data cannot be trusted, the command
  // ends with CHECK CONDITION once all its data has arrived.
  std::vector<std::uint8_t> data_error_sense;

  bool delivered = false;              // its CmdSN has been reached
  bool executing = false;              // handed to a worker
  bool aborted = false;                // aborted by task management: no response is sent
  std::uint32_t data_in_pdus = 0;      // for ExpDataSN in the SCSI Response

  bool data_complete() const { return !writes || received >= expected_length; }
};

struct Connection::OutPdu {
  Bhs bhs;
  std::array<std::uint8_t, 4> header_digest{};
  const std::uint8_t* data = nullptr;
  std::uint32_t data_length = 0;
  std::array<std::uint8_t, 4> data_digest{};
  bool with_header_digest = false;
  bool with_data_digest = false;
  util::AlignedBuffer owned;                 // data owned by this PDU
  std::shared_ptr<ScsiTask> keepalive;       // data lives in this task's buffer
};

struct Connection::PendingTmf {
  std::uint32_t itt = 0;
  std::uint8_t function = 0;
  std::uint64_t lun = 0;
  std::uint32_t referenced_itt = 0;
  std::uint8_t response = 0;
  std::set<std::uint32_t> waiting_for;       // ITTs still executing on workers
  bool close_after = false;
};

// Fixed-format sense data for the failures the transport itself detects (Data-Out sequence
// and digest errors, refused transfers), built by the SCSI layer's one sense builder.
std::vector<std::uint8_t> fixed_sense(std::uint8_t key, std::uint8_t asc, std::uint8_t ascq);

// Serial number arithmetic (RFC 1982) on 32-bit sequence numbers.
inline bool sn_less(std::uint32_t a, std::uint32_t b) {
  return a != b && static_cast<std::int32_t>(a - b) < 0;
}

}  // namespace freevsa::target
