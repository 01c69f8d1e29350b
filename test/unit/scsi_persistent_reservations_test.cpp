// The persistent reservation rules of SPC-4 5.13 on the plain state machine, and its record.
#include <gtest/gtest.h>

#include <vector>

#include "scsi/persistent_reservations.h"

namespace freevsa::scsi {
namespace {

const Nexus kA{"iqn.a,i,0x01", 1};
const Nexus kB{"iqn.b,i,0x02", 1};
const Nexus kC{"iqn.c,i,0x03", 1};
const std::vector<std::uint16_t> kPorts{1, 2};

PrOutParameters keys(std::uint64_t key, std::uint64_t service_action_key) {
  PrOutParameters p;
  p.key = key;
  p.service_action_key = service_action_key;
  return p;
}

class PrTest : public ::testing::Test {
 protected:
  void reg(const Nexus& n, std::uint64_t key) {
    ASSERT_TRUE(pr.register_key(n, keys(0, key), false, kPorts, notices).ok());
  }
  PersistentReservations pr;
  std::vector<PrNotice> notices;
};

TEST_F(PrTest, RegisterBumpsGenerationAndUnregisterRemoves) {
  reg(kA, 0xA);
  EXPECT_EQ(pr.generation(), 1u);
  ASSERT_NE(pr.find(kA), nullptr);
  EXPECT_EQ(pr.find(kA)->key, 0xAu);
  ASSERT_TRUE(pr.register_key(kA, keys(0xA, 0), false, kPorts, notices).ok());
  EXPECT_EQ(pr.find(kA), nullptr);
  EXPECT_EQ(pr.generation(), 2u);
}

TEST_F(PrTest, RegisterWithWrongKeyConflicts) {
  reg(kA, 0xA);
  EXPECT_TRUE(pr.register_key(kA, keys(0xB, 0xC), false, kPorts, notices).is_reservation_conflict());
  // Unregistered nexus naming a key: conflict too.
  EXPECT_TRUE(pr.register_key(kB, keys(0x1, 0xC), false, kPorts, notices).is_reservation_conflict());
  // REGISTER AND IGNORE EXISTING KEY does not look at the key.
  EXPECT_TRUE(pr.register_key(kA, keys(0xB, 0xC), true, kPorts, notices).ok());
  EXPECT_EQ(pr.find(kA)->key, 0xCu);
}

TEST_F(PrTest, AllTargetPortsRegistersEveryPort) {
  PrOutParameters p = keys(0, 0xA);
  p.all_target_ports = true;
  ASSERT_TRUE(pr.register_key(kA, p, false, kPorts, notices).ok());
  ASSERT_EQ(pr.registrations().size(), 2u);
  EXPECT_NE(pr.find(Nexus{kA.initiator, 2}), nullptr);
  EXPECT_TRUE(pr.find(Nexus{kA.initiator, 2})->all_target_ports);
}

TEST_F(PrTest, ReserveNeedsRegistrationAndMatchingKey) {
  EXPECT_TRUE(pr.reserve(kA, keys(0xA, 0), PrType::WriteExclusive).is_reservation_conflict());
  reg(kA, 0xA);
  EXPECT_TRUE(pr.reserve(kA, keys(0xB, 0), PrType::WriteExclusive).is_reservation_conflict());
  ASSERT_TRUE(pr.reserve(kA, keys(0xA, 0), PrType::WriteExclusive).ok());
  EXPECT_TRUE(pr.holds(kA));
  // Same type again: GOOD; another type: conflict; another nexus: conflict.
  EXPECT_TRUE(pr.reserve(kA, keys(0xA, 0), PrType::WriteExclusive).ok());
  EXPECT_TRUE(pr.reserve(kA, keys(0xA, 0), PrType::ExclusiveAccess).is_reservation_conflict());
  reg(kB, 0xB);
  EXPECT_TRUE(pr.reserve(kB, keys(0xB, 0), PrType::WriteExclusive).is_reservation_conflict());
}

TEST_F(PrTest, ConflictsFollowTheTypeTable) {
  struct Row {
    PrType type;
    bool registered_reads, registered_writes, other_reads, other_writes;
  };
  // SPC-4 table 67 from the point of view of a nexus other than the holder.
  const Row rows[] = {
      {PrType::WriteExclusive, true, false, true, false},
      {PrType::ExclusiveAccess, false, false, false, false},
      {PrType::WriteExclusiveRegistrantsOnly, true, true, true, false},
      {PrType::ExclusiveAccessRegistrantsOnly, true, true, false, false},
      {PrType::WriteExclusiveAllRegistrants, true, true, true, false},
      {PrType::ExclusiveAccessAllRegistrants, true, true, false, false},
  };
  for (const Row& row : rows) {
    PersistentReservations state;
    std::vector<PrNotice> n;
    ASSERT_TRUE(state.register_key(kA, keys(0, 0xA), false, kPorts, n).ok());
    ASSERT_TRUE(state.register_key(kB, keys(0, 0xB), false, kPorts, n).ok());
    ASSERT_TRUE(state.reserve(kA, keys(0xA, 0), row.type).ok());
    SCOPED_TRACE(static_cast<int>(row.type));
    EXPECT_FALSE(state.conflicts(kA, MediumUse::Write));
    EXPECT_EQ(!state.conflicts(kB, MediumUse::Read), row.registered_reads);
    EXPECT_EQ(!state.conflicts(kB, MediumUse::Write), row.registered_writes);
    EXPECT_EQ(!state.conflicts(kC, MediumUse::Read), row.other_reads);
    EXPECT_EQ(!state.conflicts(kC, MediumUse::Write), row.other_writes);
  }
}

TEST_F(PrTest, ReleaseByHolderOnlyAndWithTheSameType) {
  reg(kA, 0xA);
  reg(kB, 0xB);
  ASSERT_TRUE(pr.reserve(kA, keys(0xA, 0), PrType::WriteExclusiveRegistrantsOnly).ok());
  // A registrant that is not the holder: GOOD, nothing changes.
  EXPECT_TRUE(pr.release(kB, keys(0xB, 0), PrType::WriteExclusiveRegistrantsOnly, notices).ok());
  EXPECT_TRUE(pr.reservation().has_value());
  const Result wrong_type = pr.release(kA, keys(0xA, 0), PrType::WriteExclusive, notices);
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.sense(), Sense::invalid_release_of_persistent_reservation());
  ASSERT_TRUE(pr.release(kA, keys(0xA, 0), PrType::WriteExclusiveRegistrantsOnly, notices).ok());
  EXPECT_FALSE(pr.reservation().has_value());
  // Releasing a registrants-only reservation tells the other registrants (2A/04).
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].nexus, kB);
  EXPECT_EQ(notices[0].ascq, 0x04);
}

