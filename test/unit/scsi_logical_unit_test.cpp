// Behaviour of the SCSI command set against a MemoryVolume, one test per behaviour, through
// LunMap::execute as the transport calls it.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <atomic>
#include <thread>
#include <tuple>
#include <vector>

#include "replication/memory_volume.h"
#include "scsi/command_table.h"
#include "scsi/lun_map.h"
#include "test/unit/scsi_slow_volume.h"
#include "test/unit/scsi_task_support.h"
#include "util/endian.h"

namespace freevsa::scsi {
namespace {

using replication::MemoryVolume;

// A volume too big to hold in memory: only its size matters (READ CAPACITY, MODE SENSE).
class HugeVolume final : public replication::Volume {
 public:
  explicit HugeVolume(std::uint64_t size) : size_(size) {}
  std::uint64_t size_bytes() const override { return size_; }
  std::uint32_t block_size() const override { return 512; }
  const std::string& name() const override { return name_; }
  int read(std::uint64_t, std::span<std::uint8_t> dst) override {
    std::memset(dst.data(), 0, dst.size());
    return 0;
  }
  int write(std::uint64_t, std::span<const std::uint8_t>, bool) override { return 0; }
  int flush() override { return 0; }
  int discard(std::uint64_t, std::uint64_t) override { return 0; }

 private:
  std::uint64_t size_;
  std::string name_ = "huge";
};

class ScsiTest : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kBlocks = 64;

  void SetUp() override { make(512); }

  void make(std::uint32_t block_size, std::uint64_t blocks = kBlocks) {
    map_ = LunMap{};
    volume_ = std::make_unique<MemoryVolume>(blocks * block_size, block_size);
    map_.add(0, std::make_shared<LogicalUnit>(*volume_, LunIdentity::from_name("iqn.test:t/lun0")));
  }

  Task run(std::initializer_list<std::uint8_t> cdb, const std::vector<std::uint8_t>& out = {},
           const std::string& port = "iqn.init,i,0x1", std::uint64_t lun = 0) {
    Task t = make_task(std::vector<std::uint8_t>(cdb), out, lun, port);
    map_.execute(t);
    return t;
  }

  static std::vector<std::uint8_t> data(const Task& t) { return data_in(t); }

  // 05/24/00 with the field pointer at (byte, bit); bit < 0: no bit pointer.
  static void expect_invalid_cdb_field(const Task& t, std::uint16_t byte, int bit = -1) {
    expect_sense(t, 0x05, 0x24, 0x00);
    std::uint8_t sks = 0xC0;
    if (bit >= 0) sks |= 0x08 | static_cast<std::uint8_t>(bit);
    EXPECT_EQ(t.sense[15], sks);
    EXPECT_EQ(util::get_be16(&t.sense[16]), byte);
  }

  std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed + i * 7 + (i >> 9));
    return v;
  }

  static std::vector<std::uint8_t> cdb10(std::uint8_t op, std::uint32_t lba, std::uint16_t len,
                                         std::uint8_t flags = 0) {
    std::vector<std::uint8_t> c(10, 0);
    c[0] = op;
    c[1] = flags;
    util::put_be32(&c[2], lba);
    util::put_be16(&c[7], len);
    return c;
  }
  Task run_vec(const std::vector<std::uint8_t>& cdb, const std::vector<std::uint8_t>& out = {},
               const std::string& port = "iqn.init,i,0x1") {
    Task t = make_task(cdb, out, 0, port);
    map_.execute(t);
    return t;
  }
  // READ/WRITE/VERIFY CDB of any size.
  static std::vector<std::uint8_t> rw(std::uint8_t op, std::uint64_t lba, std::uint32_t len,
                                      std::uint8_t flags = 0) {
    std::vector<std::uint8_t> c;
    switch (op) {
      case 0x08: case 0x0A:
        c = {op, static_cast<std::uint8_t>((lba >> 16) & 0x1F), static_cast<std::uint8_t>(lba >> 8),
             static_cast<std::uint8_t>(lba), static_cast<std::uint8_t>(len), 0};
        return c;
      case 0xA8: case 0xAA: case 0xAE: case 0xAF:
        c.assign(12, 0);
        util::put_be32(&c[2], static_cast<std::uint32_t>(lba));
        util::put_be32(&c[6], len);
        break;
      case 0x88: case 0x8A: case 0x8E: case 0x8F: case 0x90: case 0x91:
        c.assign(16, 0);
        util::put_be64(&c[2], lba);
        util::put_be32(&c[10], len);
        break;
      default:
        c = cdb10(op, static_cast<std::uint32_t>(lba), static_cast<std::uint16_t>(len));
    }
    c[0] = op;
    c[1] = flags;
    return c;
  }

  std::unique_ptr<MemoryVolume> volume_;
  LunMap map_;
};

// ---------------------------------------------------------------- generic dispatch

TEST_F(ScsiTest, TestUnitReadyIsGood) {
  auto t = run({0x00, 0, 0, 0, 0, 0});
  EXPECT_EQ(t.status, Status::Good);
  EXPECT_TRUE(t.sense.empty());
}

TEST_F(ScsiTest, UnknownOpcodeIsInvalidCommandOperationCode) {
  expect_sense(run({0xC0, 0, 0, 0, 0, 0}), 0x05, 0x20, 0x00);
}

TEST_F(ScsiTest, UnknownServiceActionIsInvalidFieldInCdbByte1) {
  expect_invalid_cdb_field(run({0x9E, 0x13, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}), 1, 4);
}

TEST_F(ScsiTest, NacaBitInControlByteIsRefused) {
  expect_invalid_cdb_field(run({0x00, 0, 0, 0, 0, 0x04}), 5, 2);
}

// ---------------------------------------------------------------- INQUIRY

TEST_F(ScsiTest, InquiryStandardDataDescribesSpc4DirectAccessDevice) {
  auto t = run({0x12, 0, 0, 0x01, 0x04, 0});
  ASSERT_EQ(t.status, Status::Good);
  auto d = data(t);
  ASSERT_EQ(d.size(), 96u);
  EXPECT_EQ(d[0], 0x00);              // PQ 0, direct access
  EXPECT_EQ(d[1] & 0x80, 0);          // not removable
  EXPECT_EQ(d[2], 0x06);              // SPC-4
  EXPECT_EQ(d[3], 0x12);              // HiSup, format 2
  EXPECT_EQ(d[4], d.size() - 5);      // additional length
  EXPECT_EQ(d[7] & 0x02, 0x02);       // CmdQue
  EXPECT_EQ(std::string(d.begin() + 8, d.begin() + 16), "FREEVSA ");
  EXPECT_EQ(std::string(d.begin() + 16, d.begin() + 32), "freevsa disk    ");
  EXPECT_EQ(std::string(d.begin() + 32, d.begin() + 36), "0001");
  std::vector<std::uint16_t> descriptors;
  for (int i = 0; i < 8; ++i) descriptors.push_back(util::get_be16(&d[58 + 2 * i]));
  EXPECT_NE(std::find(descriptors.begin(), descriptors.end(), 0x0460), descriptors.end());  // SPC-4
  EXPECT_NE(std::find(descriptors.begin(), descriptors.end(), 0x04C0), descriptors.end());  // SBC-3
}

TEST_F(ScsiTest, InquiryAllocationLengthTruncatesData) {
  auto t = run({0x12, 0, 0, 0, 10, 0});
  ASSERT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_in_length, 10u);
  EXPECT_EQ(data(t)[4], 91);  // the additional length still describes the full data
}

TEST_F(ScsiTest, InquiryAllocationLengthZeroReturnsNoData) {
  auto t = run({0x12, 0, 0, 0, 0, 0});
  EXPECT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_in_length, 0u);
}

TEST_F(ScsiTest, InquiryPageCodeWithoutEvpdIsInvalidFieldByte2) {
  expect_invalid_cdb_field(run({0x12, 0, 0x80, 0, 255, 0}), 2);
}

TEST_F(ScsiTest, InquiryCmdDtIsInvalidField) {
  expect_invalid_cdb_field(run({0x12, 0x02, 0, 0, 255, 0}), 1, 1);
}

TEST_F(ScsiTest, InquiryUnknownVpdPageIsInvalidField) {
  expect_invalid_cdb_field(run({0x12, 1, 0xC7, 0, 255, 0}), 2);
}

