// Naming what differs between two nodes' shared settings, for the configuration-mismatch refusal.
#include <gtest/gtest.h>

#include "replication/settings_difference.h"

namespace freevsa::replication {
namespace {

constexpr const char* kSettings =
    "freevsa-config-hash v1\n"
    "cluster name=demo\n"
    "cluster secret-sha256=00aa\n"
    "cluster keepalive ping_interval_ms=500 timeout_ms=2000\n"
    "node name=a id=1 replication=127.0.0.1:7788\n"
    "node name=b id=2 replication=127.0.0.2:7788\n"
    "scope=volume\n"
    "volume name=vol0 size=1073741824 block_size=512 protocol=C lun=0\n";

std::string with(std::string text, const std::string& from, const std::string& to) {
  text.replace(text.find(from), from.size(), to);
  return text;
}

TEST(SettingsDifference, IdenticalSettingsHaveNoDifference) {
  EXPECT_EQ(describe_settings_difference(kSettings, kSettings, "b"), "");
}

TEST(SettingsDifference, NamesTheVolumeAndTheSettingWithBothValues) {
  EXPECT_EQ(describe_settings_difference(kSettings, with(kSettings, "protocol=C", "protocol=A"), "b"),
            "volume vol0: protocol is C here, A on b");
}

TEST(SettingsDifference, NamesTheNodeWhoseAddressDiffers) {
  EXPECT_EQ(describe_settings_difference(kSettings, with(kSettings, "127.0.0.2:7788", "10.0.0.2:7788"), "b"),
            "node b: replication is 127.0.0.2:7788 here, 10.0.0.2:7788 on b");
}

TEST(SettingsDifference, ListsEveryDifference) {
  const std::string peer = with(with(kSettings, "timeout_ms=2000", "timeout_ms=3000"), "size=1073741824", "size=2048");
  EXPECT_EQ(describe_settings_difference(kSettings, peer, "b"),
            "cluster keepalive: timeout_ms is 2000 here, 3000 on b; volume vol0: size is 1073741824 here, 2048 on b");
}

TEST(SettingsDifference, ANodeListedOnOneSideOnly) {
  const std::string peer = std::string(kSettings) + "node name=c id=3 replication=127.0.0.3:7788\n";
  EXPECT_EQ(describe_settings_difference(kSettings, peer, "b"), "node c is only on b");
  EXPECT_EQ(describe_settings_difference(peer, kSettings, "b"), "node c is only here");
}

TEST(SettingsDifference, DigestValuesAreNotShown) {
  EXPECT_EQ(describe_settings_difference(kSettings, with(kSettings, "secret-sha256=00aa", "secret-sha256=11bb"), "b"),
            "cluster: secret-sha256 differs");
}

TEST(SettingsDifference, ASettingPresentOnOneSideOnlyIsUnsetOnTheOther) {
  EXPECT_EQ(describe_settings_difference(kSettings, with(kSettings, " lun=0", ""), "b"),
            "volume vol0: lun is 0 here, unset on b");
}

}  // namespace
}  // namespace freevsa::replication
