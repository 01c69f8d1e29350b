// Login sequences with CHAP (RFC 7143 12.1.3), following libiscsi's and open-iscsi's order.
#include <gtest/gtest.h>

#include "target/login.h"
#include "test/unit/target_login_test_helpers.h"

namespace freevsa::target {
namespace {

using namespace testing;
using State = LoginNegotiator::State;

class LoginChapTest : public ::testing::Test {
 protected:
  TargetServerConfig config = chap_config(false);
  LoginNegotiator make() {
    return LoginNegotiator(config, [] { return std::uint16_t{7}; });
  }
  static LoginPdu sec(std::vector<KeyValue> keys, bool transit) {
    LoginPdu p;
    p.transit = transit;
    p.csg = 0;
    p.nsg = 1;
    p.text = kv(keys);
    return p;
  }
  static LoginPdu first(const std::string& methods = "CHAP,None", const std::string& type = "Normal") {
    std::vector<KeyValue> keys{{"InitiatorName", kInitiatorIqn}, {"SessionType", type}};
    if (type == "Normal") keys.push_back({"TargetName", kTargetIqn});
    keys.push_back({"AuthMethod", methods});
    return sec(keys, true);
  }
  // Runs AuthMethod and CHAP_A; returns the challenge reply.
  LoginReply challenge(LoginNegotiator& n) {
    auto r1 = send(n, first());
    EXPECT_EQ(r1.at("AuthMethod"), "CHAP");
    EXPECT_FALSE(r1.transit);
    return send(n, sec({{"CHAP_A", "5"}}, false));
  }
  static std::string response_for(const LoginReply& c, const std::string& secret) {
    return test_chap_response(static_cast<std::uint8_t>(std::stoi(c.at("CHAP_I"))), secret, test_hex_decode(c.at("CHAP_C")));
  }
  static LoginPdu operational() {
    LoginPdu p;
    p.transit = true;
    p.csg = 1;
    p.nsg = 3;
    p.text = kv(open_iscsi_operational_keys());
    return p;
  }
  // A first PDU that skips the security stage.
  static LoginPdu operational_first(const std::string& target) {
    LoginPdu p = operational();
    auto keys = open_iscsi_operational_keys();
    keys.insert(keys.begin(), {{"InitiatorName", kInitiatorIqn}, {"TargetName", target}});
    p.text = kv(keys);
    return p;
  }
};

TEST_F(LoginChapTest, OneWayChapSucceeds) {
  auto n = make();
  auto c = challenge(n);
  EXPECT_EQ(c.status, 0);
  EXPECT_EQ(c.at("CHAP_A"), "5");
  EXPECT_EQ(c.at("CHAP_C").substr(0, 2), "0x");
  EXPECT_GE(test_hex_decode(c.at("CHAP_C")).size(), 16u);
  auto r = send(n, sec({{"CHAP_N", "alice"}, {"CHAP_R", response_for(c, "alice-secret-123")}}, true));
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.transit);
  EXPECT_EQ(r.nsg, 1);
  EXPECT_FALSE(r.has("CHAP_N"));
  auto done = send(n, operational());
  EXPECT_EQ(done.state, State::Complete);
}

TEST_F(LoginChapTest, WrongSecretIsAuthenticationFailure) {
  auto n = make();
  auto c = challenge(n);
  auto r = send(n, sec({{"CHAP_N", "alice"}, {"CHAP_R", response_for(c, "not-the-secret")}}, true));
  EXPECT_EQ(r.status, login_status::kAuthenticationFailure);
  EXPECT_EQ(r.state, State::Failed);
}

TEST_F(LoginChapTest, WrongUserIsAuthenticationFailure) {
  auto n = make();
  auto c = challenge(n);
  auto r = send(n, sec({{"CHAP_N", "bob"}, {"CHAP_R", response_for(c, "alice-secret-123")}}, true));
  EXPECT_EQ(r.status, login_status::kAuthenticationFailure);
}

TEST_F(LoginChapTest, InitiatorOfferingOnlyNoneIsAuthenticationFailure) {
  auto n = make();
  EXPECT_EQ(send(n, first("None")).status, login_status::kAuthenticationFailure);
}

TEST_F(LoginChapTest, LeavingSecurityWithoutAuthMethodIsAuthenticationFailure) {
  auto n = make();
  auto r = send(n, sec({{"InitiatorName", kInitiatorIqn}, {"TargetName", kTargetIqn}}, true));
  EXPECT_EQ(r.status, login_status::kAuthenticationFailure);
}

TEST_F(LoginChapTest, SkippingSecurityStageIsAuthenticationFailure) {
  auto n = make();
  EXPECT_EQ(send(n, operational_first(kTargetIqn)).status, login_status::kAuthenticationFailure);
}

TEST_F(LoginChapTest, UnsupportedAlgorithmIsAuthenticationFailure) {
  auto n = make();
  send(n, first());
  EXPECT_EQ(send(n, sec({{"CHAP_A", "6,7"}}, false)).status, login_status::kAuthenticationFailure);
}

TEST_F(LoginChapTest, NoTransitUntilResponseVerified) {
  auto n = make();
  send(n, first());
  auto c = send(n, sec({{"CHAP_A", "5"}}, true));  // initiator asks to transit already
  EXPECT_FALSE(c.transit);
  EXPECT_EQ(c.status, 0);
}

TEST_F(LoginChapTest, MutualChapAnswersInitiatorChallenge) {
  config = chap_config(true);
  auto n = make();
  auto c = challenge(n);
  std::vector<std::uint8_t> mine(32);
  for (std::size_t i = 0; i < mine.size(); ++i) mine[i] = static_cast<std::uint8_t>(i * 7 + 1);
  auto r = send(n, sec({{"CHAP_N", "alice"}, {"CHAP_R", response_for(c, "alice-secret-123")},
                        {"CHAP_I", "1"}, {"CHAP_C", encode_hex(mine)}}, true));
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.transit);
  EXPECT_EQ(r.at("CHAP_N"), "target-user");
  EXPECT_EQ(test_hex_decode(r.at("CHAP_R")), test_hex_decode(test_chap_response(1, "target-secret-456", mine)));
}

