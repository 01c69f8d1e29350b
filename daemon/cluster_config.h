// The cluster part of the configuration file: nodes, replicated volumes, the peer link. One file
// describes the whole cluster and is the same on every node; each node picks itself with
// `--node NAME` and gets a LocalCluster: itself, its peers and, per volume, its own paths.
// See etc/cluster-demo.yaml for the schema; parsing lives in cluster_config.cpp, the hash that
// lets two nodes notice differing files in cluster_hash.cpp.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "daemon/target_access.h"

namespace freevsa::daemon {

// An IP literal (canonical form, IPv6 without brackets) and a port.
struct Endpoint {
  std::string address;
  std::uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

constexpr std::uint16_t kDefaultReplicationPort = 7788;
constexpr std::uint16_t kDefaultControlPort = 7799;

// SHA-256 over the canonical form of what every node must agree on (see cluster_hash.cpp).
using ConfigHash = std::array<std::uint8_t, 32>;
std::string to_hex(const ConfigHash& hash);

struct ClusterConfig;
// Fills config_hash of the cluster and of every volume from the settings they cover.
void compute_config_hashes(ClusterConfig& cluster);

// When a write completes to the initiator (DRBD's meaning): A after the local write and the send
// to the peer, B after the peer received it, C after the peer wrote it.
enum class ReplicationProtocol { A, B, C };
char protocol_letter(ReplicationProtocol protocol);

struct ResyncConfig {
  bool adaptive = true;  // adaptive: between min_rate and max_rate, yielding to application I/O
  std::uint64_t rate = 0;  // bytes per second when !adaptive
  std::uint64_t min_rate = 10ull << 20;
  std::uint64_t max_rate = 1ull << 30;
  bool checksum = false;  // checksum-based resync: skip blocks whose checksums already match
};

enum class VerifyAlgorithm { Crc32c, Sha256 };

struct VerifyConfig {
  std::uint64_t rate = 100ull << 20;  // bytes per second
  VerifyAlgorithm algorithm = VerifyAlgorithm::Crc32c;
};

struct KeepAliveConfig {
  std::chrono::milliseconds ping_interval{500};
  std::chrono::milliseconds timeout{2000};  // a peer silent this long is lost
};

// This node's files for TLS on the peer link. Each node has its own certificate and key; the CA
// certificate verifies the peer's.
struct TlsFiles {
  std::string cert;
  std::string key;
  std::string ca;
};

struct ClusterNode {
  std::string name;       // 1..64 of [A-Za-z0-9._-]
  std::uint32_t id = 0;   // unique, 1..; Hello.node_id, binds peer authentication
  Endpoint replication;   // where the node listens for and is reached by its peers
  std::vector<Endpoint> portals;  // where it serves iSCSI
  // Where `freevsa status`, `promote` and friends reach the node. Node-local (not hashed). Plain
  // HTTP, so only a loopback address is accepted; the default is port 7799 on the replication
  // address when that is loopback (nodes sharing one machine get one each), else 127.0.0.1.
  Endpoint control;
  // The file holding the node's control token (control_token.h). Node-local (not hashed). As
  // given in the file; "" when not given (LocalCluster::self has the default filled in).
  std::string control_token;
};

// A volume as the file describes it, for every node. Per-node maps are keyed by node name and
// have an entry for every node.
struct ClusterVolume {
  std::string name;  // 1..64 of [A-Za-z0-9._-]
  std::uint64_t size_bytes = 0;  // what initiators see and every replica holds
  std::uint32_t block_size = 512;
  bool direct_io = true;
  ReplicationProtocol protocol = ReplicationProtocol::C;
  std::string target_iqn;  // every node exports the volume under this target and LUN
  std::uint64_t lun = 0;
  std::map<std::string, std::string> backing;  // node -> file or block device
  // node -> metadata file; empty: internal (at the end of the backing file or device)
  std::map<std::string, std::string> external_metadata;
  ResyncConfig resync;
  VerifyConfig verify;
  // Who may log in to its target on every node: its own keys over cluster.iscsi_access. The
  // same for every volume of one target. Not hashed: the peers need not agree, and the hash's
  // text is shown to them.
  TargetAccess access;
  ConfigHash config_hash{};  // shared cluster settings + this volume's shared settings
  std::string shared_settings;  // the text config_hash was computed over (cluster_hash.cpp)
};

struct ClusterConfig {
  std::string name;
  std::string secret;  // peer link authentication, 16..1024 bytes; never printed
  std::map<std::string, TlsFiles> tls;  // node -> files; empty: no TLS with certificates
  bool tls_psk = false;  // cluster.tls: psk - TLS 1.3 with a key derived from the secret
  KeepAliveConfig keepalive;
  std::string initial_primary;  // node that is primary when the cluster first starts
  TargetAccess iscsi_access;  // cluster.iscsi_access: the default of every volume's access
  std::vector<ClusterNode> nodes;
  std::vector<ClusterVolume> volumes;
  ConfigHash config_hash{};  // shared cluster settings + every volume's shared settings

  const ClusterNode* node(const std::string& node_name) const;
};

struct MetadataLocation {
  bool internal = true;
  std::string path;  // when !internal
};

struct PeerLink {
  std::string node_name;
  std::uint32_t node_id = 0;
  Endpoint address;  // the peer's replication address
};

// One volume as this node runs it.
struct LocalVolume {
  std::string name;
  std::uint64_t size_bytes = 0;
  std::uint32_t block_size = 512;
  bool direct_io = true;
  std::string backing_path;  // this node's
  MetadataLocation metadata;  // this node's
  std::vector<PeerLink> peers;  // every other node (each holds a replica of every volume)
  ReplicationProtocol protocol = ReplicationProtocol::C;
  ResyncConfig resync;
  VerifyConfig verify;
  bool initial_primary = false;  // this node is primary when the volume is first created
  std::string target_iqn;
  std::uint64_t lun = 0;
  TargetAccess access;
  ConfigHash config_hash{};  // put in Hello.config_hash for this volume's connection
  std::string shared_settings;  // its text, shown to the peer when the hashes differ
};

// Where a node keeps its control token when the file does not say: beside the data of its first
// volume (data/a/vol0.img -> data/a/a.control-token), or in /var/lib/freevsa when that is a block
// device (nothing may be created under /dev).
std::string default_control_token_path(const std::string& node_name, const std::string& first_backing_path);

// The cluster as the node chosen with --node sees it.
struct LocalCluster {
  std::string cluster_name;
  ClusterNode self;  // self.control_token: the file, default filled in
  std::vector<ClusterNode> peers;
  std::string secret;
  std::optional<TlsFiles> tls;  // this node's files; nullopt: no TLS with certificates
  bool tls_psk = false;         // TLS 1.3 with a pre-shared key from the secret instead
  KeepAliveConfig keepalive;
  std::string initial_primary;
  std::vector<LocalVolume> volumes;
  ConfigHash config_hash{};  // whole-cluster hash, for status and logs
};

}  // namespace freevsa::daemon
