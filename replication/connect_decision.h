// What two replicas do when they meet: the generation identifiers (generation.h) decide who is
// newer, and the disk states and roles decide what may not happen (DESIGN.md, "Split brain";
// "never two primaries").
#pragma once

#include <string>

#include "replication/generation.h"
#include "replication/metadata.h"

namespace freevsa::replication {

struct ConnectSide {
  Generations generations;
  DiskState disk = DiskState::Inconsistent;
  bool primary = false;
};

struct ConnectDecision {
  SyncDecision sync = SyncDecision::InSync;
  std::string refusal;  // non-empty: do not connect, and why (for both logs)
  bool split_brain = false;
};

// Symmetric: the peer, computing decide_connect(peer, local, ...), reaches the mirrored answer.
//  - An UpToDate replica meeting an Inconsistent one is the source, from the bitmaps when the
//    generations allow it, in full otherwise (a new or replaced disk).
//  - A primary never becomes a sync target: its data is what initiators were told is written.
//  - Split brain and unrelated data are refused, with a message that says what to do.
ConnectDecision decide_connect(const ConnectSide& local, const ConnectSide& peer, bool local_is_initial_primary);

}  // namespace freevsa::replication
