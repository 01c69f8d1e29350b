#include <gtest/gtest.h>

#include "target/login.h"
#include "test/unit/target_login_test_helpers.h"

namespace freevsa::target {
namespace {

using namespace testing;

Pdu text_request(const std::string& text, std::uint32_t itt = 0x10, std::uint32_t ttt = kReservedTag, bool final = true,
                 bool cont = false) {
  Pdu p;
  p.bhs.set_opcode(Opcode::TextRequest, true);
  p.bhs.set_flags(static_cast<std::uint8_t>((final ? 0x80 : 0) | (cont ? 0x40 : 0)));
  p.bhs.set_initiator_task_tag(itt);
  p.bhs.set_u32(field::kTargetTransferTag, ttt);
  p.set_data(text);
  return p;
}

struct TextReply {
  bool final, cont;
  std::uint32_t ttt, itt;
  Opcode opcode;
  std::string data;
  std::vector<KeyValue> pairs;
};

// SendTargets answers repeat TargetName/TargetAddress, so parse_text (which refuses duplicate
// keys in requests) is not used to read them.
std::vector<KeyValue> split_pairs(const std::string& text) {
  std::vector<KeyValue> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\0', pos);
    if (end == std::string::npos) end = text.size();
    std::string pair = text.substr(pos, end - pos);
    std::size_t eq = pair.find('=');
    out.push_back({pair.substr(0, eq), eq == std::string::npos ? "" : pair.substr(eq + 1)});
    pos = end + 1;
  }
  return out;
}

TextReply read(const Pdu& p) {
  TextReply r{(p.bhs.flags() & 0x80) != 0, (p.bhs.flags() & 0x40) != 0, p.bhs.u32(field::kTargetTransferTag),
              p.bhs.initiator_task_tag(), p.bhs.opcode(), p.data_as_string(), {}};
  r.pairs = split_pairs(r.data);
  return r;
}

class TextResponderTest : public ::testing::Test {
 protected:
  TargetServerConfig config = basic_config();
  LoginResult login;
  void SetUp() override {
    login.session_type = SessionType::Discovery;
    login.initiator_name = kInitiatorIqn;
    login.connection.max_send_data_segment_length = 8192;
    config.portals = {Portal{"192.168.1.10", 3260}};
  }
};

TEST_F(TextResponderTest, SendTargetsAllListsVisibleTargets) {
  TextResponder t(config, login, "10.0.0.1");
  auto r = read(t.on_request(text_request(kv({{"SendTargets", "All"}}))));
  EXPECT_TRUE(r.final);
  EXPECT_FALSE(r.cont);
  EXPECT_EQ(r.ttt, kReservedTag);
  EXPECT_EQ(r.itt, 0x10u);
  std::vector<KeyValue> expected{{"TargetName", kTargetIqn}, {"TargetAddress", "192.168.1.10:3260,1"}};
  EXPECT_EQ(r.pairs, expected);  // kOtherIqn is ACL-filtered
}

TEST_F(TextResponderTest, AclAllowsListedInitiator) {
  login.initiator_name = "iqn.2000-01.com.example:only-this-one";
  TextResponder t(config, login, "10.0.0.1");
  auto r = read(t.on_request(text_request(kv({{"SendTargets", "All"}}))));
  ASSERT_EQ(r.pairs.size(), 4u);
  EXPECT_EQ(r.pairs[2], (KeyValue{"TargetName", kOtherIqn}));
}

TEST_F(TextResponderTest, SendTargetsNamedListsOnlyThatTarget) {
  config.targets.push_back(TargetDefinition{"iqn.2024-01.org.freevsa:disk3", "", nullptr, std::nullopt, std::nullopt, {}});
  TextResponder t(config, login, "10.0.0.1");
  auto r = read(t.on_request(text_request(kv({{"SendTargets", "iqn.2024-01.org.freevsa:disk3"}}))));
  ASSERT_EQ(r.pairs.size(), 2u);
  EXPECT_EQ(r.pairs[0].value, "iqn.2024-01.org.freevsa:disk3");
}

TEST_F(TextResponderTest, SendTargetsNamedHiddenTargetIsEmpty) {
  TextResponder t(config, login, "10.0.0.1");
  auto r = read(t.on_request(text_request(kv({{"SendTargets", kOtherIqn}}))));
  EXPECT_TRUE(r.pairs.empty());
  EXPECT_TRUE(r.final);
}

TEST_F(TextResponderTest, SendTargetsEmptyOnNormalSessionListsOwnTarget) {
  login.session_type = SessionType::Normal;
  login.target = &config.targets[0];
  TextResponder t(config, login, "10.0.0.1");
  auto r = read(t.on_request(text_request(kv({{"SendTargets", ""}}))));
  ASSERT_EQ(r.pairs.size(), 2u);
  EXPECT_EQ(r.pairs[0].value, kTargetIqn);
}

TEST_F(TextResponderTest, WildcardPortalAdvertisesLocalAddress) {
  config.portals = {Portal{"0.0.0.0", 3260}, Portal{"::", 3261}};
  TextResponder t(config, login, "10.0.0.1");
  auto r = read(t.on_request(text_request(kv({{"SendTargets", "All"}}))));
  ASSERT_EQ(r.pairs.size(), 3u);
  EXPECT_EQ(r.pairs[1].value, "10.0.0.1:3260,1");
  EXPECT_EQ(r.pairs[2].value, "10.0.0.1:3261,1");
}

TEST_F(TextResponderTest, Ipv6AddressesInBrackets) {
  config.portals = {Portal{"fd00::1", 3260}};
  TextResponder t(config, login, "10.0.0.1");
  auto r = read(t.on_request(text_request(kv({{"SendTargets", "All"}}))));
  EXPECT_EQ(r.pairs[1].value, "[fd00::1]:3260,1");
}

TEST_F(TextResponderTest, OtherKeysNotUnderstood) {
  TextResponder t(config, login, "10.0.0.1");
  auto r = read(t.on_request(text_request(kv({{"X-vendor.key", "1"}}))));
  EXPECT_EQ(r.pairs, (std::vector<KeyValue>{{"X-vendor.key", "NotUnderstood"}}));
}

TEST_F(TextResponderTest, LongAnswerIsSplitAndContinued) {
  for (int i = 0; i < 40; ++i)
    config.targets.push_back(TargetDefinition{"iqn.2024-01.org.freevsa:volume-with-a-long-name-" + std::to_string(i), "",
                                              nullptr, std::nullopt, std::nullopt, {}});
  login.connection.max_send_data_segment_length = 512;
  TextResponder t(config, login, "10.0.0.1");
  auto first = read(t.on_request(text_request(kv({{"SendTargets", "All"}}))));
  EXPECT_FALSE(first.final);
  EXPECT_TRUE(first.cont);
  EXPECT_NE(first.ttt, kReservedTag);
  EXPECT_EQ(first.data.size(), 512u);
  std::string all = first.data;
  TextReply piece = first;
  int rounds = 0;
  while (!piece.final && rounds++ < 100) {
    piece = read(t.on_request(text_request("", 0x10, first.ttt)));
    EXPECT_LE(piece.data.size(), 512u);
    all += piece.data;
  }
  EXPECT_TRUE(piece.final);
  EXPECT_FALSE(piece.cont);
  EXPECT_EQ(piece.ttt, kReservedTag);
  auto pairs = split_pairs(all);
  EXPECT_EQ(pairs.size(), 2u * (config.targets.size() - 1));  // kOtherIqn is hidden
  EXPECT_NE(all.find("volume-with-a-long-name-39"), std::string::npos);
}

TEST_F(TextResponderTest, NewRequestResetsPendingReply) {
  for (int i = 0; i < 40; ++i)
    config.targets.push_back(TargetDefinition{"iqn.2024-01.org.freevsa:v" + std::to_string(i), "", nullptr,
                                              std::nullopt, std::nullopt, {}});
  login.connection.max_send_data_segment_length = 512;
  TextResponder t(config, login, "10.0.0.1");
  auto first = read(t.on_request(text_request(kv({{"SendTargets", "All"}}))));
  ASSERT_FALSE(first.final);
  auto fresh = read(t.on_request(text_request(kv({{"SendTargets", kTargetIqn}}), 0x11)));
  EXPECT_TRUE(fresh.final);
  EXPECT_EQ(fresh.itt, 0x11u);
  // The old TTT is no longer valid.
  auto stale = read(t.on_request(text_request("", 0x10, first.ttt)));
  EXPECT_EQ(stale.opcode, Opcode::Reject);
}

TEST_F(TextResponderTest, ContinuedRequestGetsEmptyResponsesUntilComplete) {
  TextResponder t(config, login, "10.0.0.1");
  std::string text = kv({{"SendTargets", "All"}});
  auto r1 = read(t.on_request(text_request(text.substr(0, 6), 0x10, kReservedTag, false, true)));
  EXPECT_TRUE(r1.data.empty());
  EXPECT_FALSE(r1.final);
  EXPECT_NE(r1.ttt, kReservedTag);
  auto r2 = read(t.on_request(text_request(text.substr(6), 0x10, r1.ttt, true, false)));
  EXPECT_TRUE(r2.final);
  EXPECT_EQ(r2.pairs.size(), 2u);
}

TEST_F(TextResponderTest, UnknownTttIsRejected) {
  TextResponder t(config, login, "10.0.0.1");
  EXPECT_EQ(read(t.on_request(text_request("", 0x10, 1234))).opcode, Opcode::Reject);
}

TEST_F(TextResponderTest, MalformedTextIsRejected) {
  TextResponder t(config, login, "10.0.0.1");
  EXPECT_EQ(read(t.on_request(text_request(std::string("nokey") + '\0'))).opcode, Opcode::Reject);
}

}  // namespace
}  // namespace freevsa::target
