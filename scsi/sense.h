// Errors as values for the SCSI command path: one Sense type (sense key, ASC/ASCQ, optional
// sense-key-specific field pointer, optional INFORMATION) and one builder that turns it into
// fixed-format sense data. Handlers return Result: either GOOD or the Sense to report with
// CHECK CONDITION. No exceptions on this path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace freevsa::scsi {

namespace sense_key {
inline constexpr std::uint8_t kNoSense = 0x0;
inline constexpr std::uint8_t kNotReady = 0x2;
inline constexpr std::uint8_t kMediumError = 0x3;
inline constexpr std::uint8_t kHardwareError = 0x4;
inline constexpr std::uint8_t kIllegalRequest = 0x5;
inline constexpr std::uint8_t kUnitAttention = 0x6;
inline constexpr std::uint8_t kDataProtect = 0x7;
inline constexpr std::uint8_t kCopyAborted = 0xA;
inline constexpr std::uint8_t kAbortedCommand = 0xB;
inline constexpr std::uint8_t kMiscompare = 0xE;
}  // namespace sense_key

// SPC-4 4.5.2.4.2 field pointer: which byte (and optionally bit) of the CDB (in_cdb) or of the
// parameter list (!in_cdb) is in error.
struct FieldPointer {
  bool in_cdb = true;                // C/D bit
  std::uint16_t byte = 0;
  std::optional<std::uint8_t> bit;   // BPV + bit pointer when set (0..7)
  bool operator==(const FieldPointer&) const = default;
};

struct Sense {
  std::uint8_t key = sense_key::kNoSense;
  std::uint8_t asc = 0;
  std::uint8_t ascq = 0;
  std::optional<FieldPointer> field;
  std::optional<std::uint32_t> information;  // sets VALID

  bool operator==(const Sense&) const = default;

  static Sense no_sense() { return {}; }
  static Sense make(std::uint8_t key, std::uint8_t asc, std::uint8_t ascq) {
    Sense s;
    s.key = key;
    s.asc = asc;
    s.ascq = ascq;
    return s;
  }
  // 05/20/00
  static Sense invalid_opcode() { return make(sense_key::kIllegalRequest, 0x20, 0x00); }
  // 05/24/00 with a CDB field pointer
  static Sense invalid_field_in_cdb(std::uint16_t byte, std::optional<std::uint8_t> bit = {}) {
    Sense s = make(sense_key::kIllegalRequest, 0x24, 0x00);
    s.field = FieldPointer{true, byte, bit};
    return s;
  }
  // 05/26/00 with a parameter list field pointer
  static Sense invalid_field_in_parameter_list(std::uint16_t byte,
                                               std::optional<std::uint8_t> bit = {}) {
    Sense s = make(sense_key::kIllegalRequest, 0x26, 0x00);
    s.field = FieldPointer{false, byte, bit};
    return s;
  }
  static Sense parameter_list_length_error() { return make(sense_key::kIllegalRequest, 0x1A, 0x00); }
  static Sense lba_out_of_range() { return make(sense_key::kIllegalRequest, 0x21, 0x00); }
  // SPC-4 5.15.2.4: what a target port in the standby or transitioning ALUA state answers.
  static Sense standby_port() { return make(sense_key::kNotReady, 0x04, 0x0B); }
  static Sense access_state_transition() { return make(sense_key::kNotReady, 0x04, 0x0A); }
  static Sense unavailable_port() { return make(sense_key::kNotReady, 0x04, 0x0C); }
  static Sense logical_unit_not_supported() { return make(sense_key::kIllegalRequest, 0x25, 0x00); }
  static Sense saving_parameters_not_supported() {
    return make(sense_key::kIllegalRequest, 0x39, 0x00);
  }
  // 05/0E/03: the initiator sent less Data-Out than the CDB asks for.
  static Sense invalid_field_in_command_iu() { return make(sense_key::kIllegalRequest, 0x0E, 0x03); }
  static Sense unrecovered_read_error() { return make(sense_key::kMediumError, 0x11, 0x00); }
  static Sense write_error() { return make(sense_key::kMediumError, 0x0C, 0x00); }
  static Sense write_protected() { return make(sense_key::kDataProtect, 0x27, 0x00); }
  static Sense space_allocation_failed() { return make(sense_key::kDataProtect, 0x27, 0x07); }
  static Sense internal_target_failure() { return make(sense_key::kHardwareError, 0x44, 0x00); }
  static Sense insufficient_resources() { return make(sense_key::kAbortedCommand, 0x55, 0x03); }
  static Sense insufficient_registration_resources() { return make(sense_key::kIllegalRequest, 0x55, 0x04); }
  // 05/26/04: RELEASE of a persistent reservation with another type or scope (SPC-4 5.13.11.2).
  static Sense invalid_release_of_persistent_reservation() {
    return make(sense_key::kIllegalRequest, 0x26, 0x04);
  }
  // 0E/1D/00 with INFORMATION = byte offset of the first mismatch in the Data-Out buffer.
  static Sense miscompare(std::uint32_t offset) {
    Sense s = make(sense_key::kMiscompare, 0x1D, 0x00);
    s.information = offset;
    return s;
  }
  static Sense unit_attention(std::uint8_t asc, std::uint8_t ascq) {
    return make(sense_key::kUnitAttention, asc, ascq);
  }
};

// Fixed format (response code 70h), additional length 10: always 18 bytes.
inline constexpr std::size_t kFixedSenseLength = 18;
void write_fixed_sense(const Sense& sense, std::uint8_t* out /* kFixedSenseLength bytes */);
std::vector<std::uint8_t> build_fixed_sense(const Sense& sense);

class [[nodiscard]] Result {
 public:
  Result() = default;  // GOOD
  Result(const Sense& sense) : sense_(sense) {}  // NOLINT(google-explicit-constructor)
  // RESERVATION CONFLICT status: no sense data (SAM-5 5.3.1).
  static Result reservation_conflict() {
    Result r;
    r.conflict_ = true;
    return r;
  }
  bool ok() const { return !sense_.has_value() && !conflict_; }
  bool is_reservation_conflict() const { return conflict_; }
  // REQUIRES: !ok() && !is_reservation_conflict()
  const Sense& sense() const { return *sense_; }

 private:
  std::optional<Sense> sense_;
  bool conflict_ = false;
};

inline Result good() { return {}; }

}  // namespace freevsa::scsi
