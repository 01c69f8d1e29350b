// The cluster form of the configuration file: the `cluster`, `nodes` and `volumes` sections,
// checked against each other, and the view of one node. Schema: etc/cluster-demo.yaml.
#include "daemon/cluster_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>
#include <tuple>

#include "daemon/config_reader.h"

namespace freevsa::daemon {

std::string to_hex(const ConfigHash& hash) {
  std::string out;
  for (std::uint8_t byte : hash) out += fmt::format("{:02x}", byte);
  return out;
}

char protocol_letter(ReplicationProtocol protocol) {
  switch (protocol) {
    case ReplicationProtocol::A: return 'A';
    case ReplicationProtocol::B: return 'B';
    case ReplicationProtocol::C: break;
  }
  return 'C';
}

const ClusterNode* ClusterConfig::node(const std::string& node_name) const {
  auto it = std::find_if(nodes.begin(), nodes.end(), [&](const ClusterNode& n) { return n.name == node_name; });
  return it == nodes.end() ? nullptr : &*it;
}

namespace config_detail {
namespace {

using MapView = Reader::MapView;

// Names travel in the peer link's Hello as fixed 64-byte fields.
constexpr std::size_t kMaxNameBytes = 64;
// HMAC-SHA256 keys shorter than the hash weaken it; 16 bytes is the least that still resists
// guessing when the secret is random (openssl rand -base64 24).
constexpr std::size_t kMinSecretBytes = 16;
constexpr std::size_t kMaxSecretBytes = 1024;
constexpr std::size_t kMaxNodes = 16;
constexpr std::uint64_t kMinRate = 64ull << 10;
constexpr std::uint64_t kMaxRate = 1ull << 40;
constexpr std::uint64_t kMaxPath = 4095;

// A path given for each node, with where each was written.
using PerNode = std::map<std::string, Field>;

class ClusterReader {
 public:
  explicit ClusterReader(const Reader& reader) : r_(reader) {}

  ClusterConfig read(const MapView& root);

 private:
  void nodes(const Field& field, ClusterConfig& cluster);
  ClusterNode node(const Field& field, std::size_t index);
  void settings(const Field& field, ClusterConfig& cluster);
  void keepalive(const Field& field, KeepAliveConfig& keepalive) const;
  ClusterVolume volume(const Field& field, const TargetAccess& access_defaults);
  void same_access_per_target(const std::vector<Field>& items, const std::vector<ClusterVolume>& volumes) const;
  void warn_exposed(const std::vector<Field>& items, const ClusterConfig& cluster) const;
  ResyncConfig resync(const Field& field) const;
  VerifyConfig verify(const Field& field) const;
  std::string node_name(const Field& field) const;
  PerNode per_node_path(const Field& field) const;
  std::map<std::string, std::string> values(const PerNode& paths) const;
  void claim(const Field& path, const std::string& node);
  Endpoint control(const MapView& map, const ClusterNode& node, const Field& replication,
                   const std::vector<Field>& portals, const std::string& machine);
  void claim_endpoint(const Field& field, const Endpoint& endpoint, const std::string& what,
                      const std::string& machine, std::string_view hint = {});

