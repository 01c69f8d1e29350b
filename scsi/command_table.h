// The one table of SCSI commands this target implements: for each operation code (and service
// action, for 9Eh/A3h) its handler, CDB length, data direction, what it needs of the volume,
// whether it runs while a unit attention is pending, and the CDB usage mask reported by REPORT
// SUPPORTED OPERATION CODES. Dispatch and REPORT SUPPORTED OPERATION CODES both read it, so the
// two can never disagree.
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "scsi/sense.h"

namespace freevsa::scsi {

struct CommandContext;  // scsi/handlers.h
using Handler = Result (*)(CommandContext&);

enum class DataDirection : std::uint8_t { None, In, Out };

// CommandInfo::flags
inline constexpr std::uint32_t kReadsMedium = 1u << 0;     // reads the volume
inline constexpr std::uint32_t kWritesMedium = 1u << 1;    // modifies the volume
inline constexpr std::uint32_t kAllowedWithUnitAttention = 1u << 2;  // neither blocked by nor clears a UA
inline constexpr std::uint32_t kWithoutLogicalUnit = 1u << 3;  // answered for a LUN that does not exist
inline constexpr std::uint32_t kServiceAction = 1u << 4;   // opcode multiplexes service actions (cdb[1] & 1Fh)
// Served while the volume is not active on this node (SPC-4 5.15.2.4.4, standby state).
inline constexpr std::uint32_t kAllowedInStandby = 1u << 5;
// Reservations (SPC-4 5.13.1, SBC-3 4.17): a command without one of these conflicts with every
// reservation its I_T nexus does not share.
inline constexpr std::uint32_t kReservationExempt = 1u << 6;    // never conflicts
inline constexpr std::uint32_t kReservationRead = 1u << 7;      // conflicts only with exclusive access
inline constexpr std::uint32_t kReservationOwnRules = 1u << 8;  // the handler applies the rules

struct CommandInfo {
  std::uint8_t opcode;
  std::uint8_t service_action;  // meaningful only with kServiceAction
  const char* name;
  std::uint8_t cdb_length;
  DataDirection direction;
  std::uint32_t flags;
  Handler handler;
  // Bits the device server evaluates in each CDB byte (SPC-4 6.35.3); byte 0 is the opcode.
  std::array<std::uint8_t, 16> usage;

  bool has_service_action() const { return (flags & kServiceAction) != 0; }
};

// Timeouts reported in the command timeouts descriptor (seconds; 0 = not specified).
inline constexpr std::uint32_t kNominalTimeoutSeconds = 0;
inline constexpr std::uint32_t kRecommendedTimeoutSeconds = 30;

std::span<const CommandInfo> command_table();

struct Lookup {
  const CommandInfo* info = nullptr;     // null: not supported
  bool unknown_service_action = false;   // opcode known, its service action is not
};
// Finds the command for a CDB (opcode, and the service action where the opcode has them).
Lookup lookup_command(const std::uint8_t* cdb);
// Finds a table entry by opcode and service action (the latter ignored for opcodes without).
const CommandInfo* find_command(std::uint8_t opcode, std::uint8_t service_action);
bool opcode_has_service_actions(std::uint8_t opcode);

}  // namespace freevsa::scsi
