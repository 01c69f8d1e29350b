// Names what differs between two nodes' shared settings (peer::SharedSettings), so that a node
// refused for a configuration mismatch says which setting to fix instead of showing two hashes.
//
// The text is lines of space-separated words, most of them key=value: "volume name=vol0
// size=1073741824 protocol=C ...". A line is identified by the words before its first key=value
// and by its name= value ("node name=b ..." is "node b", "cluster keepalive ping_interval_ms=..."
// is "cluster keepalive"); the key=value words of lines with the same identity are compared key
// by key.
#pragma once

#include <string>
#include <string_view>

namespace freevsa::replication {

// "" when the texts hold the same settings; otherwise one clause per difference, joined by
// "; ", e.g. "volume vol0: protocol is C here, A on b; node c is only on b". Values of keys that
// name a digest (a secret's fingerprint) are not shown.
std::string describe_settings_difference(std::string_view local, std::string_view peer, std::string_view peer_name);

}  // namespace freevsa::replication
