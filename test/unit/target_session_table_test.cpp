#include <gtest/gtest.h>

#include <set>

#include "target/session_table.h"

namespace freevsa::target {
namespace {

TEST(SessionTable, AllocatesDistinctNonZeroTsihs) {
  SessionTable table;
  std::set<std::uint16_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::uint16_t tsih = table.allocate_tsih();
    EXPECT_NE(tsih, 0);
    EXPECT_TRUE(seen.insert(tsih).second) << "TSIH " << tsih << " handed out twice";
  }
}

TEST(SessionTable, ReinstatementReplacesTheSessionWithTheSameKey) {
  SessionTable table;
  const std::uint16_t first = table.allocate_tsih();
  EXPECT_EQ(table.register_session("iqn.a,400001370000,iqn.t", first, {}), nullptr);
  const std::uint16_t second = table.allocate_tsih();
  table.register_session("iqn.a,400001370000,iqn.t", second, {});
  EXPECT_EQ(table.size(), 1u);
  // The replaced session's late unregister must not remove its replacement.
  table.unregister_session("iqn.a,400001370000,iqn.t", first);
  EXPECT_EQ(table.size(), 1u);
  table.unregister_session("iqn.a,400001370000,iqn.t", second);
  EXPECT_EQ(table.size(), 0u);
}

TEST(SessionTable, DifferentIsidsAreDifferentSessions) {
  SessionTable table;
  table.register_session("iqn.a,400001370000,iqn.t", table.allocate_tsih(), {});
  table.register_session("iqn.a,400001370001,iqn.t", table.allocate_tsih(), {});
  EXPECT_EQ(table.size(), 2u);
}

}  // namespace
}  // namespace freevsa::target
