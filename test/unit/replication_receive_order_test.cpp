// The order in which a secondary applies what its primary sends: overlapping items in arrival
// order, later epochs after earlier ones, everything else at once.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "replication/receive_order.h"

namespace freevsa::replication {
namespace {

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;

// Records which items started, in the order their start callbacks ran.
struct Starts {
  std::vector<ReceiveOrder::Ticket> tickets;
  ReceiveOrder::Start record() {
    return [this](ReceiveOrder::Ticket t) { tickets.push_back(t); };
  }
  bool started(ReceiveOrder::Ticket t) const {
    for (auto s : tickets)
      if (s == t) return true;
    return false;
  }
};

TEST(ReceiveOrder, NonOverlappingItemsOfOneEpochStartAtOnce) {
  ReceiveOrder order;
  Starts starts;
  const auto a = order.submit(0, 4 * KiB, 0, starts.record());
  const auto b = order.submit(4 * KiB, 4 * KiB, 0, starts.record());
  const auto c = order.submit(1024 * KiB, 64 * KiB, 0, starts.record());
  EXPECT_EQ(starts.tickets, (std::vector<ReceiveOrder::Ticket>{a, b, c}));
  EXPECT_EQ(order.pending(), 3u);
}

TEST(ReceiveOrder, EveryItemGetsItsOwnTicket) {
  ReceiveOrder order;
  Starts starts;
  const auto a = order.submit(0, 512, 0, starts.record());
  const auto b = order.submit(0, 512, 0, starts.record());
  EXPECT_NE(a, b);
}

TEST(ReceiveOrder, OverlappingLaterItemWaitsForTheEarlierOneToComplete) {
  ReceiveOrder order;
  Starts starts;
  const auto first = order.submit(0, 8 * KiB, 0, starts.record());
  const auto second = order.submit(4 * KiB, 8 * KiB, 0, starts.record());
  EXPECT_TRUE(starts.started(first));
  EXPECT_FALSE(starts.started(second)) << "an overlapping write would be applied before the earlier one";
  order.complete(first);
  EXPECT_TRUE(starts.started(second));
}

TEST(ReceiveOrder, AdjacentRangesDoNotCountAsOverlapping) {
  ReceiveOrder order;
  Starts starts;
  order.submit(4 * KiB, 4 * KiB, 0, starts.record());
  const auto before = order.submit(0, 4 * KiB, 0, starts.record());
  const auto after = order.submit(8 * KiB, 4 * KiB, 0, starts.record());
  EXPECT_TRUE(starts.started(before));
  EXPECT_TRUE(starts.started(after));
}

TEST(ReceiveOrder, ItemInsideAnEarlierRangeWaits) {
  ReceiveOrder order;
  Starts starts;
  const auto big = order.submit(0, 1024 * KiB, 0, starts.record());
  const auto small = order.submit(512 * KiB, 512, 0, starts.record());
  EXPECT_FALSE(starts.started(small));
  order.complete(big);
  EXPECT_TRUE(starts.started(small));
}

TEST(ReceiveOrder, LaterEpochWaitsForEveryItemOfEarlierEpochs) {
  ReceiveOrder order;
  Starts starts;
  const auto a = order.submit(0, 4 * KiB, 1, starts.record());
  const auto b = order.submit(64 * KiB, 4 * KiB, 1, starts.record());
  const auto c = order.submit(1024 * KiB, 4 * KiB, 2, starts.record());  // overlaps neither
  EXPECT_TRUE(starts.started(a));
  EXPECT_TRUE(starts.started(b));
  EXPECT_FALSE(starts.started(c));
  order.complete(a);
  EXPECT_FALSE(starts.started(c)) << "epoch 2 started while an epoch-1 item was still running";
  order.complete(b);
  EXPECT_TRUE(starts.started(c));
}

TEST(ReceiveOrder, LaterEpochWaitsForAnEarlierEpochItemThatIsItselfStillWaiting) {
  ReceiveOrder order;
  Starts starts;
  const auto a = order.submit(0, 4 * KiB, 1, starts.record());
  const auto b = order.submit(0, 4 * KiB, 1, starts.record());           // waits for a
  const auto c = order.submit(512 * KiB, 4 * KiB, 2, starts.record());  // waits for a and b
  order.complete(a);
  EXPECT_TRUE(starts.started(b));
  EXPECT_FALSE(starts.started(c));
  order.complete(b);
  EXPECT_TRUE(starts.started(c));
}

TEST(ReceiveOrder, ItemsOfOneEpochDoNotWaitForALaterEpoch) {
  ReceiveOrder order;
  Starts starts;
  order.submit(0, 4 * KiB, 2, starts.record());
  // Resync data carries the secondary's own epoch, which may be behind the primary's.
  const auto older = order.submit(64 * KiB, 4 * KiB, 1, starts.record());
  EXPECT_TRUE(starts.started(older));
}

TEST(ReceiveOrder, WaitingItemsAreReleasedInArrivalOrder) {
  ReceiveOrder order;
  Starts starts;
  const auto a = order.submit(0, 4 * KiB, 0, starts.record());
  const auto b = order.submit(0, 4 * KiB, 0, starts.record());
  const auto c = order.submit(0, 4 * KiB, 0, starts.record());
  order.complete(a);
  EXPECT_TRUE(starts.started(b));
  EXPECT_FALSE(starts.started(c)) << "c overlaps b, which arrived before it and has not completed";
  order.complete(b);
  EXPECT_EQ(starts.tickets, (std::vector<ReceiveOrder::Ticket>{a, b, c}));
}

TEST(ReceiveOrder, ItemsFreedByOneCompletionStartInArrivalOrder) {
  ReceiveOrder order;
  Starts starts;
  const auto gate = order.submit(0, 64 * KiB, 0, starts.record());
  const auto b = order.submit(8 * KiB, 4 * KiB, 0, starts.record());
  const auto c = order.submit(0, 4 * KiB, 0, starts.record());
  const auto d = order.submit(32 * KiB, 4 * KiB, 0, starts.record());
  order.complete(gate);
  EXPECT_EQ(starts.tickets, (std::vector<ReceiveOrder::Ticket>{gate, b, c, d}));
}

TEST(ReceiveOrder, OneCompletionReleasesTheOverlapFirstAndTheNextEpochAfterIt) {
  ReceiveOrder order;
  Starts starts;
  const auto gate = order.submit(0, 64 * KiB, 1, starts.record());
  const auto c = order.submit(0, 4 * KiB, 1, starts.record());
  const auto b = order.submit(64 * KiB, 4 * KiB, 2, starts.record());
  const auto d = order.submit(128 * KiB, 4 * KiB, 2, starts.record());
  order.complete(gate);
  EXPECT_EQ(starts.tickets, (std::vector<ReceiveOrder::Ticket>{gate, c}))
      << "epoch 2 started while c of epoch 1 was running";
  order.complete(c);
  EXPECT_EQ(starts.tickets, (std::vector<ReceiveOrder::Ticket>{gate, c, b, d}));
}

TEST(ReceiveOrder, CompletingAStillWaitingItemsPredecessorOutOfOrderKeepsTheOverlapRule) {
  ReceiveOrder order;
  Starts starts;
  const auto a = order.submit(0, 4 * KiB, 0, starts.record());
  const auto b = order.submit(8 * KiB, 4 * KiB, 0, starts.record());
  const auto c = order.submit(0, 12 * KiB, 0, starts.record());  // overlaps a and b
  order.complete(b);
  EXPECT_FALSE(starts.started(c));
  order.complete(a);
  EXPECT_TRUE(starts.started(c));
}

TEST(ReceiveOrder, CompletingAnUnknownTicketChangesNothing) {
  ReceiveOrder order;
  Starts starts;
  const auto a = order.submit(0, 4 * KiB, 0, starts.record());
  const auto b = order.submit(0, 4 * KiB, 0, starts.record());
  order.complete(a + b + 100);
  EXPECT_FALSE(starts.started(b));
  EXPECT_EQ(order.pending(), 2u);
}

TEST(ReceiveOrder, CompletingTheSameTicketTwiceReleasesOnlyOnce) {
  ReceiveOrder order;
  Starts starts;
  const auto a = order.submit(0, 4 * KiB, 0, starts.record());
  const auto b = order.submit(0, 4 * KiB, 0, starts.record());
  const auto c = order.submit(0, 4 * KiB, 0, starts.record());
  order.complete(a);
  order.complete(a);  // a late duplicate must not stand in for b
  EXPECT_TRUE(starts.started(b));
  EXPECT_FALSE(starts.started(c));
}

TEST(ReceiveOrder, ClearWaitingForgetsTheItemsThatHaveNotStarted) {
  ReceiveOrder order;
  Starts starts;
  const auto running = order.submit(0, 4 * KiB, 1, starts.record());
  const auto waiting = order.submit(0, 4 * KiB, 1, starts.record());
  order.clear_waiting();  // the link went down
  EXPECT_EQ(order.pending(), 1u);
  order.complete(waiting);  // a late completion of a forgotten item changes nothing
  EXPECT_FALSE(starts.started(waiting));
  order.complete(running);
  EXPECT_EQ(order.pending(), 0u);
}

TEST(ReceiveOrder, AStartedItemOfTheOldLinkHoldsBackOverlappingItemsOfTheNew) {
  // The old link's write is still being applied; resync data for the same block from the next
  // connection must not land before it (it would be overwritten by older data).
  ReceiveOrder order;
  Starts starts;
  const auto old_write = order.submit(0, 4 * KiB, 7, starts.record());
  order.clear_waiting();
  const auto fresh = order.submit(0, 4 * KiB, 0, starts.record());
  const auto elsewhere = order.submit(1 * MiB, 4 * KiB, 0, starts.record());
  EXPECT_NE(fresh, old_write);
  EXPECT_FALSE(starts.started(fresh));
  EXPECT_TRUE(starts.started(elsewhere));
  order.complete(old_write);
  EXPECT_TRUE(starts.started(fresh));
}

TEST(ReceiveOrder, StartThatCompletesSynchronouslyOnSubmitLeavesNothingPending) {
  ReceiveOrder order;
  std::vector<ReceiveOrder::Ticket> ran;
  ReceiveOrder::Start complete_now = [&](ReceiveOrder::Ticket t) {
    ran.push_back(t);
    order.complete(t);
  };
  const auto a = order.submit(0, 4 * KiB, 0, complete_now);
  const auto b = order.submit(0, 4 * KiB, 0, complete_now);
  EXPECT_EQ(ran, (std::vector<ReceiveOrder::Ticket>{a, b}));
  EXPECT_EQ(order.pending(), 0u);
}

TEST(ReceiveOrder, StartThatCompletesSynchronouslyWhenReleasedReleasesTheNextToo) {
  ReceiveOrder order;
  std::vector<ReceiveOrder::Ticket> ran;
  Starts held;
  ReceiveOrder::Start complete_now = [&](ReceiveOrder::Ticket t) {
    ran.push_back(t);
    order.complete(t);
  };
  const auto gate = order.submit(0, 8 * KiB, 0, held.record());
  // b and c wait for the gate; d waits for b; e is in a later epoch and waits for all of them.
  const auto b = order.submit(0, 4 * KiB, 0, complete_now);
  const auto c = order.submit(4 * KiB, 4 * KiB, 0, complete_now);
  const auto d = order.submit(0, 4 * KiB, 0, complete_now);
  const auto e = order.submit(1024 * KiB, 4 * KiB, 1, complete_now);
  EXPECT_TRUE(ran.empty());
  order.complete(gate);
  EXPECT_EQ(order.pending(), 0u) << "an item stayed in the list after its start completed it";
  ASSERT_EQ(ran.size(), 4u);
  // Each ran exactly once, and every ordering rule held: d after b, e after all of epoch 0.
  auto position = [&](ReceiveOrder::Ticket t) { return std::find(ran.begin(), ran.end(), t) - ran.begin(); };
  EXPECT_LT(position(b), position(d));
  EXPECT_EQ(position(e), 3);
  std::vector<ReceiveOrder::Ticket> sorted = ran;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<ReceiveOrder::Ticket>{b, c, d, e}));
}

TEST(ReceiveOrder, SynchronousCompletionAmongWaitingItemsStartsEachExactlyOnce) {
  ReceiveOrder order;
  std::vector<ReceiveOrder::Ticket> ran;
  Starts held;
  ReceiveOrder::Start complete_now = [&](ReceiveOrder::Ticket t) {
    ran.push_back(t);
    order.complete(t);
  };
  const auto gate = order.submit(0, 4 * KiB, 0, held.record());
  const auto sync = order.submit(0, 4 * KiB, 0, complete_now);
  const auto async = order.submit(0, 4 * KiB, 0, held.record());
  order.complete(gate);
  EXPECT_EQ(ran, (std::vector<ReceiveOrder::Ticket>{sync}));
  EXPECT_EQ(held.tickets, (std::vector<ReceiveOrder::Ticket>{gate, async}));
  EXPECT_EQ(order.pending(), 1u);
  order.complete(async);
  EXPECT_EQ(order.pending(), 0u);
}

}  // namespace
}  // namespace freevsa::replication
