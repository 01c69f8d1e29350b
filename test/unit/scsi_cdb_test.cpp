#include "scsi/cdb.h"

#include <gtest/gtest.h>

#include <array>

#include "scsi/command_table.h"

namespace freevsa::scsi {
namespace {

TEST(ScsiCdb, Read6LengthZeroMeans256Blocks) {
  std::array<std::uint8_t, 16> cdb{0x08, 0x00, 0x00, 0x05, 0x00, 0x00};
  auto r = decode_block_request(6, cdb.data());
  EXPECT_EQ(r.lba, 5u);
  EXPECT_EQ(r.blocks, 256u);
}

TEST(ScsiCdb, Read6LbaIs21BitsAndIgnoresUpperBitsOfByte1) {
  std::array<std::uint8_t, 16> cdb{0x08, 0xFF, 0xFF, 0xFF, 0x01, 0x00};
  auto r = decode_block_request(6, cdb.data());
  EXPECT_EQ(r.lba, 0x1FFFFFu);
  EXPECT_EQ(r.blocks, 1u);
  EXPECT_EQ(r.protect, 0);
}

TEST(ScsiCdb, Read10DecodesLbaLengthAndFlags) {
  std::array<std::uint8_t, 16> cdb{0x28, 0x38, 0x01, 0x02, 0x03, 0x04, 0x05, 0x01, 0x00, 0x00};
  auto r = decode_block_request(10, cdb.data());
  EXPECT_EQ(r.lba, 0x01020304u);
  EXPECT_EQ(r.blocks, 256u);
  EXPECT_EQ(r.group, 5);
  EXPECT_TRUE(r.dpo);
  EXPECT_TRUE(r.fua);
  EXPECT_EQ(r.protect, 1);
  EXPECT_EQ(r.length_offset, 7);
}

TEST(ScsiCdb, Read12DecodesFourByteLength) {
  std::array<std::uint8_t, 16> cdb{0xA8, 0x00, 0, 0, 0, 9, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00};
  auto r = decode_block_request(12, cdb.data());
  EXPECT_EQ(r.lba, 9u);
  EXPECT_EQ(r.blocks, 0x10000u);
  EXPECT_EQ(r.length_offset, 6);
}

TEST(ScsiCdb, Read16DecodesEightByteLba) {
  std::array<std::uint8_t, 16> cdb{0x88, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0x03, 0, 0};
  auto r = decode_block_request(16, cdb.data());
  EXPECT_EQ(r.lba, 0x0100000000000002ull);
  EXPECT_EQ(r.blocks, 3u);
  EXPECT_EQ(r.length_offset, 10);
}

TEST(ScsiCdb, VerifyBytchkIsTwoBits) {
  std::array<std::uint8_t, 16> cdb{0x2F, 0x06};
  EXPECT_EQ(decode_block_request(10, cdb.data()).bytchk, 3);
  cdb[1] = 0x02;
  EXPECT_EQ(decode_block_request(10, cdb.data()).bytchk, 1);
}

TEST(ScsiCommandTable, EveryEntryHasHandlerLengthAndOpcodeInUsage) {
  for (const CommandInfo& c : command_table()) {
    EXPECT_NE(c.handler, nullptr) << c.name;
    EXPECT_TRUE(c.cdb_length == 6 || c.cdb_length == 10 || c.cdb_length == 12 ||
                c.cdb_length == 16)
        << c.name;
    EXPECT_EQ(c.usage[0], c.opcode) << c.name;
    if (c.has_service_action()) {
      EXPECT_EQ(c.usage[1] & 0x1F, c.service_action) << c.name;
    }
  }
}

TEST(ScsiCommandTable, OpcodesAreUnique) {
  auto table = command_table();
  for (std::size_t i = 0; i < table.size(); ++i) {
    for (std::size_t j = i + 1; j < table.size(); ++j) {
      EXPECT_FALSE(table[i].opcode == table[j].opcode &&
                   table[i].service_action == table[j].service_action)
          << table[i].name;
    }
  }
}

TEST(ScsiCommandTable, LookupFindsServiceActionAndReportsUnknownOne) {
  std::array<std::uint8_t, 16> cdb{0x9E, 0x10};
  EXPECT_NE(lookup_command(cdb.data()).info, nullptr);
  cdb[1] = 0x12;  // GET LBA STATUS
  EXPECT_NE(lookup_command(cdb.data()).info, nullptr);
  cdb[1] = 0x13;  // REPORT REFERRALS: not implemented
  auto l = lookup_command(cdb.data());
  EXPECT_EQ(l.info, nullptr);
  EXPECT_TRUE(l.unknown_service_action);
}

}  // namespace
}  // namespace freevsa::scsi
