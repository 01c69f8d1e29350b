// Block commands beside the READ/WRITE family - ORWRITE(16), READ DEFECT DATA(10/12) - against
// a MemoryVolume, through LunMap::execute as the transport calls it.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "replication/memory_volume.h"
#include "scsi/lun_map.h"
#include "test/unit/scsi_slow_volume.h"
#include "test/unit/scsi_task_support.h"
#include "util/endian.h"

namespace freevsa::scsi {
namespace {

using replication::MemoryVolume;

constexpr std::uint32_t kBlockSize = 512;
constexpr std::uint64_t kBlocks = 64;
constexpr std::uint8_t kFua = 0x08;
constexpr std::uint8_t kDpo = 0x10;

std::vector<std::uint8_t> block_cdb(std::uint8_t opcode, std::uint64_t lba, std::uint32_t blocks,
                                    std::uint8_t flags = 0) {
  std::vector<std::uint8_t> c(16, 0);
  c[0] = opcode;
  c[1] = flags;
  util::put_be64(&c[2], lba);
  util::put_be32(&c[10], blocks);
  return c;
}
std::vector<std::uint8_t> orwrite(std::uint64_t lba, std::uint32_t blocks, std::uint8_t flags = 0) {
  return block_cdb(0x8B, lba, blocks, flags);
}
std::vector<std::uint8_t> read16(std::uint64_t lba, std::uint32_t blocks) { return block_cdb(0x88, lba, blocks); }
std::vector<std::uint8_t> write16(std::uint64_t lba, std::uint32_t blocks) { return block_cdb(0x8A, lba, blocks); }
std::vector<std::uint8_t> compare_and_write(std::uint64_t lba, std::uint8_t blocks) {
  std::vector<std::uint8_t> c = block_cdb(0x89, lba, 0);
  c[13] = blocks;
  return c;
}

std::vector<std::uint8_t> read_defect_data10(std::uint8_t request, std::uint16_t allocation_length) {
  std::vector<std::uint8_t> c(10, 0);
  c[0] = 0x37;
  c[2] = request;
  util::put_be16(&c[7], allocation_length);
  return c;
}
std::vector<std::uint8_t> read_defect_data12(std::uint8_t request, std::uint32_t index,
                                             std::uint32_t allocation_length) {
  std::vector<std::uint8_t> c(12, 0);
  c[0] = 0xB7;
  c[1] = request;
  util::put_be32(&c[2], index);
  util::put_be32(&c[6], allocation_length);
  return c;
}
constexpr std::uint8_t kReqPlist = 0x10;
constexpr std::uint8_t kReqGlist = 0x08;

// PERSISTENT RESERVE OUT with a 24-byte parameter list: the reservation key, then the service
// action reservation key.
std::vector<std::uint8_t> persistent_reserve_out(std::uint8_t service_action, std::uint8_t type) {
  std::vector<std::uint8_t> c(10, 0);
  c[0] = 0x5F;
  c[1] = service_action;
  c[2] = type;
  util::put_be32(&c[5], 24);
  return c;
}
std::vector<std::uint8_t> keys(std::uint64_t key, std::uint64_t service_action_key) {
  std::vector<std::uint8_t> p(24, 0);
  util::put_be64(&p[0], key);
  util::put_be64(&p[8], service_action_key);
  return p;
}

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(seed * 31 + i * 7 + (i >> 9));
  return v;
}

class BlockCommandTest : public ::testing::Test {
 protected:
  void SetUp() override { serve(volume_); }
  void serve(replication::Volume& volume) {
    map_ = LunMap{};
    map_.add(0, std::make_shared<LogicalUnit>(volume, LunIdentity::from_name("iqn.test:t/lun0")));
  }

