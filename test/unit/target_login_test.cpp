// Whole login sequences built from Login Request PDUs, without authentication.
#include <gtest/gtest.h>

#include "target/login.h"
#include "test/unit/target_login_test_helpers.h"

namespace freevsa::target {
namespace {

using namespace testing;
using State = LoginNegotiator::State;

class LoginTest : public ::testing::Test {
 protected:
  TargetServerConfig config = basic_config();
  int tsih_calls = 0;
  LoginNegotiator make() {
    return LoginNegotiator(config, [this] {
      ++tsih_calls;
      return std::uint16_t{0x42};
    });
  }
  static LoginPdu security_first(std::vector<KeyValue> extra = {}) {
    LoginPdu p;
    p.transit = true;
    p.csg = 0;
    p.nsg = 1;
    std::vector<KeyValue> keys{{"InitiatorName", kInitiatorIqn}, {"SessionType", "Normal"},
                               {"TargetName", kTargetIqn}, {"AuthMethod", "None"}};
    keys.insert(keys.end(), extra.begin(), extra.end());
    p.text = kv(keys);
    return p;
  }
  static LoginPdu operational(std::vector<KeyValue> keys, bool transit = true) {
    LoginPdu p;
    p.transit = transit;
    p.csg = 1;
    p.nsg = 3;
    p.text = kv(keys);
    return p;
  }
};

TEST_F(LoginTest, NoAuthNormalLoginCompletes) {
  auto n = make();
  auto r1 = send(n, security_first());
  EXPECT_EQ(r1.status, 0);
  EXPECT_TRUE(r1.transit);
  EXPECT_EQ(r1.csg, 0);
  EXPECT_EQ(r1.nsg, 1);
  EXPECT_EQ(r1.at("AuthMethod"), "None");
  EXPECT_EQ(r1.at("TargetPortalGroupTag"), "1");
  EXPECT_EQ(r1.state, State::InProgress);

  auto r2 = send(n, operational(open_iscsi_operational_keys()));
  EXPECT_EQ(r2.status, 0);
  EXPECT_TRUE(r2.transit);
  EXPECT_EQ(r2.csg, 1);
  EXPECT_EQ(r2.nsg, 3);
  EXPECT_EQ(r2.tsih, 0x42);
  EXPECT_EQ(r2.state, State::Complete);
  EXPECT_EQ(tsih_calls, 1);
  EXPECT_EQ(r2.at("MaxRecvDataSegmentLength"), "262144");
  EXPECT_FALSE(r2.has("TargetPortalGroupTag"));  // only in the first response

  const auto& res = n.result();
  EXPECT_EQ(res.session_type, SessionType::Normal);
  EXPECT_EQ(res.initiator_name, kInitiatorIqn);
  ASSERT_NE(res.target, nullptr);
  EXPECT_EQ(res.target->iqn, kTargetIqn);
  EXPECT_EQ(res.tsih, 0x42);
  EXPECT_EQ(res.cid, 1);
  EXPECT_EQ(res.exp_cmd_sn, 100u);
  EXPECT_EQ(res.session.max_burst_length, 1048576u);
  EXPECT_EQ(res.session.first_burst_length, 262144u);
  EXPECT_FALSE(res.session.initial_r2t);
  EXPECT_EQ(res.connection.max_send_data_segment_length, 262144u);
  EXPECT_EQ(res.connection.max_recv_data_segment_length, 262144u);
}

TEST_F(LoginTest, IdentityFieldsAreEchoed) {
  auto n = make();
  auto p = security_first();
  p.itt = 0xabcdef01;
  auto r = send(n, p);
  EXPECT_EQ(r.itt, 0xabcdef01u);
  EXPECT_EQ(r.isid, p.isid);
  EXPECT_EQ(r.tsih, 0);
}

TEST_F(LoginTest, StatSnStartsAtExpStatSnAndIncrements) {
  auto n = make();
  auto r1 = send(n, security_first());
  auto r2 = send(n, operational(open_iscsi_operational_keys()));
  EXPECT_EQ(r1.stat_sn, 7u);
  EXPECT_EQ(r2.stat_sn, 8u);
  EXPECT_EQ(n.result().next_stat_sn, 9u);
}

TEST_F(LoginTest, CommandWindowInResponses) {
  auto n = make();
  auto r = send(n, security_first());
  EXPECT_EQ(r.exp_cmd_sn, 100u);
  EXPECT_EQ(r.max_cmd_sn, 100u + 128 - 1);
}

TEST_F(LoginTest, StartingInOperationalStageWorksWithoutAuth) {
  auto n = make();
  auto keys = open_iscsi_operational_keys();
  keys.insert(keys.begin(), {{"InitiatorName", kInitiatorIqn}, {"TargetName", kTargetIqn}});
  auto r = send(n, operational(keys));
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.state, State::Complete);
  EXPECT_EQ(r.at("TargetPortalGroupTag"), "1");
}

TEST_F(LoginTest, SecurityStraightToFullFeatureKeepsDefaults) {
  auto n = make();
  auto p = security_first();
  p.nsg = 3;
  auto r = send(n, p);
  EXPECT_EQ(r.state, State::Complete);
  EXPECT_EQ(r.nsg, 3);
  EXPECT_EQ(n.result().connection.max_recv_data_segment_length, 8192u);
  EXPECT_EQ(n.result().connection.max_send_data_segment_length, 8192u);
}

TEST_F(LoginTest, DiscoveryLoginNeedsNoTargetName) {
  auto n = make();
  LoginPdu p;
  p.transit = true;
  p.csg = 0;
  p.nsg = 1;
  p.text = kv({{"InitiatorName", kInitiatorIqn}, {"SessionType", "Discovery"}, {"AuthMethod", "None"}});
  auto r1 = send(n, p);
  EXPECT_EQ(r1.status, 0);
  EXPECT_FALSE(r1.has("TargetPortalGroupTag"));
  auto r2 = send(n, operational({{"HeaderDigest", "None"}, {"DataDigest", "None"}, {"InitialR2T", "Yes"},
                                 {"MaxRecvDataSegmentLength", "32768"}}));
  EXPECT_EQ(r2.state, State::Complete);
  EXPECT_EQ(r2.at("InitialR2T"), "Irrelevant");
  EXPECT_EQ(n.result().session_type, SessionType::Discovery);
  EXPECT_EQ(n.result().target, nullptr);
  EXPECT_EQ(n.result().connection.max_send_data_segment_length, 32768u);
}

TEST_F(LoginTest, UnknownTargetIsNotFound) {
  auto n = make();
  LoginPdu p = security_first();
  p.text = kv({{"InitiatorName", kInitiatorIqn}, {"TargetName", "iqn.2024-01.org.freevsa:nope"}});
  auto r = send(n, p);
  EXPECT_EQ(r.status, login_status::kNotFound);
  EXPECT_EQ(r.state, State::Failed);
  EXPECT_FALSE(r.transit);
}

TEST_F(LoginTest, TargetNameMatchesCaseInsensitively) {
  auto n = make();
  LoginPdu p = security_first();
  p.text = kv({{"InitiatorName", kInitiatorIqn}, {"TargetName", "IQN.2024-01.ORG.FREEVSA:DISK1"}});
  EXPECT_EQ(send(n, p).status, 0);
}

TEST_F(LoginTest, InitiatorNotInAllowedListIsAuthorizationFailure) {
  auto n = make();
  LoginPdu p = security_first();
  p.text = kv({{"InitiatorName", kInitiatorIqn}, {"TargetName", kOtherIqn}, {"AuthMethod", "None"}});
  auto r = send(n, p);
  EXPECT_EQ(r.status, login_status::kAuthorizationFailure);
  EXPECT_EQ(r.state, State::Failed);
}

TEST_F(LoginTest, AllowedInitiatorLogsIn) {
  auto n = make();
  LoginPdu p = security_first();
  p.text = kv({{"InitiatorName", "iqn.2000-01.com.example:only-this-one"}, {"TargetName", kOtherIqn}, {"AuthMethod", "None"}});
  EXPECT_EQ(send(n, p).status, 0);
}

TEST_F(LoginTest, MissingInitiatorNameIsMissingParameter) {
  auto n = make();
  LoginPdu p = security_first();
  p.text = kv({{"TargetName", kTargetIqn}, {"AuthMethod", "None"}});
  EXPECT_EQ(send(n, p).status, login_status::kMissingParameter);
}

TEST_F(LoginTest, NormalSessionWithoutTargetNameIsMissingParameter) {
  auto n = make();
  LoginPdu p = security_first();
  p.text = kv({{"InitiatorName", kInitiatorIqn}, {"AuthMethod", "None"}});
  EXPECT_EQ(send(n, p).status, login_status::kMissingParameter);
}

TEST_F(LoginTest, UnknownSessionTypeIsNotSupported) {
  auto n = make();
  LoginPdu p = security_first();
  p.text = kv({{"InitiatorName", kInitiatorIqn}, {"SessionType", "Weird"}});
  EXPECT_EQ(send(n, p).status, login_status::kSessionTypeNotSupported);
}

TEST_F(LoginTest, VersionMinAboveZeroIsUnsupportedVersion) {
  auto n = make();
  LoginPdu p = security_first();
  p.version_min = 1;
  p.version_max = 2;
  EXPECT_EQ(send(n, p).status, login_status::kUnsupportedVersion);
}

TEST_F(LoginTest, NonZeroTsihIsSessionDoesNotExist) {
  auto n = make();
  LoginPdu p = security_first();
  p.tsih = 5;
  EXPECT_EQ(send(n, p).status, login_status::kSessionDoesNotExist);
}

TEST_F(LoginTest, ChangedIttIsInitiatorError) {
  auto n = make();
  send(n, security_first());
  auto p = operational(open_iscsi_operational_keys());
  p.itt = 0x9999;
  EXPECT_EQ(send(n, p).status, login_status::kInitiatorError);
}

TEST_F(LoginTest, ChangedIsidIsInitiatorError) {
  auto n = make();
  send(n, security_first());
  auto p = operational(open_iscsi_operational_keys());
  p.isid[5] ^= 1;
  EXPECT_EQ(send(n, p).status, login_status::kInitiatorError);
}

TEST_F(LoginTest, ChangedCidIsInitiatorError) {
  auto n = make();
  send(n, security_first());
  auto p = operational(open_iscsi_operational_keys());
  p.cid = 2;
  EXPECT_EQ(send(n, p).status, login_status::kInitiatorError);
}

TEST_F(LoginTest, TransitAndContinueTogetherIsInitiatorError) {
  auto n = make();
  auto p = security_first();
  p.cont = true;
  EXPECT_EQ(send(n, p).status, login_status::kInitiatorError);
}

TEST_F(LoginTest, InvalidNextStageIsInitiatorError) {
  auto n = make();
  auto p = security_first();
  p.nsg = 2;
  EXPECT_EQ(send(n, p).status, login_status::kInitiatorError);
}

TEST_F(LoginTest, BackwardTransitIsInitiatorError) {
  auto n = make();
  auto keys = open_iscsi_operational_keys();
  keys.insert(keys.begin(), {{"InitiatorName", kInitiatorIqn}, {"TargetName", kTargetIqn}});
  auto p = operational(keys);
  p.nsg = 0;
  EXPECT_EQ(send(n, p).status, login_status::kInitiatorError);
}

TEST_F(LoginTest, WrongCurrentStageIsInitiatorError) {
  auto n = make();
  send(n, security_first());  // we moved to operational
  LoginPdu p;
  p.csg = 0;
  p.text = kv({{"AuthMethod", "None"}});
  EXPECT_EQ(send(n, p).status, login_status::kInitiatorError);
}

TEST_F(LoginTest, NoTransitWithoutInitiatorTransit) {
  auto n = make();
  auto p = security_first();
  p.transit = false;
  auto r = send(n, p);
  EXPECT_EQ(r.status, 0);
  EXPECT_FALSE(r.transit);
  EXPECT_EQ(r.state, State::InProgress);
}

TEST_F(LoginTest, MalformedTextIsInitiatorError) {
  auto n = make();
  auto p = security_first();
  p.text += std::string("garbage-without-equals") + '\0';
  EXPECT_EQ(send(n, p).status, login_status::kInitiatorError);
}

TEST_F(LoginTest, DuplicateKeyIsInitiatorError) {
  auto n = make();
  auto p = security_first({{"AuthMethod", "None"}});
  EXPECT_EQ(send(n, p).status, login_status::kInitiatorError);
}

TEST_F(LoginTest, UnknownAndPrivateKeysAreNotUnderstood) {
  auto n = make();
  send(n, security_first());
  auto keys = open_iscsi_operational_keys();
  keys.push_back({"X-com.example.Thing", "1"});
  keys.push_back({"FancyKey", "Yes"});
  auto r = send(n, operational(keys));
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.at("X-com.example.Thing"), "NotUnderstood");
  EXPECT_EQ(r.at("FancyKey"), "NotUnderstood");
}

