// Who may log in to an iSCSI target: CHAP secrets and the initiator allow-list. The same keys
// (chap, mutual_chap, allowed_initiators) in a single-node file's targets[] and in a cluster
// file's volumes[] and cluster.iscsi_access; parsed by config_access.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace freevsa::daemon {

struct ChapConfig {
  std::string user;
  std::string secret;  // 12 to 255 bytes (RFC 7143 12.1.3 asks for at least 96 bits)
  bool operator==(const ChapConfig&) const = default;
};

struct TargetAccess {
  std::optional<ChapConfig> chap;         // initiators must log in with these
  std::optional<ChapConfig> mutual_chap;  // we authenticate to initiators with these
  std::vector<std::string> allowed_initiators;  // empty: all

  // Anyone who reaches a portal may log in.
  bool open() const { return !chap && allowed_initiators.empty(); }
};

}  // namespace freevsa::daemon
