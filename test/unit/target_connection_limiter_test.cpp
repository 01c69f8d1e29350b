// Caps on connections per portal and per initiator address.
#include <gtest/gtest.h>

#include <vector>

#include "target/connection_limiter.h"

namespace freevsa::target {
namespace {

using Verdict = ConnectionLimiter::Verdict;

TEST(ConnectionLimiter, AnAddressBeyondItsCapIsRefusedOthersAreNot) {
  ConnectionLimiter limiter(1, 10, 2);
  auto a1 = limiter.admit(0, "10.0.0.1");
  auto a2 = limiter.admit(0, "10.0.0.1");
  EXPECT_EQ(a1.verdict, Verdict::Admitted);
  EXPECT_EQ(a2.verdict, Verdict::Admitted);
  auto a3 = limiter.admit(0, "10.0.0.1");
  EXPECT_EQ(a3.verdict, Verdict::AddressFull);
  EXPECT_FALSE(a3.ticket);
  EXPECT_EQ(limiter.admit(0, "10.0.0.2").verdict, Verdict::Admitted);
  EXPECT_EQ(limiter.from_address("10.0.0.1"), 2u);
}

TEST(ConnectionLimiter, APortalBeyondItsCapIsRefused) {
  ConnectionLimiter limiter(2, 3, 100);
  std::vector<ConnectionLimiter::Ticket> held;
  for (int i = 0; i < 3; ++i) held.push_back(limiter.admit(0, "10.0.0." + std::to_string(i)).ticket);
  EXPECT_EQ(limiter.admit(0, "10.0.0.9").verdict, Verdict::PortalFull);
  EXPECT_EQ(limiter.admit(1, "10.0.0.9").verdict, Verdict::Admitted);  // the other portal counts apart
  EXPECT_EQ(limiter.on_portal(0), 3u);
  // A refused connection took nothing.
  EXPECT_EQ(limiter.from_address("10.0.0.9"), 0u);
}

TEST(ConnectionLimiter, AReleasedTicketMakesRoom) {
  ConnectionLimiter limiter(1, 1, 1);
  auto first = limiter.admit(0, "10.0.0.1");
  EXPECT_EQ(limiter.admit(0, "10.0.0.1").verdict, Verdict::PortalFull);
  ConnectionLimiter::Ticket moved = std::move(first.ticket);
  EXPECT_EQ(limiter.on_portal(0), 1u);  // moving does not release
  moved.reset();
  EXPECT_EQ(limiter.on_portal(0), 0u);
  EXPECT_EQ(limiter.from_address("10.0.0.1"), 0u);
  {
    auto again = limiter.admit(0, "10.0.0.1");
    EXPECT_EQ(again.verdict, Verdict::Admitted);
  }
  EXPECT_EQ(limiter.on_portal(0), 0u);  // released when destroyed
}

}  // namespace
}  // namespace freevsa::target