  Task run(const std::vector<std::uint8_t>& cdb, const std::vector<std::uint8_t>& out = {},
           const std::string& port = "iqn.init,i,0x1") {
    Task t = make_task(cdb, out, 0, port);
    map_.execute(t);
    return t;
  }
  std::vector<std::uint8_t> read_blocks(std::uint64_t lba, std::uint32_t blocks) {
    const Task t = run(read16(lba, blocks));
    EXPECT_EQ(t.status, Status::Good);
    return data_in(t);
  }
  // 05/24/00 with the field pointer at (byte, bit); bit < 0: no bit pointer.
  static void expect_invalid_cdb_field(const Task& t, std::uint16_t byte, int bit = -1) {
    expect_sense(t, 0x05, 0x24, 0x00);
    EXPECT_EQ(t.sense[15], bit < 0 ? 0xC0 : 0xC8 | bit);
    EXPECT_EQ(util::get_be16(&t.sense[16]), byte);
  }

  MemoryVolume volume_{kBlocks * kBlockSize, kBlockSize};
  LunMap map_;
};

// ------------------------------------------------------------------------------ ORWRITE

TEST_F(BlockCommandTest, OrWriteOrsTheDataOutIntoTheBlocksAndLeavesTheOthersAlone) {
  const auto before = pattern(6 * kBlockSize, 1);
  ASSERT_EQ(run(write16(9, 6), before).status, Status::Good);
  const auto mask = pattern(4 * kBlockSize, 2);
  ASSERT_EQ(run(orwrite(10, 4), mask).status, Status::Good);

  const auto after = read_blocks(9, 6);
  for (std::size_t i = 0; i < after.size(); ++i) {
    const bool ored = i >= kBlockSize && i < 5 * kBlockSize;
    const std::uint8_t want = ored ? before[i] | mask[i - kBlockSize] : before[i];
    ASSERT_EQ(after[i], want) << "byte " << i;
  }
}

TEST_F(BlockCommandTest, OrWriteOfComplementsGivesAllOnes) {
  ASSERT_EQ(run(orwrite(0, 2), std::vector<std::uint8_t>(2 * kBlockSize, 0xA5)).status, Status::Good);
  EXPECT_EQ(read_blocks(0, 2), std::vector<std::uint8_t>(2 * kBlockSize, 0xA5));
  ASSERT_EQ(run(orwrite(0, 2), std::vector<std::uint8_t>(2 * kBlockSize, 0x5A)).status, Status::Good);
  EXPECT_EQ(read_blocks(0, 2), std::vector<std::uint8_t>(2 * kBlockSize, 0xFF));
}

TEST_F(BlockCommandTest, OrWriteOfTheLastBlocksSucceeds) {
  ASSERT_EQ(run(orwrite(kBlocks - 3, 3), std::vector<std::uint8_t>(3 * kBlockSize, 0x21)).status, Status::Good);
  EXPECT_EQ(read_blocks(kBlocks - 3, 3), std::vector<std::uint8_t>(3 * kBlockSize, 0x21));
}

TEST_F(BlockCommandTest, OrWriteBeyondTheEndIsLbaOutOfRangeAndChangesNothing) {
  expect_sense(run(orwrite(kBlocks - 1, 2), std::vector<std::uint8_t>(2 * kBlockSize, 0xFF)), 0x05, 0x21, 0x00);
  expect_sense(run(orwrite(kBlocks, 1), std::vector<std::uint8_t>(kBlockSize, 0xFF)), 0x05, 0x21, 0x00);
  expect_sense(run(orwrite(0x8000000000000000ull, 1), std::vector<std::uint8_t>(kBlockSize, 0xFF)), 0x05, 0x21,
               0x00);
  expect_sense(run(orwrite(~0ull, 1), std::vector<std::uint8_t>(kBlockSize, 0xFF)), 0x05, 0x21, 0x00);
  EXPECT_EQ(read_blocks(kBlocks - 1, 1), std::vector<std::uint8_t>(kBlockSize, 0));
}

TEST_F(BlockCommandTest, OrWriteOfZeroBlocksDoesNothingButStillChecksTheLba) {
  const Task t = run(orwrite(0, 0));
  EXPECT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_out_needed, 0u);
  EXPECT_EQ(volume_.fua_write_count(), 0u);
  EXPECT_EQ(run(orwrite(kBlocks, 0)).status, Status::Good);  // the LBA just past the end
  expect_sense(run(orwrite(kBlocks + 1, 0)), 0x05, 0x21, 0x00);
  expect_sense(run(orwrite(~0ull, 0)), 0x05, 0x21, 0x00);
}

