// Generation identifiers (DESIGN.md): how two replicas that meet again tell who has the newer
// data, whether the dirty bitmap is enough to bring the other up to date, and whether both sides
// wrote while apart (split brain).
//
// A generation is a random 64-bit number naming "the data as it is now". The primary starts a
// new generation whenever it writes without its peer (peer lost, or promoted alone): the old
// current generation becomes the bitmap generation - the point from which the dirty bitmap
// tracks changes - and a fresh number becomes current. When a resync completes, the bitmap
// generation moves into the history and both sides share the same current generation again.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace freevsa::replication {

struct Generations {
  std::uint64_t current = 0;
  std::uint64_t bitmap = 0;                 // 0: the bitmap tracks nothing (no peer was missed)
  std::array<std::uint64_t, 2> history{};  // older generations, newest first

  bool operator==(const Generations&) const = default;
};

// The current generation of a volume created with no data on either side ("start in sync"):
// both nodes format with it and agree at first connect that nothing needs copying.
constexpr std::uint64_t kFreshAndEmpty = 0x4672657368456d70ull;  // "FreshEmp"

// A replica whose generations never moved since it was formatted (nothing but a current one).
bool is_freshly_formatted(const Generations& g);

// What the metadata records when the volume is first formatted without the in-sync option: a
// number no other volume shares, so the first connect decides a full sync from the initial primary.
Generations new_volume_generations(std::uint64_t random_current);

// The primary starts writing without its peer: the bitmap now tracks from the old generation.
// Idempotent while the bitmap generation is set (a second loss does not rotate again).
void start_new_generation(Generations& g, std::uint64_t random_current);

// A resync that made this replica identical to its peer finished (both sides call it; the
// target takes the source's current generation).
void finish_resync(Generations& g, std::uint64_t source_current);

enum class SyncDecision {
  InSync,             // same data: nothing to copy (the bitmaps may still name blocks to compare)
  BecomeSyncSource,   // we are newer; the peer's changes since our bitmap generation are in our bitmap
  BecomeSyncTarget,   // the peer is newer and its bitmap covers what we miss
  FullSyncAsSource,   // we are newer, but no bitmap covers the difference: copy everything
  FullSyncAsTarget,
  SplitBrain,         // both sides wrote since they last agreed
  Unrelated,          // the two replicas never were the same volume: refuse to connect
};

std::string to_string(SyncDecision decision);
inline bool is_sync_source(SyncDecision d) {
  return d == SyncDecision::BecomeSyncSource || d == SyncDecision::FullSyncAsSource;
}
inline bool is_sync_target(SyncDecision d) {
  return d == SyncDecision::BecomeSyncTarget || d == SyncDecision::FullSyncAsTarget;
}
// The same decision as the peer sees it (source <-> target).
SyncDecision mirror(SyncDecision d);

// Pure function of both sides' generations. `initial_primary` breaks the tie for two freshly
// formatted replicas that were not created in sync (the configured initial primary is source).
SyncDecision decide_sync(const Generations& local, const Generations& peer, bool local_is_initial_primary);

}  // namespace freevsa::replication
