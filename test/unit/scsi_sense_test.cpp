#include "scsi/sense.h"

#include <gtest/gtest.h>

namespace freevsa::scsi {
namespace {

TEST(ScsiSense, FixedFormatIsResponseCode70WithAdditionalLength10) {
  auto s = build_fixed_sense(Sense::lba_out_of_range());
  ASSERT_EQ(s.size(), 18u);
  EXPECT_EQ(s[0], 0x70);
  EXPECT_EQ(s[2], 0x05);
  EXPECT_EQ(s[7], 10);
  EXPECT_EQ(s[12], 0x21);
  EXPECT_EQ(s[13], 0x00);
  EXPECT_EQ(s[15], 0x00);  // no SKSV
}

TEST(ScsiSense, CdbFieldPointerSetsSksvCdAndBitPointer) {
  auto s = build_fixed_sense(Sense::invalid_field_in_cdb(4, 1));
  EXPECT_EQ(s[12], 0x24);
  EXPECT_EQ(s[15], 0x80 | 0x40 | 0x08 | 0x01);
  EXPECT_EQ(s[16], 0x00);
  EXPECT_EQ(s[17], 0x04);
}

TEST(ScsiSense, FieldPointerWithoutBitLeavesBpvClear) {
  auto s = build_fixed_sense(Sense::invalid_field_in_cdb(0x102));
  EXPECT_EQ(s[15], 0xC0);
  EXPECT_EQ(s[16], 0x01);
  EXPECT_EQ(s[17], 0x02);
}

TEST(ScsiSense, ParameterListFieldPointerClearsCdBit) {
  auto s = build_fixed_sense(Sense::invalid_field_in_parameter_list(14, 2));
  EXPECT_EQ(s[12], 0x26);
  EXPECT_EQ(s[15], 0x80 | 0x08 | 0x02);
  EXPECT_EQ(s[17], 14);
}

TEST(ScsiSense, InformationSetsValidBit) {
  auto s = build_fixed_sense(Sense::miscompare(0x01020304));
  EXPECT_EQ(s[0], 0xF0);
  EXPECT_EQ(s[2], 0x0E);
  EXPECT_EQ(s[3], 0x01);
  EXPECT_EQ(s[6], 0x04);
  EXPECT_EQ(s[12], 0x1D);
}

TEST(ScsiSense, ResultIsGoodByDefaultAndCarriesSense) {
  Result ok;
  EXPECT_TRUE(ok.ok());
  Result bad = Sense::write_error();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.sense().key, sense_key::kMediumError);
  EXPECT_EQ(bad.sense().asc, 0x0C);
}

}  // namespace
}  // namespace freevsa::scsi