TEST_F(BlockCommandTest, OrWriteWithOrprotectIsAnInvalidField) {
  for (std::uint8_t orprotect = 1; orprotect < 8; ++orprotect) {
    const Task t = run(orwrite(0, 1, static_cast<std::uint8_t>(orprotect << 5)),
                       std::vector<std::uint8_t>(kBlockSize, 0xFF));
    expect_invalid_cdb_field(t, 1, 7);
  }
  EXPECT_EQ(read_blocks(0, 1), std::vector<std::uint8_t>(kBlockSize, 0));
}

TEST_F(BlockCommandTest, OrWriteLongerThanTheTransferLimitIsAnInvalidField) {
  const std::uint32_t too_many = (16u << 20) / kBlockSize + 1;  // one past MAXIMUM TRANSFER LENGTH
  expect_invalid_cdb_field(run(orwrite(0, too_many)), 10);
}

TEST_F(BlockCommandTest, OrWriteWithFuaReachesTheVolumeAsFuaAndDpoIsAccepted) {
  const std::vector<std::uint8_t> one(kBlockSize, 0x01);
  ASSERT_EQ(run(orwrite(0, 1, kDpo), one).status, Status::Good);
  EXPECT_EQ(volume_.fua_write_count(), 0u);
  ASSERT_EQ(run(orwrite(0, 1, kFua), one).status, Status::Good);
  EXPECT_EQ(volume_.fua_write_count(), 1u);
  ASSERT_EQ(run(orwrite(0, 1, kDpo | kFua), one).status, Status::Good);
  EXPECT_EQ(volume_.fua_write_count(), 2u);
}

TEST_F(BlockCommandTest, OrWriteOfLessDataOutThanTheBlocksOrsWhatArrived) {
  ASSERT_EQ(run(orwrite(4, 2), std::vector<std::uint8_t>(kBlockSize, 0x80)).status, Status::Good);
  std::vector<std::uint8_t> want(2 * kBlockSize, 0x00);
  std::fill(want.begin(), want.begin() + kBlockSize, 0x80);
  EXPECT_EQ(read_blocks(4, 2), want);
  expect_sense(run(orwrite(4, 2), std::vector<std::uint8_t>(kBlockSize + 1, 0x80)), 0x05, 0x0E, 0x03);
}

// COMPARE AND WRITE increments a counter in the first bytes of block 0 while ORWRITE sets one
// bit after another further on in the same block. If an ORWRITE's read and write could straddle
// a COMPARE AND WRITE, one of them would put back what the other replaced: a lost increment or
// a lost bit.
TEST_F(BlockCommandTest, OrWriteIsAtomicAgainstConcurrentCompareAndWrite) {
  SlowReadVolume slow(volume_);
  serve(slow);
  constexpr int kSwapThreads = 2, kIncrements = 40, kOrThreads = 2, kBitsEach = 64;
  constexpr std::size_t kFirstBitByte = 64;
  std::atomic<int> swaps{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kSwapThreads; ++i) {
    threads.emplace_back([&, i] {
      const std::string port = "iqn.swap,i,0x" + std::to_string(i + 1);
      for (int done = 0; done < kIncrements;) {
        const auto current = data_in(run(read16(0, 1), {}, port));
        std::vector<std::uint8_t> out(current);
        out.insert(out.end(), current.begin(), current.end());
        util::put_be32(&out[kBlockSize], util::get_be32(current.data()) + 1);
        if (run(compare_and_write(0, 1), out, port).status == Status::Good) {
          ++done;
          ++swaps;
        }
      }
    });
  }
  for (int i = 0; i < kOrThreads; ++i) {
    threads.emplace_back([&, i] {
      const std::string port = "iqn.or,i,0x" + std::to_string(i + 1);
      for (int k = 0; k < kBitsEach; ++k) {
        const int bit = i * kBitsEach + k;
        std::vector<std::uint8_t> mask(kBlockSize, 0);
        mask[kFirstBitByte + static_cast<std::size_t>(bit / 8)] = static_cast<std::uint8_t>(1u << (bit % 8));
        EXPECT_EQ(run(orwrite(0, 1), mask, port).status, Status::Good);
      }
    });
  }
  for (auto& t : threads) t.join();

  const auto block = read_blocks(0, 1);
  EXPECT_EQ(swaps.load(), kSwapThreads * kIncrements);
  EXPECT_EQ(util::get_be32(block.data()), static_cast<std::uint32_t>(kSwapThreads * kIncrements));
  for (std::size_t b = 0; b < kOrThreads * kBitsEach / 8; ++b) EXPECT_EQ(block[kFirstBitByte + b], 0xFF) << b;
}

