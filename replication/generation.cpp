#include "replication/generation.h"

namespace freevsa::replication {

SyncDecision mirror(SyncDecision d) {
  switch (d) {
    case SyncDecision::BecomeSyncSource: return SyncDecision::BecomeSyncTarget;
    case SyncDecision::BecomeSyncTarget: return SyncDecision::BecomeSyncSource;
    case SyncDecision::FullSyncAsSource: return SyncDecision::FullSyncAsTarget;
    case SyncDecision::FullSyncAsTarget: return SyncDecision::FullSyncAsSource;
    default: return d;
  }
}

bool is_freshly_formatted(const Generations& g) {
  return g.bitmap == 0 && g.history[0] == 0 && g.history[1] == 0;
}

namespace {
bool in_history(const Generations& g, std::uint64_t id) {
  if (id == 0) return false;
  for (std::uint64_t h : g.history)
    if (h == id) return true;
  return false;
}

bool never_diverged(const Generations& g) { return is_freshly_formatted(g); }
}  // namespace

Generations new_volume_generations(std::uint64_t random_current) {
  Generations g;
  g.current = random_current;
  return g;
}

void start_new_generation(Generations& g, std::uint64_t random_current) {
  if (g.bitmap != 0) return;  // already tracking changes since the peer was last seen
  g.bitmap = g.current;
  g.current = random_current;
}

void finish_resync(Generations& g, std::uint64_t source_current) {
  if (g.bitmap != 0) {
    g.history[1] = g.history[0];
    g.history[0] = g.bitmap;
    g.bitmap = 0;
  } else if (g.current != source_current) {
    g.history[1] = g.history[0];
    g.history[0] = g.current;
  }
  g.current = source_current;
}

std::string to_string(SyncDecision decision) {
  switch (decision) {
    case SyncDecision::InSync: return "in sync";
    case SyncDecision::BecomeSyncSource: return "resync from the bitmap, this node is the source";
    case SyncDecision::BecomeSyncTarget: return "resync from the bitmap, this node is the target";
    case SyncDecision::FullSyncAsSource: return "full sync, this node is the source";
    case SyncDecision::FullSyncAsTarget: return "full sync, this node is the target";
    case SyncDecision::SplitBrain: return "split brain: both nodes wrote while disconnected";
    case SyncDecision::Unrelated: return "unrelated data: the replicas never were the same volume";
  }
  return "?";
}

SyncDecision decide_sync(const Generations& local, const Generations& peer, bool local_is_initial_primary) {
  if (local.current == peer.current) {
    // Same generation: identical unless one side started tracking and the other did not, which
    // cannot happen without a new current generation.
    return SyncDecision::InSync;
  }
  // Both started new generations from the same point: both wrote while apart.
  if (local.bitmap != 0 && local.bitmap == peer.bitmap) return SyncDecision::SplitBrain;
  // Our bitmap tracks from the peer's current generation: the peer missed exactly what it holds.
  if (local.bitmap != 0 && local.bitmap == peer.current) return SyncDecision::BecomeSyncSource;
  if (peer.bitmap != 0 && peer.bitmap == local.current) return SyncDecision::BecomeSyncTarget;
  // The peer's generation is in our past, but no bitmap spans the gap.
  if (in_history(local, peer.current) || in_history(local, peer.bitmap)) return SyncDecision::FullSyncAsSource;
  if (in_history(peer, local.current) || in_history(peer, local.bitmap)) return SyncDecision::FullSyncAsTarget;
  // Two freshly formatted replicas that were not created in sync: the initial primary's data wins.
  if (never_diverged(local) && never_diverged(peer)) {
    return local_is_initial_primary ? SyncDecision::FullSyncAsSource : SyncDecision::FullSyncAsTarget;
  }
  return SyncDecision::Unrelated;
}

}  // namespace freevsa::replication
