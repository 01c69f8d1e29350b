// The Basic Header Segment codec: field offsets of RFC 7143 section 11.
#include <gtest/gtest.h>

#include "target/pdu.h"

namespace freevsa::target {
namespace {

TEST(Pdu, BhsReadsOpcodeImmediateAndFinalBits) {
  Bhs bhs;
  bhs.bytes[0] = 0x41;  // immediate SCSI Command
  bhs.bytes[1] = 0x80;
  EXPECT_EQ(bhs.opcode(), Opcode::ScsiCommand);
  EXPECT_TRUE(bhs.immediate());
  EXPECT_TRUE(bhs.final_bit());
}

TEST(Pdu, BhsDataSegmentLengthIsTwentyFourBitsAtByteFive) {
  Bhs bhs;
  bhs.set_data_segment_length(0x123456);
  EXPECT_EQ(bhs.bytes[4], 0);  // TotalAHSLength untouched
  EXPECT_EQ(bhs.bytes[5], 0x12);
  EXPECT_EQ(bhs.bytes[6], 0x34);
  EXPECT_EQ(bhs.bytes[7], 0x56);
  EXPECT_EQ(bhs.data_segment_length(), 0x123456u);
}

TEST(Pdu, BhsLunAndTaskTagRoundTrip) {
  Bhs bhs;
  bhs.set_lun_field(0x0001000000000000ull);
  bhs.set_initiator_task_tag(0xdeadbeef);
  EXPECT_EQ(bhs.bytes[9], 0x01);
  EXPECT_EQ(bhs.lun_field(), 0x0001000000000000ull);
  EXPECT_EQ(bhs.bytes[16], 0xde);
  EXPECT_EQ(bhs.initiator_task_tag(), 0xdeadbeefu);
}

TEST(Pdu, PaddingRoundsDataSegmentsToFourBytes) {
  EXPECT_EQ(pad4(0), 0u);
  EXPECT_EQ(pad4(1), 3u);
  EXPECT_EQ(pad4(2), 2u);
  EXPECT_EQ(pad4(3), 1u);
  EXPECT_EQ(pad4(4), 0u);
  EXPECT_EQ(pad4(8193), 3u);
}

TEST(Pdu, LoginRequestFieldsAreDecodedFromTheirOffsets) {
  Bhs bhs;
  bhs.bytes[0] = 0x43;
  bhs.bytes[1] = 0x80 | 0x40 | (1 << 2) | 3;  // T, C, CSG=1, NSG=3
  bhs.bytes[2] = 0x00;
  bhs.bytes[3] = 0x00;
  for (int i = 0; i < 6; ++i) bhs.bytes[8 + i] = static_cast<std::uint8_t>(0x40 + i);
  bhs.set_u16(14, 0x1234);
  bhs.set_initiator_task_tag(7);
  bhs.set_u16(20, 0x0002);
  bhs.set_u32(24, 100);
  bhs.set_u32(28, 55);
  const LoginRequestFields f = decode_login_request(bhs);
  EXPECT_TRUE(f.transit);
  EXPECT_TRUE(f.cont);
  EXPECT_EQ(f.current_stage, LoginStage::Operational);
  EXPECT_EQ(f.next_stage, LoginStage::FullFeature);
  EXPECT_EQ(f.isid[0], 0x40);
  EXPECT_EQ(f.isid[5], 0x45);
  EXPECT_EQ(f.tsih, 0x1234);
  EXPECT_EQ(f.itt, 7u);
  EXPECT_EQ(f.cid, 2);
  EXPECT_EQ(f.cmd_sn, 100u);
  EXPECT_EQ(f.exp_stat_sn, 55u);
}

TEST(Pdu, LoginResponseCarriesStatusAndSequenceNumbers) {
  LoginResponseFields f;
  f.transit = true;
  f.current_stage = LoginStage::Operational;
  f.next_stage = LoginStage::FullFeature;
  f.tsih = 9;
  f.itt = 0x11223344;
  f.stat_sn = 1;
  f.exp_cmd_sn = 2;
  f.max_cmd_sn = 129;
  f.status_class = 0x02;
  f.status_detail = 0x01;
  const Bhs bhs = encode_login_response(f);
  EXPECT_EQ(bhs.opcode(), Opcode::LoginResponse);
  EXPECT_EQ(bhs.flags(), 0x80 | (1 << 2) | 3);
  EXPECT_EQ(bhs.u16(14), 9);
  EXPECT_EQ(bhs.initiator_task_tag(), 0x11223344u);
  EXPECT_EQ(bhs.u32(field::kStatSN), 1u);
  EXPECT_EQ(bhs.u32(field::kExpCmdSN), 2u);
  EXPECT_EQ(bhs.u32(field::kMaxCmdSN), 129u);
  EXPECT_EQ(bhs.bytes[36], 0x02);
  EXPECT_EQ(bhs.bytes[37], 0x01);
}

TEST(Pdu, LoginResponseWithoutTransitHasNoNextStage) {
  LoginResponseFields f;
  f.transit = false;
  f.current_stage = LoginStage::Security;
  f.next_stage = LoginStage::Operational;
  EXPECT_EQ(encode_login_response(f).flags(), 0x00);
}

TEST(Pdu, TextResponseFlagsAndTransferTag) {
  TextResponseFields f;
  f.final = false;
  f.cont = true;
  f.ttt = 5;
  const Bhs bhs = encode_text_response(f);
  EXPECT_EQ(bhs.opcode(), Opcode::TextResponse);
  EXPECT_EQ(bhs.flags(), 0x40);
  EXPECT_EQ(bhs.u32(field::kTargetTransferTag), 5u);
}

TEST(Pdu, SetDataCopiesTextAndSetsTheLength) {
  Pdu pdu;
  pdu.set_data(std::string("A=1\0B=2\0", 8));
  EXPECT_EQ(pdu.data_length, 8u);
  EXPECT_EQ(pdu.bhs.data_segment_length(), 8u);
  EXPECT_EQ(pdu.data_as_string(), std::string("A=1\0B=2\0", 8));
}

}  // namespace
}  // namespace freevsa::target

namespace freevsa::target {
namespace {

TEST(Pdu, LunPeripheralAddressing) { EXPECT_EQ(decode_lun(0x0005000000000000ull), 5u); }

TEST(Pdu, LunFlatAddressing) { EXPECT_EQ(decode_lun(0x4105000000000000ull), 0x105u); }

TEST(Pdu, LunWithABusIdentifierOrASecondLevelIsNoLunOfOurs) {
  EXPECT_EQ(decode_lun(0x0105000000000000ull), kNoSuchLun);
  EXPECT_EQ(decode_lun(0x0001000100000000ull), kNoSuchLun);
  EXPECT_EQ(decode_lun(0xc000000000000000ull), kNoSuchLun);
}

}  // namespace
}  // namespace freevsa::target