TEST_F(LoginChapTest, ReflectedChallengeIsRefused) {
  config = chap_config(true);
  auto n = make();
  auto c = challenge(n);
  auto r = send(n, sec({{"CHAP_N", "alice"}, {"CHAP_R", response_for(c, "alice-secret-123")},
                        {"CHAP_I", c.at("CHAP_I")}, {"CHAP_C", c.at("CHAP_C")}}, true));
  EXPECT_EQ(r.status, login_status::kAuthenticationFailure);
}

TEST_F(LoginChapTest, MutualWithoutMutualSecretIsRefused) {
  auto n = make();
  auto c = challenge(n);
  auto r = send(n, sec({{"CHAP_N", "alice"}, {"CHAP_R", response_for(c, "alice-secret-123")},
                        {"CHAP_I", "1"}, {"CHAP_C", "0x00112233445566778899aabbccddeeff"}}, true));
  EXPECT_EQ(r.status, login_status::kAuthenticationFailure);
}

TEST_F(LoginChapTest, DiscoveryChapUsesDiscoverySecret) {
  config = basic_config();
  config.discovery_chap = ChapSecret{"disc", "discovery-secret"};
  auto n = make();
  auto r1 = send(n, first("CHAP,None", "Discovery"));
  EXPECT_EQ(r1.at("AuthMethod"), "CHAP");
  auto c = send(n, sec({{"CHAP_A", "5"}}, false));
  auto r = send(n, sec({{"CHAP_N", "disc"}, {"CHAP_R", response_for(c, "discovery-secret")}}, true));
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.transit);
}

TEST_F(LoginChapTest, DiscoveryWithoutChapIgnoresTargetSecrets) {
  auto n = make();
  EXPECT_EQ(send(n, first("None", "Discovery")).status, 0);
}

TEST_F(LoginChapTest, ChapKeysWithoutAuthMethodAreInitiatorError) {
  auto n = make();
  auto r = send(n, sec({{"InitiatorName", kInitiatorIqn}, {"TargetName", kTargetIqn}, {"CHAP_A", "5"}}, false));
  EXPECT_EQ(r.status, login_status::kInitiatorError);
}

TEST_F(LoginChapTest, AllStepsInResponsesKeepSecurityStage) {
  auto n = make();
  auto c = challenge(n);
  EXPECT_EQ(c.csg, 0);
  EXPECT_FALSE(c.transit);
}

// A login with the ISID of a live session replaces it only once it completed (the connection
// registers the session on State::Complete, and the TSIH is asked for just before): a login
// that fails CHAP or the initiator list must get neither, whatever ISID it carries.
TEST_F(LoginChapTest, OnlyAnAuthenticatedLoginReachesTheSessionTable) {
  int tsihs = 0;
  auto counting = [&] {
    return LoginNegotiator(config, [&] {
      ++tsihs;
      return std::uint16_t{7};
    });
  };
  {
    auto n = counting();
    auto c = challenge(n);
    auto r = send(n, sec({{"CHAP_N", "alice"}, {"CHAP_R", response_for(c, "not-the-secret")}}, true));
    EXPECT_EQ(r.state, State::Failed);
    EXPECT_NE(send(n, operational()).state, State::Complete);
  }
  {
    auto n = counting();
    EXPECT_EQ(send(n, operational_first(kTargetIqn)).state, State::Failed);
  }
  {
    auto n = counting();
    EXPECT_EQ(send(n, operational_first(kOtherIqn)).status, login_status::kAuthorizationFailure);
  }
  EXPECT_EQ(tsihs, 0);

  auto n = counting();
  auto c = challenge(n);
  send(n, sec({{"CHAP_N", "alice"}, {"CHAP_R", response_for(c, "alice-secret-123")}}, true));
  EXPECT_EQ(send(n, operational()).state, State::Complete);
  EXPECT_EQ(tsihs, 1);
}

}  // namespace
}  // namespace freevsa::target
