// The two faces of a node's volume status: JSON for scripts (GET /v1/status, `freevsa status
// --json`) and aligned text for an administrator (GET /v1/status.txt, `freevsa status`). Both
// are rendered by the node, so every client shows the same thing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "replication/replication_status.h"

namespace freevsa::daemon {

// {"node": ..., "volumes": [...]} with every field of VolumeStatus and what it contains, keys as
// the field names; optional values that are absent are null. Indented, ends with a newline.
std::string status_json(const std::string& node, const std::vector<replication::VolumeStatus>& volumes);

// One block per volume: a header (name, size, protocol), a row for this node and one per peer
// in aligned columns, then sync and verify progress and the peers' last errors when there are any.
std::string status_text(const std::string& node, const std::vector<replication::VolumeStatus>& volumes);

// A JSON string literal, quotes included. Control characters are escaped; bytes that are not
// valid UTF-8 (a path can hold any bytes) become U+FFFD so that the document stays valid.
std::string json_quote(std::string_view text);

// Seconds as m:ss or h:mm:ss, rounded to the second: 7.4 -> "0:07", 3723 -> "1:02:03".
std::string human_duration(double seconds);

}  // namespace freevsa::daemon