TEST_F(PrTest, UnregisteringTheHolderReleasesTheReservation) {
  reg(kA, 0xA);
  ASSERT_TRUE(pr.reserve(kA, keys(0xA, 0), PrType::ExclusiveAccess).ok());
  ASSERT_TRUE(pr.register_key(kA, keys(0xA, 0), false, kPorts, notices).ok());
  EXPECT_FALSE(pr.reservation().has_value());
}

TEST_F(PrTest, AllRegistrantsReservationLastsWhileAnyoneIsRegistered) {
  reg(kA, 0xA);
  reg(kB, 0xB);
  ASSERT_TRUE(pr.reserve(kA, keys(0xA, 0), PrType::ExclusiveAccessAllRegistrants).ok());
  EXPECT_TRUE(pr.holds(kB));
  ASSERT_TRUE(pr.register_key(kA, keys(0xA, 0), false, kPorts, notices).ok());
  EXPECT_TRUE(pr.reservation().has_value());
  ASSERT_TRUE(pr.register_key(kB, keys(0xB, 0), false, kPorts, notices).ok());
  EXPECT_FALSE(pr.reservation().has_value());
}

TEST_F(PrTest, ClearRemovesEverythingAndNotifiesTheOthers) {
  reg(kA, 0xA);
  reg(kB, 0xB);
  ASSERT_TRUE(pr.reserve(kA, keys(0xA, 0), PrType::WriteExclusive).ok());
  ASSERT_TRUE(pr.clear(kB, keys(0xB, 0), notices).ok());
  EXPECT_TRUE(pr.empty());
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].nexus, kA);
  EXPECT_EQ(notices[0].ascq, 0x03);
}

TEST_F(PrTest, PreemptTheHolderTakesTheReservation) {
  reg(kA, 0xA);
  reg(kB, 0xB);
  ASSERT_TRUE(pr.reserve(kA, keys(0xA, 0), PrType::WriteExclusive).ok());
  const auto generation = pr.generation();
  ASSERT_TRUE(pr.preempt(kB, keys(0xB, 0xA), PrType::ExclusiveAccess, notices).ok());
  EXPECT_EQ(pr.find(kA), nullptr);
  ASSERT_TRUE(pr.reservation().has_value());
  EXPECT_EQ(pr.reservation()->holder, kB);
  EXPECT_EQ(pr.reservation()->type, PrType::ExclusiveAccess);
  EXPECT_EQ(pr.generation(), generation + 1);
  ASSERT_FALSE(notices.empty());
  EXPECT_EQ(notices[0].nexus, kA);
  EXPECT_EQ(notices[0].ascq, 0x05);
}