TEST_F(ScsiTest, InquirySupportedVpdPagesAreAllReadable) {
  auto t = run({0x12, 1, 0x00, 0, 255, 0});
  ASSERT_EQ(t.status, Status::Good);
  auto d = data(t);
  ASSERT_EQ(d.size(), 4u + d[3]);
  std::vector<std::uint8_t> pages(d.begin() + 4, d.end());
  EXPECT_EQ(pages, (std::vector<std::uint8_t>{0x00, 0x80, 0x83, 0x8F, 0xB0, 0xB1, 0xB2}));
  for (std::uint8_t p : pages) {
    auto page = run({0x12, 1, p, 0, 255, 0});
    ASSERT_EQ(page.status, Status::Good) << int(p);
    auto pd = data(page);
    EXPECT_EQ(pd[1], p);
    EXPECT_EQ(pd.size(), 4u + util::get_be16(&pd[2])) << int(p);
  }
}

TEST_F(ScsiTest, InquiryUnitSerialMatchesIdentity) {
  auto d = data(run({0x12, 1, 0x80, 0, 255, 0}));
  EXPECT_EQ(std::string(d.begin() + 4, d.end()), LunIdentity::from_name("iqn.test:t/lun0").serial);
}

TEST_F(ScsiTest, InquiryDeviceIdentificationHasNaaAndT10Designators) {
  auto d = data(run({0x12, 1, 0x83, 0, 255, 0}));
  const auto id = LunIdentity::from_name("iqn.test:t/lun0");
  // NAA: binary, LU association, type 3, 16 bytes
  EXPECT_EQ(d[4], 0x01);
  EXPECT_EQ(d[5], 0x03);
  EXPECT_EQ(d[7], 16);
  EXPECT_TRUE(std::equal(id.naa.begin(), id.naa.end(), d.begin() + 8));
  // T10 vendor id: ASCII, type 1
  EXPECT_EQ(d[24], 0x02);
  EXPECT_EQ(d[25], 0x01);
  EXPECT_EQ(std::string(d.begin() + 28, d.begin() + 36), "FREEVSA ");
}

TEST_F(ScsiTest, InquiryBlockLimitsHasSbc3LengthAndMaxTransfer) {
  auto d = data(run({0x12, 1, 0xB0, 0, 64, 0}));
  ASSERT_EQ(d.size(), 64u);
  EXPECT_EQ(d[3], 0x3C);
  EXPECT_EQ(util::get_be16(&d[6]), 8);  // 4 KiB granularity in 512-byte blocks
  EXPECT_EQ(util::get_be32(&d[8]), (16u << 20) / 512);
}

TEST_F(ScsiTest, InquiryBlockLimitsAdvertisesTheProvisioningAndAtsLimits) {
  auto d = data(run({0x12, 1, 0xB0, 0, 64, 0}));
  ASSERT_EQ(d.size(), 64u);
  EXPECT_EQ(d[4] & 0x01, 0x01);                               // WSNZ
  EXPECT_EQ(d[5], 255);                                       // MAXIMUM COMPARE AND WRITE LENGTH
  EXPECT_EQ(util::get_be32(&d[20]), 0xFFFFFFFFu);             // MAXIMUM UNMAP LBA COUNT: no limit
  EXPECT_EQ(util::get_be32(&d[24]), 256u);                    // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
  EXPECT_EQ(util::get_be32(&d[28]), 8u);                      // OPTIMAL UNMAP GRANULARITY: 4 KiB
  EXPECT_EQ(util::get_be32(&d[32]), 0x80000000u);             // UGAVALID, alignment 0
  EXPECT_EQ(util::get_be64(&d[36]), (16u << 20) / 512);       // MAXIMUM WRITE SAME LENGTH
}

TEST_F(ScsiTest, InquiryBlockDeviceCharacteristicsIsNonRotating) {
  auto d = data(run({0x12, 1, 0xB1, 0, 255, 0}));
  EXPECT_EQ(util::get_be16(&d[4]), 1);
}

TEST_F(ScsiTest, InquiryLogicalBlockProvisioningIsThinWithUnmapAndZeroes) {
  auto d = data(run({0x12, 1, 0xB2, 0, 255, 0}));
  ASSERT_EQ(d.size(), 8u);
  EXPECT_EQ(d[5] & 0xE0, 0xE0);  // LBPU, LBPWS, LBPWS10
  EXPECT_EQ(d[5] & 0x1C, 0x04);  // LBPRZ 001b: unmapped blocks read as zeroes
  EXPECT_EQ(d[5] & 0x02, 0x00);  // no ANC_SUP
  EXPECT_EQ(d[6] & 0x07, 0x02);  // thin provisioned
}

// ---------------------------------------------------------------- missing LUN

TEST_F(ScsiTest, InquiryOnMissingLunHasQualifier3AndType1F) {
  auto t = run({0x12, 0, 0, 0, 255, 0}, {}, "p", 7);
  ASSERT_EQ(t.status, Status::Good);
  EXPECT_EQ(data(t)[0], 0x7F);
}

TEST_F(ScsiTest, OtherCommandsOnMissingLunAreLogicalUnitNotSupported) {
  expect_sense(run({0x00, 0, 0, 0, 0, 0}, {}, "p", 7), 0x05, 0x25, 0x00);
  expect_sense(run({0xC0, 0, 0, 0, 0, 0}, {}, "p", 7), 0x05, 0x25, 0x00);
}

TEST_F(ScsiTest, RequestSenseOnMissingLunReturnsLogicalUnitNotSupportedAsData) {
  auto t = run({0x03, 0, 0, 0, 18, 0}, {}, "p", 7);
  ASSERT_EQ(t.status, Status::Good);
  auto d = data(t);
  EXPECT_EQ(d[2], 0x05);
  EXPECT_EQ(d[12], 0x25);
}

