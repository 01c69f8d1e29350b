// The configuration hash that two nodes compare at connect (Hello.config_hash): SHA-256 over a
// canonical text of exactly the settings both ends must agree on, so that a file changed on one
// node and not on the other is noticed before any data moves, while node-local details can
// differ freely.
//
// Covered (shared):            cluster name; a fingerprint of the secret; initial_primary; whether
//                              TLS is on; keepalive ping_interval and timeout; every node's name,
//                              id and replication address; per volume: name, size, block_size,
//                              protocol, target IQN, LUN, checksum-based resync on/off, verify
//                              algorithm.
// Not covered (node-local):    backing and metadata paths, direct_io, TLS file paths, iSCSI
//                              portals, resync and verify rates (they only throttle the sending
//                              side, so each node may be tuned on its own), log level, threads,
//                              iSCSI negotiation limits, discovery CHAP.
//
// The canonical text does not depend on formatting, comments, key order, the order of nodes or
// volumes in their lists, or how a value is spelled (1G vs 1073741824, "127.0.0.1" vs
// 127.0.0.1:7788): nodes and volumes are sorted by name, values are in their parsed form.
//
// The secret enters only as SHA-256("freevsa-peer-secret-v1" NUL secret). The hash is sent
// before authentication, so like any authentication exchange it lets an observer test guesses
// of the secret offline: use a random secret, not a word.
//
// Two hashes: the volume hash (cluster part + that volume) goes into the Hello of that volume's
// connection, so adding a volume on one node first does not cut the others' links; the cluster
// hash (cluster part + every volume) is for status pages and logs.
#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <string_view>

#include "daemon/cluster_config.h"
#include "daemon/config.h"
#include "daemon/config_reader.h"

namespace freevsa::daemon {
namespace {

using config_detail::endpoint_text;

ConfigHash sha256(std::string_view data) {
  ConfigHash hash{};
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), hash.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != hash.size()) {
    throw ConfigError("cannot compute SHA-256 (OpenSSL failed)");
  }
  return hash;
}

std::string cluster_part(const ClusterConfig& cluster) {
  std::string secret_input = "freevsa-peer-secret-v1";
  secret_input.push_back('\0');
  secret_input += cluster.secret;
  std::string text = "freevsa-config-hash v1\n";
  text += fmt::format("cluster name={}\n", cluster.name);
  text += fmt::format("cluster secret-sha256={}\n", to_hex(sha256(secret_input)));
  text += fmt::format("cluster initial_primary={}\n", cluster.initial_primary);
  text += fmt::format("cluster tls={}\n", cluster.tls_psk ? "psk" : cluster.tls.empty() ? "off" : "on");
  text += fmt::format("cluster keepalive ping_interval_ms={} timeout_ms={}\n", cluster.keepalive.ping_interval.count(),
                      cluster.keepalive.timeout.count());
  std::vector<const ClusterNode*> nodes;
  for (const ClusterNode& node : cluster.nodes) nodes.push_back(&node);
  std::sort(nodes.begin(), nodes.end(), [](const ClusterNode* a, const ClusterNode* b) { return a->name < b->name; });
  for (const ClusterNode* node : nodes) {
    text += fmt::format("node name={} id={} replication={}\n", node->name, node->id, endpoint_text(node->replication));
  }
  return text;
}

std::string volume_part(const ClusterVolume& volume) {
  return fmt::format(
      "volume name={} size={} block_size={} protocol={} target={} lun={} resync.checksum={} verify.algorithm={}\n",
      volume.name, volume.size_bytes, volume.block_size, protocol_letter(volume.protocol), volume.target_iqn,
      volume.lun, volume.resync.checksum ? "on" : "off",
      volume.verify.algorithm == VerifyAlgorithm::Sha256 ? "sha256" : "crc32c");
}

}  // namespace

void compute_config_hashes(ClusterConfig& cluster) {
  const std::string shared = cluster_part(cluster);
  std::vector<ClusterVolume*> volumes;
  for (ClusterVolume& volume : cluster.volumes) volumes.push_back(&volume);
  std::sort(volumes.begin(), volumes.end(), [](const ClusterVolume* a, const ClusterVolume* b) { return a->name < b->name; });
  std::string all = shared + "scope=cluster\n";
  for (ClusterVolume* volume : volumes) {
    std::string part = volume_part(*volume);
    volume->shared_settings = shared + "scope=volume\n" + part;
    volume->config_hash = sha256(volume->shared_settings);
    all += part;
  }
  cluster.config_hash = sha256(all);
}

}  // namespace freevsa::daemon