TEST_F(LoginTest, OperationalKeyInSecurityStageIsInitiatorError) {
  auto n = make();
  EXPECT_EQ(send(n, security_first({{"MaxBurstLength", "65536"}})).status, login_status::kInitiatorError);
}

TEST_F(LoginTest, ChapKeyInOperationalStageIsInitiatorError) {
  auto n = make();
  send(n, security_first());
  EXPECT_EQ(send(n, operational({{"CHAP_A", "5"}})).status, login_status::kInitiatorError);
}

TEST_F(LoginTest, RepeatedDeclarationWithSameValueIsTolerated) {
  // libiscsi re-sends InitiatorName/TargetName/SessionType in its operational stage.
  auto n = make();
  send(n, security_first());
  auto keys = open_iscsi_operational_keys();
  keys.insert(keys.begin(), {{"InitiatorName", kInitiatorIqn}, {"TargetName", kTargetIqn}, {"SessionType", "Normal"}});
  EXPECT_EQ(send(n, operational(keys)).state, State::Complete);
}

TEST_F(LoginTest, ChangedInitiatorNameIsInitiatorError) {
  auto n = make();
  send(n, security_first());
  EXPECT_EQ(send(n, operational({{"InitiatorName", "iqn.2000-01.com.example:other"}})).status, login_status::kInitiatorError);
}

