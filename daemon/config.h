// The YAML configuration file: parsed and validated completely before anything touches a disk.
// Every error names the file, the line and the key, and says what is wrong, e.g.
//   etc/freevsa.yaml:14: targets[0].luns[0].block_size: must be 512 or 4096, got 1000
//
// Two forms of file:
// - single node (etc/freevsa.yaml): `portals` and `targets`, served from local files.
// - cluster (etc/cluster-demo.yaml): `cluster`, `nodes` and `volumes`, the same file on every
//   node; each node picks itself by name (--node) and its iSCSI portals and targets are derived
//   from its `nodes` entry and the volumes. `portals` and `targets` are refused there.
// The other top-level settings (log_level, threads, nop_*, iscsi, limits, discovery_chap) mean
// the same in both forms.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/cluster_config.h"
#include "daemon/target_access.h"
#include "target/target_config.h"

namespace freevsa::daemon {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LunConfig {
  std::uint64_t number = 0;
  std::string path;            // file or block device; relative paths are relative to the working directory
  std::uint64_t size_bytes = 0;  // 0: existing size (required for a file that does not exist yet)
  std::uint32_t block_size = 512;
  bool direct_io = true;
  std::string serial;          // optional override; default derived from target IQN and LUN number
};

struct TargetConfig {
  std::string iqn;
  std::string alias;
  std::vector<LunConfig> luns;
  TargetAccess access;
};

using PortalConfig = Endpoint;  // an iSCSI listening address; the port is 3260 unless given

struct Config {
  std::string source_path;     // the file this was read from
  std::vector<PortalConfig> portals;
  std::vector<TargetConfig> targets;
  std::optional<ChapConfig> discovery_chap;
  std::optional<ChapConfig> discovery_mutual_chap;
  std::string log_level = "info";   // debug, info, warn, error
  unsigned network_threads = 1;
  unsigned worker_threads = 16;
  unsigned nop_interval_seconds = 5;
  unsigned nop_timeout_seconds = 30;
  // Negotiation limits offered to initiators.
  std::uint32_t max_recv_data_segment_length = 262144;
  std::uint32_t max_burst_length = 1048576;
  std::uint32_t first_burst_length = 262144;
  std::uint32_t max_outstanding_r2t = 16;
  bool immediate_data = true;
  bool initial_r2t = false;
  // `limits`: connections, login and Data-Out timeouts, Data-Out memory.
  target::ResourceLimits resources;

  // Cluster files only. `cluster` is the whole file's view; `local` is set when a node was chosen,
  // and then `portals` and `targets` above are that node's, derived from nodes[] and volumes[]:
  // one target per distinct volumes[].target, LUN path = this node's backing path.
  std::optional<ClusterConfig> cluster;
  std::optional<LocalCluster> local;

  // What the file may say but probably should not (a target open to the network), in the form
  // of errors ("file:line: key: reason"); check-config prints them, serve logs them.
  std::vector<std::string> warnings;
};

// Throws ConfigError with "file:line: key: reason".
//
// Without a node: validates the whole file. A single-node file means what it always meant; a
// cluster file fills `cluster` only (no portals, targets or local): for check-config.
Config load_config(const std::string& path);
Config parse_config(const std::string& yaml_text, const std::string& source_name);
// As node `node` (serve --node NAME; "" when no --node was given): a cluster file needs a node
// it lists and fills `local`, `portals` and `targets`; a single-node file refuses a node name.
Config load_config(const std::string& path, const std::string& node);
Config parse_config(const std::string& yaml_text, const std::string& source_name, const std::string& node);

}  // namespace freevsa::daemon
