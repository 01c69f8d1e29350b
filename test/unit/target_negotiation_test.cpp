#include "target/negotiation.h"

#include <gtest/gtest.h>

namespace freevsa::target {
namespace {

std::string answer_of(OperationalNegotiator& n, const std::string& key, const std::string& value) {
  auto out = n.negotiate({{key, value}});
  for (const auto& kv : out.keys)
    if (kv.key == key) return kv.value;
  return "<none>";
}

std::string answer(const std::string& key, const std::string& value, TargetLimits limits = {}, bool discovery = false) {
  OperationalNegotiator n(limits, discovery);
  return answer_of(n, key, value);
}

TEST(Negotiation, HeaderDigestPicksFirstSupported) {
  EXPECT_EQ(answer("HeaderDigest", "CRC32C,None"), "CRC32C");
  EXPECT_EQ(answer("HeaderDigest", "None,CRC32C"), "None");
  EXPECT_EQ(answer("HeaderDigest", "Foo,CRC32C"), "CRC32C");
}

TEST(Negotiation, HeaderDigestNoneWhenNotAllowed) {
  TargetLimits l;
  l.header_digest_allowed = false;
  EXPECT_EQ(answer("HeaderDigest", "CRC32C,None", l), "None");
  EXPECT_EQ(answer("HeaderDigest", "CRC32C", l), "Reject");
}

TEST(Negotiation, DigestResultsReachConnectionParams) {
  OperationalNegotiator n({}, false);
  n.negotiate({{"HeaderDigest", "CRC32C"}, {"DataDigest", "None"}});
  EXPECT_TRUE(n.connection().header_digest);
  EXPECT_FALSE(n.connection().data_digest);
}

TEST(Negotiation, DataDigestRespectsLimits) {
  TargetLimits l;
  l.data_digest_allowed = false;
  EXPECT_EQ(answer("DataDigest", "CRC32C,None", l), "None");
  EXPECT_EQ(answer("DataDigest", "CRC32C,None"), "CRC32C");
}

TEST(Negotiation, MaxRecvDataSegmentLengthIsDeclarativeBothWays) {
  OperationalNegotiator n({}, false);
  auto out = n.negotiate({{"MaxRecvDataSegmentLength", "65536"}});
  EXPECT_TRUE(out.keys.empty());
  EXPECT_EQ(n.connection().max_send_data_segment_length, 65536u);
  EXPECT_EQ(n.connection().max_recv_data_segment_length, 8192u);  // until declared
  auto own = n.target_keys(false);
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(own[0], (KeyValue{"MaxRecvDataSegmentLength", "262144"}));
  EXPECT_EQ(n.connection().max_recv_data_segment_length, 262144u);
  EXPECT_TRUE(n.target_keys(false).empty());  // declared once
}

TEST(Negotiation, MaxRecvDataSegmentLengthOutOfRangeFails) {
  OperationalNegotiator n({}, false);
  EXPECT_TRUE(n.negotiate({{"MaxRecvDataSegmentLength", "511"}}).failed);
  OperationalNegotiator m({}, false);
  EXPECT_TRUE(m.negotiate({{"MaxRecvDataSegmentLength", "16777216"}}).failed);
}

TEST(Negotiation, MaxBurstLengthIsMinimum) {
  EXPECT_EQ(answer("MaxBurstLength", "16776192"), "1048576");
  EXPECT_EQ(answer("MaxBurstLength", "65536"), "65536");
  EXPECT_EQ(answer("MaxBurstLength", "100"), "Reject");
}

TEST(Negotiation, FirstBurstLengthIsMinimum) {
  EXPECT_EQ(answer("FirstBurstLength", "16776192"), "262144");
  EXPECT_EQ(answer("FirstBurstLength", "4096"), "4096");
}

TEST(Negotiation, FirstBurstNeverExceedsMaxBurst) {
  OperationalNegotiator n({}, false);
  auto out = n.negotiate({{"FirstBurstLength", "262144"}, {"MaxBurstLength", "65536"}});
  EXPECT_EQ(out.keys[0], (KeyValue{"FirstBurstLength", "65536"}));
  EXPECT_EQ(n.session().first_burst_length, 65536u);
  EXPECT_EQ(n.session().max_burst_length, 65536u);
}

TEST(Negotiation, InitialR2TIsOr) {
  EXPECT_EQ(answer("InitialR2T", "No"), "No");
  EXPECT_EQ(answer("InitialR2T", "Yes"), "Yes");
  TargetLimits l;
  l.initial_r2t = true;
  EXPECT_EQ(answer("InitialR2T", "No", l), "Yes");
}

TEST(Negotiation, ImmediateDataIsAnd) {
  EXPECT_EQ(answer("ImmediateData", "Yes"), "Yes");
  EXPECT_EQ(answer("ImmediateData", "No"), "No");
  TargetLimits l;
  l.immediate_data = false;
  EXPECT_EQ(answer("ImmediateData", "Yes", l), "No");
}

TEST(Negotiation, BooleanGarbageIsRejected) { EXPECT_EQ(answer("ImmediateData", "maybe"), "Reject"); }

TEST(Negotiation, MaxOutstandingR2TIsMinimum) {
  EXPECT_EQ(answer("MaxOutstandingR2T", "1"), "1");
  EXPECT_EQ(answer("MaxOutstandingR2T", "64"), "16");
  EXPECT_EQ(answer("MaxOutstandingR2T", "0"), "Reject");
}

TEST(Negotiation, DataOrderKeysAreOrAndAnsweredYes) {
  EXPECT_EQ(answer("DataPDUInOrder", "No"), "Yes");
  EXPECT_EQ(answer("DataSequenceInOrder", "No"), "Yes");
  EXPECT_EQ(answer("DataPDUInOrder", "Yes"), "Yes");
}

TEST(Negotiation, DefaultTime2WaitIsMaximum) {
  EXPECT_EQ(answer("DefaultTime2Wait", "0"), "2");
  EXPECT_EQ(answer("DefaultTime2Wait", "10"), "10");
  EXPECT_EQ(answer("DefaultTime2Wait", "3601"), "Reject");
}

TEST(Negotiation, DefaultTime2RetainIsMinimum) {
  EXPECT_EQ(answer("DefaultTime2Retain", "0"), "0");
  EXPECT_EQ(answer("DefaultTime2Retain", "3600"), "20");
}

TEST(Negotiation, ErrorRecoveryLevelIsZero) {
  EXPECT_EQ(answer("ErrorRecoveryLevel", "2"), "0");
  EXPECT_EQ(answer("ErrorRecoveryLevel", "3"), "Reject");
}

TEST(Negotiation, MaxConnectionsIsOne) {
  EXPECT_EQ(answer("MaxConnections", "8"), "1");
  EXPECT_EQ(answer("MaxConnections", "0"), "Reject");
}

TEST(Negotiation, MarkersAreOff) {
  EXPECT_EQ(answer("OFMarker", "Yes"), "No");
  EXPECT_EQ(answer("IFMarker", "No"), "No");
  EXPECT_EQ(answer("OFMarkInt", "2048~65535"), "Irrelevant");
  EXPECT_EQ(answer("IFMarkInt", "2048"), "Irrelevant");
}

TEST(Negotiation, TaskReportingPicksRfc3720) {
  EXPECT_EQ(answer("TaskReporting", "FastAbort,RFC3720"), "RFC3720");
  EXPECT_EQ(answer("TaskReporting", "FastAbort"), "Reject");
}

TEST(Negotiation, ProtocolLevelIsMinimumOfOne) { EXPECT_EQ(answer("iSCSIProtocolLevel", "2"), "1"); }

TEST(Negotiation, NumbersAcceptHex) { EXPECT_EQ(answer("MaxBurstLength", "0x10000"), "65536"); }

TEST(Negotiation, DiscoveryAnswersIrrelevant) {
  for (const char* k : {"MaxConnections", "InitialR2T", "ImmediateData", "MaxBurstLength", "FirstBurstLength",
                        "MaxOutstandingR2T", "DataPDUInOrder", "DataSequenceInOrder"})
    EXPECT_EQ(answer(k, "1", {}, true), "Irrelevant") << k;
  EXPECT_EQ(answer("HeaderDigest", "None", {}, true), "None");
}

TEST(Negotiation, UnsentKeysKeepRfcDefaults) {
  OperationalNegotiator n({}, false);
  n.negotiate({});
  EXPECT_EQ(n.session().max_burst_length, 262144u);
  EXPECT_EQ(n.session().first_burst_length, 65536u);
  EXPECT_TRUE(n.session().initial_r2t);
  EXPECT_TRUE(n.session().immediate_data);
}

TEST(Negotiation, OffersLimitsBelowDefaultsOnTransit) {
  TargetLimits l;
  l.max_burst_length = 131072;
  l.first_burst_length = 32768;
  l.immediate_data = false;
  OperationalNegotiator n(l, false);
  n.negotiate({{"MaxRecvDataSegmentLength", "8192"}});
  auto own = n.target_keys(true);
  std::vector<KeyValue> expected{{"MaxRecvDataSegmentLength", "262144"},
                                 {"MaxBurstLength", "131072"},
                                 {"FirstBurstLength", "32768"},
                                 {"ImmediateData", "No"}};
  EXPECT_EQ(own, expected);
  EXPECT_TRUE(n.has_open_offers());
  auto answers = n.negotiate({{"MaxBurstLength", "65536"}, {"FirstBurstLength", "32768"}, {"ImmediateData", "No"}});
  EXPECT_TRUE(answers.keys.empty());  // answers to our offers need no reply
  EXPECT_FALSE(n.has_open_offers());
  EXPECT_EQ(n.session().max_burst_length, 65536u);
  EXPECT_FALSE(n.session().immediate_data);
}

TEST(Negotiation, NoOffersForKeysTheInitiatorSent) {
  TargetLimits l;
  l.max_burst_length = 131072;
  OperationalNegotiator n(l, false);
  n.negotiate({{"MaxBurstLength", "262144"}});
  auto own = n.target_keys(true);
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(own[0].key, "MaxRecvDataSegmentLength");
  EXPECT_EQ(n.session().max_burst_length, 131072u);
}

TEST(Negotiation, NonOperationalKeysAreSkipped) {
  OperationalNegotiator n({}, false);
  EXPECT_TRUE(n.negotiate({{"InitiatorName", "x"}, {"X-foo", "1"}}).keys.empty());
}

}  // namespace
}  // namespace freevsa::target
