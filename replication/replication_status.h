// What a node knows about each replicated volume, and the role changes an administrator can
// ask for. The replication layer fills these; the control endpoint turns them into JSON and
// the command line into text (`freevsa status`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace freevsa::replication {

// Connection states (DESIGN.md): StandAlone (not trying), Connecting (trying / waiting for the
// peer), Connected, SyncSource / SyncTarget (resync running), VerifySource / VerifyTarget.
enum class ConnectionState { StandAlone, Connecting, Connected, SyncSource, SyncTarget, VerifySource, VerifyTarget };
std::string to_string(ConnectionState state);

struct SyncProgress {
  bool full = false;                 // full sync, not from the bitmap
  std::uint64_t total_bytes = 0;     // out of sync when the resync started (or was resumed)
  std::uint64_t done_bytes = 0;      // copied (or found identical) since
  std::uint64_t skipped_bytes = 0;   // checksum-based: found identical, not sent
  double bytes_per_second = 0;       // over the last few seconds
  std::optional<double> eta_seconds; // unknown before the rate is measured
  double percent() const { return total_bytes == 0 ? 100.0 : 100.0 * static_cast<double>(done_bytes) / static_cast<double>(total_bytes); }
};

struct VerifyProgress {
  bool running = false;
  std::uint64_t total_bytes = 0;
  std::uint64_t checked_bytes = 0;
  std::uint64_t out_of_sync_bytes = 0;  // found differing so far (marked in the bitmap)
  double bytes_per_second = 0;
  std::optional<double> eta_seconds;
  std::string finished_at;              // ISO 8601 of the last completed verify, "" if never
};

struct PeerStatus {
  std::string node;                  // the peer's name from the configuration
  std::string address;               // its replication address, "127.0.0.2:7788"
  std::string role;                  // "primary", "secondary", "unknown" (not connected)
  std::string disk_state;            // UpToDate, Outdated, Inconsistent, Diskless, "unknown"
  ConnectionState connection = ConnectionState::Connecting;
  std::string last_error;            // why the last connection failed or ended ("" if none)
  std::optional<double> round_trip_ms;  // from the keep-alive pings while connected
  // This node's peer port (for every volume alike): connections open now that have not
  // authenticated, and connections closed before authenticating or over the caps since start.
  std::uint64_t unauthenticated_connections = 0;
  std::uint64_t refused_connections = 0;
  std::string last_refused_connection;  // "from ADDRESS: why", "" if none
};

struct VolumeStatus {
  std::string name;
  std::string role;                  // this node: "primary" or "secondary"
  // A secondary that takes the primary role (back) by itself once it has met its peer as
  // secondary: it was primary when it stopped, or it is a new volume's initial primary.
  bool primary_when_peer_met = false;
  std::string disk_state;            // this node's disk: UpToDate, Outdated, Inconsistent, Diskless
  char protocol = 'C';
  std::string protocol_meaning;      // "C: a write completes when both disks have it", ...
  std::uint64_t size_bytes = 0;
  std::uint64_t out_of_sync_bytes = 0;  // what the local bitmap says the peer may lack / we lack
  std::string volume_uuid;
  std::string generation;            // current generation id, hex
  std::vector<PeerStatus> peers;
  std::optional<SyncProgress> sync;  // while SyncSource / SyncTarget
  VerifyProgress verify;
  std::string backing;               // this node's backing path
  std::uint64_t writes_replicated = 0;
  std::uint64_t bytes_resynced = 0;  // since this process started
};

// The result of a role change or a command on a volume.
struct CommandResult {
  bool ok = false;
  int http_status = 200;             // 200 ok, 404 no such volume, 409 refused by state, 500 failed
  std::string message;               // what happened or why not, for the administrator
  std::string warning;               // e.g. what a forced promotion may lose
};

// Implemented by the node's replication manager; used by the control endpoint.
// Threading: thread-safe; calls may block briefly (metadata writes) but not for I/O to the peer.
class ReplicationControl {
 public:
  virtual ~ReplicationControl() = default;
  virtual std::vector<VolumeStatus> status() const = 0;
  // Refused (409) when a connected peer is primary (never two primaries), or when this node's
  // disk is not UpToDate and `force` is false; the message says what would be lost.
  virtual CommandResult promote(const std::string& volume, bool force) = 0;
  virtual CommandResult demote(const std::string& volume) = 0;
  // Starts an online verify against the connected peer (409 when not connected).
  virtual CommandResult verify(const std::string& volume) = 0;
  // Drops the connection to the peer and reconnects (resync, if needed, follows).
  virtual CommandResult reconnect(const std::string& volume) = 0;
};

}  // namespace freevsa::replication
