// One SCSI command as the transport hands it to the SCSI layer, and the outcome the SCSI layer
// hands back. Plain data: the transport fills the inputs, LunMap::execute fills the outputs.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "util/aligned_buffer.h"

namespace freevsa::scsi {

// SAM status codes.
enum class Status : std::uint8_t {
  Good = 0x00,
  CheckCondition = 0x02,
  ConditionMet = 0x04,
  Busy = 0x08,
  ReservationConflict = 0x18,
  TaskSetFull = 0x28,
  AcaActive = 0x30,
  TaskAborted = 0x40,
};

enum class TaskAttribute : std::uint8_t { Untagged = 0, Simple = 1, Ordered = 2, HeadOfQueue = 3, Aca = 4 };

struct Task {
  // ---- inputs, filled by the transport
  std::uint64_t lun = 0;                 // flat LUN number (already decoded from the 8-byte field)
  std::array<std::uint8_t, 16> cdb{};    // zero-padded
  std::uint8_t cdb_length = 0;           // bytes of cdb that the initiator sent (6..16)
  TaskAttribute attribute = TaskAttribute::Simple;
  // I_T nexus: "<initiator iqn>,i,0x<isid hex>" - identifies the initiator port for unit
  // attentions and, later, reservations.
  std::string initiator_port;
  // Data-Out received from the initiator (exactly data_out_length valid bytes).
  util::AlignedBuffer data_out;
  std::uint32_t data_out_length = 0;
  // The initiator's Expected Data Transfer Length for Data-In; data_in beyond it is truncated by
  // the transport (residual overflow) and the residual reported.
  std::uint32_t expected_data_in_length = 0;

  // ---- outputs, filled by the SCSI layer
  Status status = Status::Good;
  util::AlignedBuffer data_in;           // Data-In payload; capacity may exceed data_in_length
  std::uint32_t data_in_length = 0;      // valid bytes in data_in
  std::vector<std::uint8_t> sense;       // sense data (fixed format) when status is CheckCondition
  // Bytes of Data-Out the CDB asks for (its transfer length in bytes). The transport compares it
  // with the Expected Data Transfer Length to report residual overflow/underflow. When the
  // initiator sent fewer bytes than this, the command fails with 05/0E/03 INVALID FIELD IN
  // COMMAND INFORMATION UNIT and nothing is written.
  std::uint32_t data_out_needed = 0;
};

}  // namespace freevsa::scsi
