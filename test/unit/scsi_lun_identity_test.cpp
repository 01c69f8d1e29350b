#include <gtest/gtest.h>

#include "scsi/logical_unit.h"

namespace freevsa::scsi {
namespace {

TEST(ScsiLunIdentity, FromNameIsDeterministic) {
  auto a = LunIdentity::from_name("iqn.2024-01.org.freevsa:t1/lun0");
  auto b = LunIdentity::from_name("iqn.2024-01.org.freevsa:t1/lun0");
  EXPECT_EQ(a.serial, b.serial);
  EXPECT_EQ(a.naa, b.naa);
}

TEST(ScsiLunIdentity, DifferentNamesGiveDifferentSerialAndNaa) {
  auto a = LunIdentity::from_name("iqn.2024-01.org.freevsa:t1/lun0");
  auto b = LunIdentity::from_name("iqn.2024-01.org.freevsa:t1/lun1");
  EXPECT_NE(a.serial, b.serial);
  EXPECT_NE(a.naa, b.naa);
}

TEST(ScsiLunIdentity, SerialIsLowercaseHex) {
  auto id = LunIdentity::from_name("x");
  ASSERT_EQ(id.serial.size(), 32u);
  for (char c : id.serial) EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
}

TEST(ScsiLunIdentity, NaaIsType6WithPlaceholderCompanyId) {
  auto id = LunIdentity::from_name("x");
  EXPECT_EQ(id.naa[0], 0x60);
  EXPECT_EQ(id.naa[1], 0x00);
  EXPECT_EQ(id.naa[2], 0x00);
  EXPECT_EQ(id.naa[3] & 0xF0, 0x00);
}

TEST(ScsiLunIdentity, KeepsDefaultVendorProductRevision) {
  auto id = LunIdentity::from_name("x");
  EXPECT_EQ(id.vendor, "FREEVSA");
  EXPECT_EQ(id.product, "freevsa disk");
  EXPECT_EQ(id.revision, "0001");
}

}  // namespace
}  // namespace freevsa::scsi
