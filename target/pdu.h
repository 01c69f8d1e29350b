// iSCSI PDUs (RFC 7143 section 11): the 48-byte Basic Header Segment with named field access,
// and a whole PDU (header, additional header segments, data segment).
//
// Parsing is separate from acting: the connection reads bytes into a Pdu, validates it with
// validate_request() and only then dispatches on the opcode.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/aligned_buffer.h"
#include "util/endian.h"

namespace freevsa::target {

enum class Opcode : std::uint8_t {
  // initiator -> target
  NopOut = 0x00,
  ScsiCommand = 0x01,
  TaskManagementRequest = 0x02,
  LoginRequest = 0x03,
  TextRequest = 0x04,
  DataOut = 0x05,
  LogoutRequest = 0x06,
  SnackRequest = 0x10,
  // target -> initiator
  NopIn = 0x20,
  ScsiResponse = 0x21,
  TaskManagementResponse = 0x22,
  LoginResponse = 0x23,
  TextResponse = 0x24,
  DataIn = 0x25,
  LogoutResponse = 0x26,
  ReadyToTransfer = 0x31,
  AsyncMessage = 0x32,
  Reject = 0x3f,
};

constexpr std::size_t kBhsLength = 48;
constexpr std::uint32_t kReservedTag = 0xffffffff;
constexpr std::uint32_t kMaxDataSegmentLength = (1u << 24) - 1;

// The Basic Header Segment. Byte offsets follow RFC 7143 section 11; accessors are named after
// the fields they read, setters after the fields they write.
class Bhs {
 public:
  std::array<std::uint8_t, kBhsLength> bytes{};

  Opcode opcode() const { return static_cast<Opcode>(bytes[0] & 0x3f); }
  bool immediate() const { return (bytes[0] & 0x40) != 0; }
  std::uint8_t flags() const { return bytes[1]; }
  bool final_bit() const { return (bytes[1] & 0x80) != 0; }
  std::uint8_t total_ahs_length() const { return bytes[4]; }  // in 4-byte words
  std::uint32_t data_segment_length() const { return util::get_be24(&bytes[5]); }
  std::uint64_t lun_field() const { return util::get_be64(&bytes[8]); }
  std::uint32_t initiator_task_tag() const { return util::get_be32(&bytes[16]); }
  std::uint32_t u32(std::size_t offset) const { return util::get_be32(&bytes[offset]); }
  std::uint16_t u16(std::size_t offset) const { return util::get_be16(&bytes[offset]); }

  void set_opcode(Opcode op, bool immediate = false) {
    bytes[0] = static_cast<std::uint8_t>(static_cast<std::uint8_t>(op) | (immediate ? 0x40 : 0));
  }
  void set_flags(std::uint8_t flags) { bytes[1] = flags; }
  void set_data_segment_length(std::uint32_t length) { util::put_be24(&bytes[5], length); }
  void set_lun_field(std::uint64_t lun) { util::put_be64(&bytes[8], lun); }
  void set_initiator_task_tag(std::uint32_t itt) { util::put_be32(&bytes[16], itt); }
  void set_u32(std::size_t offset, std::uint32_t v) { util::put_be32(&bytes[offset], v); }
  void set_u16(std::size_t offset, std::uint16_t v) { util::put_be16(&bytes[offset], v); }
};

// Field offsets shared by several PDU types.
namespace field {
constexpr std::size_t kTargetTransferTag = 20;
constexpr std::size_t kCmdSN = 24;         // requests
constexpr std::size_t kExpStatSN = 28;     // requests
constexpr std::size_t kStatSN = 24;        // responses
constexpr std::size_t kExpCmdSN = 28;      // responses
constexpr std::size_t kMaxCmdSN = 32;      // responses
}  // namespace field

struct Pdu {
  Bhs bhs;
  std::vector<std::uint8_t> ahs;           // additional header segments, total_ahs_length*4 bytes
  util::AlignedBuffer data;                // data segment without padding; may be larger than used
  std::uint32_t data_length = 0;           // valid bytes in data

