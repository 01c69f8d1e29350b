// Helpers shared by the Replicator's source files: conversions between the wire enums and ours,
// and text for log lines and status.
#pragma once

#include <fmt/format.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>

#include "replication/metadata.h"
#include "replication/peer_protocol.h"
#include "replication/replicated_volume.h"
#include "util/human_bytes.h"

namespace freevsa::replication {

inline peer::Role to_wire(Role role) { return role == Role::Primary ? peer::Role::Primary : peer::Role::Secondary; }

inline peer::DiskState to_wire(DiskState state) {
  switch (state) {
    case DiskState::Diskless: return peer::DiskState::Diskless;
    case DiskState::Inconsistent: return peer::DiskState::Inconsistent;
    case DiskState::Outdated: return peer::DiskState::Outdated;
    case DiskState::UpToDate: return peer::DiskState::UpToDate;
  }
  return peer::DiskState::Diskless;
}

inline DiskState to_disk_state(peer::DiskState state) {
  switch (state) {
    case peer::DiskState::Diskless: return DiskState::Diskless;
    case peer::DiskState::Inconsistent: return DiskState::Inconsistent;
    case peer::DiskState::Outdated: return DiskState::Outdated;
    case peer::DiskState::UpToDate: return DiskState::UpToDate;
  }
  return DiskState::Diskless;
}

template <std::size_t N>
std::string hex(const std::array<std::uint8_t, N>& bytes) {
  std::string out;
  for (std::uint8_t b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

using util::human_bytes;

}  // namespace freevsa::replication
