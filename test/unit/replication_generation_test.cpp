// How two replicas that meet again decide what to copy, from their generation identifiers.
#include <gtest/gtest.h>

#include "replication/generation.h"

namespace freevsa::replication {
namespace {

// Two replicas that were in sync at generation 100.
struct Pair {
  Generations a = new_volume_generations(100);
  Generations b = new_volume_generations(100);
};

TEST(Generation, SameGenerationIsInSync) {
  Pair p;
  EXPECT_EQ(decide_sync(p.a, p.b, true), SyncDecision::InSync);
}

TEST(Generation, VolumesCreatedInSyncNeedNoInitialCopy) {
  EXPECT_EQ(decide_sync(new_volume_generations(kFreshAndEmpty), new_volume_generations(kFreshAndEmpty), false),
            SyncDecision::InSync);
}

TEST(Generation, FreshVolumesNotCreatedInSyncCopyEverythingFromTheInitialPrimary) {
  const Generations a = new_volume_generations(1), b = new_volume_generations(2);
  EXPECT_EQ(decide_sync(a, b, true), SyncDecision::FullSyncAsSource);
  EXPECT_EQ(decide_sync(b, a, false), SyncDecision::FullSyncAsTarget);
}

TEST(Generation, PrimaryThatWroteAloneIsBitmapSourceForItsReturningPeer) {
  Pair p;
  start_new_generation(p.a, 200);  // a lost b and kept writing
  EXPECT_EQ(decide_sync(p.a, p.b, false), SyncDecision::BecomeSyncSource);
  EXPECT_EQ(decide_sync(p.b, p.a, false), SyncDecision::BecomeSyncTarget);
}

TEST(Generation, SecondLossWhileTrackingDoesNotRotateAgain) {
  Pair p;
  start_new_generation(p.a, 200);
  start_new_generation(p.a, 300);
  EXPECT_EQ(p.a.current, 200u);
  EXPECT_EQ(decide_sync(p.a, p.b, false), SyncDecision::BecomeSyncSource);
}

TEST(Generation, AfterResyncBothShareOneGenerationAgain) {
  Pair p;
  start_new_generation(p.a, 200);
  finish_resync(p.a, p.a.current);
  finish_resync(p.b, p.a.current);
  EXPECT_EQ(decide_sync(p.a, p.b, false), SyncDecision::InSync);
  EXPECT_EQ(p.a.bitmap, 0u);
  EXPECT_EQ(p.a.history[0], 100u);
}

TEST(Generation, BothWroteWhileApartIsSplitBrain) {
  Pair p;
  start_new_generation(p.a, 200);  // a kept writing
  start_new_generation(p.b, 300);  // b was promoted and wrote too
  EXPECT_EQ(decide_sync(p.a, p.b, true), SyncDecision::SplitBrain);
  EXPECT_EQ(decide_sync(p.b, p.a, false), SyncDecision::SplitBrain);
}

TEST(Generation, PeerFromBeforeTheBitmapNeedsAFullSync) {
  Pair p;
  start_new_generation(p.a, 200);
  finish_resync(p.a, 200);          // a resynced with some third copy; 100 is now history
  start_new_generation(p.a, 400);   // and lost its peer again
  // b still holds generation 100: in a's history, but a's bitmap tracks only from 200.
  EXPECT_EQ(decide_sync(p.a, p.b, false), SyncDecision::FullSyncAsSource);
  EXPECT_EQ(decide_sync(p.b, p.a, false), SyncDecision::FullSyncAsTarget);
}

TEST(Generation, ReplicasOfDifferentHistoriesAreUnrelated) {
  Generations a = new_volume_generations(1), b = new_volume_generations(2);
  start_new_generation(a, 10);
  start_new_generation(b, 20);
  EXPECT_EQ(decide_sync(a, b, true), SyncDecision::Unrelated);
}

TEST(Generation, EveryDecisionHasAReadableName) {
  for (auto d : {SyncDecision::InSync, SyncDecision::BecomeSyncSource, SyncDecision::BecomeSyncTarget,
                 SyncDecision::FullSyncAsSource, SyncDecision::FullSyncAsTarget, SyncDecision::SplitBrain,
                 SyncDecision::Unrelated})
    EXPECT_NE(to_string(d), "?");
}

}  // namespace
}  // namespace freevsa::replication
