// A Volume kept identical on two nodes: the local store plus a peer (DESIGN.md, "Replication
// semantics"). The SCSI layer uses it like any Volume and never knows it is replicated.
//
// Write path (protocol C): a write is submitted to the local disk and to the peer at the same
// time and returns only when both completed, so a write that returned 0 is on both disks.
// Protocol A returns once the local write completed and the write was handed to the link.
// Overlapping writes are serialised in arrival order (IntervalLock), so both replicas apply them
// in the same order. When the peer is not connected, or does not confirm a write, the range is
// recorded as out of sync and the write still succeeds locally: the primary keeps serving, and
// the resync later copies exactly those blocks.
//
// Roles: only the primary serves initiators (access() is Active); a secondary answers Standby
// and its local store is written only by the replication stream.
//
// A failing local disk (DRBD's on-io-error detach): when a local read, write, discard or flush
// fails on the primary and the peer's disk is UpToDate, the local disk is detached for good
// (until the node restarts): the failed request and every later one are served by the peer
// alone, and the initiator sees no error. Without an UpToDate peer the error goes to the
// initiator (as sense data). A secondary whose disk fails while applying the stream detaches
// too, and answers the primary with the error.
//
// Threading: the Volume methods are called from worker threads and block; role changes may come
// from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "replication/activity_log.h"
#include "replication/interval_lock.h"
#include "replication/out_of_sync.h"
#include "replication/peer_channel.h"
#include "replication/volume.h"

namespace freevsa::replication {

enum class Protocol { A, B, C };
enum class Role { Secondary, Primary };

class ReplicatedVolume final : public Volume {
 public:
  // `local`, `peer` and `out_of_sync` must outlive this object.
  ReplicatedVolume(Volume& local, PeerChannel& peer, OutOfSyncRecorder& out_of_sync, Protocol protocol);

  std::uint64_t size_bytes() const override { return local_.size_bytes(); }
  std::uint32_t block_size() const override { return local_.block_size(); }
  const std::string& name() const override { return local_.name(); }

  int read(std::uint64_t offset, std::span<std::uint8_t> dst) override;
  int write(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) override;
  int flush() override;
  int discard(std::uint64_t offset, std::uint64_t length) override;
  // What the local replica holds (both replicas are identical where nothing is out of sync).
  int allocation(std::uint64_t offset, std::uint64_t length, std::size_t max_extents,
                 std::vector<AllocationExtent>& out) override {
    if (detached_.load()) return Volume::allocation(offset, length, max_extents, out);
    return local_.allocation(offset, length, max_extents, out);
  }
  Access access() const override;

  // Persistent reservations: stored in this replica's metadata by `persist` (set before I/O
  // starts), then on the peer while it is connected; a peer that is away gets the record when
  // the link comes up again.
  using ReservationPersister = std::function<int(std::span<const std::uint8_t>)>;
  void set_reservation_persister(ReservationPersister persist) { persist_reservations_ = std::move(persist); }
  int store_reservations(std::span<const std::uint8_t> record) override;
  std::uint64_t reservations_received() const override { return reservations_received_.load(); }
  // The record this replica had stored when it started (no peer involved).
  void load_stored_reservations(std::span<const std::uint8_t> record) { Volume::store_reservations(record); }
  // The primary sent its record and it is stored here: the SCSI layer adopts it.
  void adopt_peer_reservations(std::span<const std::uint8_t> record);
  // PERSISTENT RESERVE OUT on a secondary runs on the primary (see Volume).
  int forward_reservation_command(std::span<const std::uint8_t> request, std::vector<std::uint8_t>& answer) override;
  void set_reservation_command_runner(ReservationCommandRunner runner) override;
  // The peer forwarded one (any thread but the link's: the runner waits for the peer): the
  // answer, empty when this node is not primary.
  std::vector<std::uint8_t> run_forwarded_reservation_command(std::span<const std::uint8_t> request);
  // This node's group and the peer's: the peer's is active when it is known to be primary.
  std::vector<PortGroup> port_groups() const override;
  std::uint64_t port_group_states() const override;
  void set_port_groups(std::uint16_t own, std::uint16_t peer) {
    own_group_ = own;
    peer_group_ = peer;
  }
  void set_peer_primary(bool primary) { peer_primary_.store(primary); }
  // Whether the local replica is UpToDate: a secondary that is not cannot take over, and its
  // path reports the unavailable state instead of standby.
  void set_local_up_to_date(bool up_to_date) { local_up_to_date_.store(up_to_date); }