  const Reader& r_;
  std::vector<std::string> node_names_;
  std::map<std::string, bool> loopback_;  // node -> its replication address is a loopback one
  struct PathOwner {
    std::string what;
    std::string node;
    int line = 0;
  };
  std::map<std::string, PathOwner> path_owners_;  // "machine\npath" -> first use
  // (machine, address, port) -> (what, line); machine is "" for addresses that are not loopback.
  std::map<std::tuple<std::string, std::string, std::uint16_t>, std::pair<std::string, int>> endpoint_owners_;
};

ClusterConfig ClusterReader::read(const MapView& root) {
  ClusterConfig cluster;
  nodes(root.require("nodes"), cluster);
  settings(root.require("cluster"), cluster);
  Field volumes_field = root.require("volumes");
  std::vector<Field> items = r_.sequence(volumes_field);
  if (items.empty()) r_.fail(volumes_field, "at least one volume is needed");
  std::map<std::string, int> name_lines;
  std::map<std::pair<std::string, std::uint64_t>, std::pair<std::string, int>> luns;
  for (const Field& item : items) {
    ClusterVolume volume = this->volume(item, cluster.iscsi_access);
    if (auto [it, inserted] = name_lines.emplace(volume.name, item.line); !inserted) {
      r_.fail(item.line, child_path(item.path, "name"),
              fmt::format("volume '{}' is defined twice (first at line {})", volume.name, it->second));
    }
    // Two volumes behind one target and LUN would be one device to an initiator.
    if (auto [it, inserted] = luns.emplace(std::pair(volume.target_iqn, volume.lun), std::pair(volume.name, item.line));
        !inserted) {
      r_.fail(item.line, child_path(item.path, "lun"),
              fmt::format("LUN {} of target '{}' is already volume '{}' (line {})", volume.lun, volume.target_iqn,
                          it->second.first, it->second.second));
    }
    cluster.volumes.push_back(std::move(volume));
  }
  same_access_per_target(items, cluster.volumes);
  warn_exposed(items, cluster);
  compute_config_hashes(cluster);
  return cluster;
}

// An initiator logs in to a target, not to a LUN: volumes sharing one need one access.
void ClusterReader::same_access_per_target(const std::vector<Field>& items,
                                           const std::vector<ClusterVolume>& volumes) const {
  auto sorted = [](std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    return names;
  };
  std::map<std::string, std::size_t> first_of_target;
  for (std::size_t i = 0; i < volumes.size(); ++i) {
    auto [it, inserted] = first_of_target.emplace(volumes[i].target_iqn, i);
    if (inserted) continue;
    const TargetAccess& mine = volumes[i].access;
    const TargetAccess& first = volumes[it->second].access;
    std::string_view differing;
    if (mine.chap != first.chap) {
      differing = "chap";
    } else if (mine.mutual_chap != first.mutual_chap) {
      differing = "mutual_chap";
    } else if (sorted(mine.allowed_initiators) != sorted(first.allowed_initiators)) {
      differing = "allowed_initiators";
    }
    if (differing.empty()) continue;
    r_.fail(items[i].line, child_path(items[i].path, differing),
            fmt::format("differs from that of volume '{}' (line {}), which has the same target '{}': volumes of one "
                        "target share its chap, mutual_chap and allowed_initiators",
                        volumes[it->second].name, items[it->second].line, volumes[i].target_iqn));
  }
}

void ClusterReader::warn_exposed(const std::vector<Field>& items, const ClusterConfig& cluster) const {
  std::vector<ServedPortal> served;
  for (const ClusterNode& node : cluster.nodes) {
    for (const Endpoint& portal : node.portals) served.push_back({portal, "node " + node.name});
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    warn_if_exposed(r_, items[i], fmt::format("volume '{}'", cluster.volumes[i].name), cluster.volumes[i].access,
                    served, "set chap or allowed_initiators on the volume or in cluster.iscsi_access");
  }
}

void ClusterReader::nodes(const Field& field, ClusterConfig& cluster) {
  std::vector<Field> items = r_.sequence(field);
  if (items.size() < 2) {
    r_.fail(field, "a cluster needs at least two nodes (one node alone is described with portals and targets)");
  }
  if (items.size() > kMaxNodes) r_.fail(field, fmt::format("at most {} nodes are supported", kMaxNodes));
  std::map<std::string, int> name_lines;
  std::map<std::uint32_t, std::pair<std::string, int>> ids;
  for (std::size_t i = 0; i < items.size(); ++i) {
    ClusterNode node = this->node(items[i], i);
    if (auto [it, inserted] = name_lines.emplace(node.name, items[i].line); !inserted) {
      r_.fail(items[i].line, child_path(items[i].path, "name"),
              fmt::format("node '{}' is listed twice (first at line {})", node.name, it->second));
    }
    if (auto [it, inserted] = ids.emplace(node.id, std::pair(node.name, items[i].line)); !inserted) {
      r_.fail(items[i].line, child_path(items[i].path, "id"),
              fmt::format("id {} is already node '{}' (line {}); node ids are unique (without 'id:' a node's id "
                          "is its position in the list, from 1)",
                          node.id, it->second.first, it->second.second));
    }
    node_names_.push_back(node.name);
    loopback_[node.name] = is_loopback(node.replication.address);
    cluster.nodes.push_back(std::move(node));
  }
}

ClusterNode ClusterReader::node(const Field& field, std::size_t index) {
  MapView map(r_, field, {"name", "id", "replication", "portals", "control", "control_token"});
  ClusterNode node;
  node.name = r_.name(map.require("name"), kMaxNameBytes);
  node.id = static_cast<std::uint32_t>(index + 1);
  if (auto id = map.get("id")) node.id = static_cast<std::uint32_t>(r_.number(*id, 1, 65535));

  Field replication = map.require("replication");
  node.replication = r_.endpoint(replication, kDefaultReplicationPort);
  if (is_wildcard(node.replication.address)) {
    r_.fail(replication, fmt::format("{} listens everywhere but cannot be connected to: give the address the "
                                     "peers reach this node at",
                                     node.replication.address));
  }
  // Which machine the node's loopback addresses belong to: nodes with loopback replication
  // addresses share one (the demo); any other node is a machine of its own.
  const std::string machine = is_loopback(node.replication.address) ? "loopback" : fmt::format("node #{}", index);
  claim_endpoint(replication, node.replication, fmt::format("node '{}' replication", node.name), machine);

  Field portals_field = map.require("portals");
  std::vector<Field> portals = r_.sequence(portals_field);
  if (portals.empty()) r_.fail(portals_field, "at least one portal is needed");
  for (const Field& item : portals) {
    Endpoint portal = r_.endpoint(item, kDefaultIscsiPort);
    // The replication listener and the target cannot share a socket address.
    if (portal.port == node.replication.port &&
        (portal.address == node.replication.address || is_wildcard(portal.address))) {
      r_.fail(item, fmt::format("{} clashes with this node's replication address {} (line {})",
                                endpoint_text(portal), endpoint_text(node.replication), replication.line));
    }
    if (std::find(node.portals.begin(), node.portals.end(), portal) != node.portals.end()) {
      r_.fail(item, fmt::format("portal {} is listed twice", endpoint_text(portal)));
    }
    if (!is_wildcard(portal.address)) {
      claim_endpoint(item, portal, fmt::format("node '{}' portal", node.name), machine);
    }
    node.portals.push_back(std::move(portal));
  }
  node.control = control(map, node, replication, portals, machine);
  if (auto token = map.get("control_token")) node.control_token = r_.text(*token, kMaxPath);
  return node;
}

Endpoint ClusterReader::control(const MapView& map, const ClusterNode& node, const Field& replication,
                                const std::vector<Field>& portals, const std::string& machine) {
  const std::optional<Field> given = map.get("control");
  Endpoint control;
  if (given) {
    control = r_.endpoint(*given, kDefaultControlPort);
    // The token and every answer travel in plain text, readable and alterable on a network.
    if (!is_loopback(control.address)) {
      r_.fail(*given, fmt::format("{} {}: the control endpoint speaks plain HTTP without TLS, so it only listens on "
                                  "this machine (127.0.0.0/8 or ::1); run the commands on the node, e.g. over ssh",
                                  endpoint_text(control),
                                  is_wildcard(control.address) ? "listens on every address" : "is not a loopback address"));
    }
  } else {
    // The endpoint is not reachable from the network.
    control.address = is_loopback(node.replication.address) ? node.replication.address : "127.0.0.1";
    control.port = kDefaultControlPort;
  }
  // A default is written nowhere: its errors point at the node and say how to move it.
  const Field& node_field = map.field();
  const Field where = given ? *given : Field{node_field.node, child_path(node_field.path, "control"), node_field.line};
  const std::string subject =
      given ? endpoint_text(control) : fmt::format("the default control address {}", endpoint_text(control));
  const std::string hint = given ? "" : "; set 'control' to another address or port";

  auto overlaps = [](const Endpoint& a, const Endpoint& b) {
    return a.port == b.port && (a.address == b.address || is_wildcard(a.address) || is_wildcard(b.address));
  };
  if (overlaps(control, node.replication)) {
    r_.fail(where, fmt::format("{} clashes with this node's replication address {} (line {}){}", subject,
                               endpoint_text(node.replication), replication.line, hint));
  }
  for (std::size_t i = 0; i < node.portals.size(); ++i) {
    if (overlaps(control, node.portals[i])) {
      r_.fail(where, fmt::format("{} clashes with this node's portal {} (line {}){}", subject,
                                 endpoint_text(node.portals[i]), portals[i].line, hint));
    }
  }
  const std::string what = fmt::format("node '{}' {}control", node.name, given ? "" : "default ");
  claim_endpoint(where, control, what, machine, given ? "" : "; it is this node's default control address" + hint);
  return control;
}

// An IP address belongs to one machine: the same address and port twice in the cluster is a
// copy-and-paste mistake, and on one machine (the demo) the second listener would fail to bind.
// Loopback addresses are the exception: every machine has its own 127.0.0.1, so they are only
// compared within `machine`.
void ClusterReader::claim_endpoint(const Field& field, const Endpoint& endpoint, const std::string& what,
                                   const std::string& machine, std::string_view hint) {
  std::tuple key(is_loopback(endpoint.address) ? machine : std::string(), endpoint.address, endpoint.port);
  auto [it, inserted] = endpoint_owners_.emplace(std::move(key), std::pair(what, field.line));
  if (!inserted) {
    r_.fail(field, fmt::format("{} is already the {} address (line {}){}", endpoint_text(endpoint), it->second.first,
                               it->second.second, hint));
  }
}

void ClusterReader::settings(const Field& field, ClusterConfig& cluster) {
  MapView map(r_, field, {"name", "secret", "initial_primary", "tls", "keepalive", "iscsi_access"});
  cluster.name = r_.name(map.require("name"), kMaxNameBytes);

  // The secret itself never appears in a message.
  Field secret = map.require("secret");
  if (!secret.node.IsScalar()) r_.fail(secret, fmt::format("expected a string, got {}", describe(secret.node)));
  cluster.secret = secret.node.Scalar();
  if (cluster.secret.size() < kMinSecretBytes || cluster.secret.size() > kMaxSecretBytes) {
    r_.fail(secret, fmt::format("must be {} to {} bytes long, got {} (make one with: openssl rand -base64 24)",
                                kMinSecretBytes, kMaxSecretBytes, cluster.secret.size()));
  }

  cluster.initial_primary = node_name(map.require("initial_primary"));

  if (auto tls = map.get("tls"); tls && tls->node.IsScalar()) {
    if (tls->node.Scalar() != "psk") {
      r_.fail(*tls, fmt::format("expected psk (TLS 1.3 with a key derived from cluster.secret) or a map of cert, key "
                                "and ca, got '{}'",
                                tls->node.Scalar()));
    }
    cluster.tls_psk = true;
  } else if (tls) {
    MapView files(r_, *tls, {"cert", "key", "ca"});
    std::map<std::string, std::string> cert = values(per_node_path(files.require("cert")));
    std::map<std::string, std::string> key = values(per_node_path(files.require("key")));
    std::map<std::string, std::string> ca = values(per_node_path(files.require("ca")));
    for (const std::string& node : node_names_) cluster.tls[node] = TlsFiles{cert[node], key[node], ca[node]};
  }
  if (auto f = map.get("keepalive")) keepalive(*f, cluster.keepalive);
  if (auto f = map.get("iscsi_access")) {
    cluster.iscsi_access = read_access(r_, MapView(r_, *f, {"chap", "mutual_chap", "allowed_initiators"}), {});
  }
}

void ClusterReader::keepalive(const Field& field, KeepAliveConfig& keepalive) const {
  using std::chrono::milliseconds;
  MapView map(r_, field, {"ping_interval", "timeout"});
  if (auto f = map.get("ping_interval")) keepalive.ping_interval = r_.duration(*f, milliseconds(50), milliseconds(60000));
  if (auto f = map.get("timeout")) {
    keepalive.timeout = r_.duration(*f, milliseconds(100), milliseconds(600000));
    if (keepalive.timeout < 2 * keepalive.ping_interval) {
      r_.fail(*f, fmt::format("must be at least twice ping_interval ({}ms), so that one lost ping is not a lost peer",
                              keepalive.ping_interval.count()));
    }
  } else if (keepalive.timeout < 2 * keepalive.ping_interval) {
    keepalive.timeout = 4 * keepalive.ping_interval;  // only ping_interval was raised: follow it
  }
}

ClusterVolume ClusterReader::volume(const Field& field, const TargetAccess& access_defaults) {
  MapView map(r_, field,
              {"name", "size", "block_size", "direct_io", "protocol", "target", "lun", "backing", "metadata", "resync",
               "verify", "chap", "mutual_chap", "allowed_initiators"});
  ClusterVolume volume;
  volume.name = r_.name(map.require("name"), kMaxNameBytes);
  if (auto f = map.get("block_size")) {
    std::uint64_t value = r_.number(*f, 0, std::numeric_limits<std::uint64_t>::max());
    if (value != 512 && value != 4096) r_.fail(*f, fmt::format("must be 512 or 4096, got {}", value));
    volume.block_size = static_cast<std::uint32_t>(value);
  }
  Field size = map.require("size");
  volume.size_bytes = r_.size(size, 1, std::numeric_limits<std::uint64_t>::max());
  if (volume.size_bytes % volume.block_size != 0) {
    r_.fail(size, fmt::format("{} bytes is not a multiple of block_size {}", volume.size_bytes, volume.block_size));
  }
  if (auto f = map.get("direct_io")) volume.direct_io = r_.boolean(*f);
  if (auto f = map.get("protocol")) {
    std::string value = r_.scalar(*f, "A, B or C");
    if (value == "A") {
      volume.protocol = ReplicationProtocol::A;
    } else if (value == "B") {
      volume.protocol = ReplicationProtocol::B;
    } else if (value != "C") {
      r_.fail(*f, fmt::format("must be A, B or C, got '{}'", value));
    }
  }
  volume.target_iqn = r_.iscsi_name(map.require("target"));
  if (auto f = map.get("lun")) volume.lun = r_.number(*f, 0, kMaxLun);

  PerNode backing = per_node_path(map.require("backing"));
  for (const auto& [node, path] : backing) claim(path, node);
  volume.backing = values(backing);
  if (auto f = map.get("metadata"); f && !(f->node.IsScalar() && f->node.Scalar() == "internal")) {
    PerNode metadata = per_node_path(*f);
    for (const auto& [node, path] : metadata) claim(path, node);
    volume.external_metadata = values(metadata);
  }
  if (auto f = map.get("resync")) volume.resync = resync(*f);
  if (auto f = map.get("verify")) volume.verify = verify(*f);
  volume.access = read_access(r_, map, access_defaults);
  return volume;
}

ResyncConfig ClusterReader::resync(const Field& field) const {
  MapView map(r_, field, {"rate", "min_rate", "max_rate", "checksum"});
  ResyncConfig resync;
  if (auto f = map.get("rate"); f && !(f->node.IsScalar() && f->node.Scalar() == "adaptive")) {
    if (!f->node.IsScalar() || f->node.Scalar().empty() || f->node.Scalar()[0] < '0' || f->node.Scalar()[0] > '9') {
      r_.fail(*f, fmt::format("expected 'adaptive' or bytes per second such as 100M, got {}", describe(f->node)));
    }
    resync.adaptive = false;
    resync.rate = r_.size(*f, kMinRate, kMaxRate);
    for (std::string_view key : {"min_rate", "max_rate"}) {
      if (auto bound = map.get(key)) r_.fail(*bound, "only applies with rate: adaptive");
    }
  }
  if (auto f = map.get("max_rate")) {
    resync.max_rate = r_.size(*f, kMinRate, kMaxRate);
    resync.min_rate = std::min(resync.min_rate, resync.max_rate);
  }
  if (auto f = map.get("min_rate")) {
    resync.min_rate = r_.size(*f, kMinRate, kMaxRate);
    if (resync.min_rate > resync.max_rate) {
      r_.fail(*f, fmt::format("must not exceed max_rate ({} bytes per second), got {}", resync.max_rate,
                              f->node.Scalar()));
    }
  }
  if (auto f = map.get("checksum")) resync.checksum = r_.boolean(*f);
  return resync;
}

VerifyConfig ClusterReader::verify(const Field& field) const {
  MapView map(r_, field, {"rate", "algorithm"});
  VerifyConfig verify;
  if (auto f = map.get("rate")) verify.rate = r_.size(*f, kMinRate, kMaxRate);
  if (auto f = map.get("algorithm")) {
    std::string value = r_.scalar(*f, "crc32c or sha256");
    if (value == "sha256") {
      verify.algorithm = VerifyAlgorithm::Sha256;
    } else if (value != "crc32c") {
      r_.fail(*f, fmt::format("must be crc32c or sha256, got '{}'", value));
    }
  }
  return verify;
}

std::string ClusterReader::node_name(const Field& field) const {
  std::string value = r_.scalar(field, "a node name");
  if (std::find(node_names_.begin(), node_names_.end(), value) == node_names_.end()) {
    std::vector<std::string_view> known(node_names_.begin(), node_names_.end());
    r_.fail(field, fmt::format("'{}' is not a node in 'nodes' ({}){}", value, fmt::join(node_names_, ", "),
                               did_you_mean(value, known)));
  }
  return value;
}

// "path" for the same path on every node, or {node: path, ...} with every node named.
PerNode ClusterReader::per_node_path(const Field& field) const {
  PerNode result;
  if (field.node.IsScalar()) {
    r_.text(field, kMaxPath);
    for (const std::string& node : node_names_) result.emplace(node, field);
    return result;
  }
  if (!field.node.IsMap()) {
    r_.fail(field, fmt::format("expected a path or a map of node name to path, got {}", describe(field.node)));
  }
  MapView map = r_.open_map(field);
  std::vector<std::string_view> known(node_names_.begin(), node_names_.end());
  for (const auto& [node, value] : map.entries()) {
    if (std::find(node_names_.begin(), node_names_.end(), node) == node_names_.end()) {
      r_.fail(value.line, field.path,
              fmt::format("'{}' is not a node in 'nodes' ({}){}", node, fmt::join(node_names_, ", "),
                          did_you_mean(node, known)));
    }
    r_.text(value, kMaxPath);
    result.emplace(node, value);
  }
  for (const std::string& node : node_names_) {
    if (!result.contains(node)) r_.fail(field, fmt::format("no path for node '{}'", node));
  }
  return result;
}

std::map<std::string, std::string> ClusterReader::values(const PerNode& paths) const {
  std::map<std::string, std::string> result;
  for (const auto& [node, field] : paths) result.emplace(node, field.node.Scalar());
  return result;
}

// One file or device holds one thing on a machine. Nodes with loopback replication addresses
// run on one machine (the demo), so their paths share one namespace; other nodes each have
// their own, and /dev/sdb on two of them is two disks. Paths are compared lexically normalised
// ("./data//a.img" is "data/a.img"); links are not followed - nothing touches the disk here.
void ClusterReader::claim(const Field& path, const std::string& node) {
  std::string machine = loopback_[node] ? std::string("loopback") : "node " + node;
  std::string normal = std::filesystem::path(path.node.Scalar()).lexically_normal().string();
  // A path given once for every node ("backing: /dev/sdb") is named with the node it is for.
  std::string owner = path.path.ends_with("." + node) ? path.path : fmt::format("{} for node {}", path.path, node);
  auto [it, inserted] = path_owners_.emplace(machine + "\n" + normal, PathOwner{owner, node, path.line});
  if (inserted) return;
  std::string reason =
      fmt::format("'{}' is already used by {} (line {})", path.node.Scalar(), it->second.what, it->second.line);
  if (it->second.node != node) {
    reason += fmt::format("; nodes {} and {} have loopback replication addresses, so they run on one machine and "
                          "need distinct files",
                          it->second.node, node);
  }
  r_.fail(path, reason);
}

}  // namespace

ClusterConfig read_cluster(const Reader& reader, const Reader::MapView& root) {
  return ClusterReader(reader).read(root);
}

LocalCluster resolve_node(const Reader& reader, const Reader::MapView& root, const ClusterConfig& cluster,
                          const std::string& node) {
  Field nodes = root.require("nodes");
  std::vector<std::string> names;
  for (const ClusterNode& n : cluster.nodes) names.push_back(n.name);
  if (node.empty()) {
    reader.fail(nodes, fmt::format("this file describes a cluster of nodes {}: choose this node with --node NAME",
                                   fmt::join(names, ", ")));
  }
  const ClusterNode* self = cluster.node(node);
  if (self == nullptr) {
    std::vector<std::string_view> known(names.begin(), names.end());
    reader.fail(nodes, fmt::format("--node {}: no such node; the nodes are {}{}", node, fmt::join(names, ", "),
                                   did_you_mean(node, known)));
  }
  LocalCluster local;
  local.cluster_name = cluster.name;
  local.self = *self;
  for (const ClusterNode& n : cluster.nodes) {
    if (n.name != node) local.peers.push_back(n);
  }
  local.secret = cluster.secret;
  if (auto tls = cluster.tls.find(node); tls != cluster.tls.end()) local.tls = tls->second;
  local.tls_psk = cluster.tls_psk;
  local.keepalive = cluster.keepalive;
  local.initial_primary = cluster.initial_primary;
  local.config_hash = cluster.config_hash;
  for (const ClusterVolume& v : cluster.volumes) {
    LocalVolume volume;
    volume.name = v.name;
    volume.size_bytes = v.size_bytes;
    volume.block_size = v.block_size;
    volume.direct_io = v.direct_io;
    volume.backing_path = v.backing.at(node);
    if (auto meta = v.external_metadata.find(node); meta != v.external_metadata.end()) {
      volume.metadata = MetadataLocation{false, meta->second};
    }
    for (const ClusterNode& peer : local.peers) volume.peers.push_back(PeerLink{peer.name, peer.id, peer.replication});
    volume.protocol = v.protocol;
    volume.resync = v.resync;
    volume.verify = v.verify;
    volume.initial_primary = cluster.initial_primary == node;
    volume.target_iqn = v.target_iqn;
    volume.lun = v.lun;
    volume.access = v.access;
    volume.config_hash = v.config_hash;
    volume.shared_settings = v.shared_settings;
    local.volumes.push_back(std::move(volume));
  }
  if (local.self.control_token.empty()) {
    local.self.control_token = default_control_token_path(node, local.volumes.front().backing_path);
  }
  return local;
}

}  // namespace config_detail

std::string default_control_token_path(const std::string& node_name, const std::string& first_backing_path) {
  const std::string file = node_name + ".control-token";
  if (first_backing_path.starts_with("/dev/")) return "/var/lib/freevsa/" + file;
  return (std::filesystem::path(first_backing_path).parent_path() / file).string();
}

}  // namespace freevsa::daemon
