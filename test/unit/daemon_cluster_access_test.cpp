// Who may log in to a cluster's volumes: volumes[].chap, mutual_chap, allowed_initiators, the
// default cluster.iscsi_access, discovery_chap, and the warning for volumes open to the network.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "daemon/config.h"

namespace freevsa::daemon {
namespace {

// A cluster file with its lines numbered so that expected error lines are easy to count.
// `cluster_extra` goes after line 4 (inside `cluster:`), the portals are line 8 and 11, and
// `volume_extra` follows line 16 (inside the first volume).
struct ClusterFile {
  std::string cluster_extra;
  std::string portal_a = "127.0.0.1:3260";
  std::string portal_b = "127.0.0.2:3260";
  std::string volume_extra;
  std::string after_volumes;  // more volumes, or top-level keys

  std::string text() const {
    return "cluster:\n"                                             // 1
           "  name: demo\n"                                         // 2
           "  secret: 0123456789abcdef\n"                           // 3
           "  initial_primary: a\n" +                               // 4
           cluster_extra +                                          //
           "nodes:\n"                                               // 5
           "  - name: a\n"                                          // 6
           "    replication: 127.0.0.1\n"                           // 7
           "    portals: [\"" + portal_a + "\"]\n"                  // 8
           "  - name: b\n"                                          // 9
           "    replication: 127.0.0.2\n"                           // 10
           "    portals: [\"" + portal_b + "\"]\n"                  // 11
           "volumes:\n"                                             // 12
           "  - name: vol0\n"                                       // 13
           "    size: 1G\n"                                         // 14
           "    target: iqn.2026-01.org.freevsa:vol0\n"             // 15
           "    backing: {a: data/a/vol0.img, b: data/b/vol0.img}\n" +  // 16
           volume_extra + after_volumes;
  }
};

const std::string kSecondVolumeSameTarget =
    "  - name: vol1\n"
    "    size: 1G\n"
    "    target: iqn.2026-01.org.freevsa:vol0\n"
    "    lun: 1\n"
    "    backing: {a: data/a/vol1.img, b: data/b/vol1.img}\n";

std::string error_of(const ClusterFile& file, const std::string& node = "a") {
  try {
    parse_config(file.text(), "t.yaml", node);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

Config as_node(const ClusterFile& file, const std::string& node) { return parse_config(file.text(), "t.yaml", node); }

std::vector<std::string> warnings_of(const ClusterFile& file) { return parse_config(file.text(), "t.yaml").warnings; }

// --- the keys reach every node's target ---

TEST(DaemonClusterAccess, VolumeKeysReachTheTargetOfEveryNode) {
  ClusterFile file;
  file.volume_extra =
      "    chap: {user: alice, secret: alice-secret-123}\n"
      "    mutual_chap: {user: vol0-target, secret: target-secret-456}\n"
      "    allowed_initiators: [iqn.1994-05.com.redhat:client1, iqn.1998-01.com.vmware:esx1]\n";
  for (const char* node : {"a", "b"}) {
    Config config = as_node(file, node);
    ASSERT_EQ(config.targets.size(), 1u) << node;
    const TargetAccess& access = config.targets[0].access;
    EXPECT_EQ(access.chap, (ChapConfig{"alice", "alice-secret-123"})) << node;
    EXPECT_EQ(access.mutual_chap, (ChapConfig{"vol0-target", "target-secret-456"})) << node;
    EXPECT_EQ(access.allowed_initiators,
              (std::vector<std::string>{"iqn.1994-05.com.redhat:client1", "iqn.1998-01.com.vmware:esx1"}))
        << node;
  }
}

TEST(DaemonClusterAccess, WithoutKeysAVolumeIsOpenAsBefore) {
  Config config = as_node(ClusterFile{}, "a");
  ASSERT_EQ(config.targets.size(), 1u);
  EXPECT_TRUE(config.targets[0].access.open());
  EXPECT_FALSE(config.targets[0].access.mutual_chap);
}

TEST(DaemonClusterAccess, ClusterDefaultAppliesToEveryVolume) {
  ClusterFile file;
  file.cluster_extra =
      "  iscsi_access:\n"
      "    chap: {user: alice, secret: alice-secret-123}\n"
      "    allowed_initiators: [iqn.1994-05.com.redhat:client1]\n";
  file.after_volumes =
      "  - name: vol1\n"
      "    size: 1G\n"
      "    target: iqn.2026-01.org.freevsa:vol1\n"
      "    backing: {a: data/a/vol1.img, b: data/b/vol1.img}\n";
  Config config = as_node(file, "b");
  ASSERT_EQ(config.targets.size(), 2u);
  for (const TargetConfig& target : config.targets) {
    EXPECT_EQ(target.access.chap, (ChapConfig{"alice", "alice-secret-123"})) << target.iqn;
    EXPECT_EQ(target.access.allowed_initiators, std::vector<std::string>{"iqn.1994-05.com.redhat:client1"})
        << target.iqn;
  }
}

TEST(DaemonClusterAccess, VolumeKeysReplaceTheDefaultKeyByKey) {
  ClusterFile file;
  file.cluster_extra =
      "  iscsi_access:\n"
      "    chap: {user: alice, secret: alice-secret-123}\n"
      "    mutual_chap: {user: target, secret: target-secret-456}\n"
      "    allowed_initiators: [iqn.1994-05.com.redhat:client1]\n";
  // chap given: the default pair goes, mutual_chap with it; allowed_initiators stays.
  file.volume_extra = "    chap: {user: bob, secret: bob-secret-7890}\n";
  TargetAccess access = as_node(file, "a").targets.at(0).access;
  EXPECT_EQ(access.chap, (ChapConfig{"bob", "bob-secret-7890"}));
  EXPECT_FALSE(access.mutual_chap);
  EXPECT_EQ(access.allowed_initiators, std::vector<std::string>{"iqn.1994-05.com.redhat:client1"});

  // An empty list is an answer of its own: every initiator (with the default CHAP).
  file.volume_extra = "    allowed_initiators: []\n";
  access = as_node(file, "a").targets.at(0).access;
  EXPECT_EQ(access.chap, (ChapConfig{"alice", "alice-secret-123"}));
  EXPECT_EQ(access.mutual_chap, (ChapConfig{"target", "target-secret-456"}));
  EXPECT_TRUE(access.allowed_initiators.empty());
}

TEST(DaemonClusterAccess, DiscoveryChapWorksInAClusterFile) {
  ClusterFile file;
  file.after_volumes =
      "discovery_chap: {user: disc, secret: discovery-secret-1}\n"
      "discovery_mutual_chap: {user: disc-target, secret: discovery-secret-2}\n";
  Config config = as_node(file, "a");
  EXPECT_EQ(config.discovery_chap, (ChapConfig{"disc", "discovery-secret-1"}));
  EXPECT_EQ(config.discovery_mutual_chap, (ChapConfig{"disc-target", "discovery-secret-2"}));
}

TEST(DaemonClusterAccess, VolumesOfOneTargetWithTheSameAccessShareIt) {
  ClusterFile file;
  file.cluster_extra = "  iscsi_access: {chap: {user: alice, secret: alice-secret-123}}\n";
  file.volume_extra = "    allowed_initiators: [iqn.1994-05.com.redhat:a, iqn.1994-05.com.redhat:b]\n";
  file.after_volumes = kSecondVolumeSameTarget + "    allowed_initiators: [iqn.1994-05.com.redhat:b, iqn.1994-05.com.redhat:a]\n";
  Config config = as_node(file, "a");
  ASSERT_EQ(config.targets.size(), 1u);
  EXPECT_EQ(config.targets[0].luns.size(), 2u);
  EXPECT_EQ(config.targets[0].access.chap, (ChapConfig{"alice", "alice-secret-123"}));
}

// --- refusals, as file:line: key ---

TEST(DaemonClusterAccess, ShortVolumeSecretIsRefused) {
  ClusterFile file;
  file.volume_extra = "    chap:\n      user: alice\n      secret: short-pw\n";  // 17-19
  EXPECT_EQ(error_of(file), "t.yaml:19: volumes[0].chap.secret: must be at least 12 bytes long (RFC 7143 section "
                            "12.1.3), got 8");
}

TEST(DaemonClusterAccess, ShortDefaultSecretIsRefused) {
  ClusterFile file;
  file.cluster_extra = "  iscsi_access:\n    chap: {user: alice, secret: short}\n";  // 5-6
  EXPECT_EQ(error_of(file),
            "t.yaml:6: cluster.iscsi_access.chap.secret: must be at least 12 bytes long (RFC 7143 section 12.1.3), "
            "got 5");
}

TEST(DaemonClusterAccess, LongSecretIsRefusedWithoutPrintingIt) {
  ClusterFile file;
  file.volume_extra = "    chap: {user: alice, secret: " + std::string(256, 'x') + "}\n";  // 17
  EXPECT_EQ(error_of(file), "t.yaml:17: volumes[0].chap.secret: is 256 bytes long, at most 255 allowed");
}

TEST(DaemonClusterAccess, MutualWithoutChapIsRefused) {
  ClusterFile file;
  file.volume_extra = "    mutual_chap: {user: t, secret: target-secret-456}\n";  // 17
  EXPECT_EQ(error_of(file), "t.yaml:17: volumes[0].mutual_chap: needs 'chap' as well: the target only proves itself "
                            "to initiators that authenticated first");
}

TEST(DaemonClusterAccess, MutualSecretEqualToChapSecretIsRefused) {
  ClusterFile file;
  file.cluster_extra =
      "  iscsi_access:\n"                                           // 5
      "    chap: {user: a, secret: same-secret-123}\n"              // 6
      "    mutual_chap: {user: t, secret: same-secret-123}\n";      // 7
  EXPECT_EQ(error_of(file), "t.yaml:7: cluster.iscsi_access.mutual_chap.secret: must differ from chap.secret: a "
                            "shared secret lets anyone reflect the target's own challenge back at it");
}

TEST(DaemonClusterAccess, BadAndRepeatedInitiatorNamesAreRefused) {
  ClusterFile file;
  file.volume_extra = "    allowed_initiators:\n      - client\n";  // 17-18
  EXPECT_EQ(error_of(file), "t.yaml:18: volumes[0].allowed_initiators[0]: 'client' is not a valid iSCSI name: must "
                            "start with 'iqn.', 'eui.' or 'naa.'");
  file.volume_extra = "    allowed_initiators:\n      - iqn.1994-05.com.redhat:a\n      - iqn.1994-05.com.redhat:a\n";
  EXPECT_EQ(error_of(file), "t.yaml:19: volumes[0].allowed_initiators[1]: 'iqn.1994-05.com.redhat:a' is listed twice "
                            "(first at line 18)");
}

TEST(DaemonClusterAccess, UnknownKeyInTheDefaultIsRefused) {
  ClusterFile file;
  file.cluster_extra = "  iscsi_access:\n    chapp: {user: a, secret: alice-secret-123}\n";  // 5-6
  EXPECT_EQ(error_of(file), "t.yaml:6: cluster.iscsi_access: unknown key 'chapp' (did you mean 'chap'?)");
}

TEST(DaemonClusterAccess, VolumesOfOneTargetWithDifferentAccessAreRefused) {
  ClusterFile file;
  file.volume_extra = "    chap: {user: alice, secret: alice-secret-123}\n";  // 17
  file.after_volumes = kSecondVolumeSameTarget;                                // 18-22
  EXPECT_EQ(error_of(file), "t.yaml:18: volumes[1].chap: differs from that of volume 'vol0' (line 13), which has the "
                            "same target 'iqn.2026-01.org.freevsa:vol0': volumes of one target share its chap, "
                            "mutual_chap and allowed_initiators");

  file.volume_extra = "    allowed_initiators: [iqn.1994-05.com.redhat:a]\n";
  EXPECT_EQ(error_of(file), "t.yaml:18: volumes[1].allowed_initiators: differs from that of volume 'vol0' (line 13), "
                            "which has the same target 'iqn.2026-01.org.freevsa:vol0': volumes of one target share "
                            "its chap, mutual_chap and allowed_initiators");
}

// --- not in the hash: the peers need not agree, and the hashed text is shown to them ---

TEST(DaemonClusterAccess, AccessIsNotHashedAndNoSecretIsInTheSharedText) {
  ClusterFile open;
  ClusterFile guarded;
  guarded.volume_extra =
      "    chap: {user: alice, secret: alice-secret-123}\n"
      "    allowed_initiators: [iqn.1994-05.com.redhat:a]\n";
  const LocalVolume a = as_node(open, "a").local->volumes.at(0);
  const LocalVolume b = as_node(guarded, "a").local->volumes.at(0);
  EXPECT_EQ(a.config_hash, b.config_hash);
  EXPECT_EQ(b.shared_settings.find("alice-secret-123"), std::string::npos);
  EXPECT_EQ(b.access.chap, (ChapConfig{"alice", "alice-secret-123"}));
}

// --- the warning check-config prints and serve logs ---

TEST(DaemonClusterAccess, OpenVolumeOnANetworkPortalIsWarnedAbout) {
  ClusterFile file;
  file.portal_a = "192.0.2.10:3260";
  file.portal_b = "0.0.0.0:3260";
  EXPECT_EQ(warnings_of(file),
            std::vector<std::string>{
                "t.yaml:13: volumes[0]: volume 'vol0' is open to every initiator that reaches 192.0.2.10:3260 (node "
                "a), 0.0.0.0:3260 (node b): without CHAP or an initiator list it is readable and writable from the "
                "network; set chap or allowed_initiators on the volume or in cluster.iscsi_access"});
  // The node that serves it says so as well.
  EXPECT_EQ(as_node(file, "b").warnings.size(), 1u);
}

TEST(DaemonClusterAccess, OneNetworkPortalIsEnoughForTheWarning) {
  ClusterFile file;
  file.portal_b = "[::1]:3260";
  EXPECT_TRUE(warnings_of(file).empty());
  file.portal_a = "192.0.2.10:3260";
  ASSERT_EQ(warnings_of(file).size(), 1u);
  EXPECT_NE(warnings_of(file)[0].find("reaches 192.0.2.10:3260 (node a):"), std::string::npos);
}

TEST(DaemonClusterAccess, ChapOrAnInitiatorListSilencesTheWarning) {
  ClusterFile file;
  file.portal_a = "192.0.2.10:3260";
  file.portal_b = "192.0.2.11:3260";
  file.volume_extra = "    chap: {user: alice, secret: alice-secret-123}\n";
  EXPECT_TRUE(warnings_of(file).empty());
  file.volume_extra = "    allowed_initiators: [iqn.1994-05.com.redhat:a]\n";
  EXPECT_TRUE(warnings_of(file).empty());
  file.volume_extra.clear();
  file.cluster_extra = "  iscsi_access: {allowed_initiators: [iqn.1994-05.com.redhat:a]}\n";
  EXPECT_TRUE(warnings_of(file).empty());
}

TEST(DaemonClusterAccess, LoopbackPortalsAreNotWarnedAbout) { EXPECT_TRUE(warnings_of(ClusterFile{}).empty()); }

TEST(DaemonClusterAccess, DemoFileHasNoWarning) {
  auto demo = std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "etc/cluster-demo.yaml";
  EXPECT_TRUE(load_config(demo.string()).warnings.empty());
}

TEST(DaemonClusterAccess, OpenSingleNodeTargetOnANetworkPortalIsWarnedAbout) {
  const std::string base =
      "portals: [\"0.0.0.0:3260\"]\n"                              // 1
      "targets:\n"                                                 // 2
      "  - iqn: iqn.2026-01.org.freevsa:disk0\n"                   // 3
      "    luns: [{lun: 0, path: data/disk0.img, size: 1G}]\n";    // 4
  EXPECT_EQ(parse_config(base, "t.yaml").warnings,
            std::vector<std::string>{
                "t.yaml:3: targets[0]: target 'iqn.2026-01.org.freevsa:disk0' is open to every initiator that "
                "reaches 0.0.0.0:3260: without CHAP or an initiator list it is readable and writable from the "
                "network; set chap or allowed_initiators"});
  EXPECT_TRUE(parse_config(base + "    chap: {user: alice, secret: alice-secret-123}\n", "t.yaml").warnings.empty());
}

}  // namespace
}  // namespace freevsa::daemon
