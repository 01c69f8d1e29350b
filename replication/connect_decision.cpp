#include "replication/connect_decision.h"

#include <fmt/format.h>

namespace freevsa::replication {

namespace {

// The UpToDate side `good` against an Inconsistent `bad`: `d` as seen from `good`.
SyncDecision source_over_inconsistent(SyncDecision d) {
  if (is_sync_source(d)) return d;
  // Same generation: the inconsistent side is a resync target that stopped half way; its bitmap
  // still names what it lacks.
  if (d == SyncDecision::InSync) return SyncDecision::BecomeSyncSource;
  return SyncDecision::FullSyncAsSource;
}
}  // namespace

ConnectDecision decide_connect(const ConnectSide& local, const ConnectSide& peer, bool local_is_initial_primary) {
  ConnectDecision out;
  if (local.primary && peer.primary) {
    out.refusal = "both nodes are primary: they may both have accepted writes; demote one (its changes are then "
                  "overwritten by a resync from the other)";
    out.split_brain = true;
    return out;
  }
  const bool local_good = local.disk == DiskState::UpToDate;
  const bool peer_good = peer.disk == DiskState::UpToDate;
  const bool local_bad = local.disk == DiskState::Inconsistent || local.disk == DiskState::Diskless;
  const bool peer_bad = peer.disk == DiskState::Inconsistent || peer.disk == DiskState::Diskless;
  SyncDecision d = decide_sync(local.generations, peer.generations, local_is_initial_primary);
  // Two new, empty replicas: the initial primary's (empty) data becomes the volume's.
  const bool both_new = local_bad && peer_bad && is_freshly_formatted(local.generations) &&
                        is_freshly_formatted(peer.generations) &&
                        (d == SyncDecision::FullSyncAsSource || d == SyncDecision::FullSyncAsTarget);
  if (local_good && peer_bad) {
    // A Diskless replica missed every write since its disk failed: no bitmap names them.
    d = peer.disk == DiskState::Diskless ? SyncDecision::FullSyncAsSource : source_over_inconsistent(d);
  } else if (peer_good && local_bad) {
    d = local.disk == DiskState::Diskless ? SyncDecision::FullSyncAsTarget : mirror(source_over_inconsistent(mirror(d)));
  } else if (local_bad && peer_bad && !both_new) {
    out.refusal = "neither replica holds a complete copy of the volume (both are inconsistent)";
    return out;
  }
  if (!both_new && ((local_bad && is_sync_source(d)) || (peer_bad && is_sync_target(d)))) {
    // An incomplete replica never overwrites a complete one, however new its generation.
    out.refusal = fmt::format("the replica with the newer data ({}) is incomplete (inconsistent) and the other is "
                              "outdated; promote the outdated one with --force to accept its older data, or restore "
                              "the volume",
                              local_bad ? "this node's" : "the peer's");
    return out;
  }
  if (d == SyncDecision::SplitBrain) {
    out.refusal = "split brain: both nodes wrote to the volume while they were apart; demote the node whose "
                  "changes should be discarded, recreate its metadata (freevsa create-md --force) and restart it";
    out.split_brain = true;
    return out;
  }
  if (d == SyncDecision::Unrelated) {
    out.refusal = "the two replicas never held the same data (unrelated generations); recreate the metadata of the "
                  "replica to be overwritten (freevsa create-md --force)";
    return out;
  }
  if ((local.primary && is_sync_target(d)) || (peer.primary && is_sync_source(d))) {
    out.refusal = "the primary's data is older than its peer's (the secondary holds writes the primary lacks): "
                  "split brain; demote the primary or discard the secondary's changes";
    out.split_brain = true;
    return out;
  }
  out.sync = d;
  return out;
}

}  // namespace freevsa::replication
