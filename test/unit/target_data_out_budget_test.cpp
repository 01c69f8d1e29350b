// The Data-Out budgets: per connection and per process, taken together, given back by the grant.
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

#include "target/data_out_budget.h"

namespace freevsa::target {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;

TEST(DataOutBudget, TakesUpToTheLimitAndNoMore) {
  DataOutBudget budget(100);
  EXPECT_TRUE(budget.try_take(60));
  EXPECT_FALSE(budget.try_take(41));
  EXPECT_TRUE(budget.try_take(40));
  EXPECT_EQ(budget.in_use(), 100u);
  EXPECT_FALSE(budget.try_take(1));
  budget.give_back(60);
  EXPECT_TRUE(budget.try_take(1));
  EXPECT_FALSE(budget.try_take(~std::uint64_t{0}));  // no wrap-around
}

TEST(DataOutGrant, TheConnectionBoundStopsOneConnection) {
  auto process = std::make_shared<DataOutBudget>(1024 * kMiB);
  auto connection = std::make_shared<DataOutBudget>(256 * kMiB);
  std::vector<DataOutGrant> held;
  for (int i = 0; i < 512; ++i) {
    if (auto grant = DataOutGrant::take(connection, process, 64 * kMiB)) held.push_back(std::move(*grant));
  }
  EXPECT_EQ(held.size(), 4u);
  EXPECT_EQ(process->in_use(), 256 * kMiB);
  // Another connection still gets its share of the process's budget.
  auto other = std::make_shared<DataOutBudget>(256 * kMiB);
  EXPECT_TRUE(DataOutGrant::take(other, process, 64 * kMiB).has_value());
}

TEST(DataOutGrant, TheProcessBoundStopsAllConnections) {
  auto process = std::make_shared<DataOutBudget>(128 * kMiB);
  auto a = std::make_shared<DataOutBudget>(128 * kMiB);
  auto b = std::make_shared<DataOutBudget>(128 * kMiB);
  auto held = DataOutGrant::take(a, process, 100 * kMiB);
  ASSERT_TRUE(held.has_value());
  EXPECT_FALSE(DataOutGrant::take(b, process, 64 * kMiB).has_value());
  // A refusal takes nothing from the connection either.
  EXPECT_EQ(b->in_use(), 0u);
  held.reset();
  EXPECT_EQ(process->in_use(), 0u);
  EXPECT_EQ(a->in_use(), 0u);
  EXPECT_TRUE(DataOutGrant::take(b, process, 64 * kMiB).has_value());
}

TEST(DataOutGrant, MovingKeepsTheBytesTakenOnce) {
  auto process = std::make_shared<DataOutBudget>(100);
  auto connection = std::make_shared<DataOutBudget>(100);
  DataOutGrant target;
  {
    auto grant = DataOutGrant::take(connection, process, 70);
    ASSERT_TRUE(grant.has_value());
    target = std::move(*grant);
  }
  EXPECT_EQ(target.bytes(), 70u);
  EXPECT_EQ(process->in_use(), 70u);
  EXPECT_EQ(connection->in_use(), 70u);
  target = DataOutGrant();
  EXPECT_EQ(process->in_use(), 0u);
  EXPECT_EQ(connection->in_use(), 0u);
}

TEST(DataOutGrant, AGrantKeepsItsBudgetAlive) {
  auto process = std::make_shared<DataOutBudget>(100);
  auto connection = std::make_shared<DataOutBudget>(100);
  auto grant = DataOutGrant::take(connection, process, 10);
  ASSERT_TRUE(grant.has_value());
  std::weak_ptr<DataOutBudget> watch = connection;
  connection.reset();  // the connection is gone; a task on a worker still holds its grant
  EXPECT_FALSE(watch.expired());
  grant.reset();
  EXPECT_TRUE(watch.expired());
  EXPECT_EQ(process->in_use(), 0u);
}

}  // namespace
}  // namespace freevsa::target