// Under a Write Exclusive reservation another initiator may still read, READ DEFECT DATA
// included, but ORWRITE is a write.
TEST_F(BlockCommandTest, ReservationsTakeOrWriteAsAWriteAndReadDefectDataAsARead) {
  const std::string holder = "iqn.a,i,0x1", other = "iqn.b,i,0x1";
  ASSERT_EQ(run(persistent_reserve_out(0x00, 0), keys(0, 0xAB), holder).status, Status::Good);  // REGISTER
  ASSERT_EQ(run(persistent_reserve_out(0x01, 0x01), keys(0xAB, 0), holder).status, Status::Good);  // RESERVE
  const std::vector<std::uint8_t> ones(kBlockSize, 0xFF);
  EXPECT_EQ(run(orwrite(0, 1), ones, other).status, Status::ReservationConflict);
  EXPECT_EQ(run(read_defect_data10(0, 32), {}, other).status, Status::Good);
  EXPECT_EQ(run(read_defect_data12(0, 0, 32), {}, other).status, Status::Good);
  EXPECT_EQ(read_blocks(0, 1), std::vector<std::uint8_t>(kBlockSize, 0));
  EXPECT_EQ(run(orwrite(0, 1), ones, holder).status, Status::Good);
  EXPECT_EQ(read_blocks(0, 1), ones);
}

// ------------------------------------------------------------------------------ READ DEFECT DATA

TEST_F(BlockCommandTest, ReadDefectData10AnswersAnEmptyListInTheRequestedFormat) {
  EXPECT_EQ(data_in(run(read_defect_data10(0, 32))), (std::vector<std::uint8_t>{0, 0x00, 0, 0}));
  EXPECT_EQ(data_in(run(read_defect_data10(kReqPlist | kReqGlist | 0x05, 32))),
            (std::vector<std::uint8_t>{0, 0x1D, 0, 0}));
  EXPECT_EQ(data_in(run(read_defect_data10(kReqGlist | 0x03, 32))), (std::vector<std::uint8_t>{0, 0x0B, 0, 0}));
}

TEST_F(BlockCommandTest, ReadDefectData12AnswersAnEightByteHeaderWhateverTheIndex) {
  EXPECT_EQ(data_in(run(read_defect_data12(0, 0, 32))), std::vector<std::uint8_t>(8, 0));
  EXPECT_EQ(data_in(run(read_defect_data12(kReqPlist | 0x04, 7, 32))),
            (std::vector<std::uint8_t>{0, 0x14, 0, 0, 0, 0, 0, 0}));
}

TEST_F(BlockCommandTest, ReadDefectDataHonoursTheAllocationLength) {
  EXPECT_EQ(data_in(run(read_defect_data10(kReqPlist, 2))), (std::vector<std::uint8_t>{0, 0x10}));
  EXPECT_EQ(data_in(run(read_defect_data12(kReqGlist, 0, 5))), (std::vector<std::uint8_t>{0, 0x08, 0, 0, 0}));
  const Task t = run(read_defect_data10(0, 0));
  EXPECT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_in_length, 0u);
}

TEST_F(BlockCommandTest, ReadDefectDataReservedFormatIsAnInvalidField) {
  expect_invalid_cdb_field(run(read_defect_data10(0x07, 32)), 2, 2);
  expect_invalid_cdb_field(run(read_defect_data12(0x07, 0, 32)), 1, 2);
}

}  // namespace
}  // namespace freevsa::scsi
