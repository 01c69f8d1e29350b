#include <gtest/gtest.h>

#include "util/human_bytes.h"

namespace freevsa::util {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20, kGiB = 1ull << 30;

TEST(HumanBytes, BinaryUnitsWithOneDecimal) {
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(1023), "1023 B");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(431 * kMiB), "431.0 MiB");
  EXPECT_EQ(human_bytes(kGiB - 1), "1.0 GiB");  // not "1024.0 MiB"
  EXPECT_EQ(human_bytes(kGiB), "1.0 GiB");
  EXPECT_EQ(human_bytes(3ull << 40), "3.0 TiB");
}

}  // namespace
}  // namespace freevsa::util