TEST_F(ScsiTest, ReportLunsWorksOnMissingLun) {
  auto t = run({0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, {}, "p", 7);
  ASSERT_EQ(t.status, Status::Good);
  EXPECT_EQ(util::get_be32(data(t).data()), 8u);
}

// ---------------------------------------------------------------- REPORT LUNS

TEST_F(ScsiTest, ReportLunsListsEveryLun) {
  MemoryVolume other(kBlocks * 512, 512);
  map_.add(3, std::make_shared<LogicalUnit>(other, LunIdentity::from_name("b")));
  map_.add(300, std::make_shared<LogicalUnit>(other, LunIdentity::from_name("c")));
  auto d = data(run({0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}));
  ASSERT_EQ(d.size(), 32u);
  EXPECT_EQ(util::get_be32(&d[0]), 24u);
  EXPECT_EQ(d[9], 0);
  EXPECT_EQ(d[17], 3);
  EXPECT_EQ(d[24], 0x41);  // flat space addressing for 300
  EXPECT_EQ(d[25], 300 & 0xFF);
}

TEST_F(ScsiTest, ReportLunsWellKnownOnlyIsEmpty) {
  auto d = data(run({0xA0, 0, 0x01, 0, 0, 0, 0, 0, 1, 0, 0, 0}));
  EXPECT_EQ(util::get_be32(&d[0]), 0u);
}

TEST_F(ScsiTest, ReportLunsAllocationLengthBelow16IsInvalidField) {
  expect_invalid_cdb_field(run({0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0}), 6);
}

TEST_F(ScsiTest, ReportLunsUnknownSelectReportIsInvalidField) {
  expect_invalid_cdb_field(run({0xA0, 0, 0x05, 0, 0, 0, 0, 0, 1, 0, 0, 0}), 2);
}

// ---------------------------------------------------------------- READ CAPACITY

TEST_F(ScsiTest, ReadCapacity10ReportsLastLbaAndBlockLength) {
  auto d = data(run({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  ASSERT_EQ(d.size(), 8u);
  EXPECT_EQ(util::get_be32(&d[0]), kBlocks - 1);
  EXPECT_EQ(util::get_be32(&d[4]), 512u);
}

TEST_F(ScsiTest, ReadCapacity10SaturatesAbove2TiB) {
  HugeVolume huge(std::uint64_t{1} << 42);
  map_.add(1, std::make_shared<LogicalUnit>(huge, LunIdentity::from_name("h")));
  auto d = data(run({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, {}, "p", 1));
  EXPECT_EQ(util::get_be32(&d[0]), 0xFFFFFFFFu);
  auto d16 = data(run({0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}, {}, "p", 1));
  EXPECT_EQ(util::get_be64(&d16[0]), (std::uint64_t{1} << 33) - 1);
}

TEST_F(ScsiTest, ReadCapacity10WithLbaButNoPmiIsInvalidField) {
  expect_invalid_cdb_field(run({0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0}), 2);
}

TEST_F(ScsiTest, ReadCapacity16ReportsCapacityBlockLengthAndExponent) {
  auto d = data(run({0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0}));
  ASSERT_EQ(d.size(), 32u);
  EXPECT_EQ(util::get_be64(&d[0]), kBlocks - 1);
  EXPECT_EQ(util::get_be32(&d[8]), 512u);
  EXPECT_EQ(d[12], 0);      // no protection
  EXPECT_EQ(d[13], 3);      // 8 logical blocks per 4 KiB physical block
  EXPECT_EQ(d[14] & 0xC0, 0xC0);  // LBPME=1, LBPRZ=1
}

TEST_F(ScsiTest, ReadCapacity16HonoursAllocationLength) {
  for (std::uint8_t alloc = 0; alloc < 16; ++alloc) {
    auto t = run({0x9E, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, alloc, 0, 0});
    ASSERT_EQ(t.status, Status::Good);
    EXPECT_EQ(t.data_in_length, alloc);
  }
}

// ---------------------------------------------------------------- READ / WRITE

TEST_F(ScsiTest, WriteThenReadRoundTripsForEveryCdbSize) {
  const std::pair<std::uint8_t, std::uint8_t> ops[] = {{0x0A, 0x08}, {0x2A, 0x28}, {0xAA, 0xA8}, {0x8A, 0x88}};
  std::uint8_t seed = 1;
  for (auto [w, r] : ops) {
    auto payload = pattern(3 * 512, seed++);
    ASSERT_EQ(run_vec(rw(w, 5, 3), payload).status, Status::Good) << int(w);
    auto t = run_vec(rw(r, 5, 3));
    ASSERT_EQ(t.status, Status::Good) << int(r);
    EXPECT_EQ(data(t), payload) << int(r);
    EXPECT_TRUE(std::equal(payload.begin(), payload.end(), volume_->raw().begin() + 5 * 512));
  }
}

TEST_F(ScsiTest, WriteThenReadRoundTripsWith4096ByteBlocks) {
  make(4096);
  auto payload = pattern(2 * 4096, 9);
  ASSERT_EQ(run_vec(rw(0x8A, kBlocks - 2, 2), payload).status, Status::Good);
  auto t = run_vec(rw(0x88, kBlocks - 2, 2));
  ASSERT_EQ(t.status, Status::Good);
  EXPECT_EQ(data(t), payload);
  EXPECT_EQ(t.data_in_length, 8192u);
}

TEST_F(ScsiTest, ReadOfLastBlockIsGood) {
  EXPECT_EQ(run_vec(rw(0x28, kBlocks - 1, 1)).status, Status::Good);
}

TEST_F(ScsiTest, ReadOnePastTheEndIsLbaOutOfRange) {
  expect_sense(run_vec(rw(0x28, kBlocks - 1, 2)), 0x05, 0x21, 0x00);
  expect_sense(run_vec(rw(0x28, kBlocks, 1)), 0x05, 0x21, 0x00);
}

TEST_F(ScsiTest, WriteOnePastTheEndIsLbaOutOfRangeAndWritesNothing) {
  auto before = volume_->raw();
  expect_sense(run_vec(rw(0x2A, kBlocks - 1, 2), pattern(1024, 3)), 0x05, 0x21, 0x00);
  EXPECT_EQ(volume_->raw(), before);
}

TEST_F(ScsiTest, Read16WithLbaNearTwoToThe64IsOutOfRangeNotOverflow) {
  expect_sense(run_vec(rw(0x88, ~std::uint64_t{0}, 1)), 0x05, 0x21, 0x00);
  expect_sense(run_vec(rw(0x88, ~std::uint64_t{0} - 1, 4)), 0x05, 0x21, 0x00);
}

TEST_F(ScsiTest, ReadOfZeroBlocksTransfersNothing) {
  auto t = run_vec(rw(0x28, 0, 0));
  EXPECT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_in_length, 0u);
}

TEST_F(ScsiTest, ReadOfZeroBlocksPastTheEndIsLbaOutOfRange) {
  expect_sense(run_vec(rw(0x28, kBlocks + 1, 0)), 0x05, 0x21, 0x00);
}

TEST_F(ScsiTest, Read6WithLengthZeroReads256Blocks) {
  make(512, 300);
  auto t = run_vec(rw(0x08, 0, 0));
  ASSERT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_in_length, 256u * 512);
}

TEST_F(ScsiTest, NonZeroRdprotectIsInvalidField) {
  for (std::uint8_t p = 1; p < 8; ++p) {
    expect_invalid_cdb_field(run_vec(rw(0x28, 0, 1, static_cast<std::uint8_t>(p << 5))), 1, 7);
  }
}

TEST_F(ScsiTest, NonZeroWrprotectIsInvalidField) {
  expect_invalid_cdb_field(run_vec(rw(0x8A, 0, 1, 0x20), pattern(512, 1)), 1, 7);
}

TEST_F(ScsiTest, DpoAndFuaAreAcceptedOnRead) {
  EXPECT_EQ(run_vec(rw(0x28, 0, 1, 0x18)).status, Status::Good);
}

TEST_F(ScsiTest, TransferLengthAboveMaximumIsInvalidFieldAtLength) {
  make(512, 40000);
  expect_invalid_cdb_field(run_vec(rw(0x88, 0, (16u << 20) / 512 + 1)), 10);
}

TEST_F(ScsiTest, WriteWithFuaReachesTheVolumeAsFua) {
  ASSERT_EQ(run_vec(rw(0x2A, 0, 1, 0x08), pattern(512, 1)).status, Status::Good);
  EXPECT_EQ(volume_->fua_write_count(), 1u);
}

TEST_F(ScsiTest, WriteWithoutFuaIsNotFuaWhileWriteCacheEnabled) {
  ASSERT_EQ(run_vec(rw(0x2A, 0, 1), pattern(512, 1)).status, Status::Good);
  EXPECT_EQ(volume_->fua_write_count(), 0u);
}

TEST_F(ScsiTest, WriteSetsDataOutNeeded) {
  auto t = run_vec(rw(0x2A, 0, 4), pattern(4 * 512, 1));
  EXPECT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_out_needed, 4u * 512);
}

TEST_F(ScsiTest, WriteCutShortByTheTransferLengthWritesTheWholeBlocksThatArrived) {
  auto before = volume_->raw();
  auto data = pattern(3 * 512, 1);
  auto t = run_vec(rw(0x2A, 0, 4), data);
  EXPECT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_out_needed, 4u * 512);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), volume_->raw().begin()));
  EXPECT_TRUE(std::equal(before.begin() + 3 * 512, before.begin() + 4 * 512, volume_->raw().begin() + 3 * 512))
      << "the block beyond the data that arrived must stay as it was";
}

TEST_F(ScsiTest, WriteWithAPartialBlockOfDataOutIsRejectedAndWritesNothing) {
  auto before = volume_->raw();
  auto t = run_vec(rw(0x2A, 0, 1), pattern(200, 1));
  expect_sense(t, 0x05, 0x0E, 0x03);
  EXPECT_EQ(t.data_out_needed, 512u);
  EXPECT_EQ(volume_->raw(), before);
}

TEST_F(ScsiTest, WriteOfZeroBlocksIsGoodAndWritesNothing) {
  auto t = run_vec(rw(0x2A, 3, 0));
  EXPECT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_out_needed, 0u);
}

TEST_F(ScsiTest, ReadEioIsUnrecoveredReadError) {
  volume_->fail_reads_with(EIO);
  expect_sense(run_vec(rw(0x28, 0, 1)), 0x03, 0x11, 0x00);
}

