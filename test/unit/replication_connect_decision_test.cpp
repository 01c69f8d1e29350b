// What two replicas decide when they meet: who is the resync source, and which meetings are
// refused (two primaries, split brain, unrelated data, no complete copy on either side).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "replication/connect_decision.h"

namespace freevsa::replication {
namespace {

ConnectSide side(Generations g, DiskState disk, bool primary = false) { return ConnectSide{g, disk, primary}; }

Generations gens(std::uint64_t current, std::uint64_t bitmap = 0, std::uint64_t h0 = 0, std::uint64_t h1 = 0) {
  Generations g;
  g.current = current;
  g.bitmap = bitmap;
  g.history = {h0, h1};
  return g;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---- two primaries

TEST(ConnectDecision, TwoPrimariesAreRefusedAsSplitBrain) {
  const auto a = side(gens(100), DiskState::UpToDate, true);
  const auto b = side(gens(100), DiskState::UpToDate, true);
  const ConnectDecision d = decide_connect(a, b, true);
  EXPECT_FALSE(d.refusal.empty());
  EXPECT_TRUE(d.split_brain);
  EXPECT_TRUE(contains(d.refusal, "both nodes are primary")) << d.refusal;
}

TEST(ConnectDecision, TwoPrimariesAreRefusedEvenWithIdenticalFreshData) {
  const auto a = side(gens(kFreshAndEmpty), DiskState::UpToDate, true);
  const auto b = side(gens(kFreshAndEmpty), DiskState::UpToDate, true);
  EXPECT_TRUE(decide_connect(a, b, false).split_brain);
  EXPECT_TRUE(decide_connect(b, a, true).split_brain);
}

// ---- an UpToDate replica meets an Inconsistent one

TEST(ConnectDecision, UpToDateMeetingInconsistentOfTheSameGenerationIsBitmapSource) {
  // The inconsistent side is a resync target that stopped half way: its bitmap names the rest.
  const auto good = side(gens(100), DiskState::UpToDate, true);
  const auto bad = side(gens(100), DiskState::Inconsistent);
  const ConnectDecision d = decide_connect(good, bad, true);
  EXPECT_TRUE(d.refusal.empty()) << d.refusal;
  EXPECT_EQ(d.sync, SyncDecision::BecomeSyncSource);
}

TEST(ConnectDecision, InconsistentMeetingUpToDateOfTheSameGenerationIsBitmapTarget) {
  const auto good = side(gens(100), DiskState::UpToDate, true);
  const auto bad = side(gens(100), DiskState::Inconsistent);
  const ConnectDecision d = decide_connect(bad, good, false);
  EXPECT_TRUE(d.refusal.empty()) << d.refusal;
  EXPECT_EQ(d.sync, SyncDecision::BecomeSyncTarget);
}

TEST(ConnectDecision, UpToDateMeetingANewInconsistentDiskIsFullSource) {
  // A replaced disk: fresh metadata with a generation the good side never saw.
  Generations good_gens = gens(200, 100);
  const auto good = side(good_gens, DiskState::UpToDate);
  const auto fresh = side(gens(555), DiskState::Inconsistent);
  EXPECT_EQ(decide_connect(good, fresh, false).sync, SyncDecision::FullSyncAsSource);
  EXPECT_EQ(decide_connect(fresh, good, true).sync, SyncDecision::FullSyncAsTarget);
  EXPECT_TRUE(decide_connect(fresh, good, true).refusal.empty());
}

TEST(ConnectDecision, UpToDateSideIsSourceEvenWhenTheInconsistentSideHasTheNewerGeneration) {
  // The generations alone would make the inconsistent side the source; its data is incomplete.
  const auto good = side(gens(100), DiskState::UpToDate);
  const auto bad = side(gens(200, 100), DiskState::Inconsistent);
  EXPECT_EQ(decide_connect(good, bad, false).sync, SyncDecision::FullSyncAsSource);
  EXPECT_EQ(decide_connect(bad, good, true).sync, SyncDecision::FullSyncAsTarget);
}

TEST(ConnectDecision, UpToDateMeetingDisklessIsFullSource) {
  const auto good = side(gens(100), DiskState::UpToDate, true);
  const auto diskless = side(gens(999), DiskState::Diskless);
  const ConnectDecision d = decide_connect(good, diskless, false);
  EXPECT_TRUE(d.refusal.empty()) << d.refusal;
  EXPECT_EQ(d.sync, SyncDecision::FullSyncAsSource);
}

TEST(ConnectDecision, ADisklessReplicaOfTheSameGenerationStillGetsAFullSync) {
  // Its disk failed after the last agreement: the writes it missed since are in no bitmap.
  const auto good = side(gens(200, 100), DiskState::UpToDate, true);
  const auto diskless = side(gens(100), DiskState::Diskless);
  EXPECT_EQ(decide_connect(good, diskless, false).sync, SyncDecision::FullSyncAsSource);
  EXPECT_EQ(decide_connect(diskless, good, true).sync, SyncDecision::FullSyncAsTarget);
  const auto same = side(gens(200, 100), DiskState::Diskless);
  EXPECT_EQ(decide_connect(same, good, true).sync, SyncDecision::FullSyncAsTarget);
}

// ---- neither side complete

TEST(ConnectDecision, TwoInconsistentReplicasOfOneGenerationAreRefused) {
  const auto a = side(gens(100), DiskState::Inconsistent);
  const auto b = side(gens(100), DiskState::Inconsistent);
  const ConnectDecision d = decide_connect(a, b, true);
  EXPECT_FALSE(d.refusal.empty());
  EXPECT_FALSE(d.split_brain);
  EXPECT_TRUE(contains(d.refusal, "inconsistent")) << d.refusal;
}

TEST(ConnectDecision, TwoInconsistentReplicasWithBitmapsAreRefused) {
  const auto a = side(gens(200, 100), DiskState::Inconsistent);
  const auto b = side(gens(100), DiskState::Inconsistent);
  EXPECT_FALSE(decide_connect(a, b, true).refusal.empty());
  EXPECT_FALSE(decide_connect(b, a, false).refusal.empty());
}

TEST(ConnectDecision, TwoFreshInconsistentReplicasFullSyncFromTheInitialPrimary) {
  const auto a = side(new_volume_generations(1), DiskState::Inconsistent);
  const auto b = side(new_volume_generations(2), DiskState::Inconsistent);
  const ConnectDecision from_a = decide_connect(a, b, true);
  const ConnectDecision from_b = decide_connect(b, a, false);
  EXPECT_TRUE(from_a.refusal.empty()) << from_a.refusal;
  EXPECT_TRUE(from_b.refusal.empty()) << from_b.refusal;
  EXPECT_EQ(from_a.sync, SyncDecision::FullSyncAsSource);
  EXPECT_EQ(from_b.sync, SyncDecision::FullSyncAsTarget);
}

TEST(ConnectDecision, TwoFreshReplicasOneAlreadyPrimaryFullSyncFromThePrimary) {
  const auto a = side(new_volume_generations(1), DiskState::Inconsistent, true);
  const auto b = side(new_volume_generations(2), DiskState::Inconsistent);
  EXPECT_EQ(decide_connect(a, b, true).sync, SyncDecision::FullSyncAsSource);
  EXPECT_EQ(decide_connect(b, a, false).sync, SyncDecision::FullSyncAsTarget);
}

TEST(ConnectDecision, TwoInconsistentReplicasThatAreNotFreshAreRefusedEvenIfHistoryLinksThem) {
  // a's history names b's current generation, so the generations alone say "full sync from a";
  // but a is incomplete, and the connect would declare it UpToDate (Replicator does so for a
  // FullSyncAsSource side that is not UpToDate), making partial data the volume's.
  const auto a = side(gens(300, 0, 100), DiskState::Inconsistent);
  const auto b = side(gens(100), DiskState::Inconsistent);
  EXPECT_FALSE(decide_connect(a, b, false).refusal.empty());
  EXPECT_FALSE(decide_connect(b, a, true).refusal.empty());
}

// ---- the primary's data is never overwritten

TEST(ConnectDecision, PrimaryWithOlderDataIsNotMadeASyncTarget) {
  // b wrote while apart (its bitmap tracks from a's generation), yet a is the primary.
  const auto a = side(gens(100), DiskState::UpToDate, true);
  const auto b = side(gens(200, 100), DiskState::UpToDate);
  const ConnectDecision d = decide_connect(a, b, true);
  EXPECT_FALSE(d.refusal.empty());
  EXPECT_TRUE(d.split_brain);
  EXPECT_TRUE(contains(d.refusal, "split brain")) << d.refusal;
}

TEST(ConnectDecision, SecondaryWithNewerDataRefusesToBeSourceForAPrimary) {
  const auto a = side(gens(100), DiskState::UpToDate, true);
  const auto b = side(gens(200, 100), DiskState::UpToDate);
  const ConnectDecision d = decide_connect(b, a, false);
  EXPECT_FALSE(d.refusal.empty());
  EXPECT_TRUE(d.split_brain);
  EXPECT_TRUE(contains(d.refusal, "split brain")) << d.refusal;
}

TEST(ConnectDecision, PrimaryFromBeforeTheOthersHistoryIsNotMadeAFullSyncTarget) {
  const auto a = side(gens(100), DiskState::UpToDate, true);
  const auto b = side(gens(400, 0, 100), DiskState::UpToDate);
  const ConnectDecision d = decide_connect(a, b, false);
  EXPECT_FALSE(d.refusal.empty());
  EXPECT_TRUE(d.split_brain);
}

TEST(ConnectDecision, PrimaryThatWroteAloneIsBitmapSourceForItsReturningPeer) {
  const auto a = side(gens(200, 100), DiskState::UpToDate, true);
  const auto b = side(gens(100), DiskState::UpToDate);
  EXPECT_EQ(decide_connect(a, b, true).sync, SyncDecision::BecomeSyncSource);
  EXPECT_EQ(decide_connect(b, a, false).sync, SyncDecision::BecomeSyncTarget);
  EXPECT_TRUE(decide_connect(b, a, false).refusal.empty());
}

// ---- refusals from the generations

TEST(ConnectDecision, BothWroteWhileApartIsRefusedAsSplitBrain) {
  const auto a = side(gens(200, 100), DiskState::UpToDate);
  const auto b = side(gens(300, 100), DiskState::UpToDate);
  const ConnectDecision d = decide_connect(a, b, true);
  EXPECT_TRUE(d.split_brain);
  EXPECT_TRUE(contains(d.refusal, "split brain")) << d.refusal;
}

TEST(ConnectDecision, UnrelatedGenerationsAreRefusedButNotAsSplitBrain) {
  const auto a = side(gens(10, 1), DiskState::UpToDate);
  const auto b = side(gens(20, 2), DiskState::UpToDate);
  const ConnectDecision d = decide_connect(a, b, true);
  EXPECT_FALSE(d.refusal.empty());
  EXPECT_FALSE(d.split_brain);
  EXPECT_TRUE(contains(d.refusal, "unrelated")) << d.refusal;
}

TEST(ConnectDecision, SameGenerationOnBothSidesIsInSync) {
  const auto a = side(gens(100), DiskState::UpToDate, true);
  const auto b = side(gens(100), DiskState::UpToDate);
  const ConnectDecision d = decide_connect(a, b, true);
  EXPECT_TRUE(d.refusal.empty()) << d.refusal;
  EXPECT_EQ(d.sync, SyncDecision::InSync);
}

// ---- symmetry

struct Scenario {
  const char* name;
  Generations a;
  Generations b;
};

std::vector<Scenario> generation_scenarios() {
  return {
      {"same generation", gens(100), gens(100)},
      {"fresh, not in sync", new_volume_generations(1), new_volume_generations(2)},
      {"fresh, in sync", new_volume_generations(kFreshAndEmpty), new_volume_generations(kFreshAndEmpty)},
      {"a wrote alone", gens(200, 100), gens(100)},
      {"b wrote alone", gens(100), gens(200, 100)},
      {"both wrote alone", gens(200, 100), gens(300, 100)},
      {"a's history holds b", gens(400, 200, 100), gens(100)},
      {"b's history holds a", gens(100), gens(400, 0, 100)},
      {"unrelated", gens(10, 1), gens(20, 2)},
      {"a fresh, b has a past", new_volume_generations(7), gens(20, 2)},
  };
}

const std::vector<DiskState> kDiskStates = {DiskState::Diskless, DiskState::Inconsistent, DiskState::Outdated,
                                            DiskState::UpToDate};

TEST(ConnectDecision, BothSidesReachMirroredDecisions) {
  for (const Scenario& s : generation_scenarios()) {
    for (DiskState da : kDiskStates) {
      for (DiskState db : kDiskStates) {
        for (int roles = 0; roles < 4; ++roles) {
          for (bool a_initial : {true, false}) {
            const auto a = side(s.a, da, (roles & 1) != 0);
            const auto b = side(s.b, db, (roles & 2) != 0);
            const ConnectDecision ab = decide_connect(a, b, a_initial);
            const ConnectDecision ba = decide_connect(b, a, !a_initial);
            SCOPED_TRACE(::testing::Message() << s.name << ", a " << to_string(da) << (a.primary ? " primary" : "")
                                              << ", b " << to_string(db) << (b.primary ? " primary" : "")
                                              << ", initial primary " << (a_initial ? "a" : "b"));
            EXPECT_EQ(ab.refusal.empty(), ba.refusal.empty()) << "a: " << ab.refusal << " | b: " << ba.refusal;
            EXPECT_EQ(ab.split_brain, ba.split_brain);
            if (ab.refusal.empty() && ba.refusal.empty()) {
              EXPECT_EQ(ab.sync, mirror(ba.sync)) << to_string(ab.sync) << " vs " << to_string(ba.sync);
            }
          }
        }
      }
    }
  }
}

TEST(ConnectDecision, NoCombinationMakesAPrimaryASyncTarget) {
  for (const Scenario& s : generation_scenarios()) {
    for (DiskState da : kDiskStates) {
      for (DiskState db : kDiskStates) {
        for (bool a_initial : {true, false}) {
          const ConnectDecision d = decide_connect(side(s.a, da, true), side(s.b, db, false), a_initial);
          SCOPED_TRACE(::testing::Message() << s.name << ", a " << to_string(da) << ", b " << to_string(db));
          if (d.refusal.empty()) {
            EXPECT_FALSE(is_sync_target(d.sync)) << to_string(d.sync);
          }
        }
      }
    }
  }
}

TEST(ConnectDecision, AnAcceptedConnectBetweenAGoodAndABadDiskAlwaysCopiesToTheBadOne) {
  for (const Scenario& s : generation_scenarios()) {
    for (DiskState bad : {DiskState::Inconsistent, DiskState::Diskless}) {
      for (bool a_initial : {true, false}) {
        const ConnectDecision d = decide_connect(side(s.a, DiskState::UpToDate), side(s.b, bad), a_initial);
        SCOPED_TRACE(::testing::Message() << s.name << ", b " << to_string(bad));
        EXPECT_TRUE(d.refusal.empty()) << d.refusal;
        EXPECT_TRUE(is_sync_source(d.sync)) << to_string(d.sync);
      }
    }
  }
}

TEST(ConnectDecision, AnInconsistentReplicaIsNeverTheSourceOfAnOutdatedOne) {
  // a's bitmap tracks from b's generation, so the generations alone make a the source.
  const auto a = side(gens(200, 100), DiskState::Inconsistent);
  const auto b = side(gens(100), DiskState::Outdated);
  const ConnectDecision d = decide_connect(a, b, false);
  EXPECT_FALSE(is_sync_source(d.sync) && d.refusal.empty()) << to_string(d.sync);
  EXPECT_FALSE(decide_connect(b, a, true).refusal.empty());
}

}  // namespace
}  // namespace freevsa::replication