TEST_F(LoginTest, ContinuedTextIsAnsweredWithEmptyResponsesUntilComplete) {
  auto n = make();
  std::string text = security_first().text;
  LoginPdu p1 = security_first();
  p1.transit = false;
  p1.cont = true;
  p1.text = text.substr(0, 20);  // splits InitiatorName=... in the middle
  auto r1 = send(n, p1);
  EXPECT_EQ(r1.status, 0);
  EXPECT_FALSE(r1.transit);
  EXPECT_TRUE(r1.pairs.empty());
  EXPECT_EQ(r1.state, State::InProgress);

  LoginPdu p2 = security_first();
  p2.text = text.substr(20);
  auto r2 = send(n, p2);
  EXPECT_EQ(r2.status, 0);
  EXPECT_TRUE(r2.transit);
  EXPECT_EQ(r2.at("AuthMethod"), "None");
  EXPECT_EQ(r2.stat_sn, r1.stat_sn + 1);
}

TEST_F(LoginTest, TargetAliasDeclaredWhenConfigured) {
  config.targets[0].alias = "disk one";
  auto n = make();
  EXPECT_EQ(send(n, security_first()).at("TargetAlias"), "disk one");
}

TEST_F(LoginTest, InitiatorAliasIsRecorded) {
  auto n = make();
  send(n, security_first({{"InitiatorAlias", "client-host"}}));
  send(n, operational(open_iscsi_operational_keys()));
  EXPECT_EQ(n.result().initiator_alias, "client-host");
}