  // Convenience for text-carrying PDUs (login, text): the data segment as bytes.
  std::string data_as_string() const {
    return std::string(reinterpret_cast<const char*>(data.data()), data_length);
  }
  void set_data(const std::string& text);  // copies text into data, sets data_length and the BHS length
};

// The LUN number in an 8-byte SAM LUN field: single level, peripheral (00b) or flat (01b)
// addressing. Anything else decodes to kNoSuchLun.
constexpr std::uint64_t kNoSuchLun = 0xffffffffffffffffull;
std::uint64_t decode_lun(std::uint64_t field);

// Padding to a 4-byte boundary that follows a data segment on the wire.
constexpr std::uint32_t pad4(std::uint32_t length) { return (4 - (length & 3)) & 3; }

// ---- Login (RFC 7143 11.12 / 11.13)
enum class LoginStage : std::uint8_t { Security = 0, Operational = 1, FullFeature = 3 };

struct LoginRequestFields {
  bool transit = false;
  bool cont = false;
  LoginStage current_stage = LoginStage::Security;
  LoginStage next_stage = LoginStage::Security;
  std::uint8_t version_max = 0;
  std::uint8_t version_min = 0;
  std::array<std::uint8_t, 6> isid{};
  std::uint16_t tsih = 0;
  std::uint32_t itt = 0;
  std::uint16_t cid = 0;
  std::uint32_t cmd_sn = 0;
  std::uint32_t exp_stat_sn = 0;
};
LoginRequestFields decode_login_request(const Bhs& bhs);

struct LoginResponseFields {
  bool transit = false;
  bool cont = false;
  LoginStage current_stage = LoginStage::Security;
  LoginStage next_stage = LoginStage::Security;
  std::array<std::uint8_t, 6> isid{};
  std::uint16_t tsih = 0;
  std::uint32_t itt = 0;
  std::uint32_t stat_sn = 0;
  std::uint32_t exp_cmd_sn = 0;
  std::uint32_t max_cmd_sn = 0;
  std::uint8_t status_class = 0;
  std::uint8_t status_detail = 0;
};
Bhs encode_login_response(const LoginResponseFields& fields);  // data segment length left 0

// Login status (RFC 7143 11.13.5), class << 8 | detail.
namespace login_status {
constexpr std::uint16_t kSuccess = 0x0000;
constexpr std::uint16_t kTargetMovedTemporarily = 0x0101;
constexpr std::uint16_t kInitiatorError = 0x0200;
constexpr std::uint16_t kAuthenticationFailure = 0x0201;
constexpr std::uint16_t kAuthorizationFailure = 0x0202;
constexpr std::uint16_t kNotFound = 0x0203;
constexpr std::uint16_t kTargetRemoved = 0x0204;
constexpr std::uint16_t kUnsupportedVersion = 0x0205;
constexpr std::uint16_t kTooManyConnections = 0x0206;
constexpr std::uint16_t kMissingParameter = 0x0207;
constexpr std::uint16_t kCantIncludeInSession = 0x0208;
constexpr std::uint16_t kSessionTypeNotSupported = 0x0209;
constexpr std::uint16_t kSessionDoesNotExist = 0x020a;
constexpr std::uint16_t kInvalidDuringLogin = 0x020b;
constexpr std::uint16_t kTargetError = 0x0300;
constexpr std::uint16_t kServiceUnavailable = 0x0301;
constexpr std::uint16_t kOutOfResources = 0x0302;
}  // namespace login_status

// ---- Text (RFC 7143 11.10 / 11.11)
struct TextRequestFields {
  bool final = false;
  bool cont = false;
  std::uint64_t lun = 0;
  std::uint32_t itt = 0;
  std::uint32_t ttt = kReservedTag;
  std::uint32_t cmd_sn = 0;
  std::uint32_t exp_stat_sn = 0;
};
TextRequestFields decode_text_request(const Bhs& bhs);

struct TextResponseFields {
  bool final = true;
  bool cont = false;
  std::uint64_t lun = 0;
  std::uint32_t itt = 0;
  std::uint32_t ttt = kReservedTag;
  std::uint32_t stat_sn = 0;
  std::uint32_t exp_cmd_sn = 0;
  std::uint32_t max_cmd_sn = 0;
};
Bhs encode_text_response(const TextResponseFields& fields);

}  // namespace freevsa::target
