// The Third-party Copy VPD page (8Fh, SPC-4 7.8.17): what the copy manager implements, in the
// descriptors SPC-4 requires of one that supports EXTENDED COPY(LID1). The supported commands
// come from the command table, the limits from extended_copy_parameters.h, so neither can
// disagree with what the commands do.
#include <vector>

#include "scsi/extended_copy_parameters.h"
#include "scsi/handlers.h"
#include "util/endian.h"

namespace freevsa::scsi {
namespace {

constexpr std::uint8_t kPageCode = 0x8F;
// Third-party copy descriptor types (SPC-4 7.8.17.1).
constexpr std::uint16_t kSupportedCommandsType = 0x0001;
constexpr std::uint16_t kParameterDataType = 0x0004;
constexpr std::uint16_t kSupportedDescriptorsType = 0x0008;
constexpr std::uint16_t kSupportedCscdIdsType = 0x000C;
constexpr std::uint16_t kGeneralCopyOperationsType = 0x8001;
// The third-party copy commands: EXTENDED COPY and RECEIVE COPY RESULTS.
constexpr std::uint8_t kCopyOpcodes[] = {0x83, 0x84};

// Appends one descriptor (type, length, body), the body padded to a multiple of four bytes.
void append_descriptor(std::vector<std::uint8_t>& page, std::uint16_t type, std::vector<std::uint8_t> body) {
  body.resize((body.size() + 3) / 4 * 4, 0);
  const std::size_t at = page.size();
  page.resize(at + 4);
  util::put_be16(&page[at], type);
  util::put_be16(&page[at + 2], static_cast<std::uint16_t>(body.size()));
  page.insert(page.end(), body.begin(), body.end());
}

// SPC-4 7.8.17.3: for each command, its operation code and service actions.
std::vector<std::uint8_t> supported_commands() {
  std::vector<std::uint8_t> body(1, 0);  // COMMANDS SUPPORTED LIST LENGTH
  for (const std::uint8_t opcode : kCopyOpcodes) {
    std::vector<std::uint8_t> actions;
    for (const CommandInfo& c : command_table()) {
      if (c.opcode == opcode) actions.push_back(c.service_action);
    }
    body.push_back(opcode);
    body.push_back(static_cast<std::uint8_t>(actions.size()));
    body.insert(body.end(), actions.begin(), actions.end());
  }
  body[0] = static_cast<std::uint8_t>(body.size() - 1);
  return body;
}

// SPC-4 7.8.17.4.
std::vector<std::uint8_t> parameter_data() {
  std::vector<std::uint8_t> body(0x1C, 0);
  util::put_be16(&body[4], kMaxCscdDescriptors);
  util::put_be16(&body[6], kMaxSegmentDescriptors);
  util::put_be32(&body[8], kMaxDescriptorListLength);
  // MAXIMUM INLINE DATA LENGTH: 0.
  return body;
}

// SPC-4 7.8.17.5.
std::vector<std::uint8_t> supported_descriptors() {
  std::vector<std::uint8_t> body{static_cast<std::uint8_t>(kImplementedDescriptorTypes.size())};
  body.insert(body.end(), kImplementedDescriptorTypes.begin(), kImplementedDescriptorTypes.end());
  return body;
}

// SPC-4 7.8.17.6: the CSCD descriptor IDs above 07FFh that segment descriptors may use.
std::vector<std::uint8_t> supported_cscd_ids() {
  std::vector<std::uint8_t> body(2 + 2 * kSupportedCscdIds.size(), 0);
  util::put_be16(&body[0], static_cast<std::uint16_t>(2 * kSupportedCscdIds.size()));
  for (std::size_t i = 0; i < kSupportedCscdIds.size(); ++i) util::put_be16(&body[2 + 2 * i], kSupportedCscdIds[i]);
  return body;
}

// SPC-4 7.8.17.7.
std::vector<std::uint8_t> general_copy_operations(std::uint32_t block_size) {
  std::vector<std::uint8_t> body(0x1C, 0);
  util::put_be32(&body[0], kMaxConcurrentCopies);  // TOTAL CONCURRENT COPIES
  util::put_be32(&body[4], kMaxConcurrentCopies);  // MAXIMUM IDENTIFIED CONCURRENT COPIES
  util::put_be32(&body[8], kMaxSegmentBytes);      // MAXIMUM SEGMENT LENGTH
  body[12] = data_segment_granularity(block_size);
  // INLINE DATA GRANULARITY: 2^0.
  return body;
}

}  // namespace

std::vector<std::uint8_t> vpd_third_party_copy(std::uint32_t block_size) {
  std::vector<std::uint8_t> page(4, 0);
  page[1] = kPageCode;  // PQ 000b, direct access
  append_descriptor(page, kSupportedCommandsType, supported_commands());
  append_descriptor(page, kParameterDataType, parameter_data());
  append_descriptor(page, kSupportedDescriptorsType, supported_descriptors());
  append_descriptor(page, kSupportedCscdIdsType, supported_cscd_ids());
  append_descriptor(page, kGeneralCopyOperationsType, general_copy_operations(block_size));
  util::put_be16(&page[2], static_cast<std::uint16_t>(page.size() - 4));
  return page;
}

}  // namespace freevsa::scsi