TEST_F(LoginTest, DigestsNegotiatedLikeQemu) {
  auto n = make();
  send(n, security_first());
  auto keys = open_iscsi_operational_keys();
  keys[0] = {"HeaderDigest", "CRC32C,None"};
  auto r = send(n, operational(keys));
  EXPECT_EQ(r.at("HeaderDigest"), "CRC32C");
  EXPECT_TRUE(n.result().connection.header_digest);
  EXPECT_FALSE(n.result().connection.data_digest);
}

TEST_F(LoginTest, OffersOwnLimitsBeforeTransit) {
  config.limits.max_burst_length = 131072;
  auto n = make();
  send(n, security_first());
  auto r1 = send(n, operational({{"MaxRecvDataSegmentLength", "65536"}}));
  EXPECT_FALSE(r1.transit);
  EXPECT_EQ(r1.at("MaxBurstLength"), "131072");
  auto r2 = send(n, operational({{"MaxBurstLength", "131072"}}));
  EXPECT_TRUE(r2.transit);
  EXPECT_EQ(r2.state, State::Complete);
  EXPECT_FALSE(r2.has("MaxBurstLength"));
  EXPECT_EQ(n.result().session.max_burst_length, 131072u);
}

TEST_F(LoginTest, ResultExpCmdSnIsFinalRequestCmdSn) {
  auto n = make();
  send(n, security_first());
  auto p = operational(open_iscsi_operational_keys());
  p.cmd_sn = 100;
  send(n, p);
  EXPECT_EQ(n.result().exp_cmd_sn, 100u);
}

TEST_F(LoginTest, RequestAfterFailureIsRefused) {
  auto n = make();
  auto p = security_first();
  p.version_min = 3;
  send(n, p);
  EXPECT_EQ(send(n, security_first()).state, State::Failed);
}

TEST_F(LoginTest, SendTargetsDuringLoginIsRejected) {
  auto n = make();
  send(n, security_first());
  auto keys = open_iscsi_operational_keys();
  keys.push_back({"SendTargets", "All"});
  EXPECT_EQ(send(n, operational(keys)).at("SendTargets"), "Reject");
}

TEST_F(LoginTest, InitiatorOfferingOnlyChapWithoutConfigIsAuthFailure) {
  auto n = make();
  auto p = security_first();
  p.text = kv({{"InitiatorName", kInitiatorIqn}, {"TargetName", kTargetIqn}, {"AuthMethod", "CHAP"}});
  EXPECT_EQ(send(n, p).status, login_status::kAuthenticationFailure);
}

TEST_F(LoginTest, InitiatorOfferingChapAndNoneWithoutConfigGetsNone) {
  auto n = make();
  auto p = security_first();
  p.text = kv({{"InitiatorName", kInitiatorIqn}, {"TargetName", kTargetIqn}, {"AuthMethod", "CHAP,None"}});
  auto r = send(n, p);
  EXPECT_EQ(r.at("AuthMethod"), "None");
  EXPECT_TRUE(r.transit);
}

}  // namespace
}  // namespace freevsa::target
