#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "daemon/config.h"

namespace freevsa::daemon {
namespace {

// The message of the ConfigError that parsing throws, or "" when it parsed.
std::string error_of(const std::string& yaml) {
  try {
    parse_config(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// Lines 1-7; tests append to or replace parts of it so that line numbers stay easy to count.
const std::string kPortals = "portals:\n  - 127.0.0.1:3260\n";  // lines 1-2
std::string target_with_lun(const std::string& lun_lines) {
  return kPortals +
         "targets:\n"                                // 3
         "  - iqn: iqn.2026-01.org.freevsa:disk0\n"  // 4
         "    luns:\n"                               // 5
         "      - lun: 0\n"                          // 6
         "        path: data/disk0.img\n" +          // 7
         lun_lines;                                  // 8...
}
const std::string kMinimal = target_with_lun("        size: 1G\n");

std::string with_portals(const std::string& portal_lines) {
  return "portals:\n" + portal_lines +
         "targets:\n"
         "  - iqn: iqn.2026-01.org.freevsa:disk0\n"
         "    luns: [{lun: 0, path: a.img, size: 1M}]\n";
}

std::filesystem::path repository_root() {
  // test/unit/daemon_config_test.cpp -> repository root
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

TEST(DaemonConfig, ExampleFileParses) {
  Config config = load_config((repository_root() / "etc/freevsa.yaml").string());
  ASSERT_EQ(config.portals.size(), 1u);
  EXPECT_EQ(config.portals[0].address, "127.0.0.1");
  EXPECT_EQ(config.portals[0].port, 3260);
  ASSERT_EQ(config.targets.size(), 1u);
  const TargetConfig& target = config.targets[0];
  EXPECT_EQ(target.iqn, "iqn.2026-01.org.freevsa:disk0");
  ASSERT_EQ(target.luns.size(), 1u);
  EXPECT_EQ(target.luns[0].number, 0u);
  EXPECT_EQ(target.luns[0].path, "data/disk0.img");
  EXPECT_EQ(target.luns[0].size_bytes, 1ull << 30);
  EXPECT_EQ(target.luns[0].block_size, 512u);
  EXPECT_TRUE(target.luns[0].direct_io);
  EXPECT_FALSE(target.access.chap);
  EXPECT_FALSE(target.access.mutual_chap);
  EXPECT_TRUE(target.access.allowed_initiators.empty());
  EXPECT_FALSE(config.discovery_chap);
  EXPECT_EQ(config.log_level, "info");
  EXPECT_FALSE(config.cluster);
  EXPECT_FALSE(config.local);
}

TEST(DaemonConfig, ExampleFileParsesTheSameWhenServedWithoutNode) {
  // serve passes --node ("" when absent); a single-node file means the same either way.
  Config config = load_config((repository_root() / "etc/freevsa.yaml").string(), "");
  EXPECT_FALSE(config.cluster);
  EXPECT_FALSE(config.local);
  ASSERT_EQ(config.portals.size(), 1u);
  EXPECT_EQ(config.portals[0].address, "127.0.0.1");
  EXPECT_EQ(config.portals[0].port, 3260);
  ASSERT_EQ(config.targets.size(), 1u);
  EXPECT_EQ(config.targets[0].luns.at(0).path, "data/disk0.img");
  EXPECT_EQ(config.targets[0].luns.at(0).size_bytes, 1ull << 30);
}

TEST(DaemonConfig, NodeNameForASingleNodeFileIsRefused) {
  try {
    parse_config(kMinimal, "t.yaml", "a");
    FAIL() << "parsed";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "t.yaml:1: --node a was given, but this file describes a single node (it has no 'nodes' section)");
  }
}

TEST(DaemonConfig, MinimalFileGetsDefaults) {
  Config config = parse_config(kMinimal, "t.yaml");
  EXPECT_EQ(config.source_path, "t.yaml");
  EXPECT_EQ(config.network_threads, 1u);
  EXPECT_EQ(config.worker_threads, 16u);
  EXPECT_EQ(config.nop_interval_seconds, 5u);
  EXPECT_EQ(config.nop_timeout_seconds, 30u);
  EXPECT_EQ(config.max_recv_data_segment_length, 262144u);
  EXPECT_EQ(config.max_burst_length, 1048576u);
  EXPECT_EQ(config.first_burst_length, 262144u);
  EXPECT_EQ(config.max_outstanding_r2t, 16u);
  EXPECT_TRUE(config.immediate_data);
  EXPECT_FALSE(config.initial_r2t);
  EXPECT_EQ(config.targets[0].luns[0].block_size, 512u);
  EXPECT_TRUE(config.targets[0].luns[0].direct_io);
  EXPECT_EQ(config.targets[0].luns[0].serial, "");
}

TEST(DaemonConfig, EveryOptionParses) {
  Config config = parse_config(R"(
portals:
  - 0.0.0.0:3260
  - "[::]:3261"
targets:
  - iqn: iqn.2026-01.org.freevsa:disk0
    alias: first disk
    luns:
      - {lun: 0, path: /dev/sdb}
      - {lun: 7, path: data/b.img, size: 8G, block_size: 4096, direct_io: false, serial: ABC-123}
    chap: {user: alice, secret: 0123456789ab}
    mutual_chap: {user: target, secret: ba9876543210}
    allowed_initiators: [iqn.1994-05.com.redhat:client1, eui.0123456789abcdef]
discovery_chap: {user: d, secret: discovery-secret}
discovery_mutual_chap: {user: t, secret: other-discovery}
log_level: debug
network_threads: 4
worker_threads: 32
nop_interval_seconds: 10
nop_timeout_seconds: 60
iscsi:
  max_recv_data_segment_length: 64K
  max_burst_length: 262144
  first_burst_length: 65536
  max_outstanding_r2t: 1
  immediate_data: false
  initial_r2t: yes
)",
                               "t.yaml");
  ASSERT_EQ(config.portals.size(), 2u);
  EXPECT_EQ(config.portals[1].address, "::");
  EXPECT_EQ(config.portals[1].port, 3261);
  const TargetConfig& target = config.targets[0];
  EXPECT_EQ(target.alias, "first disk");
  EXPECT_EQ(target.luns[0].size_bytes, 0u);
  EXPECT_EQ(target.luns[1].number, 7u);
  EXPECT_EQ(target.luns[1].size_bytes, 8ull << 30);
  EXPECT_EQ(target.luns[1].block_size, 4096u);
  EXPECT_FALSE(target.luns[1].direct_io);
  EXPECT_EQ(target.luns[1].serial, "ABC-123");
  ASSERT_TRUE(target.access.chap);
  EXPECT_EQ(target.access.chap->user, "alice");
  EXPECT_EQ(target.access.chap->secret, "0123456789ab");
  ASSERT_TRUE(target.access.mutual_chap);
  EXPECT_EQ(target.access.mutual_chap->secret, "ba9876543210");
  EXPECT_EQ(target.access.allowed_initiators.size(), 2u);
  ASSERT_TRUE(config.discovery_chap);
  ASSERT_TRUE(config.discovery_mutual_chap);
  EXPECT_EQ(config.log_level, "debug");
  EXPECT_EQ(config.network_threads, 4u);
  EXPECT_EQ(config.worker_threads, 32u);
  EXPECT_EQ(config.nop_interval_seconds, 10u);
  EXPECT_EQ(config.nop_timeout_seconds, 60u);
  EXPECT_EQ(config.max_recv_data_segment_length, 65536u);
  EXPECT_EQ(config.max_burst_length, 262144u);
  EXPECT_EQ(config.first_burst_length, 65536u);
  EXPECT_EQ(config.max_outstanding_r2t, 1u);
  EXPECT_FALSE(config.immediate_data);
  EXPECT_TRUE(config.initial_r2t);
}

// --- sizes ---

TEST(DaemonConfig, SizeAcceptsBytesAndBinaryUnits) {
  auto size_of = [](const std::string& text) {
    return parse_config(target_with_lun("        size: " + text + "\n"), "t.yaml").targets[0].luns[0].size_bytes;
  };
  EXPECT_EQ(size_of("1073741824"), 1ull << 30);
  EXPECT_EQ(size_of("512K"), 512ull << 10);
  EXPECT_EQ(size_of("512M"), 512ull << 20);
  EXPECT_EQ(size_of("1G"), 1ull << 30);
  EXPECT_EQ(size_of("1T"), 1ull << 40);
  EXPECT_EQ(size_of("10GiB"), 10ull << 30);
  EXPECT_EQ(size_of("2g"), 2ull << 30);
  EXPECT_EQ(size_of("3 MiB"), 3ull << 20);
}

TEST(DaemonConfig, SizeRefusesDecimalLookingUnits) {
  EXPECT_EQ(error_of(target_with_lun("        size: 10GB\n")),
            "t.yaml:8: targets[0].luns[0].size: '10GB' is ambiguous; sizes are binary here: write '10G' or '10GiB'");
}

TEST(DaemonConfig, SizeRefusesGarbage) {
  EXPECT_EQ(error_of(target_with_lun("        size: big\n")),
            "t.yaml:8: targets[0].luns[0].size: expected a size such as 1073741824, 512M, 1G or 10GiB, got 'big'");
  EXPECT_EQ(error_of(target_with_lun("        size: 1.5G\n")),
            "t.yaml:8: targets[0].luns[0].size: expected a size such as 1073741824, 512M, 1G or 10GiB, got '1.5G'");
}

TEST(DaemonConfig, SizeRefusesOverflow) {
  EXPECT_EQ(error_of(target_with_lun("        size: 99999999P\n")),
            "t.yaml:8: targets[0].luns[0].size: '99999999P' is too large");
  EXPECT_EQ(error_of(target_with_lun("        size: 99999999999999999999\n")),
            "t.yaml:8: targets[0].luns[0].size: '99999999999999999999' is too large");
}

TEST(DaemonConfig, SizeRefusesZero) {
  EXPECT_EQ(error_of(target_with_lun("        size: 0\n")),
            "t.yaml:8: targets[0].luns[0].size: must be between 1 and 18446744073709551615 bytes, got 0");
}

TEST(DaemonConfig, SizeMustBeMultipleOfBlockSize) {
  EXPECT_EQ(error_of(target_with_lun("        size: 6K\n        block_size: 4096\n")),
            "t.yaml:8: targets[0].luns[0].size: 6144 bytes is not a multiple of block_size 4096");
}

TEST(DaemonConfig, SizeIsOptionalForExistingFiles) {
  Config config = parse_config(target_with_lun(""), "t.yaml");
  EXPECT_EQ(config.targets[0].luns[0].size_bytes, 0u);
}

// --- LUN fields ---

TEST(DaemonConfig, BlockSizeMustBe512Or4096) {
  EXPECT_EQ(error_of(target_with_lun("        size: 1G\n        block_size: 1000\n")),
            "t.yaml:9: targets[0].luns[0].block_size: must be 512 or 4096, got 1000");
}

TEST(DaemonConfig, DuplicateLunNumberIsRefused) {
  EXPECT_EQ(error_of(target_with_lun("        size: 1G\n"
                                     "      - lun: 0\n"          // 9
                                     "        path: b.img\n")),  // 10
            "t.yaml:9: targets[0].luns[1].lun: LUN 0 is defined twice (first at line 6)");
}

TEST(DaemonConfig, LunNumberOutOfRangeIsRefused) {
  EXPECT_EQ(error_of(kPortals + "targets:\n  - iqn: iqn.2026-01.org.freevsa:disk0\n    luns:\n      - lun: 16384\n"
                                "        path: a.img\n"),
            "t.yaml:6: targets[0].luns[0].lun: must be between 0 and 16383, got 16384");
}

TEST(DaemonConfig, SamePathForTwoLunsIsRefused) {
  EXPECT_EQ(error_of(target_with_lun("      - lun: 1\n"                   // 8
                                     "        path: data/disk0.img\n")),  // 9
            "t.yaml:9: targets[0].luns[1].path: 'data/disk0.img' is already used by targets[0].luns[0].path");
}

TEST(DaemonConfig, TargetWithoutLunsIsRefused) {
  EXPECT_EQ(error_of(kPortals + "targets:\n  - iqn: iqn.2026-01.org.freevsa:disk0\n    luns: []\n"),
            "t.yaml:5: targets[0].luns: a target needs at least one LUN");
}

TEST(DaemonConfig, SerialMustBePrintableWithoutSpaces) {
  EXPECT_EQ(error_of(target_with_lun("        serial: \"A B\"\n")),
            "t.yaml:8: targets[0].luns[0].serial: may only contain printable ASCII without spaces");
}

// --- structure errors ---

TEST(DaemonConfig, MissingKeyPointsAtParentMap) {
  EXPECT_EQ(error_of(kPortals + "targets:\n  - iqn: iqn.2026-01.org.freevsa:disk0\n    luns:\n"
                                "      - lun: 0\n"      // 6
                                "        size: 1G\n"),  // 7
            "t.yaml:6: targets[0].luns[0].path: required");
}

TEST(DaemonConfig, MissingTopLevelKeyPointsAtFirstLine) {
  EXPECT_EQ(error_of("# comment\nportals: [127.0.0.1]\n"), "t.yaml:2: targets: required");
}

TEST(DaemonConfig, UnknownKeySuggestsTheNearestKnownKey) {
  EXPECT_EQ(error_of(target_with_lun("        blocksize: 512\n")),
            "t.yaml:8: targets[0].luns[0]: unknown key 'blocksize' (did you mean 'block_size'?)");
}

TEST(DaemonConfig, UnknownKeyFarFromAnyKnownKeyHasNoSuggestion) {
  EXPECT_EQ(error_of(kMinimal + "colour: blue\n"), "t.yaml:9: unknown key 'colour'");
}

TEST(DaemonConfig, UnknownKeyInIscsiSectionIsRefused) {
  EXPECT_EQ(error_of(kMinimal + "iscsi:\n  max_burst: 65536\n"),
            "t.yaml:10: iscsi: unknown key 'max_burst' (did you mean 'max_burst_length'?)");
}

TEST(DaemonConfig, KeyGivenTwiceIsRefused) {
  EXPECT_EQ(error_of(target_with_lun("        size: 1G\n        size: 2G\n")),
            "t.yaml:9: targets[0].luns[0].size: given twice (first at line 8)");
}

TEST(DaemonConfig, NumberTypeErrorQuotesTheValue) {
  EXPECT_EQ(error_of(kMinimal + "network_threads: abc\n"), "t.yaml:9: network_threads: expected a number, got 'abc'");
}

TEST(DaemonConfig, NumberOutOfRangeIsRefused) {
  EXPECT_EQ(error_of(kMinimal + "worker_threads: 0\n"), "t.yaml:9: worker_threads: must be between 1 and 1024, got 0");
  EXPECT_EQ(error_of(kMinimal + "worker_threads: -3\n"),
            "t.yaml:9: worker_threads: must be between 1 and 1024, got -3");
}

TEST(DaemonConfig, BooleanTypeErrorQuotesTheValue) {
  EXPECT_EQ(error_of(target_with_lun("        direct_io: maybe\n")),
            "t.yaml:8: targets[0].luns[0].direct_io: expected true or false, got 'maybe'");
}

TEST(DaemonConfig, MapWhereScalarExpectedIsRefused) {
  EXPECT_EQ(error_of(kMinimal + "log_level: {a: 1}\n"), "t.yaml:9: log_level: expected a log level, got a map");
}

TEST(DaemonConfig, KeyWithoutValueIsReportedOnItsOwnLine) {
  EXPECT_EQ(error_of(target_with_lun("        block_size:\n        size: 1G\n")),
            "t.yaml:8: targets[0].luns[0].block_size: expected a number, got nothing");
}

TEST(DaemonConfig, ScalarWhereListExpectedIsRefused) {
  EXPECT_EQ(error_of("portals: 127.0.0.1:3260\ntargets: []\n"),
            "t.yaml:1: portals: expected a list, got '127.0.0.1:3260'");
}

TEST(DaemonConfig, LogLevelMustBeKnown) {
  EXPECT_EQ(error_of(kMinimal + "log_level: verbose\n"),
            "t.yaml:9: log_level: must be one of debug, info, warn, error, got 'verbose'");
}

TEST(DaemonConfig, YamlSyntaxErrorNamesFileAndLine) {
  std::string message = error_of(kPortals + "targets: [\n  {iqn: x\n");
  EXPECT_TRUE(message.starts_with("t.yaml:")) << message;
  EXPECT_NE(message.find("YAML syntax error: "), std::string::npos) << message;
  EXPECT_EQ(error_of("portals:\n  - a\n - b\n"), "t.yaml:3: YAML syntax error: end of map not found");
}

TEST(DaemonConfig, EmptyFileIsRefused) {
  EXPECT_EQ(error_of(""), "t.yaml:1: the file has no settings; it needs at least 'portals' and 'targets'");
  EXPECT_EQ(error_of("# only a comment\n"),
            "t.yaml:1: the file has no settings; it needs at least 'portals' and 'targets'");
}

TEST(DaemonConfig, TopLevelMustBeAMap) {
  EXPECT_EQ(error_of("- a\n- b\n"),
            "t.yaml:1: the top level must be a map of settings (portals:, targets:, ...), got a list");
}

TEST(DaemonConfig, SecondDocumentIsRefused) {
  EXPECT_EQ(error_of(kMinimal + "---\nlog_level: info\n"),
            "t.yaml:9: only one YAML document is allowed (remove the second '---')");
}

// --- portals ---

TEST(DaemonConfig, PortalWithoutPortUses3260) {
  Config config = parse_config(with_portals("  - 192.168.1.10\n"), "t.yaml");
  EXPECT_EQ(config.portals[0].address, "192.168.1.10");
  EXPECT_EQ(config.portals[0].port, 3260);
}

TEST(DaemonConfig, PortalMapForm) {
  Config config = parse_config(with_portals("  - {address: 10.0.0.1, port: 3270}\n  - address: 10.0.0.2\n"), "t.yaml");
  ASSERT_EQ(config.portals.size(), 2u);
  EXPECT_EQ(config.portals[0].address, "10.0.0.1");
  EXPECT_EQ(config.portals[0].port, 3270);
  EXPECT_EQ(config.portals[1].address, "10.0.0.2");
  EXPECT_EQ(config.portals[1].port, 3260);
}

TEST(DaemonConfig, PortalIpv6InBrackets) {
  Config config = parse_config(
      with_portals("  - \"[::1]:3260\"\n  - \"[fe80::1%eth0]\"\n  - {address: \"2001:db8::5\"}\n"), "t.yaml");
  ASSERT_EQ(config.portals.size(), 3u);
  EXPECT_EQ(config.portals[0].address, "::1");
  EXPECT_EQ(config.portals[0].port, 3260);
  EXPECT_EQ(config.portals[1].address, "fe80::1%eth0");
  EXPECT_EQ(config.portals[2].address, "2001:db8::5");
}

TEST(DaemonConfig, PortalIpv6WithoutBracketsIsRefused) {
  EXPECT_EQ(error_of(with_portals("  - \"::1\"\n")),
            "t.yaml:2: portals[0]: an IPv6 address needs brackets: write '[::1]:3260'");
}

TEST(DaemonConfig, PortalHostNameIsRefused) {
  EXPECT_EQ(error_of(with_portals("  - localhost:3260\n")),
            "t.yaml:2: portals[0]: 'localhost' is not an IP address (host names are not resolved; use e.g. "
            "127.0.0.1, 0.0.0.0 or [::])");
}

TEST(DaemonConfig, PortalPortOutOfRangeIsRefused) {
  EXPECT_EQ(error_of(with_portals("  - 127.0.0.1:65536\n")),
            "t.yaml:2: portals[0]: port must be between 1 and 65535, got '65536'");
  EXPECT_EQ(error_of(with_portals("  - {address: 127.0.0.1, port: 0}\n")),
            "t.yaml:2: portals[0].port: must be between 1 and 65535, got 0");
}

TEST(DaemonConfig, DuplicatePortalIsRefused) {
  EXPECT_EQ(error_of(with_portals("  - 127.0.0.1\n  - {address: 127.0.0.1, port: 3260}\n")),
            "t.yaml:3: portals[1]: portal 127.0.0.1:3260 is listed twice (first at line 2)");
  // The same IPv6 address spelled two ways is still the same socket.
  EXPECT_EQ(error_of(with_portals("  - \"[::1]\"\n  - \"[0:0::1]:3260\"\n")),
            "t.yaml:3: portals[1]: portal [::1]:3260 is listed twice (first at line 2)");
}

TEST(DaemonConfig, SameAddressOnTwoPortsIsTwoPortals) {
  Config config = parse_config(with_portals("  - 127.0.0.1:3260\n  - 127.0.0.1:3261\n"), "t.yaml");
  EXPECT_EQ(config.portals.size(), 2u);
}

TEST(DaemonConfig, NoPortalIsRefused) {
  EXPECT_EQ(error_of("portals: []\ntargets: []\n"), "t.yaml:1: portals: at least one portal is needed");
}

// --- iSCSI names ---

TEST(DaemonConfig, IscsiNameFormsAreAccepted) {
  for (const char* name : {"iqn.2026-01.org.freevsa:disk0", "iqn.1994-05.com.redhat", "iqn.2001-04.com.example:a:b.c-d",
                           "eui.02004567a425678d", "naa.52004567ba64678d", "naa.52004567ba64678d52004567ba64678d"}) {
    std::string yaml = "portals: [127.0.0.1]\ntargets:\n  - iqn: " + std::string(name) +
                       "\n    luns: [{lun: 0, path: a.img, size: 1M}]\n";
    EXPECT_EQ(error_of(yaml), "") << name;
  }
}

TEST(DaemonConfig, IscsiNameMustBeLowercase) {
  EXPECT_EQ(error_of(kPortals + "targets:\n  - iqn: iqn.2026-01.org.FreeVSA:disk0\n"),
            "t.yaml:4: targets[0].iqn: 'iqn.2026-01.org.FreeVSA:disk0' is not a valid iSCSI name: iSCSI names are "
            "lowercase: write 'iqn.2026-01.org.freevsa:disk0'");
}

TEST(DaemonConfig, IscsiNameFormErrorsAreExplained) {
  auto reason = [](const std::string& name) {
    std::string message = error_of(kPortals + "targets:\n  - iqn: \"" + name + "\"\n");
    std::size_t colon = message.find("iSCSI name: ");
    return colon == std::string::npos ? message : message.substr(colon + 12);
  };
  EXPECT_EQ(reason("iqn.26-01.org.x:a"),
            "an 'iqn.' name continues with a date 'yyyy-mm.' (e.g. iqn.2026-01.org.example:disk0)");
  EXPECT_EQ(reason("iqn.2026-13.org.x"), "month 13 in the date does not exist");
  EXPECT_EQ(reason("iqn.2026-01.:disk"), "the reversed domain name after the date is missing");
  EXPECT_EQ(reason("iqn.2026-01.org..x"), "the reversed domain name has an empty label");
  EXPECT_EQ(reason("iqn.2026-01.org.x:"), "nothing follows the ':'");
  EXPECT_EQ(reason("iqn.2026-01.org.x:a_b"), "character '_' is not allowed (use a-z, 0-9, '-', '.', ':')");
  EXPECT_EQ(reason("eui.0123"), "an 'eui.' name has exactly 16 hex digits");
  EXPECT_EQ(reason("naa.0123456789abcdef0"), "an 'naa.' name has 16 or 32 hex digits");
  EXPECT_EQ(reason("disk0"), "must start with 'iqn.', 'eui.' or 'naa.'");
  EXPECT_EQ(reason("iqn.2026-01.org.x:" + std::string(210, 'a')),
            "is 228 bytes long; iSCSI names are at most 223 bytes");
}

TEST(DaemonConfig, DuplicateTargetIqnIsRefused) {
  EXPECT_EQ(error_of(kMinimal + "  - iqn: iqn.2026-01.org.freevsa:disk0\n"  // 9
                                "    luns: [{lun: 0, path: b.img, size: 1M}]\n"),
            "t.yaml:9: targets[1].iqn: target 'iqn.2026-01.org.freevsa:disk0' is defined twice (first at line 4)");
}

TEST(DaemonConfig, AllowedInitiatorsAreValidatedAndUnique) {
  std::string base = kMinimal + "    allowed_initiators:\n";  // 9
  EXPECT_EQ(error_of(base + "      - iqn.1994-05.com.redhat:a\n      - client\n"),
            "t.yaml:11: targets[0].allowed_initiators[1]: 'client' is not a valid iSCSI name: must start with 'iqn.', "
            "'eui.' or 'naa.'");
  EXPECT_EQ(
      error_of(base + "      - iqn.1994-05.com.redhat:a\n      - iqn.1994-05.com.redhat:a\n"),
      "t.yaml:11: targets[0].allowed_initiators[1]: 'iqn.1994-05.com.redhat:a' is listed twice (first at line 10)");
}

// --- CHAP ---

TEST(DaemonConfig, ChapSecretShorterThan12BytesIsRefused) {
  std::string message = error_of(kMinimal + "    chap:\n      user: alice\n      secret: short-pw\n");
  EXPECT_EQ(message,
            "t.yaml:11: targets[0].chap.secret: must be at least 12 bytes long (RFC 7143 section 12.1.3), got 8");
  EXPECT_EQ(message.find("short-pw"), std::string::npos) << "secrets never appear in messages";
}

TEST(DaemonConfig, ChapWithoutUserIsRefused) {
  EXPECT_EQ(error_of(kMinimal + "    chap:\n      secret: 0123456789ab\n"),
            "t.yaml:10: targets[0].chap.user: required");
}

TEST(DaemonConfig, MutualChapNeedsChap) {
  EXPECT_EQ(error_of(kMinimal + "    mutual_chap: {user: t, secret: 0123456789ab}\n"),
            "t.yaml:9: targets[0].mutual_chap: needs 'chap' as well: the target only proves itself to initiators "
            "that authenticated first");
}

TEST(DaemonConfig, MutualChapSecretMustDifferFromChapSecret) {
  EXPECT_EQ(error_of(kMinimal + "    chap: {user: a, secret: 0123456789ab}\n"  // 9
                                "    mutual_chap:\n"                           // 10
                                "      user: t\n"                              // 11
                                "      secret: 0123456789ab\n"),               // 12
            "t.yaml:12: targets[0].mutual_chap.secret: must differ from chap.secret: a shared secret lets anyone "
            "reflect the target's own challenge back at it");
}

TEST(DaemonConfig, DiscoveryChapFollowsTheSameRules) {
  EXPECT_EQ(error_of(kMinimal + "discovery_mutual_chap: {user: t, secret: 0123456789ab}\n"),
            "t.yaml:9: discovery_mutual_chap: needs 'discovery_chap' as well: the target only proves itself to "
            "initiators that authenticated first");
  EXPECT_EQ(error_of(kMinimal + "discovery_chap: {user: d, secret: 12345}\n"),
            "t.yaml:9: discovery_chap.secret: must be at least 12 bytes long (RFC 7143 section 12.1.3), got 5");
}

// --- iscsi: negotiation limits ---

TEST(DaemonConfig, SegmentLengthRangeIsEnforced) {
  EXPECT_EQ(error_of(kMinimal + "iscsi:\n  max_recv_data_segment_length: 511\n"),
            "t.yaml:10: iscsi.max_recv_data_segment_length: must be between 512 and 16777215 bytes, got 511");
  EXPECT_EQ(error_of(kMinimal + "iscsi:\n  max_burst_length: 16M\n"),
            "t.yaml:10: iscsi.max_burst_length: must be between 512 and 16777215 bytes, got 16M");
}

TEST(DaemonConfig, FirstBurstMayNotExceedMaxBurst) {
  EXPECT_EQ(error_of(kMinimal + "iscsi:\n  max_burst_length: 64K\n  first_burst_length: 128K\n"),
            "t.yaml:11: iscsi.first_burst_length: must not exceed max_burst_length (65536), got 131072");
}

TEST(DaemonConfig, FirstBurstFollowsALoweredMaxBurst) {
  Config config = parse_config(kMinimal + "iscsi:\n  max_burst_length: 64K\n", "t.yaml");
  EXPECT_EQ(config.max_burst_length, 65536u);
  EXPECT_EQ(config.first_burst_length, 65536u);
}

TEST(DaemonConfig, MaxOutstandingR2tRangeIsEnforced) {
  EXPECT_EQ(error_of(kMinimal + "iscsi:\n  max_outstanding_r2t: 0\n"),
            "t.yaml:10: iscsi.max_outstanding_r2t: must be between 1 and 65535, got 0");
}

// --- limits: connections, timeouts, Data-Out memory ---

TEST(DaemonConfig, LimitsHaveDocumentedDefaults) {
  const Config config = parse_config(kMinimal, "t.yaml");
  EXPECT_EQ(config.resources.connections_per_portal, 1024u);
  EXPECT_EQ(config.resources.connections_per_initiator_address, 128u);
  EXPECT_EQ(config.resources.login_timeout_seconds, 15u);
  EXPECT_EQ(config.resources.data_out_timeout_seconds, 30u);
  EXPECT_EQ(config.resources.data_out_bytes_per_connection, 256u << 20);
  EXPECT_EQ(config.resources.data_out_bytes_total, 1u << 30);
}

TEST(DaemonConfig, LimitsAreRead) {
  const std::string limits =
      "limits:\n  connections_per_portal: 64\n  connections_per_initiator_address: 8\n"
      "  login_timeout_seconds: 5\n  data_out_timeout_seconds: 10\n"
      "  data_out_buffer_per_connection: 128M\n  data_out_buffer_total: 512M\n";
  const Config config = parse_config(kMinimal + limits, "t.yaml");
  EXPECT_EQ(config.resources.connections_per_portal, 64u);
  EXPECT_EQ(config.resources.connections_per_initiator_address, 8u);
  EXPECT_EQ(config.resources.login_timeout_seconds, 5u);
  EXPECT_EQ(config.resources.data_out_timeout_seconds, 10u);
  EXPECT_EQ(config.resources.data_out_bytes_per_connection, 128u << 20);
  EXPECT_EQ(config.resources.data_out_bytes_total, 512u << 20);
}

TEST(DaemonConfig, DataOutBudgetsHoldTheLargestWrite) {
  EXPECT_EQ(error_of(kMinimal + "limits:\n  data_out_buffer_per_connection: 32M\n"),
            "t.yaml:10: limits.data_out_buffer_per_connection: must be between 67108864 and 1125899906842624 bytes, "
            "got 32M");
  EXPECT_EQ(error_of(kMinimal + "limits:\n  data_out_buffer_per_connection: 512M\n  data_out_buffer_total: 256M\n"),
            "t.yaml:11: limits.data_out_buffer_total: must not be less than data_out_buffer_per_connection "
            "(536870912), got 268435456");
  EXPECT_EQ(parse_config(kMinimal + "limits:\n  data_out_buffer_per_connection: 2G\n", "t.yaml")
                .resources.data_out_bytes_total,
            std::uint64_t{2} << 30);
}

TEST(DaemonConfig, LimitsRefuseZeroAndUnknownKeys) {
  EXPECT_EQ(error_of(kMinimal + "limits:\n  connections_per_portal: 0\n"),
            "t.yaml:10: limits.connections_per_portal: must be between 1 and 1000000, got 0");
  EXPECT_EQ(error_of(kMinimal + "limits:\n  login_timeout: 5\n"),
            "t.yaml:10: limits: unknown key 'login_timeout' (did you mean 'login_timeout_seconds'?)");
}

// --- load_config ---

TEST(DaemonConfig, LoadingAMissingFileNamesFileAndReason) {
  try {
    load_config("/nonexistent/freevsa.yaml");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "/nonexistent/freevsa.yaml: cannot open: No such file or directory");
  }
}

TEST(DaemonConfig, LoadingADirectoryNamesFileAndReason) {
  try {
    load_config("/tmp");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "/tmp: cannot read: Is a directory");
  }
}

TEST(DaemonConfig, LoadedFileErrorsNameThePath) {
  std::string path = "/tmp/freevsa_config_test_XXXXXX";
  int fd = ::mkstemp(path.data());
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << target_with_lun("        block_size: 1000\n");
  try {
    load_config(path);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path + ":8: targets[0].luns[0].block_size: must be 512 or 4096, got 1000");
  }
  std::remove(path.c_str());
}

}  // namespace
}  // namespace freevsa::daemon