TEST_F(ScsiTest, WriteEioIsWriteError) {
  volume_->fail_writes_with(EIO);
  expect_sense(run_vec(rw(0x2A, 0, 1), pattern(512, 1)), 0x03, 0x0C, 0x00);
}

TEST_F(ScsiTest, WriteEnospcIsSpaceAllocationFailedWriteProtect) {
  volume_->fail_writes_with(ENOSPC);
  expect_sense(run_vec(rw(0x2A, 0, 1), pattern(512, 1)), 0x07, 0x27, 0x07);
}

TEST_F(ScsiTest, OtherVolumeErrorsAreInternalTargetFailure) {
  volume_->fail_reads_with(EINVAL);
  expect_sense(run_vec(rw(0x28, 0, 1)), 0x04, 0x44, 0x00);
}

// ---------------------------------------------------------------- VERIFY / WRITE AND VERIFY

TEST_F(ScsiTest, VerifyWithoutBytchkChecksReadability) {
  auto t = run_vec(rw(0x2F, 0, 8));
  EXPECT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_out_needed, 0u);
  volume_->fail_reads_with(EIO);
  expect_sense(run_vec(rw(0x2F, 0, 8)), 0x03, 0x11, 0x00);
}

TEST_F(ScsiTest, VerifyWithBytchkMatchingDataIsGood) {
  auto payload = pattern(2 * 512, 5);
  std::copy(payload.begin(), payload.end(), volume_->raw().begin() + 512);
  for (std::uint8_t op : {0x2F, 0xAF, 0x8F}) {
    EXPECT_EQ(run_vec(rw(op, 1, 2, 0x02), payload).status, Status::Good) << int(op);
  }
}

TEST_F(ScsiTest, VerifyMiscompareReportsOffsetOfFirstMismatch) {
  auto payload = pattern(2 * 512, 5);
  std::copy(payload.begin(), payload.end(), volume_->raw().begin() + 512);
  payload[700] ^= 0x58;
  auto t = run_vec(rw(0x2F, 1, 2, 0x02), payload);
  expect_sense(t, 0x0E, 0x1D, 0x00);
  EXPECT_EQ(t.sense[0], 0xF0);  // VALID
  EXPECT_EQ(util::get_be32(&t.sense[3]), 700u);
}

TEST_F(ScsiTest, VerifyWithoutBytchkIgnoresMismatchingDataOut) {
  auto payload = pattern(512, 5);
  EXPECT_EQ(run_vec(rw(0x2F, 0, 1), payload).status, Status::Good);
}

TEST_F(ScsiTest, VerifyBytchk3ComparesOneBlockWithEveryBlock) {
  auto block = pattern(512, 8);
  for (int i = 0; i < 3; ++i) std::copy(block.begin(), block.end(), volume_->raw().begin() + i * 512);
  EXPECT_EQ(run_vec(rw(0x2F, 0, 3, 0x06), block).status, Status::Good);
  auto t = run_vec(rw(0x2F, 0, 4, 0x06), block);
  expect_sense(t, 0x0E, 0x1D, 0x00);
  EXPECT_EQ(util::get_be32(&t.sense[3]), 3u * 512);
}

TEST_F(ScsiTest, VerifyBeyondTheEndIsLbaOutOfRange) {
  expect_sense(run_vec(rw(0x8F, kBlocks - 1, 2)), 0x05, 0x21, 0x00);
}

TEST_F(ScsiTest, NonZeroVrprotectIsInvalidField) {
  expect_invalid_cdb_field(run_vec(rw(0xAF, 0, 1, 0x40)), 1, 7);
}

TEST_F(ScsiTest, WriteAndVerifyWritesWithFuaAndCompares) {
  auto payload = pattern(2 * 512, 11);
  for (std::uint8_t op : {0x2E, 0xAE, 0x8E}) {
    ASSERT_EQ(run_vec(rw(op, 2, 2, 0x02), payload).status, Status::Good) << int(op);
  }
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), volume_->raw().begin() + 2 * 512));
  EXPECT_EQ(volume_->fua_write_count(), 3u);
}

TEST_F(ScsiTest, WriteAndVerifyReadErrorIsReported) {
  volume_->fail_reads_with(EIO);
  expect_sense(run_vec(rw(0x2E, 0, 1), pattern(512, 1)), 0x03, 0x11, 0x00);
}

// ---------------------------------------------------------------- PRE-FETCH / SYNC CACHE

TEST_F(ScsiTest, PrefetchInRangeReturnsGoodNotConditionMet) {
  EXPECT_EQ(run_vec(rw(0x34, kBlocks - 4, 4)).status, Status::Good);
  EXPECT_EQ(run_vec(rw(0x90, 0, 0)).status, Status::Good);
}

TEST_F(ScsiTest, PrefetchBeyondTheEndIsLbaOutOfRange) {
  expect_sense(run_vec(rw(0x34, kBlocks - 1, 2)), 0x05, 0x21, 0x00);
  expect_sense(run_vec(rw(0x90, kBlocks + 1, 0)), 0x05, 0x21, 0x00);
}

TEST_F(ScsiTest, SynchronizeCacheFlushesTheVolume) {
  ASSERT_EQ(run_vec(rw(0x35, 0, 0)).status, Status::Good);
  ASSERT_EQ(run_vec(rw(0x91, 0, 8)).status, Status::Good);
  EXPECT_EQ(volume_->flush_count(), 2u);
}

TEST_F(ScsiTest, SynchronizeCacheBeyondTheEndIsLbaOutOfRange) {
  expect_sense(run_vec(rw(0x35, kBlocks, 1)), 0x05, 0x21, 0x00);
  EXPECT_EQ(volume_->flush_count(), 0u);
}

TEST_F(ScsiTest, SynchronizeCacheFlushErrorIsWriteError) {
  volume_->fail_writes_with(EIO);
  expect_sense(run_vec(rw(0x35, 0, 0)), 0x03, 0x0C, 0x00);
}

// ---------------------------------------------------------------- START STOP / PREVENT ALLOW

TEST_F(ScsiTest, StartStopUnitWithLoejIsRefusedOnNonRemovableMedium) {
  expect_invalid_cdb_field(run({0x1B, 1, 0, 0, 0x02, 0}), 4, 1);
  expect_invalid_cdb_field(run({0x1B, 0, 0, 0, 0x03, 0}), 4, 1);
}

TEST_F(ScsiTest, StartStopUnitStopFlushesAndUnitStaysReady) {
  ASSERT_EQ(run({0x1B, 0, 0, 0, 0x00, 0}).status, Status::Good);
  EXPECT_EQ(volume_->flush_count(), 1u);
  EXPECT_EQ(run({0x00, 0, 0, 0, 0, 0}).status, Status::Good);
  ASSERT_EQ(run({0x1B, 0, 0, 0, 0x04, 0}).status, Status::Good);  // NO_FLUSH
  EXPECT_EQ(volume_->flush_count(), 1u);
  EXPECT_EQ(run({0x1B, 1, 0, 0, 0x01, 0}).status, Status::Good);  // START
}

TEST_F(ScsiTest, PreventAllowMediumRemovalAcceptsPreventAndAllow) {
  EXPECT_EQ(run({0x1E, 0, 0, 0, 1, 0}).status, Status::Good);
  EXPECT_EQ(run({0x1E, 0, 0, 0, 0, 0}).status, Status::Good);
  expect_invalid_cdb_field(run({0x1E, 0, 0, 0, 2, 0}), 4, 1);
}

// ---------------------------------------------------------------- MODE SENSE / MODE SELECT

std::vector<std::uint8_t> find_page(const std::vector<std::uint8_t>& d, std::size_t start,
                                    std::uint8_t code) {
  for (std::size_t i = start; i + 2 <= d.size(); i += 2 + d[i + 1]) {
    if ((d[i] & 0x3F) == code) return {d.begin() + i, d.begin() + i + 2 + d[i + 1]};
  }
  return {};
}