TEST_F(PrTest, PreemptWithoutReservationRemovesRegistrations) {
  reg(kA, 0xA);
  reg(kB, 0xB);
  ASSERT_TRUE(pr.preempt(kB, keys(0xB, 0xA), PrType::ExclusiveAccess, notices).ok());
  EXPECT_EQ(pr.find(kA), nullptr);
  EXPECT_FALSE(pr.reservation().has_value());
  // Nobody holds that key: conflict; key 0 without an all-registrants reservation: invalid.
  EXPECT_TRUE(pr.preempt(kB, keys(0xB, 0x77), PrType::ExclusiveAccess, notices).is_reservation_conflict());
  const Result zero = pr.preempt(kB, keys(0xB, 0), PrType::ExclusiveAccess, notices);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.sense().asc, 0x26);
}

TEST_F(PrTest, PreemptAllRegistrantsWithKeyZeroLeavesOnlyThePreempter) {
  reg(kA, 0xA);
  reg(kB, 0xB);
  reg(kC, 0xC);
  ASSERT_TRUE(pr.reserve(kA, keys(0xA, 0), PrType::WriteExclusiveAllRegistrants).ok());
  ASSERT_TRUE(pr.preempt(kC, keys(0xC, 0), PrType::WriteExclusive, notices).ok());
  ASSERT_EQ(pr.registrations().size(), 1u);
  EXPECT_EQ(pr.reservation()->holder, kC);
  EXPECT_EQ(pr.reservation()->type, PrType::WriteExclusive);
  EXPECT_EQ(notices.size(), 2u);
}

TEST_F(PrTest, RegisterAndMoveHandsTheReservationOver) {
  reg(kA, 0xA);
  ASSERT_TRUE(pr.reserve(kA, keys(0xA, 0), PrType::WriteExclusive).ok());
  PrOutParameters p = keys(0xA, 0xD);
  p.move_to = kB;
  p.unregister = true;
  ASSERT_TRUE(pr.register_and_move(kA, p, notices).ok());
  EXPECT_EQ(pr.find(kA), nullptr);
  ASSERT_NE(pr.find(kB), nullptr);
  EXPECT_EQ(pr.find(kB)->key, 0xDu);
  EXPECT_EQ(pr.reservation()->holder, kB);
  // Only the holder may move it.
  p.move_to = kC;
  EXPECT_TRUE(pr.register_and_move(kA, p, notices).is_reservation_conflict());
}

TEST_F(PrTest, RecordRoundTripsAndRejectsDamage) {
  PrOutParameters p = keys(0, 0xA);
  p.aptpl = true;
  p.all_target_ports = true;
  ASSERT_TRUE(pr.register_key(kA, p, false, kPorts, notices).ok());
  reg(kB, 0xB);
  ASSERT_TRUE(pr.reserve(kB, keys(0xB, 0), PrType::ExclusiveAccessRegistrantsOnly).ok());
  const auto record = pr.encode();
  PersistentReservations copy;
  ASSERT_TRUE(copy.decode(record));
  EXPECT_EQ(copy, pr);
  for (std::size_t cut = 0; cut < record.size(); ++cut) {
    PersistentReservations partial;
    EXPECT_FALSE(partial.decode({record.data(), cut == 0 ? 1 : cut})) << cut;
  }
  auto bad_version = record;
  bad_version[0] = 9;
  EXPECT_FALSE(copy.decode(bad_version));
  EXPECT_EQ(copy, pr);  // a failed decode changes nothing
  ASSERT_TRUE(copy.decode({}));
  EXPECT_TRUE(copy.empty());
}

TEST_F(PrTest, RegistrationsBeyondTheRecordLimitAreRefused) {
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    const Nexus n{"iqn.2026-01.org.example.a-rather-long-initiator-name-" + std::to_string(i) + ",i,0x1", 1};
    const Result r = pr.register_key(n, keys(0, 1 + i), false, kPorts, notices);
    if (!r.ok()) {
      EXPECT_EQ(r.sense(), Sense::insufficient_registration_resources());
      refused = true;
    }
  }
  EXPECT_TRUE(refused);
  EXPECT_LE(pr.encode().size(), PersistentReservations::kMaxRecordBytes);
}

}  // namespace
}  // namespace freevsa::scsi
