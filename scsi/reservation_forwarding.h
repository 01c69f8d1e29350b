// The bytes a PERSISTENT RESERVE OUT and its outcome travel in when a node that does not serve
// the volume has the primary run it (ReplicatedVolume::forward_reservation_command): the I_T
// nexus it came through, its CDB and parameter list, and back the status and sense data.
// Pure encode/decode (fuzzable); decoding fails on anything malformed.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "scsi/persistent_reservations.h"
#include "scsi/sense.h"

namespace freevsa::scsi {

struct ForwardedCommand {
  Nexus nexus;
  std::array<std::uint8_t, 10> cdb{};
  std::vector<std::uint8_t> parameters;
  bool operator==(const ForwardedCommand&) const = default;
};
std::vector<std::uint8_t> encode_forwarded_command(const ForwardedCommand& command);
std::optional<ForwardedCommand> decode_forwarded_command(std::span<const std::uint8_t> bytes);

// GOOD, RESERVATION CONFLICT, or CHECK CONDITION with the sense.
std::vector<std::uint8_t> encode_forwarded_result(const Result& result);
std::optional<Result> decode_forwarded_result(std::span<const std::uint8_t> bytes);

}  // namespace freevsa::scsi