TEST_F(ScsiTest, ModeSense6AllPagesHasHeaderDescriptorAndPages) {
  auto d = data(run({0x1A, 0, 0x3F, 0, 255, 0}));
  ASSERT_GE(d.size(), 12u);
  EXPECT_EQ(d[0], d.size() - 1);
  EXPECT_EQ(d[2], 0x10);  // DPOFUA, not write protected
  EXPECT_EQ(d[3], 8);
  EXPECT_EQ(util::get_be32(&d[4]), kBlocks);
  EXPECT_EQ(util::get_be24(&d[9]), 512u);
  auto caching = find_page(d, 12, 0x08);
  ASSERT_EQ(caching.size(), 20u);
  EXPECT_EQ(caching[2] & 0x04, 0x04);  // WCE
  EXPECT_EQ(find_page(d, 12, 0x0A).size(), 12u);
  EXPECT_EQ(find_page(d, 12, 0x1C).size(), 12u);
}

TEST_F(ScsiTest, ModeSense6AllocationLengthTruncates) {
  auto t = run({0x1A, 0, 0x3F, 0, 4, 0});
  ASSERT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_in_length, 4u);
}

TEST_F(ScsiTest, ModeSenseDbdOmitsBlockDescriptor) {
  auto d = data(run({0x1A, 0x08, 0x0A, 0, 255, 0}));
  EXPECT_EQ(d[3], 0);
  EXPECT_EQ(d.size(), 4u + 12);
  EXPECT_EQ(d[4], 0x0A);
}

TEST_F(ScsiTest, ModeSense10WithLlbaaReturnsLongDescriptor) {
  auto d = data(run({0x5A, 0x10, 0x08, 0, 0, 0, 0, 0x01, 0x00, 0}));
  EXPECT_EQ(util::get_be16(&d[0]), d.size() - 2);
  EXPECT_EQ(d[4] & 0x01, 1);
  EXPECT_EQ(util::get_be16(&d[6]), 16);
  EXPECT_EQ(util::get_be64(&d[8]), kBlocks);
  EXPECT_EQ(util::get_be32(&d[20]), 512u);
  EXPECT_EQ(d[24], 0x08);
}

TEST_F(ScsiTest, ModeSenseSavedValuesAreNotSupported) {
  expect_sense(run({0x1A, 0, 0xC8, 0, 255, 0}), 0x05, 0x39, 0x00);
}

TEST_F(ScsiTest, ModeSenseUnknownPageIsInvalidField) {
  expect_invalid_cdb_field(run({0x1A, 0, 0x19, 0, 255, 0}), 2, 5);
}

TEST_F(ScsiTest, ModeSenseUnknownSubpageIsInvalidField) {
  expect_invalid_cdb_field(run({0x1A, 0, 0x08, 0x01, 255, 0}), 3);
  EXPECT_EQ(run({0x1A, 0, 0x3F, 0xFF, 255, 0}).status, Status::Good);
}

TEST_F(ScsiTest, ModeSenseChangeableValuesShowOnlyWce) {
  auto d = data(run({0x1A, 0x08, 0x7F, 0, 255, 0}));
  auto caching = find_page(d, 4, 0x08);
  ASSERT_EQ(caching.size(), 20u);
  EXPECT_EQ(caching[2], 0x04);
  auto control = find_page(d, 4, 0x0A);
  ASSERT_EQ(control.size(), 12u);
  for (std::size_t i = 2; i < control.size(); ++i) EXPECT_EQ(control[i], 0) << i;
}

std::vector<std::uint8_t> caching_select_list(bool wce) {
  std::vector<std::uint8_t> p(4 + 20, 0);
  p[4] = 0x08;
  p[5] = 0x12;
  p[6] = wce ? 0x04 : 0x00;
  return p;
}

TEST_F(ScsiTest, ModeSelectWceRoundTripsThroughModeSense) {
  auto list = caching_select_list(false);
  ASSERT_EQ(run({0x15, 0x10, 0, 0, static_cast<std::uint8_t>(list.size()), 0}, list).status,
            Status::Good);
  auto d = data(run({0x1A, 0x08, 0x08, 0, 255, 0}));
  EXPECT_EQ(d[6] & 0x04, 0);
  list = caching_select_list(true);
  ASSERT_EQ(run({0x15, 0x10, 0, 0, static_cast<std::uint8_t>(list.size()), 0}, list).status,
            Status::Good);
  d = data(run({0x1A, 0x08, 0x08, 0, 255, 0}));
  EXPECT_EQ(d[6] & 0x04, 0x04);
}

TEST_F(ScsiTest, WriteCacheDisabledMakesEveryWriteFua) {
  auto list = caching_select_list(false);
  ASSERT_EQ(run({0x15, 0x10, 0, 0, static_cast<std::uint8_t>(list.size()), 0}, list).status,
            Status::Good);
  ASSERT_EQ(run_vec(rw(0x2A, 0, 1), pattern(512, 1)).status, Status::Good);
  EXPECT_EQ(volume_->fua_write_count(), 1u);
}

TEST_F(ScsiTest, ModeSelect10WithBlockDescriptorIsAccepted) {
  std::vector<std::uint8_t> list(8 + 8 + 20, 0);
  util::put_be16(&list[6], 8);
  util::put_be24(&list[8 + 5], 512);
  list[16] = 0x08;
  list[17] = 0x12;
  std::vector<std::uint8_t> cdb = {0x55, 0x10, 0, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(list.size()), 0};
  EXPECT_EQ(run_vec(cdb, list).status, Status::Good);
}

TEST_F(ScsiTest, ModeSelectChangingBlockLengthIsInvalidFieldInParameterList) {
  std::vector<std::uint8_t> list(4 + 8, 0);
  list[3] = 8;
  util::put_be24(&list[4 + 5], 4096);
  auto t = run({0x15, 0x10, 0, 0, static_cast<std::uint8_t>(list.size()), 0}, list);
  expect_sense(t, 0x05, 0x26, 0x00);
  EXPECT_EQ(util::get_be16(&t.sense[16]), 9);
}

TEST_F(ScsiTest, ModeSelectOfUnchangeableFieldIsInvalidFieldInParameterList) {
  std::vector<std::uint8_t> list(4 + 12, 0);
  list[4] = 0x0A;
  list[5] = 0x0A;
  list[7] = 0x10;         // queue algorithm modifier as reported
  list[8] = 0x08;         // SWP: not changeable
  auto t = run({0x15, 0x10, 0, 0, static_cast<std::uint8_t>(list.size()), 0}, list);
  expect_sense(t, 0x05, 0x26, 0x00);
  EXPECT_EQ(t.sense[15], 0x80 | 0x08 | 3);  // parameter list, bit 3
  EXPECT_EQ(util::get_be16(&t.sense[16]), 8);
}

TEST_F(ScsiTest, ModeSelectWithSaveIsInvalidField) {
  auto list = caching_select_list(true);
  expect_invalid_cdb_field(run({0x15, 0x11, 0, 0, static_cast<std::uint8_t>(list.size()), 0}, list), 1, 0);
}

TEST_F(ScsiTest, ModeSelectTruncatedPageIsParameterListLengthError) {
  auto list = caching_select_list(true);
  list.resize(10);
  expect_sense(run({0x15, 0x10, 0, 0, 10, 0}, list), 0x05, 0x1A, 0x00);
}

TEST_F(ScsiTest, ModeSelectWithShortDataOutIsRejected) {
  auto list = caching_select_list(true);
  list.resize(8);
  expect_sense(run({0x15, 0x10, 0, 0, 24, 0}, list), 0x05, 0x0E, 0x03);
}

TEST_F(ScsiTest, ModeSelectRaisesModeParametersChangedForOtherNexuses) {
  map_.nexus_created("A");
  map_.nexus_created("B");
  run({0x03, 0, 0, 0, 18, 0}, {}, "A");
  run({0x03, 0, 0, 0, 18, 0}, {}, "B");
  auto list = caching_select_list(false);
  ASSERT_EQ(run({0x15, 0x10, 0, 0, static_cast<std::uint8_t>(list.size()), 0}, list, "A").status,
            Status::Good);
  EXPECT_EQ(run({0x00, 0, 0, 0, 0, 0}, {}, "A").status, Status::Good);
  expect_sense(run({0x00, 0, 0, 0, 0, 0}, {}, "B"), 0x06, 0x2A, 0x01);
}

// ---------------------------------------------------------------- unit attentions

