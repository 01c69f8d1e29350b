// CRC32C against the published vectors of RFC 3720 appendix B.4 (the same CRC RFC 7143 uses).
#include <gtest/gtest.h>

#include <numeric>
#include <random>
#include <vector>

#include "util/crc32c.h"

namespace freevsa::util {
namespace {

std::uint32_t both_paths(const std::vector<std::uint8_t>& data) {
  const std::uint32_t portable = crc32c_extend_portable(0, data.data(), data.size());
  EXPECT_EQ(portable, crc32c(data)) << "hardware and portable CRC32C disagree";
  return portable;
}

TEST(Crc32c, ThirtyTwoZeroBytes) { EXPECT_EQ(both_paths(std::vector<std::uint8_t>(32, 0x00)), 0x8a9136aau); }

TEST(Crc32c, ThirtyTwoOnesBytes) { EXPECT_EQ(both_paths(std::vector<std::uint8_t>(32, 0xff)), 0x62a8ab43u); }

TEST(Crc32c, ThirtyTwoIncrementingBytes) {
  std::vector<std::uint8_t> data(32);
  std::iota(data.begin(), data.end(), 0);
  EXPECT_EQ(both_paths(data), 0x46dd794eu);
}

TEST(Crc32c, ThirtyTwoDecrementingBytes) {
  std::vector<std::uint8_t> data(32);
  for (int i = 0; i < 32; ++i) data[i] = static_cast<std::uint8_t>(31 - i);
  EXPECT_EQ(both_paths(data), 0x113fdb5cu);
}

TEST(Crc32c, IscsiReadCommandPdu) {
  const std::vector<std::uint8_t> pdu = {
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
      0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  EXPECT_EQ(both_paths(pdu), 0xd9963a56u);
}

TEST(Crc32c, ExtendingInPiecesEqualsOneRun) {
  std::mt19937 random(7);
  std::vector<std::uint8_t> data(10007);
  for (auto& b : data) b = static_cast<std::uint8_t>(random());
  const std::uint32_t whole = crc32c(data);
  for (std::size_t split : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, std::size_t{10006}}) {
    std::uint32_t crc = crc32c_extend(0, data.data(), split);
    crc = crc32c_extend(crc, data.data() + split, data.size() - split);
    EXPECT_EQ(crc, whole) << "split at " << split;
  }
}

TEST(Crc32c, LongBuffersOfEveryShapeAgreeWithPortable) {
  // The hardware path runs three interleaved lanes over 6 KiB blocks: lengths around the block
  // size, several blocks, and unaligned starts and continuations.
  std::mt19937 random(11);
  std::vector<std::uint8_t> data(64 * 1024 + 17);
  for (auto& b : data) b = static_cast<std::uint8_t>(random());
  for (std::size_t length : {std::size_t{6143}, std::size_t{6144}, std::size_t{6145}, std::size_t{12288},
                             std::size_t{12300}, std::size_t{65536}, data.size() - 9}) {
    for (std::size_t start : {std::size_t{0}, std::size_t{1}, std::size_t{5}}) {
      for (std::uint32_t seed : {0u, 0xdeadbeefu}) {
        EXPECT_EQ(crc32c_extend(seed, data.data() + start, length),
                  crc32c_extend_portable(seed, data.data() + start, length))
            << "length " << length << " start " << start << " seed " << seed;
      }
    }
  }
}

TEST(Crc32c, UnalignedStartsAgreeWithPortable) {
  std::vector<std::uint8_t> data(300);
  std::iota(data.begin(), data.end(), 3);
  for (std::size_t start = 0; start < 9; ++start) {
    EXPECT_EQ(crc32c_extend(0, data.data() + start, data.size() - start),
              crc32c_extend_portable(0, data.data() + start, data.size() - start));
  }
}

}  // namespace
}  // namespace freevsa::util
