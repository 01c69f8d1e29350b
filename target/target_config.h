// What the iSCSI layer serves: targets with their LUNs, portals, authentication and the limits
// it offers in negotiation. Built by the daemon from the YAML file; read-only once serving.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "scsi/lun_map.h"

namespace freevsa::target {

struct ChapSecret {
  std::string user;
  std::string secret;
};

struct TargetDefinition {
  std::string iqn;
  std::string alias;                          // TargetAlias; empty: not sent
  std::shared_ptr<scsi::LunMap> luns;
  std::optional<ChapSecret> chap;             // set: initiators must authenticate with these
  std::optional<ChapSecret> mutual_chap;      // set: we answer an initiator's challenge with these
  std::vector<std::string> allowed_initiators;  // initiator IQNs; empty: every initiator
};

struct Portal {
  std::string address = "127.0.0.1";
  std::uint16_t port = 3260;
};

// What the target offers in operational negotiation; the result is the RFC's combination of this
// and the initiator's offer.
struct TargetLimits {
  std::uint32_t max_recv_data_segment_length = 262144;
  std::uint32_t max_burst_length = 1048576;
  std::uint32_t first_burst_length = 262144;
  std::uint32_t max_outstanding_r2t = 16;
  bool initial_r2t = false;       // we are happy to take unsolicited data
  bool immediate_data = true;
  bool header_digest_allowed = true;   // CRC32C offered if the initiator proposes it
  bool data_digest_allowed = true;
  std::uint32_t command_window = 128;  // MaxCmdSN - ExpCmdSN + 1
};

// Beyond this an Expected Data Transfer Length is not a disk write but an attack on our memory.
constexpr std::uint32_t kMaxTransferBytes = 64u << 20;

// What the target holds at most, so that no initiator (nor anyone who reaches a portal) can
// exhaust its descriptors or memory. Data-Out budgets must be at least kMaxTransferBytes (one
// write of the largest length always fits); the daemon's configuration checks that.
struct ResourceLimits {
  std::size_t connections_per_portal = 1024;
  std::size_t connections_per_initiator_address = 128;
  unsigned login_timeout_seconds = 15;       // a connection not logged in by then is closed
  unsigned data_out_timeout_seconds = 30;    // a write whose Data-Out stops this long fails
  std::uint64_t data_out_bytes_per_connection = std::uint64_t{256} << 20;
  std::uint64_t data_out_bytes_total = std::uint64_t{1} << 30;
};

struct TargetServerConfig {
  std::vector<Portal> portals{Portal{}};
  std::vector<TargetDefinition> targets;
  std::optional<ChapSecret> discovery_chap;         // set: discovery sessions must authenticate
  std::optional<ChapSecret> discovery_mutual_chap;
  TargetLimits limits;
  ResourceLimits resources;
  std::uint16_t target_portal_group_tag = 1;
  unsigned network_threads = 1;
  unsigned worker_threads = 16;
  unsigned nop_interval_seconds = 5;   // ping a connection idle this long
  unsigned nop_timeout_seconds = 30;   // drop a connection whose pings go unanswered this long

  const TargetDefinition* find_target(const std::string& iqn) const {
    for (const auto& t : targets)
      if (t.iqn == iqn) return &t;
    return nullptr;
  }
};

}  // namespace freevsa::target