TEST_F(ScsiTest, NewNexusGetsPowerOnResetUnitAttentionOnce) {
  map_.nexus_created("A");
  expect_sense(run({0x00, 0, 0, 0, 0, 0}, {}, "A"), 0x06, 0x29, 0x00);
  EXPECT_EQ(run({0x00, 0, 0, 0, 0, 0}, {}, "A").status, Status::Good);
}

TEST_F(ScsiTest, UnitAttentionIsPerNexus) {
  map_.nexus_created("A");
  EXPECT_EQ(run({0x00, 0, 0, 0, 0, 0}, {}, "B").status, Status::Good);
  expect_sense(run({0x00, 0, 0, 0, 0, 0}, {}, "A"), 0x06, 0x29, 0x00);
}

TEST_F(ScsiTest, InquiryAndReportLunsNeitherReportNorClearUnitAttention) {
  map_.nexus_created("A");
  EXPECT_EQ(run({0x12, 0, 0, 0, 255, 0}, {}, "A").status, Status::Good);
  EXPECT_EQ(run({0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, {}, "A").status, Status::Good);
  expect_sense(run({0x00, 0, 0, 0, 0, 0}, {}, "A"), 0x06, 0x29, 0x00);
}

TEST_F(ScsiTest, RequestSenseReturnsAndClearsUnitAttention) {
  map_.nexus_created("A");
  auto t = run({0x03, 0, 0, 0, 18, 0}, {}, "A");
  ASSERT_EQ(t.status, Status::Good);
  auto d = data(t);
  EXPECT_EQ(d[0], 0x70);
  EXPECT_EQ(d[2], 0x06);
  EXPECT_EQ(d[12], 0x29);
  EXPECT_EQ(run({0x00, 0, 0, 0, 0, 0}, {}, "A").status, Status::Good);
}

TEST_F(ScsiTest, RequestSenseWithoutUnitAttentionIsNoSense) {
  auto d = data(run({0x03, 0, 0, 0, 252, 0}));
  ASSERT_EQ(d.size(), 18u);
  EXPECT_EQ(d[2], 0x00);
  EXPECT_EQ(d[12], 0x00);
}

TEST_F(ScsiTest, RequestSenseDescriptorFormatIsInvalidField) {
  expect_invalid_cdb_field(run({0x03, 0x01, 0, 0, 18, 0}), 1, 0);
}

TEST_F(ScsiTest, UnknownOpcodeReportsPendingUnitAttentionFirst) {
  map_.nexus_created("A");
  expect_sense(run({0xC0, 0, 0, 0, 0, 0}, {}, "A"), 0x06, 0x29, 0x00);
  expect_sense(run({0xC0, 0, 0, 0, 0, 0}, {}, "A"), 0x05, 0x20, 0x00);
}

TEST_F(ScsiTest, LunResetRaisesBusDeviceResetForEveryNexusTheRequesterToo) {
  map_.nexus_created("A");
  map_.nexus_created("B");
  run({0x03, 0, 0, 0, 18, 0}, {}, "A");
  run({0x03, 0, 0, 0, 18, 0}, {}, "B");
  map_.lun_reset(0, "A");
  for (const char* port : {"A", "B"}) {
    expect_sense(run({0x00, 0, 0, 0, 0, 0}, {}, port), 0x06, 0x29, 0x03);
    EXPECT_EQ(run({0x00, 0, 0, 0, 0, 0}, {}, port).status, Status::Good);
  }
}

TEST_F(ScsiTest, LunResetRestoresDefaultModeParameters) {
  auto list = caching_select_list(false);
  ASSERT_EQ(run({0x15, 0x10, 0, 0, static_cast<std::uint8_t>(list.size()), 0}, list, "A").status,
            Status::Good);
  map_.lun_reset(0, "A");
  expect_sense(run({0x00, 0, 0, 0, 0, 0}, {}, "A"), 0x06, 0x29, 0x03);  // the reset's own attention
  auto d = data(run({0x1A, 0x08, 0x08, 0, 255, 0}, {}, "A"));
  ASSERT_GE(d.size(), 7u);
  EXPECT_EQ(d[6] & 0x04, 0x04);
}

TEST_F(ScsiTest, TargetResetRaisesScsiBusResetForEveryNexus) {
  map_.nexus_created("A");
  map_.nexus_created("B");
  run({0x03, 0, 0, 0, 18, 0}, {}, "A");
  run({0x03, 0, 0, 0, 18, 0}, {}, "B");
  map_.target_reset("A");
  expect_sense(run({0x00, 0, 0, 0, 0, 0}, {}, "A"), 0x06, 0x29, 0x02);
  expect_sense(run({0x00, 0, 0, 0, 0, 0}, {}, "B"), 0x06, 0x29, 0x02);
}

TEST_F(ScsiTest, NexusCreatedReplacesOlderUnitAttentions) {
  map_.nexus_created("A");
  map_.nexus_created("B");
  run({0x03, 0, 0, 0, 18, 0}, {}, "A");
  map_.lun_reset(0, "B");  // A now has 29/03 pending
  map_.nexus_created("A");  // A logs in again
  expect_sense(run({0x00, 0, 0, 0, 0, 0}, {}, "A"), 0x06, 0x29, 0x00);
  EXPECT_EQ(run({0x00, 0, 0, 0, 0, 0}, {}, "A").status, Status::Good);
}

TEST_F(ScsiTest, ResetReachesPortsSeenOnlyThroughCommands) {
  EXPECT_EQ(run({0x00, 0, 0, 0, 0, 0}, {}, "C").status, Status::Good);
  map_.lun_reset(0, "A");
  expect_sense(run({0x00, 0, 0, 0, 0, 0}, {}, "C"), 0x06, 0x29, 0x03);
}

// ---------------------------------------------------------------- REPORT SUPPORTED OPCODES

std::vector<std::uint8_t> rsoc(std::uint8_t options, std::uint8_t opcode = 0, std::uint16_t sa = 0,
                               bool rctd = false) {
  std::vector<std::uint8_t> c(12, 0);
  c[0] = 0xA3;
  c[1] = 0x0C;
  c[2] = static_cast<std::uint8_t>((rctd ? 0x80 : 0) | options);
  c[3] = opcode;
  util::put_be16(&c[4], sa);
  util::put_be32(&c[6], 65535);
  return c;
}

TEST_F(ScsiTest, ReportSupportedOpcodesAllCommandsMatchesTheTable) {
  auto d = data(run_vec(rsoc(0)));
  auto table = command_table();
  ASSERT_EQ(d.size(), 4 + 8 * table.size());
  EXPECT_EQ(util::get_be32(&d[0]), 8 * table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    const std::uint8_t* e = &d[4 + 8 * i];
    EXPECT_EQ(e[0], table[i].opcode);
    EXPECT_EQ(e[5] & 0x01, table[i].has_service_action() ? 1 : 0);
    EXPECT_EQ(e[5] & 0x02, 0);  // no CTDP without RCTD
    if (table[i].has_service_action()) {
      EXPECT_EQ(util::get_be16(&e[2]), table[i].service_action);
    } else {
      EXPECT_EQ(util::get_be16(&e[2]), 0);
    }
    EXPECT_EQ(util::get_be16(&e[6]), table[i].cdb_length);
  }
}

TEST_F(ScsiTest, ReportSupportedOpcodesWithRctdAddsTimeoutDescriptors) {
  auto d = data(run_vec(rsoc(0, 0, 0, true)));
  auto table = command_table();
  ASSERT_EQ(d.size(), 4 + 20 * table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    const std::uint8_t* e = &d[4 + 20 * i];
    EXPECT_EQ(e[5] & 0x02, 0x02);
    EXPECT_EQ(util::get_be16(&e[8]), 0x0A);
  }
}

TEST_F(ScsiTest, ReportSupportedOpcodesOneCommandReturnsUsageFromTable) {
  for (const CommandInfo& c : command_table()) {
    auto t = run_vec(rsoc(c.has_service_action() ? 2 : 1, c.opcode, c.service_action));
    ASSERT_EQ(t.status, Status::Good) << c.name;
    auto d = data(t);
    EXPECT_EQ(d[1] & 0x07, 0x03) << c.name;
    ASSERT_EQ(util::get_be16(&d[2]), c.cdb_length);
    EXPECT_TRUE(std::equal(d.begin() + 4, d.end(), c.usage.begin())) << c.name;
  }
}

TEST_F(ScsiTest, ReportSupportedOpcodesRead10UsageHasDpoAndFua) {
  auto d = data(run_vec(rsoc(1, 0x28)));
  EXPECT_EQ(d[5] & 0x18, 0x18);
}

TEST_F(ScsiTest, ReportSupportedOpcodesOption1ForServiceActionOpcodeIsInvalidField) {
  expect_invalid_cdb_field(run_vec(rsoc(1, 0x9E, 0x10)), 2, 2);
}

TEST_F(ScsiTest, ReportSupportedOpcodesOption2ForPlainOpcodeIsInvalidField) {
  expect_invalid_cdb_field(run_vec(rsoc(2, 0x28)), 2, 2);
}

TEST_F(ScsiTest, ReportSupportedOpcodesUnsupportedCommandReportsSupport001) {
  auto d = data(run_vec(rsoc(1, 0xC0)));
  ASSERT_GE(d.size(), 4u);
  EXPECT_EQ(d[1] & 0x07, 0x01);
  d = data(run_vec(rsoc(2, 0x9E, 0x13)));
  EXPECT_EQ(d[1] & 0x07, 0x01);
}

TEST_F(ScsiTest, ReportSupportedOpcodesOneCommandWithRctdHasTimeouts) {
  auto d = data(run_vec(rsoc(1, 0x2A, 0, true)));
  EXPECT_EQ(d[1] & 0x80, 0x80);
  ASSERT_EQ(d.size(), 4u + 10 + 12);
  EXPECT_EQ(util::get_be16(&d[14]), 0x0A);
}

// ---------------------------------------------------------------- thin provisioning, ATS

namespace provisioning {
std::vector<std::uint8_t> write_same(bool sixteen, std::uint64_t lba, std::uint32_t blocks, std::uint8_t flags) {
  std::vector<std::uint8_t> c(sixteen ? 16 : 10, 0);
  c[0] = sixteen ? 0x93 : 0x41;
  c[1] = flags;
  if (sixteen) {
    util::put_be64(&c[2], lba);
    util::put_be32(&c[10], blocks);
  } else {
    util::put_be32(&c[2], static_cast<std::uint32_t>(lba));
    util::put_be16(&c[7], static_cast<std::uint16_t>(blocks));
  }
  return c;
}
std::vector<std::uint8_t> unmap_cdb(std::uint16_t list_length) {
  std::vector<std::uint8_t> c(10, 0);
  c[0] = 0x42;
  util::put_be16(&c[7], list_length);
  return c;
}
std::vector<std::uint8_t> unmap_list(const std::vector<std::pair<std::uint64_t, std::uint32_t>>& ranges) {
  std::vector<std::uint8_t> l(8 + 16 * ranges.size(), 0);
  util::put_be16(&l[0], static_cast<std::uint16_t>(l.size() - 2));
  util::put_be16(&l[2], static_cast<std::uint16_t>(16 * ranges.size()));
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    util::put_be64(&l[8 + 16 * i], ranges[i].first);
    util::put_be32(&l[8 + 16 * i + 8], ranges[i].second);
  }
  return l;
}
std::vector<std::uint8_t> get_lba_status(std::uint64_t lba, std::uint32_t allocation) {
  std::vector<std::uint8_t> c(16, 0);
  c[0] = 0x9E;
  c[1] = 0x12;
  util::put_be64(&c[2], lba);
  util::put_be32(&c[10], allocation);
  return c;
}
std::vector<std::uint8_t> compare_and_write(std::uint64_t lba, std::uint8_t blocks) {
  std::vector<std::uint8_t> c(16, 0);
  c[0] = 0x89;
  util::put_be64(&c[2], lba);
  c[13] = blocks;
  return c;
}
// (LBA, blocks, deallocated) of each GET LBA STATUS descriptor.
std::vector<std::tuple<std::uint64_t, std::uint32_t, bool>> descriptors(const std::vector<std::uint8_t>& d) {
  std::vector<std::tuple<std::uint64_t, std::uint32_t, bool>> out;
  for (std::size_t at = 8; at + 16 <= d.size(); at += 16)
    out.emplace_back(util::get_be64(&d[at]), util::get_be32(&d[at + 8]), d[at + 12] == 1);
  return out;
}
}  // namespace provisioning