  // The receiving side of the replication stream, called by the peer link on the secondary
  // for every write, discard and flush the primary sends. Overlapping writes are applied in the
  // order they arrive, which is the order the primary issued them. Return an errno value that
  // goes back to the primary in the acknowledgement.
  int apply_peer_write(std::uint64_t offset, std::span<const std::uint8_t> data, bool fua);
  int apply_peer_discard(std::uint64_t offset, std::uint64_t length);
  int apply_peer_flush();

  // Runs `work` while no write or discard of this volume overlaps [offset, offset + length):
  // the resync source reads a range and queues it for the peer inside, so that the peer sees
  // the resync data and any later write to the range in the order they happened here.
  void with_range_locked(std::uint64_t offset, std::uint64_t length, const std::function<void()>& work);

  // Whether the local disk was detached after an I/O error (see above).
  bool detached() const { return detached_.load(); }
  // Called once, on the thread that met the error, when the local disk is detached: the owner
  // records it (metadata, peer, log). Set before I/O starts.
  using DetachHandler = std::function<void(int error, const char* operation)>;
  void set_detach_handler(DetachHandler handler) { on_detach_ = std::move(handler); }

  // The activity log the primary's writes go through (see activity_log.h); none by default.
  void set_activity_log(ActivityLog* activity_log) { activity_log_ = activity_log; }

  // Waits until every write, discard and flush that passed the role check has finished: after
  // set_role(Secondary) and drain(), nothing of this node's primary time is still on its way
  // (demote waits for it before the peer may be promoted).
  void drain();

  Role role() const { return role_.load(); }
  void set_role(Role role) { role_.store(role); }
  // While a role change is under way, initiators get "transitioning" instead of I/O.
  void set_transitioning(bool on) { transitioning_.store(on); }
  Protocol protocol() const { return protocol_; }

  // Starts one operation on the peer and waits for its outcome (0 or an errno). Any thread but
  // the link's; the outcome is shared with the completion, which may still be running when
  // this returns.
  int wait_for_peer(const std::function<void(PeerChannel::Done)>& start);

 private:
  class PeerOutcome;
  // Starts an operation on the peer, or records [offset, length) as out of sync when the peer is
  // not connected (null result). A failed peer operation records its range too.
  std::shared_ptr<PeerOutcome> start_on_peer(std::uint64_t offset, std::uint64_t length,
                                             const std::function<void(PeerChannel::Done)>& start);
  // Protocol B and C wait for the peer's answer; A does not.
  void finish_on_peer(const std::shared_ptr<PeerOutcome>& outcome);
  int discard_piece(std::uint64_t offset, std::uint64_t length);
  void release_activity_log(const std::shared_ptr<PeerOutcome>& outcome, std::uint64_t offset, std::uint64_t length);
  // The local disk failed with `error` during `operation`: detach it if the peer can take
  // over; returns whether it did (then the request goes to the peer alone).
  bool detach_if_peer_can_serve(int error, const char* operation);
  void detach_secondary(int error, const char* operation);
  int write_on_peer_only(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua);
  int read_from_peer(std::uint64_t offset, std::span<std::uint8_t> dst);
  // The local disk is detached: runs one operation started by `start` on the peer's disk alone
  // and waits for it. EIO when the peer cannot serve or the operation failed there.
  int on_peer_only(const std::function<void(PeerChannel::Done)>& start);

  Access peer_access() const;

  Volume& local_;
  PeerChannel& peer_;
  OutOfSyncRecorder& out_of_sync_;
  const Protocol protocol_;
  std::atomic<Role> role_{Role::Secondary};
  std::atomic<bool> transitioning_{false};
  std::atomic<bool> detached_{false};
  std::uint16_t own_group_ = 1;
  std::uint16_t peer_group_ = 2;
  std::atomic<bool> peer_primary_{false};
  std::atomic<bool> local_up_to_date_{true};
  ReservationPersister persist_reservations_;
  std::mutex runner_mutex_;  // held while a forwarded command runs, so the runner outlives it
  ReservationCommandRunner run_reservation_command_;
  std::atomic<std::uint64_t> reservations_received_{0};
  // Writes, discards and flushes under way as primary (see drain()).
  class PrimaryOp;
  std::mutex ops_mutex_;
  std::condition_variable ops_done_;
  int primary_ops_ = 0;
  DetachHandler on_detach_;
  ActivityLog* activity_log_ = nullptr;
  IntervalLock in_flight_;
};

}  // namespace freevsa::replication
