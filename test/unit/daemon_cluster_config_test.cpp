#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "daemon/config.h"

namespace freevsa::daemon {
namespace {

// A small cluster file, one line per entry so that tests can replace line N (index N - 1) and
// the expected error lines stay easy to count.
const std::vector<std::string> kBase = {
    "cluster:",                                                     // 1
    "  name: demo",                                                 // 2
    "  secret: 0123456789abcdef",                                   // 3
    "  initial_primary: a",                                         // 4
    "nodes:",                                                       // 5
    "  - name: a",                                                  // 6
    "    replication: 127.0.0.1",                                   // 7
    "    portals: [127.0.0.1:3260]",                                // 8
    "  - name: b",                                                  // 9
    "    replication: 127.0.0.2",                                   // 10
    "    portals: [127.0.0.2:3260]",                                // 11
    "volumes:",                                                     // 12
    "  - name: vol0",                                               // 13
    "    size: 1G",                                                 // 14
    "    target: iqn.2026-01.org.freevsa:vol0",                     // 15
    "    backing: {a: data/a/vol0.img, b: data/b/vol0.img}",        // 16
};

std::string join(const std::vector<std::string>& lines) {
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  return text;
}

// kBase with line `number` replaced (empty `text` removes nothing; use erase for that).
std::string with_line(int number, const std::string& text) {
  std::vector<std::string> lines = kBase;
  lines[static_cast<std::size_t>(number - 1)] = text;
  return join(lines);
}

// kBase with lines appended after line 16 (they become lines 17, 18, ...).
std::string with_extra(const std::string& extra) { return join(kBase) + extra; }

std::string error_of(const std::string& yaml, const std::string& node = "a") {
  try {
    parse_config(yaml, "t.yaml", node);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

Config as_node(const std::string& yaml, const std::string& node) { return parse_config(yaml, "t.yaml", node); }

ConfigHash hash_of(const std::string& yaml) { return as_node(yaml, "a").local->config_hash; }
ConfigHash volume_hash_of(const std::string& yaml) { return as_node(yaml, "a").local->volumes.at(0).config_hash; }

std::filesystem::path demo_file() {
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "etc/cluster-demo.yaml";
}

// --- the demo file ---

TEST(DaemonClusterConfig, DemoFileParsesForNodeA) {
  Config config = load_config(demo_file().string(), "a");
  ASSERT_TRUE(config.local);
  const LocalCluster& local = *config.local;
  EXPECT_EQ(local.cluster_name, "demo");
  EXPECT_EQ(local.self.name, "a");
  EXPECT_EQ(local.self.id, 1u);
  EXPECT_EQ(local.self.replication, (Endpoint{"127.0.0.1", 7788}));
  ASSERT_EQ(local.peers.size(), 1u);
  EXPECT_EQ(local.peers[0].name, "b");
  EXPECT_EQ(local.peers[0].replication, (Endpoint{"127.0.0.2", 7788}));
  EXPECT_GE(local.secret.size(), 16u);
  EXPECT_FALSE(local.tls);
  EXPECT_EQ(local.keepalive.ping_interval.count(), 500);
  EXPECT_EQ(local.keepalive.timeout.count(), 2000);
  EXPECT_EQ(local.initial_primary, "a");
  ASSERT_EQ(local.volumes.size(), 1u);
  const LocalVolume& volume = local.volumes[0];
  EXPECT_EQ(volume.name, "vol0");
  EXPECT_EQ(volume.size_bytes, 1ull << 30);
  EXPECT_EQ(volume.block_size, 512u);
  EXPECT_EQ(volume.backing_path, "data/a/vol0.img");
  EXPECT_TRUE(volume.metadata.internal);
  EXPECT_EQ(volume.protocol, ReplicationProtocol::C);
  EXPECT_TRUE(volume.initial_primary);
  EXPECT_EQ(volume.target_iqn, "iqn.2026-01.org.freevsa:vol0");
  EXPECT_EQ(volume.lun, 0u);
  ASSERT_EQ(volume.peers.size(), 1u);
  EXPECT_EQ(volume.peers[0].node_name, "b");
  EXPECT_EQ(volume.peers[0].node_id, 2u);
  EXPECT_EQ(volume.peers[0].address, (Endpoint{"127.0.0.2", 7788}));
  EXPECT_TRUE(volume.resync.adaptive);
  EXPECT_FALSE(volume.resync.checksum);
  EXPECT_EQ(volume.verify.algorithm, VerifyAlgorithm::Crc32c);
  EXPECT_EQ(volume.verify.rate, 100ull << 20);
}

TEST(DaemonClusterConfig, DemoFileParsesForNodeB) {
  Config config = load_config(demo_file().string(), "b");
  ASSERT_TRUE(config.local);
  EXPECT_EQ(config.local->self.name, "b");
  EXPECT_EQ(config.local->self.replication, (Endpoint{"127.0.0.2", 7788}));
  ASSERT_EQ(config.local->peers.size(), 1u);
  EXPECT_EQ(config.local->peers[0].name, "a");
  const LocalVolume& volume = config.local->volumes.at(0);
  EXPECT_EQ(volume.backing_path, "data/b/vol0.img");
  EXPECT_FALSE(volume.initial_primary);
  EXPECT_EQ(volume.peers.at(0).address, (Endpoint{"127.0.0.1", 7788}));
}

TEST(DaemonClusterConfig, DemoFileDerivesEachNodesPortalAndTarget) {
  for (const char* node : {"a", "b"}) {
    SCOPED_TRACE(node);
    Config config = load_config(demo_file().string(), node);
    ASSERT_EQ(config.portals.size(), 1u);
    EXPECT_EQ(config.portals[0], (Endpoint{std::string(node) == "a" ? "127.0.0.1" : "127.0.0.2", 3260}));
    ASSERT_EQ(config.targets.size(), 1u);
    EXPECT_EQ(config.targets[0].iqn, "iqn.2026-01.org.freevsa:vol0");
    ASSERT_EQ(config.targets[0].luns.size(), 1u);
    EXPECT_EQ(config.targets[0].luns[0].number, 0u);
    EXPECT_EQ(config.targets[0].luns[0].path, "data/" + std::string(node) + "/vol0.img");
    EXPECT_EQ(config.targets[0].luns[0].size_bytes, 1ull << 30);
    EXPECT_EQ(config.log_level, "info");
  }
}

TEST(DaemonClusterConfig, DemoFileValidatesWithoutANode) {
  Config config = load_config(demo_file().string());
  ASSERT_TRUE(config.cluster);
  EXPECT_FALSE(config.local);
  EXPECT_TRUE(config.portals.empty());
  EXPECT_TRUE(config.targets.empty());
  ASSERT_EQ(config.cluster->nodes.size(), 2u);
  EXPECT_EQ(config.cluster->volumes.at(0).backing.at("a"), "data/a/vol0.img");
  EXPECT_EQ(config.cluster->volumes.at(0).backing.at("b"), "data/b/vol0.img");
}

// --- choosing the node ---

TEST(DaemonClusterConfig, ClusterFileNeedsANode) {
  EXPECT_EQ(error_of(join(kBase), ""),
            "t.yaml:6: nodes: this file describes a cluster of nodes a, b: choose this node with --node NAME");
}

TEST(DaemonClusterConfig, UnknownNodeIsRefusedWithAHint) {
  EXPECT_EQ(error_of(join(kBase), "c"), "t.yaml:6: nodes: --node c: no such node; the nodes are a, b");
  std::vector<std::string> lines = kBase;
  lines[5] = "  - name: alpha";
  lines[3] = "  initial_primary: alpha";
  lines[15] = "    backing: {alpha: data/a/vol0.img, b: data/b/vol0.img}";
  EXPECT_EQ(error_of(join(lines), "alhpa"),
            "t.yaml:6: nodes: --node alhpa: no such node; the nodes are alpha, b (did you mean 'alpha'?)");
}

// --- the hash ---

TEST(DaemonClusterConfig, HashIsTheSameOnEveryNode) {
  Config a = load_config(demo_file().string(), "a");
  Config b = load_config(demo_file().string(), "b");
  EXPECT_EQ(a.local->config_hash, b.local->config_hash);
  EXPECT_EQ(a.local->volumes[0].config_hash, b.local->volumes[0].config_hash);
  EXPECT_NE(a.local->config_hash, a.local->volumes[0].config_hash);
  EXPECT_NE(a.local->config_hash, ConfigHash{});
}

// The canonical form is a wire contract between versions: changing it makes old and new nodes
// refuse each other. This pins it.
TEST(DaemonClusterConfig, HashIsPinned) {
  EXPECT_EQ(to_hex(hash_of(join(kBase))), "06dbf3e2308f61143860eb51b68e87e73e1080954cea03efbdaae50f14bfef8d");
  EXPECT_EQ(to_hex(volume_hash_of(join(kBase))), "b69d52f01f8e302ce9da76e198b43b08901bd70b2424dee0d4aa5fb4d5ce7347");
}

TEST(DaemonClusterConfig, HashChangesWithEverySharedSetting) {
  const ConfigHash base = hash_of(join(kBase));
  const ConfigHash base_volume = volume_hash_of(join(kBase));
  const std::vector<std::pair<int, std::string>> changes = {
      {2, "  name: demo2"},
      {3, "  secret: 0123456789abcdeF"},
      {4, "  initial_primary: b"},
      {7, "    replication: 127.0.0.1:7789"},
      {10, "    replication: 127.0.0.3"},
      {14, "    size: 2G"},
      {15, "    target: iqn.2026-01.org.freevsa:other"},
  };
  for (const auto& [line, text] : changes) {
    SCOPED_TRACE(text);
    EXPECT_NE(hash_of(with_line(line, text)), base);
    EXPECT_NE(volume_hash_of(with_line(line, text)), base_volume);
  }
  const std::vector<std::string> extras = {
      "    protocol: B\n",
      "    lun: 1\n",
      "    block_size: 4096\n",
      "    resync: {checksum: true}\n",
      "    verify: {algorithm: sha256}\n",
  };
  for (const std::string& extra : extras) {
    SCOPED_TRACE(extra);
    EXPECT_NE(hash_of(with_extra(extra)), base);
    EXPECT_NE(volume_hash_of(with_extra(extra)), base_volume);
  }
  EXPECT_NE(hash_of(with_line(6, "  - name: a\n    id: 3")), base);
  // Without explicit ids a node's id is its position: reordering the list changes them.
  EXPECT_NE(hash_of(join({kBase[0], kBase[1], kBase[2], kBase[3], kBase[4], kBase[8], kBase[9], kBase[10], kBase[5],
                          kBase[6], kBase[7], kBase[11], kBase[12], kBase[13], kBase[14], kBase[15]})),
            base);
  EXPECT_NE(hash_of(join(kBase) + "  - name: vol1\n    size: 1G\n    target: iqn.2026-01.org.freevsa:vol0\n"
                                  "    lun: 1\n    backing: {a: data/a/vol1.img, b: data/b/vol1.img}\n"),
            base);
  std::string keepalive = join(kBase);
  keepalive.insert(keepalive.find("nodes:"), "  keepalive: {ping_interval: 1s}\n");
  EXPECT_NE(hash_of(keepalive), base);
  std::string tls = join(kBase);
  tls.insert(tls.find("nodes:"), "  tls: {cert: c.pem, key: k.pem, ca: ca.pem}\n");
  EXPECT_NE(hash_of(tls), base);
}

TEST(DaemonClusterConfig, LimitsApplyToTheNodesPortals) {
  const Config config =
      as_node(with_extra("limits: {connections_per_initiator_address: 16, data_out_buffer_total: 2G}\n"), "b");
  EXPECT_EQ(config.resources.connections_per_initiator_address, 16u);
  EXPECT_EQ(config.resources.data_out_bytes_total, std::uint64_t{2} << 30);
  EXPECT_EQ(config.resources.login_timeout_seconds, 15u);
}

TEST(DaemonClusterConfig, HashIgnoresNodeLocalSettings) {
  const ConfigHash base = hash_of(join(kBase));
  const ConfigHash base_volume = volume_hash_of(join(kBase));
  const std::vector<std::string> local_changes = {
      with_line(16, "    backing: {a: /dev/sdb, b: data/b/vol0.img}"),
      with_line(8, "    portals: [127.0.0.1:3261, 0.0.0.0:3262]"),
      with_extra("    metadata: {a: data/a/vol0.meta, b: data/b/vol0.meta}\n"),
      with_extra("    direct_io: false\n    resync: {rate: 20M}\n    verify: {rate: 1G}\n"),
      with_extra("log_level: debug\nworker_threads: 4\n"),
      with_extra("limits: {connections_per_portal: 64, data_out_timeout_seconds: 10}\n"),
      with_line(8, "    portals: [127.0.0.1:3260]\n    control: 127.0.0.1:9999"),
      // Spelling, comments, key order and list order do not matter either.
      with_line(14, "    size: 1073741824  # 1 GiB"),
      with_line(7, "    replication: 127.0.0.1:7788"),
      join({kBase[11], kBase[12], kBase[15], kBase[14], kBase[13], kBase[4], kBase[5], kBase[7], kBase[6], kBase[8],
            kBase[10], kBase[9], kBase[0], kBase[3], kBase[2], kBase[1]}),
      // Nodes may be reordered when their ids are explicit.
      join({kBase[0], kBase[1], kBase[2], kBase[3], kBase[4], kBase[8], "    id: 2", kBase[9], kBase[10], kBase[5],
            "    id: 1", kBase[6], kBase[7], kBase[11], kBase[12], kBase[13], kBase[14], kBase[15]}),
  };
  for (const std::string& yaml : local_changes) {
    SCOPED_TRACE(yaml);
    EXPECT_EQ(hash_of(yaml), base);
    EXPECT_EQ(volume_hash_of(yaml), base_volume);
  }
  std::string tls_a = join(kBase);
  tls_a.insert(tls_a.find("nodes:"), "  tls: {cert: c.pem, key: k.pem, ca: ca.pem}\n");
  std::string tls_b = join(kBase);
  tls_b.insert(tls_b.find("nodes:"), "  tls: {cert: {a: a.pem, b: b.pem}, key: k.pem, ca: /etc/ca.pem}\n");
  EXPECT_EQ(hash_of(tls_a), hash_of(tls_b));
}

TEST(DaemonClusterConfig, VolumeHashIgnoresOtherVolumes) {
  std::string two = join(kBase) +
                    "  - name: vol1\n    size: 1G\n    target: iqn.2026-01.org.freevsa:vol0\n    lun: 1\n"
                    "    backing: {a: data/a/vol1.img, b: data/b/vol1.img}\n";
  EXPECT_EQ(as_node(two, "a").local->volumes.at(0).config_hash, volume_hash_of(join(kBase)));
  EXPECT_NE(as_node(two, "a").local->volumes.at(1).config_hash, volume_hash_of(join(kBase)));
}


// --- the two forms of file ---

TEST(DaemonClusterConfig, TopLevelPortalsAreRefusedInAClusterFile) {
  EXPECT_EQ(error_of(with_extra("portals: [127.0.0.1]\n")),
            "t.yaml:17: portals: a cluster file lists the iSCSI portals per node (nodes[].portals), not at the top "
            "level");
}

TEST(DaemonClusterConfig, TargetsAreRefusedInAClusterFile) {
  EXPECT_EQ(error_of(with_extra("targets: []\n")),
            "t.yaml:17: targets: a cluster file exports volumes (volumes[].target and volumes[].lun); it has no "
            "'targets' section");
}

TEST(DaemonClusterConfig, AClusterFileNeedsAllThreeSections) {
  std::vector<std::string> lines(kBase.begin(), kBase.begin() + 11);  // no volumes
  EXPECT_EQ(error_of(join(lines)),
            "t.yaml:1: volumes: required: 'nodes' makes this a cluster file, which needs 'cluster', 'nodes' and "
            "'volumes'");
  EXPECT_EQ(error_of("portals: [127.0.0.1]\nvolumes: []\n"),
            "t.yaml:1: portals: a cluster file lists the iSCSI portals per node (nodes[].portals), not at the top "
            "level");
}

TEST(DaemonClusterConfig, SharedSettingsWorkInAClusterFile) {
  Config config = as_node(with_extra("log_level: debug\nworker_threads: 4\niscsi: {max_burst_length: 64K}\n"), "a");
  EXPECT_EQ(config.log_level, "debug");
  EXPECT_EQ(config.worker_threads, 4u);
  EXPECT_EQ(config.max_burst_length, 65536u);
}

// --- nodes ---

TEST(DaemonClusterConfig, OneNodeIsNotACluster) {
  std::vector<std::string> lines = kBase;
  lines.erase(lines.begin() + 8, lines.begin() + 11);
  lines[15 - 3] = "    backing: data/vol0.img";
  EXPECT_EQ(error_of(join(lines)),
            "t.yaml:6: nodes: a cluster needs at least two nodes (one node alone is described with portals and "
            "targets)");
}

TEST(DaemonClusterConfig, DuplicateNodeNameIsRefused) {
  EXPECT_EQ(error_of(with_line(9, "  - name: a")), "t.yaml:9: nodes[1].name: node 'a' is listed twice (first at line 6)");
}

TEST(DaemonClusterConfig, NodeNameMustBeAWord) {
  EXPECT_EQ(error_of(with_line(9, "  - name: node b")),
            "t.yaml:9: nodes[1].name: 'node b' is not a valid name: use letters, digits, '-', '_' and '.', starting "
            "with a letter or digit");
}

TEST(DaemonClusterConfig, DuplicateNodeIdIsRefused) {
  EXPECT_EQ(error_of(with_line(6, "  - name: a\n    id: 2")),
            "t.yaml:10: nodes[1].id: id 2 is already node 'a' (line 6); node ids are unique (without 'id:' a node's id "
            "is its position in the list, from 1)");
}

TEST(DaemonClusterConfig, ReplicationPortDefaultsTo7788) {
  Config config = as_node(with_line(10, "    replication: \"[::1]:7000\""), "b");
  EXPECT_EQ(config.local->self.replication, (Endpoint{"::1", 7000}));
  EXPECT_EQ(config.local->peers.at(0).replication, (Endpoint{"127.0.0.1", 7788}));
}

TEST(DaemonClusterConfig, DuplicateReplicationAddressIsRefused) {
  EXPECT_EQ(error_of(with_line(10, "    replication: 127.0.0.1:7788")),
            "t.yaml:10: nodes[1].replication: 127.0.0.1:7788 is already the node 'a' replication address (line 7)");
}

TEST(DaemonClusterConfig, WildcardReplicationAddressIsRefused) {
  EXPECT_EQ(error_of(with_line(7, "    replication: 0.0.0.0")),
            "t.yaml:7: nodes[0].replication: 0.0.0.0 listens everywhere but cannot be connected to: give the address "
            "the peers reach this node at");
}

TEST(DaemonClusterConfig, ReplicationHostNameIsRefused) {
  EXPECT_EQ(error_of(with_line(7, "    replication: node-a.example.com")),
            "t.yaml:7: nodes[0].replication: 'node-a.example.com' is not an IP address (host names are not resolved; "
            "use e.g. 127.0.0.1, 0.0.0.0 or [::])");
}

TEST(DaemonClusterConfig, PortalOnTheReplicationPortIsRefused) {
  EXPECT_EQ(error_of(with_line(8, "    portals: [127.0.0.1:7788]")),
            "t.yaml:8: nodes[0].portals[0]: 127.0.0.1:7788 clashes with this node's replication address "
            "127.0.0.1:7788 (line 7)");
  EXPECT_EQ(error_of(with_line(8, "    portals: [\"[::]:7788\"]")),
            "t.yaml:8: nodes[0].portals[0]: [::]:7788 clashes with this node's replication address 127.0.0.1:7788 "
            "(line 7)");
}

TEST(DaemonClusterConfig, SamePortalOnTwoNodesIsRefused) {
  EXPECT_EQ(error_of(with_line(11, "    portals: [127.0.0.1:3260]")),
            "t.yaml:11: nodes[1].portals[0]: 127.0.0.1:3260 is already the node 'a' portal address (line 8)");
}

TEST(DaemonClusterConfig, NodeWithoutPortalsIsRefused) {
  EXPECT_EQ(error_of(with_line(11, "    portals: []")), "t.yaml:11: nodes[1].portals: at least one portal is needed");
}

TEST(DaemonClusterConfig, UnknownNodeKeySuggestsTheNearest) {
  EXPECT_EQ(error_of(with_line(11, "    portal: [127.0.0.2]")),
            "t.yaml:11: nodes[1]: unknown key 'portal' (did you mean 'portals'?)");
}

// --- the control endpoint ---

// kBase with the nodes on network addresses, so on two machines.
std::vector<std::string> network_nodes() {
  std::vector<std::string> lines = kBase;
  lines[6] = "    replication: 10.0.0.1";
  lines[7] = "    portals: [10.0.0.1:3260]";
  lines[9] = "    replication: 10.0.0.2";
  lines[10] = "    portals: [10.0.0.2:3260]";
  return lines;
}

TEST(DaemonClusterConfig, ControlDefaultsToPort7799OnALoopbackReplicationAddress) {
  EXPECT_EQ(as_node(join(kBase), "a").local->self.control, (Endpoint{"127.0.0.1", 7799}));
  EXPECT_EQ(as_node(join(kBase), "b").local->self.control, (Endpoint{"127.0.0.2", 7799}));
  EXPECT_EQ(as_node(join(kBase), "a").local->peers.at(0).control, (Endpoint{"127.0.0.2", 7799}));
  EXPECT_EQ(load_config(demo_file().string(), "a").local->self.control, (Endpoint{"127.0.0.1", 7799}));
  EXPECT_EQ(load_config(demo_file().string(), "b").local->self.control, (Endpoint{"127.0.0.2", 7799}));
  std::vector<std::string> v6_lines = kBase;
  v6_lines[9] = "    replication: \"[::1]\"";
  v6_lines[10] = "    portals: [\"[::1]:3260\"]";
  Config v6 = as_node(join(v6_lines), "b");
  EXPECT_EQ(v6.local->self.control, (Endpoint{"::1", 7799}));
}

// The control endpoint speaks plain HTTP: a node on a network address keeps it local.
TEST(DaemonClusterConfig, ControlDefaultsToLocalhostOnANetworkNode) {
  Config config = as_node(join(network_nodes()), "a");
  EXPECT_EQ(config.local->self.control, (Endpoint{"127.0.0.1", 7799}));
  EXPECT_EQ(config.local->peers.at(0).control, (Endpoint{"127.0.0.1", 7799}));
}

TEST(DaemonClusterConfig, ControlIsWrittenLikeReplication) {
  auto control_of = [](const std::string& text) {
    return as_node(with_line(8, "    portals: [127.0.0.1:3260]\n    control: " + text), "a").local->self.control;
  };
  EXPECT_EQ(control_of("127.0.0.1:9000"), (Endpoint{"127.0.0.1", 9000}));
  EXPECT_EQ(control_of("\"[::1]\""), (Endpoint{"::1", 7799}));
  EXPECT_EQ(control_of("{address: 127.0.0.3, port: 80}"), (Endpoint{"127.0.0.3", 80}));
  EXPECT_EQ(error_of(with_line(8, "    portals: [127.0.0.1:3260]\n    control: localhost")),
            "t.yaml:9: nodes[0].control: 'localhost' is not an IP address (host names are not resolved; use e.g. "
            "127.0.0.1, 0.0.0.0 or [::])");
}

// Without TLS the token and the answers would cross the network readable and alterable.
TEST(DaemonClusterConfig, ControlOnlyListensOnLoopback) {
  const std::string why =
      ": the control endpoint speaks plain HTTP without TLS, so it only listens on this machine (127.0.0.0/8 or ::1); "
      "run the commands on the node, e.g. over ssh";
  EXPECT_EQ(error_of(with_line(8, "    portals: [127.0.0.1:3260]\n    control: 0.0.0.0")),
            "t.yaml:9: nodes[0].control: 0.0.0.0:7799 listens on every address" + why);
  EXPECT_EQ(error_of(with_line(8, "    portals: [127.0.0.1:3260]\n    control: \"[::]:7000\"")),
            "t.yaml:9: nodes[0].control: [::]:7000 listens on every address" + why);
  EXPECT_EQ(error_of(with_line(8, "    portals: [127.0.0.1:3260]\n    control: {address: 192.0.2.1, port: 80}")),
            "t.yaml:9: nodes[0].control: 192.0.2.1:80 is not a loopback address" + why);
  std::vector<std::string> network = network_nodes();
  network[7] += "\n    control: 10.0.0.1:7799";
  EXPECT_EQ(error_of(join(network)), "t.yaml:9: nodes[0].control: 10.0.0.1:7799 is not a loopback address" + why);
}

TEST(DaemonClusterConfig, ControlTokenIsBesideTheNodesDataUnlessTheFileSaysWhere) {
  EXPECT_EQ(as_node(join(kBase), "a").local->self.control_token, "data/a/a.control-token");
  EXPECT_EQ(as_node(join(kBase), "b").local->self.control_token, "data/b/b.control-token");
  EXPECT_EQ(load_config(demo_file().string(), "b").local->self.control_token, "data/b/b.control-token");
  EXPECT_EQ(as_node(with_line(16, "    backing: {a: /dev/disk/by-id/x, b: /dev/disk/by-id/y}"), "a").local->self.control_token,
            "/var/lib/freevsa/a.control-token");
  EXPECT_EQ(as_node(with_line(16, "    backing: {a: vol0.img, b: /b/vol0.img}"), "a").local->self.control_token,
            "a.control-token");
  Config given = as_node(with_line(8, "    portals: [127.0.0.1:3260]\n    control_token: /etc/freevsa/a.token"), "a");
  EXPECT_EQ(given.local->self.control_token, "/etc/freevsa/a.token");
  // Node-local, like the control address: two files that differ only here are one cluster.
  EXPECT_EQ(given.local->config_hash, hash_of(join(kBase)));
  EXPECT_EQ(error_of(with_line(8, "    portals: [127.0.0.1:3260]\n    control_token: [a]")).find("t.yaml:9: "), 0u);
}

TEST(DaemonClusterConfig, ControlMayNotTakeTheNodesOtherSockets) {
  EXPECT_EQ(error_of(with_line(8, "    portals: [127.0.0.1:3260]\n    control: 127.0.0.1:7788")),
            "t.yaml:9: nodes[0].control: 127.0.0.1:7788 clashes with this node's replication address 127.0.0.1:7788 "
            "(line 7)");
  EXPECT_EQ(error_of(with_line(8, "    portals: [127.0.0.1:3260]\n    control: 127.0.0.1:3260")),
            "t.yaml:9: nodes[0].control: 127.0.0.1:3260 clashes with this node's portal 127.0.0.1:3260 (line 8)");
  // Not written, so the error points at the node and says how to move it.
  EXPECT_EQ(error_of(with_line(8, "    portals: [127.0.0.1:3260, \"[::]:7799\"]")),
            "t.yaml:6: nodes[0].control: the default control address 127.0.0.1:7799 clashes with this node's portal "
            "[::]:7799 (line 8); set 'control' to another address or port");
}

TEST(DaemonClusterConfig, ControlMayNotTakeAnotherNodesAddress) {
  EXPECT_EQ(error_of(with_line(11, "    portals: [127.0.0.2:3260]\n    control: 127.0.0.1:7799")),
            "t.yaml:12: nodes[1].control: 127.0.0.1:7799 is already the node 'a' default control address (line 6)");
  EXPECT_EQ(error_of(with_line(11, "    portals: [127.0.0.1:7799]")),
            "t.yaml:11: nodes[1].portals[0]: 127.0.0.1:7799 is already the node 'a' default control address (line 6)");
  // Two nodes on one address (different replication ports) cannot both have the default.
  EXPECT_EQ(error_of(with_line(10, "    replication: 127.0.0.1:7789")),
            "t.yaml:9: nodes[1].control: 127.0.0.1:7799 is already the node 'a' default control address (line 6); it "
            "is this node's default control address; set 'control' to another address or port");
}

// Every machine has its own 127.0.0.1: nodes on network addresses may each use it.
TEST(DaemonClusterConfig, LoopbackAddressesOfSeparateMachinesDoNotClash) {
  std::vector<std::string> network = network_nodes();
  network[7] = "    portals: [10.0.0.1:3260, 127.0.0.1:3260]";
  network[10] = "    portals: [10.0.0.2:3260, 127.0.0.1:3260]";
  Config config = as_node(join(network), "b");
  EXPECT_EQ(config.local->self.portals.at(1), (Endpoint{"127.0.0.1", 3260}));
  EXPECT_EQ(config.local->peers.at(0).portals.at(1), (Endpoint{"127.0.0.1", 3260}));
  EXPECT_EQ(config.local->self.control, config.local->peers.at(0).control);
}

// --- cluster settings ---

TEST(DaemonClusterConfig, ShortSecretIsRefusedWithoutShowingIt) {
  std::string message = error_of(with_line(3, "  secret: s3cr3t-0123456"));
  EXPECT_EQ(message,
            "t.yaml:3: cluster.secret: must be 16 to 1024 bytes long, got 14 (make one with: openssl rand -base64 24)");
  EXPECT_EQ(message.find("s3cr3t"), std::string::npos);
}

TEST(DaemonClusterConfig, SecretMustBeAString) {
  EXPECT_EQ(error_of(with_line(3, "  secret: [0123456789abcdef]")), "t.yaml:3: cluster.secret: expected a string, got a list");
}

TEST(DaemonClusterConfig, SecretIsRequired) {
  EXPECT_EQ(error_of(with_line(3, "  # no secret")), "t.yaml:2: cluster.secret: required");
}

TEST(DaemonClusterConfig, InitialPrimaryMustNameANode) {
  EXPECT_EQ(error_of(with_line(4, "  initial_primary: c")),
            "t.yaml:4: cluster.initial_primary: 'c' is not a node in 'nodes' (a, b)");
  std::vector<std::string> lines = kBase;
  lines[5] = "  - name: alpha";
  lines[3] = "  initial_primary: aplha";
  lines[15] = "    backing: {alpha: data/a/vol0.img, b: data/b/vol0.img}";
  EXPECT_EQ(error_of(join(lines), "alpha"),
            "t.yaml:4: cluster.initial_primary: 'aplha' is not a node in 'nodes' (alpha, b) (did you mean 'alpha'?)");
}

TEST(DaemonClusterConfig, TlsFilesArePerNode) {
  std::string yaml = join(kBase);
  yaml.insert(yaml.find("nodes:"), "  tls: {cert: {a: a.crt, b: b.crt}, key: {a: a.key, b: b.key}, ca: ca.crt}\n");
  Config config = as_node(yaml, "b");
  ASSERT_TRUE(config.local->tls);
  EXPECT_EQ(config.local->tls->cert, "b.crt");
  EXPECT_EQ(config.local->tls->key, "b.key");
  EXPECT_EQ(config.local->tls->ca, "ca.crt");
}

TEST(DaemonClusterConfig, TlsPskNeedsNoFiles) {
  std::string yaml = join(kBase);
  yaml.insert(yaml.find("nodes:"), "  tls: psk\n");
  Config config = as_node(yaml, "b");
  EXPECT_TRUE(config.local->tls_psk);
  EXPECT_FALSE(config.local->tls);
  std::string certificates = join(kBase);
  certificates.insert(certificates.find("nodes:"), "  tls: {cert: c.pem, key: k.pem, ca: ca.pem}\n");
  EXPECT_NE(hash_of(yaml), hash_of(certificates)) << "a node with certificates and one with a PSK never connect";
  EXPECT_NE(hash_of(yaml), hash_of(join(kBase)));
}

TEST(DaemonClusterConfig, TlsIsPskOrAMapOfFiles) {
  std::string yaml = join(kBase);
  yaml.insert(yaml.find("nodes:"), "  tls: yes\n");
  EXPECT_EQ(error_of(yaml),
            "t.yaml:5: cluster.tls: expected psk (TLS 1.3 with a key derived from cluster.secret) or a map of cert, key "
            "and ca, got 'yes'");
}

TEST(DaemonClusterConfig, TlsNeedsCertKeyAndCa) {
  std::string yaml = join(kBase);
  yaml.insert(yaml.find("nodes:"), "  tls: {cert: a.crt, ca: ca.crt}\n");
  EXPECT_EQ(error_of(yaml), "t.yaml:5: cluster.tls.key: required");
}

TEST(DaemonClusterConfig, KeepaliveDurations) {
  std::string yaml = join(kBase);
  yaml.insert(yaml.find("nodes:"), "  keepalive: {ping_interval: 250ms, timeout: 1s}\n");
  Config config = as_node(yaml, "a");
  EXPECT_EQ(config.local->keepalive.ping_interval.count(), 250);
  EXPECT_EQ(config.local->keepalive.timeout.count(), 1000);
}

TEST(DaemonClusterConfig, KeepaliveTimeoutMustCoverTwoPings) {
  std::string yaml = join(kBase);
  yaml.insert(yaml.find("nodes:"), "  keepalive:\n    ping_interval: 1s\n    timeout: 1500ms\n");
  EXPECT_EQ(error_of(yaml),
            "t.yaml:7: cluster.keepalive.timeout: must be at least twice ping_interval (1000ms), so that one lost "
            "ping is not a lost peer");
}

TEST(DaemonClusterConfig, KeepaliveDurationMustHaveAUnit) {
  std::string yaml = join(kBase);
  yaml.insert(yaml.find("nodes:"), "  keepalive:\n    ping_interval: 5 hours\n");
  EXPECT_EQ(error_of(yaml),
            "t.yaml:6: cluster.keepalive.ping_interval: expected a duration such as 500ms, 2s or 1m, got '5 hours'");
}

TEST(DaemonClusterConfig, ClusterNameIsRequired) {
  EXPECT_EQ(error_of(with_line(2, "  # no name")), "t.yaml:3: cluster.name: required");
}

// --- volumes ---

TEST(DaemonClusterConfig, EveryVolumeOptionParses) {
  Config config = as_node(join(kBase) +
                              "    block_size: 4096\n"
                              "    direct_io: false\n"
                              "    protocol: A\n"
                              "    lun: 3\n"
                              "    metadata: {a: data/a/vol0.meta, b: data/b/vol0.meta}\n"
                              "    resync: {rate: 50M, checksum: yes}\n"
                              "    verify: {rate: 10M, algorithm: sha256}\n",
                          "b");
  const LocalVolume& volume = config.local->volumes.at(0);
  EXPECT_EQ(volume.block_size, 4096u);
  EXPECT_FALSE(volume.direct_io);
  EXPECT_EQ(volume.protocol, ReplicationProtocol::A);
  EXPECT_EQ(volume.lun, 3u);
  EXPECT_FALSE(volume.metadata.internal);
  EXPECT_EQ(volume.metadata.path, "data/b/vol0.meta");
  EXPECT_FALSE(volume.resync.adaptive);
  EXPECT_EQ(volume.resync.rate, 50ull << 20);
  EXPECT_TRUE(volume.resync.checksum);
  EXPECT_EQ(volume.verify.rate, 10ull << 20);
  EXPECT_EQ(volume.verify.algorithm, VerifyAlgorithm::Sha256);
  EXPECT_EQ(config.targets.at(0).luns.at(0).number, 3u);
  EXPECT_EQ(config.targets.at(0).luns.at(0).block_size, 4096u);
  EXPECT_FALSE(config.targets.at(0).luns.at(0).direct_io);
}

TEST(DaemonClusterConfig, VolumesSharingATargetBecomeItsLuns) {
  Config config = as_node(join(kBase) +
                              "  - name: vol1\n    size: 2G\n    target: iqn.2026-01.org.freevsa:vol0\n    lun: 1\n"
                              "    backing: {a: data/a/vol1.img, b: data/b/vol1.img}\n"
                              "  - name: vol2\n    size: 1G\n    target: iqn.2026-01.org.freevsa:other\n"
                              "    backing: {a: data/a/vol2.img, b: data/b/vol2.img}\n",
                          "a");
  ASSERT_EQ(config.targets.size(), 2u);
  ASSERT_EQ(config.targets[0].luns.size(), 2u);
  EXPECT_EQ(config.targets[0].luns[1].path, "data/a/vol1.img");
  EXPECT_EQ(config.targets[0].luns[1].size_bytes, 2ull << 30);
  EXPECT_EQ(config.targets[1].iqn, "iqn.2026-01.org.freevsa:other");
}

TEST(DaemonClusterConfig, ProtocolMustBeABOrC) {
  EXPECT_EQ(as_node(with_extra("    protocol: B\n"), "a").local->volumes[0].protocol, ReplicationProtocol::B);
  EXPECT_EQ(error_of(with_extra("    protocol: D\n")), "t.yaml:17: volumes[0].protocol: must be A, B or C, got 'D'");
  EXPECT_EQ(error_of(with_extra("    protocol: c\n")), "t.yaml:17: volumes[0].protocol: must be A, B or C, got 'c'");
}

TEST(DaemonClusterConfig, VolumeSizeIsRequiredAndChecked) {
  EXPECT_EQ(error_of(with_line(14, "    # no size")), "t.yaml:13: volumes[0].size: required");
  EXPECT_EQ(error_of(with_line(14, "    size: 1GB")),
            "t.yaml:14: volumes[0].size: '1GB' is ambiguous; sizes are binary here: write '1G' or '1GiB'");
  EXPECT_EQ(error_of(with_line(14, "    size: 6K") + "    block_size: 4096\n"),
            "t.yaml:14: volumes[0].size: 6144 bytes is not a multiple of block_size 4096");
}

TEST(DaemonClusterConfig, DuplicateVolumeNameIsRefused) {
  EXPECT_EQ(error_of(join(kBase) + "  - name: vol0\n    size: 1G\n    target: iqn.2026-01.org.freevsa:vol1\n"
                                   "    backing: {a: data/a/vol1.img, b: data/b/vol1.img}\n"),
            "t.yaml:17: volumes[1].name: volume 'vol0' is defined twice (first at line 13)");
}

TEST(DaemonClusterConfig, TwoVolumesOnOneTargetAndLunAreRefused) {
  EXPECT_EQ(error_of(join(kBase) + "  - name: vol1\n    size: 1G\n    target: iqn.2026-01.org.freevsa:vol0\n"
                                   "    backing: {a: data/a/vol1.img, b: data/b/vol1.img}\n"),
            "t.yaml:17: volumes[1].lun: LUN 0 of target 'iqn.2026-01.org.freevsa:vol0' is already volume 'vol0' "
            "(line 13)");
}

TEST(DaemonClusterConfig, TargetMustBeAnIscsiName) {
  EXPECT_EQ(error_of(with_line(15, "    target: vol0")),
            "t.yaml:15: volumes[0].target: 'vol0' is not a valid iSCSI name: must start with 'iqn.', 'eui.' or 'naa.'");
}

TEST(DaemonClusterConfig, BackingMustNameEveryNode) {
  EXPECT_EQ(error_of(with_line(16, "    backing: {a: data/a/vol0.img}")),
            "t.yaml:16: volumes[0].backing: no path for node 'b'");
}

TEST(DaemonClusterConfig, BackingForAnUnknownNodeIsRefused) {
  EXPECT_EQ(error_of(with_line(16, "    backing:\n      a: data/a/vol0.img\n      bb: data/b/vol0.img")),
            "t.yaml:18: volumes[0].backing: 'bb' is not a node in 'nodes' (a, b) (did you mean 'b'?)");
}

TEST(DaemonClusterConfig, OnePathServesEveryNodeOnSeparateMachines) {
  std::vector<std::string> lines = kBase;
  lines[6] = "    replication: 10.0.0.1";
  lines[7] = "    portals: [10.0.0.1]";
  lines[9] = "    replication: 10.0.0.2";
  lines[10] = "    portals: [10.0.0.2]";
  lines[15] = "    backing: /dev/sdb";
  EXPECT_EQ(as_node(join(lines), "a").local->volumes[0].backing_path, "/dev/sdb");
  EXPECT_EQ(as_node(join(lines), "b").local->volumes[0].backing_path, "/dev/sdb");
}

TEST(DaemonClusterConfig, OnePathForNodesOnOneMachineIsRefused) {
  EXPECT_EQ(error_of(with_line(16, "    backing: data/vol0.img")),
            "t.yaml:16: volumes[0].backing: 'data/vol0.img' is already used by volumes[0].backing for node a (line "
            "16); nodes a and b have loopback replication addresses, so they run on one machine and need distinct "
            "files");
}

TEST(DaemonClusterConfig, TwoVolumesOnOneFileAreRefused) {
  EXPECT_EQ(error_of(join(kBase) + "  - name: vol1\n    size: 1G\n    target: iqn.2026-01.org.freevsa:vol1\n"
                                   "    backing:\n      a: ./data/a//vol0.img\n      b: data/b/vol1.img\n"),
            "t.yaml:21: volumes[1].backing.a: './data/a//vol0.img' is already used by volumes[0].backing.a (line 16)");
}

TEST(DaemonClusterConfig, MetadataOnTheBackingFileIsRefused) {
  EXPECT_EQ(error_of(with_extra("    metadata: {a: data/a/vol0.img, b: data/b/vol0.meta}\n")),
            "t.yaml:17: volumes[0].metadata.a: 'data/a/vol0.img' is already used by volumes[0].backing.a (line 16)");
}

TEST(DaemonClusterConfig, MetadataMustBeInternalOrPaths) {
  EXPECT_EQ(error_of(with_extra("    metadata: [internal]\n")),
            "t.yaml:17: volumes[0].metadata: expected a path or a map of node name to path, got a list");
}

TEST(DaemonClusterConfig, ResyncRateIsAdaptiveOrFixed) {
  EXPECT_EQ(error_of(with_extra("    resync: {rate: fast}\n")),
            "t.yaml:17: volumes[0].resync.rate: expected 'adaptive' or bytes per second such as 100M, got 'fast'");
  EXPECT_EQ(error_of(with_extra("    resync: {rate: 1K}\n")),
            "t.yaml:17: volumes[0].resync.rate: must be between 65536 and 1099511627776 bytes, got 1K");
}

TEST(DaemonClusterConfig, ResyncBoundsOnlyWithAdaptive) {
  EXPECT_EQ(error_of(with_extra("    resync:\n      rate: 100M\n      max_rate: 200M\n")),
            "t.yaml:19: volumes[0].resync.max_rate: only applies with rate: adaptive");
}

TEST(DaemonClusterConfig, ResyncMinRateMayNotExceedMaxRate) {
  EXPECT_EQ(error_of(with_extra("    resync:\n      min_rate: 200M\n      max_rate: 100M\n")),
            "t.yaml:18: volumes[0].resync.min_rate: must not exceed max_rate (104857600 bytes per second), got 200M");
  ResyncConfig lowered = as_node(with_extra("    resync: {max_rate: 5M}\n"), "a").local->volumes[0].resync;
  EXPECT_EQ(lowered.max_rate, 5ull << 20);
  EXPECT_EQ(lowered.min_rate, 5ull << 20);
}

TEST(DaemonClusterConfig, VerifyAlgorithmMustBeKnown) {
  EXPECT_EQ(error_of(with_extra("    verify: {algorithm: md5}\n")),
            "t.yaml:17: volumes[0].verify.algorithm: must be crc32c or sha256, got 'md5'");
}

TEST(DaemonClusterConfig, VolumeNeedsAtLeastOne) {
  std::vector<std::string> lines(kBase.begin(), kBase.begin() + 11);
  EXPECT_EQ(error_of(join(lines) + "volumes: []\n"), "t.yaml:12: volumes: at least one volume is needed");
}

TEST(DaemonClusterConfig, UnknownVolumeKeySuggestsTheNearest) {
  EXPECT_EQ(error_of(with_extra("    protcol: C\n")),
            "t.yaml:17: volumes[0]: unknown key 'protcol' (did you mean 'protocol'?)");
}

}  // namespace
}  // namespace freevsa::daemon
