#include "replication/replication_status.h"

namespace freevsa::replication {

// The names are part of the control API (JSON) and of `freevsa status`: do not rename.
std::string to_string(ConnectionState state) {
  switch (state) {
    case ConnectionState::StandAlone: return "StandAlone";
    case ConnectionState::Connecting: return "Connecting";
    case ConnectionState::Connected: return "Connected";
    case ConnectionState::SyncSource: return "SyncSource";
    case ConnectionState::SyncTarget: return "SyncTarget";
    case ConnectionState::VerifySource: return "VerifySource";
    case ConnectionState::VerifyTarget: return "VerifyTarget";
  }
  return "unknown";
}

}  // namespace freevsa::replication