TEST_F(ScsiTest, WriteSameWritesTheBlockToEveryBlockOfTheRange) {
  for (bool sixteen : {false, true}) {
    const std::vector<std::uint8_t> block(512, sixteen ? 0x16 : 0x10);
    ASSERT_EQ(run_vec(provisioning::write_same(sixteen, 4, 5, 0), block).status, Status::Good);
    auto t = run_vec(rw(0x88, 4, 5));
    ASSERT_EQ(t.status, Status::Good);
    EXPECT_EQ(data(t), std::vector<std::uint8_t>(5 * 512, block[0]));
  }
}

TEST_F(ScsiTest, WriteSameWithUnmapAndZeroesDeallocatesAndReadsZero) {
  ASSERT_EQ(run_vec(rw(0x8A, 0, 8), std::vector<std::uint8_t>(8 * 512, 0xAB)).status, Status::Good);
  ASSERT_EQ(run_vec(provisioning::write_same(true, 2, 4, 0x08), std::vector<std::uint8_t>(512, 0)).status,
            Status::Good);
  EXPECT_EQ(data(run_vec(rw(0x88, 2, 4))), std::vector<std::uint8_t>(4 * 512, 0));
  const auto d = provisioning::descriptors(data(run_vec(provisioning::get_lba_status(0, 1024))));
  ASSERT_GE(d.size(), 3u);
  EXPECT_EQ(d[0], std::make_tuple(std::uint64_t{0}, 2u, false));
  EXPECT_EQ(d[1], std::make_tuple(std::uint64_t{2}, 4u, true));
  EXPECT_EQ(d[2], std::make_tuple(std::uint64_t{6}, 2u, false));
}

TEST_F(ScsiTest, WriteSameWithUnmapAndDataWritesTheData) {
  ASSERT_EQ(run_vec(provisioning::write_same(false, 0, 2, 0x08), std::vector<std::uint8_t>(512, 0x5C)).status,
            Status::Good);
  EXPECT_EQ(data(run_vec(rw(0x88, 0, 2))), std::vector<std::uint8_t>(2 * 512, 0x5C));
}

TEST_F(ScsiTest, WriteSameTakesExactlyOneBlockOfDataOut) {
  expect_sense(run_vec(provisioning::write_same(false, 0, 1, 0), std::vector<std::uint8_t>(256, 1)), 0x05, 0x0E, 0x03);
  expect_sense(run_vec(provisioning::write_same(false, 0, 1, 0), std::vector<std::uint8_t>(1024, 1)), 0x05, 0x0E, 0x03);
}

TEST_F(ScsiTest, WriteSameNdobWritesZeroesWithoutDataOut) {
  ASSERT_EQ(run_vec(rw(0x8A, 3, 1), std::vector<std::uint8_t>(512, 0xEE)).status, Status::Good);
  auto t = run_vec(provisioning::write_same(true, 3, 1, 0x01));
  ASSERT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_out_needed, 0u);
  EXPECT_EQ(data(run_vec(rw(0x88, 3, 1))), std::vector<std::uint8_t>(512, 0));
}

TEST_F(ScsiTest, WriteSameRefusesZeroBlocksAnchorAndTooMany) {
  const std::vector<std::uint8_t> block(512, 1);
  expect_invalid_cdb_field(run_vec(provisioning::write_same(false, 0, 0, 0), block), 7);
  expect_invalid_cdb_field(run_vec(provisioning::write_same(true, 0, 1, 0x18), block), 1, 4);
  make(512, 1 << 16);
  expect_invalid_cdb_field(run_vec(provisioning::write_same(true, 0, 32769, 0), block), 10);
}

TEST_F(ScsiTest, WriteSameBeyondTheEndIsLbaOutOfRangeEvenForZeroBlocks) {
  const std::vector<std::uint8_t> block(512, 1);
  expect_sense(run_vec(provisioning::write_same(false, kBlocks - 1, 2, 0), block), 0x05, 0x21, 0x00);
  expect_sense(run_vec(provisioning::write_same(false, kBlocks + 1, 0, 0), block), 0x05, 0x21, 0x00);
}

TEST_F(ScsiTest, UnmapDeallocatesEveryDescriptorsRange) {
  ASSERT_EQ(run_vec(rw(0x8A, 0, 16), std::vector<std::uint8_t>(16 * 512, 0x77)).status, Status::Good);
  const auto list = provisioning::unmap_list({{1, 2}, {8, 0}, {10, 3}});
  ASSERT_EQ(run_vec(provisioning::unmap_cdb(static_cast<std::uint16_t>(list.size())), list).status, Status::Good);
  const auto after = data(run_vec(rw(0x88, 0, 16)));
  for (std::uint64_t b = 0; b < 16; ++b) {
    const bool unmapped = (b >= 1 && b < 3) || (b >= 10 && b < 13);
    EXPECT_EQ(after[b * 512], unmapped ? 0x00 : 0x77) << "block " << b;
  }
}

TEST_F(ScsiTest, UnmapChecksEveryDescriptorBeforeUnmappingAny) {
  ASSERT_EQ(run_vec(rw(0x8A, 0, 4), std::vector<std::uint8_t>(4 * 512, 0x33)).status, Status::Good);
  const auto list = provisioning::unmap_list({{0, 2}, {kBlocks - 1, 2}});
  expect_sense(run_vec(provisioning::unmap_cdb(static_cast<std::uint16_t>(list.size())), list), 0x05, 0x21, 0x00);
  EXPECT_EQ(data(run_vec(rw(0x88, 0, 2))), std::vector<std::uint8_t>(2 * 512, 0x33));
}

TEST_F(ScsiTest, UnmapParameterListErrors) {
  EXPECT_EQ(run_vec(provisioning::unmap_cdb(0)).status, Status::Good);  // nothing to do
  expect_sense(run_vec(provisioning::unmap_cdb(6), std::vector<std::uint8_t>(6, 0)), 0x05, 0x1A, 0x00);
  std::vector<std::pair<std::uint64_t, std::uint32_t>> many(257, {0, 1});
  const auto list = provisioning::unmap_list(many);
  expect_sense(run_vec(provisioning::unmap_cdb(static_cast<std::uint16_t>(list.size())), list), 0x05, 0x26, 0x00);
  expect_invalid_cdb_field(run_vec({0x42, 0x01, 0, 0, 0, 0, 0, 0, 24, 0}, provisioning::unmap_list({{0, 1}})), 1, 0);
}

TEST_F(ScsiTest, GetLbaStatusDescribesMappedAndDeallocatedRunsFromTheLba) {
  ASSERT_EQ(run_vec(rw(0x8A, 8, 4), std::vector<std::uint8_t>(4 * 512, 1)).status, Status::Good);
  const auto d = provisioning::descriptors(data(run_vec(provisioning::get_lba_status(2, 1024))));
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0], std::make_tuple(std::uint64_t{2}, 6u, true));
  EXPECT_EQ(d[1], std::make_tuple(std::uint64_t{8}, 4u, false));
  EXPECT_EQ(d[2], std::make_tuple(std::uint64_t{12}, static_cast<std::uint32_t>(kBlocks - 12), true));
  // The allocation length bounds the descriptors; the parameter data length says how many.
  const auto one = data(run_vec(provisioning::get_lba_status(2, 24)));
  ASSERT_EQ(one.size(), 24u);
  EXPECT_EQ(util::get_be32(&one[0]), 20u);
  expect_sense(run_vec(provisioning::get_lba_status(kBlocks, 1024)), 0x05, 0x21, 0x00);
}

TEST_F(ScsiTest, CompareAndWriteWritesWhenTheBlocksMatch) {
  std::vector<std::uint8_t> out(2 * 512, 0x00);  // compare with zeroes, write 0x42
  std::fill(out.begin() + 512, out.end(), 0x42);
  ASSERT_EQ(run_vec(provisioning::compare_and_write(7, 1), out).status, Status::Good);
  EXPECT_EQ(data(run_vec(rw(0x88, 7, 1))), std::vector<std::uint8_t>(512, 0x42));
}

TEST_F(ScsiTest, CompareAndWriteMiscompareNamesTheFirstDifferingByteAndWritesNothing) {
  std::vector<std::uint8_t> block(2 * 512, 0x11);
  ASSERT_EQ(run_vec(rw(0x8A, 20, 2), block).status, Status::Good);
  std::vector<std::uint8_t> out(4 * 512, 0x11);  // compare 2 blocks, then 2 to write
  out[512 + 37] = 0x99;                          // second block, byte 37
  std::fill(out.begin() + 1024, out.end(), 0x22);
  const Task t = run_vec(provisioning::compare_and_write(20, 2), out);
  expect_sense(t, 0x0E, 0x1D, 0x00);
  EXPECT_EQ(t.sense[0] & 0x80, 0x80);  // VALID: INFORMATION holds the offset
  EXPECT_EQ(util::get_be32(&t.sense[3]), 512u + 37);
  EXPECT_EQ(data(run_vec(rw(0x88, 20, 2))), block);
}

TEST_F(ScsiTest, CompareAndWriteChecksRangeAndDataOut) {
  EXPECT_EQ(run_vec(provisioning::compare_and_write(0, 0)).status, Status::Good);
  // 256 blocks do not fit the one-byte field: zero blocks with Data-Out is refused.
  expect_invalid_cdb_field(run_vec(provisioning::compare_and_write(0, 0), std::vector<std::uint8_t>(1024, 0)), 13);
  expect_sense(run_vec(provisioning::compare_and_write(kBlocks, 1), std::vector<std::uint8_t>(1024, 0)), 0x05, 0x21,
               0x00);
  expect_sense(run_vec(provisioning::compare_and_write(0, 1), std::vector<std::uint8_t>(512, 0)), 0x05, 0x0E, 0x03);
  expect_sense(run_vec(provisioning::compare_and_write(0, 1), std::vector<std::uint8_t>(2048, 0)), 0x05, 0x0E, 0x03);
}

TEST_F(ScsiTest, CompareAndWriteIsAtomicAgainstConcurrentCompareAndWrites) {
  // A counter in block 0 incremented by several threads with test-and-set, as VMFS takes locks:
  // a lost update would show as a final count below the number of successful swaps.
  SlowReadVolume slow(*volume_);
  map_ = LunMap{};
  map_.add(0, std::make_shared<LogicalUnit>(slow, LunIdentity::from_name("iqn.test:t/lun0")));
  constexpr int kThreads = 4, kIncrements = 100;
  std::atomic<int> swaps{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      const std::string port = "iqn.init,i,0x" + std::to_string(10 + i);
      for (int done = 0; done < kIncrements;) {
        const auto current = data(run_vec(rw(0x88, 0, 1), {}, port));
        std::vector<std::uint8_t> out(current);
        out.resize(1024);
        std::copy(current.begin(), current.end(), out.begin() + 512);
        util::put_be32(&out[512], util::get_be32(current.data()) + 1);
        if (run_vec(provisioning::compare_and_write(0, 1), out, port).status == Status::Good) {
          ++done;
          ++swaps;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(swaps.load(), kThreads * kIncrements);
  EXPECT_EQ(util::get_be32(data(run_vec(rw(0x88, 0, 1))).data()), static_cast<std::uint32_t>(kThreads * kIncrements));
}

// ---------------------------------------------------------------- concurrency

TEST_F(ScsiTest, ConcurrentWritesAndReadsOnManyThreadsStayConsistent) {
  std::vector<std::thread> threads;
  for (int th = 0; th < 8; ++th) {
    threads.emplace_back([this, th] {
      auto payload = pattern(512, static_cast<std::uint8_t>(th));
      for (int i = 0; i < 200; ++i) {
        const std::uint32_t lba = static_cast<std::uint32_t>(th * 8 + i % 8);
        EXPECT_EQ(run_vec(rw(0x2A, lba, 1), payload, th % 2 ? "A" : "B").status, Status::Good);
        if (i == 100 && th == 0) map_.nexus_created("C");  // UA state changes concurrently
        auto t = run_vec(rw(0x28, lba, 1), {}, "B");
        EXPECT_EQ(data(t), payload);
      }
    });
  }
  for (auto& t : threads) t.join();
}

}  // namespace
}  // namespace freevsa::scsi
