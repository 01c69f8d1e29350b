// One replicated volume on this node and its link to the peer that holds the other replica:
// the connection state machine (DESIGN.md, "Replication semantics").
//
//   Connecting --(TCP up, the peer authenticated by the connection: peer_auth.h)--> handshake:
//   Hello both ways (volume, node ids), then the checks (configuration hash, volume UUID and
//   size, roles) and the sync decision from the generation identifiers --> Connected: both
//   send their dirty bitmap; each merges the other's. Then, as decided, this node is
//   SyncSource (serves resync requests), SyncTarget (pulls every block the merged bitmap names,
//   then becomes UpToDate and takes the source's generation) or just Connected.
//   Any error or a silent peer closes the link --> Connecting again (with backoff).
//
// While the link is up and the peer's disk takes writes, the write path (ReplicatedVolume)
// sends every application write to it; otherwise the writes land in the dirty bitmap, and the
// first such write starts a new generation (persisted before the write completes), so that the
// next connect knows this node holds data the peer lacks.
//
// Roles: promote()/demote() by hand. A node that was primary when it stopped (or crashed)
// comes back secondary and takes the primary role back by itself only once it has met its peer
// and found it secondary - never alone, which could make two primaries.
//
// Threading: the link state lives on the io_context's thread (one thread). The PeerChannel
// methods are called by worker threads and post to it; control calls (status, promote, ...)
// post and wait. Disk I/O for the link (applying writes, resync reads) runs on the worker pool.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "replication/metadata_store.h"
#include "replication/peer_auth.h"
#include "replication/peer_channel.h"
#include "replication/peer_connection.h"
#include "replication/peer_protocol.h"
#include "replication/receive_order.h"
#include "replication/replicated_volume.h"
#include "replication/replication_status.h"
#include "replication/unconfirmed_writes.h"
#include "util/asio.h"
#include "util/worker_pool.h"

namespace freevsa::replication {

struct ReplicaSettings {
  std::string cluster_name;
  std::string volume_name;
  std::string node_name;
  std::uint32_t node_id = 0;
  std::string peer_name;
  std::uint32_t peer_id = 0;
  std::string peer_address;  // IP literal
  std::uint16_t peer_port = peer::kDefaultPort;
  std::string secret;
  std::shared_ptr<boost::asio::ssl::context> tls;  // null: plain TCP (peer_tls.h)
  bool tls_certificates = true;  // TLS with node certificates (not a pre-shared key): they must name the peer
  KeepAlive keepalive;
  Protocol protocol = Protocol::C;
  std::array<std::uint8_t, 32> config_hash{};
  std::string shared_settings;  // the text config_hash covers (peer::SharedSettings)
  bool initial_primary = false;
  // Resync: a fixed rate, or adaptive between min and max (min while application writes flow).
  bool resync_adaptive = true;
  std::uint64_t resync_rate = 0;
  std::uint64_t resync_min_rate = 10ull << 20;
  std::uint64_t resync_max_rate = 1ull << 30;
  bool resync_checksum = false;
  std::uint64_t verify_rate = 100ull << 20;
  peer::DigestAlgorithm verify_algorithm = peer::DigestAlgorithm::Crc32c;
  std::string backing_path;  // for status
  // When the primary asks the peer for a flush by itself (unconfirmed_writes.h).
  EpochPolicy epoch;
};

class Replicator final : public PeerChannel, public OutOfSyncRecorder, public std::enable_shared_from_this<Replicator> {
 public:
  // `data` is the local replica's data area, `metadata` its opened metadata; both outlive this.
  Replicator(boost::asio::io_context& io, util::WorkerPool& workers, ReplicaSettings settings, Volume& data,
             MetadataStore& metadata);
  ~Replicator() override;

  // What the LUN serves.
  ReplicatedVolume& volume() { return *volume_; }
  const ReplicaSettings& settings() const { return settings_; }

  // Start-up role (before start()). A secondary with a non-empty `primary_when_peer_met`
  // (why: "was primary when it stopped", ...) becomes primary once it has met its peer as
  // secondary (see above).
  void set_initial_role(Role role, std::string primary_when_peer_met = {});
  // Begins connecting (this node dials when its id is the lower one; the other accepts).
  void start();
  // Called on the io thread by the listener with an authenticated connection whose first frame
  // was a Hello for this volume. It replaces the current link, if any: the peer reconnected.
  void adopt(std::shared_ptr<PeerConnection> connection, const peer::Hello& hello);
  // Clean stop: tells the peer, closes the link, makes the metadata clean. Blocks.
  void stop();

  // Control (any thread; they wait for the io thread).
  VolumeStatus status();
  CommandResult promote(bool force);
  CommandResult demote();
  CommandResult verify();
  CommandResult reconnect();

  // PeerChannel (worker threads).
  bool connected() const override { return replicating_.load(); }
  bool peer_up_to_date() const override { return replicating_.load() && peer_up_to_date_.load(); }
  void send_read(std::uint64_t offset, std::span<std::uint8_t> dst, Done done) override;
  void send_write(std::uint64_t offset, std::span<const std::uint8_t> data, bool fua, Done done) override;
  void send_flush(Done done) override;
  void send_discard(std::uint64_t offset, std::uint64_t length, Done done) override;
  void write_completed() override { epoch_.fetch_add(1); }
  void send_reservations(std::span<const std::uint8_t> record, Done done) override;
  void send_reservation_command(std::span<const std::uint8_t> request, std::vector<std::uint8_t>* answer,
                                Done done) override;

  // OutOfSyncRecorder (worker threads): the bitmap, after a new generation is on disk.
  void mark_out_of_sync(std::uint64_t offset, std::uint64_t length) override;

 private:
  enum class Phase { Idle, Connecting, Handshake, Up, Stopped };
  enum class SyncRole { None, Source, Target };
  struct Pending {
    Done done;                          // null once completed early (protocol B's first answer)
    std::span<std::uint8_t> read_into;  // Read: where ReadData's data goes
    std::uint64_t offset = 0;           // Write, Discard: the range, recorded if it fails late
    std::uint64_t length = 0;
    std::chrono::steady_clock::time_point sent_at;
    std::vector<std::uint8_t>* answer_into = nullptr;  // ReservationCommand: where the answer goes
    bool until_flushed = false;  // Write, Discard: unconfirmed until a peer flush covers it
  };
  struct ResyncProgress;
  struct VerifyRun;

  // --- link lifecycle (replicator.cpp)
  void dial();
  void schedule_dial();
  void begin_handshake(std::shared_ptr<PeerConnection> connection);
  void on_message_from(const std::weak_ptr<PeerConnection>& from, const peer::FrameHeader& header,
                       const peer::Message& message);
  void on_message(const peer::FrameHeader& header, const peer::Message& message);
  void on_closed(const std::shared_ptr<PeerConnection>& connection, const std::string& reason);
  // Ends the current link now (pending requests fail, state resets, reconnecting starts);
  // with `tell_peer`, a Disconnect saying why goes out first.
  void drop_link(const std::string& reason, std::optional<peer::DisconnectCode> tell_peer);
  void link_down(const std::string& reason);
  // Logs why the peer is not accepted, tells it, drops the link.
  void refuse(const std::string& reason, peer::DisconnectCode code);
  // Once a second: the lazy bitmap write, the request timeout, and a resync of bits set while
  // the link was up.
  void arm_tick();
  void on_tick();
  VolumeStatus status_on_io_thread();
  void on_hello(const peer::Hello& hello);
  // Credentials the links of this volume prove themselves with (the dialler accepts only the peer).
  peer::LinkCredentials credentials() const;
  void compare_with_peer();
  void on_shared_settings(const peer::SharedSettings& settings);
  // `difference`: what describe_settings_difference() found, "" when unknown.
  void refuse_config_mismatch(const std::string& difference);
  void on_state_change(const peer::StateChange& change);
  peer::Hello make_hello() const;
  void send_state(const std::string& reason);
  // Records why the link is not up, for status; true when the reason changed.
  bool note_error(const std::string& error);
  void warn_once(const std::string& error);
  DiskState local_disk_state() const;
  void set_peer_disk(peer::DiskState state);
  void on_local_disk_failed(int error, const std::string& operation);
  // Runs `work` on the io thread and waits for its result. The task is shared with the posted
  // handler: the io thread may still be inside it after the result is ready and we returned.
  template <typename F>
  auto on_io_thread(F work) -> decltype(work()) {
    auto task = std::make_shared<std::packaged_task<decltype(work())()>>(std::move(work));
    auto result = task->get_future();
    boost::asio::post(io_, [task] { (*task)(); });
    return result.get();
  }
  int update_metadata(const std::function<void(Superblock&)>& change);
  // Runs `work` (disk I/O, digests) on a worker, then `answer(link, result)` on the link's
  // thread - if the link it was started for is still the current one; a reply to a peer that
  // reconnected since would answer a request the new link never made.
  template <typename Work, typename Answer>
  void on_worker_then_answer(Work work, Answer answer) {
    std::weak_ptr<PeerConnection> link = link_;
    workers_.post([self = shared_from_this(), link, work = std::move(work), answer = std::move(answer)]() mutable {
      auto result = work();
      boost::asio::post(self->io_, [self, link, result = std::move(result), answer = std::move(answer)]() mutable {
        auto connection = link.lock();
        if (connection && connection == self->link_) answer(*connection, std::move(result));
      });
    });
  }
  void become_primary();
  void maybe_resume_primary();

  // --- replication of application I/O (replicator_data.cpp)
  // Sends a request and keeps `request` (its sent_at set here) until the answer or the end of
  // the link completes it; `owner` keeps borrowed payload bytes alive until they are sent.
  void send_request(peer::Message message, Pending request, std::shared_ptr<const void> owner = nullptr);
  void fail_pending(int error);
  void complete_request(std::uint64_t id, int status, std::uint32_t flags = 0);
  void settle(Pending& request, int status);
  void on_write(const peer::FrameHeader& header, const peer::Write& write);
  void on_discard(const peer::FrameHeader& header, const peer::Discard& discard);
  void on_flush(const peer::FrameHeader& header);
  void on_read(const peer::FrameHeader& header, const peer::Read& read);
  // What the secondary does with each item the primary sends: once the receive order lets an
  // item over [offset, +length) of `epoch` start, `apply` does its disk I/O - on a worker, or
  // right here with `may_apply_here` when nothing else waits - and `answer` replies with the
  // result on the link's thread, if the link the item came over is still the current one.
  void apply_in_order(std::uint64_t offset, std::uint64_t length, std::uint64_t epoch, bool may_apply_here,
                      std::function<int()> apply, std::function<void(PeerConnection&, int)> answer);
  void on_read_data(const peer::FrameHeader& header, const peer::ReadData& data);
  // Persistent reservations: the primary sends its record when the link comes up, when it
  // becomes primary and on every change; the secondary stores and adopts it.
  void push_reservations();
  void on_reservations(const peer::FrameHeader& header, const peer::Reservations& reservations);
  void on_reservations_ack(const peer::FrameHeader& header, const peer::ReservationsAck& ack);
  // A PERSISTENT RESERVE OUT from the secondary's port runs here on a worker.
  void on_reservation_command(const peer::FrameHeader& header, const peer::ReservationCommand& command);
  void on_reservation_answer(const peer::FrameHeader& header, const peer::ReservationAnswer& answer);
  // Reads a range of the local replica (EIO while it is detached) and digests it: worker threads.
  std::pair<int, peer::Digest> local_digest(std::uint64_t offset, std::uint32_t length, peer::DigestAlgorithm algorithm);
  void ensure_new_generation();

  // --- the peer's durability (replicator_durability.cpp): what it acknowledged stays recorded
  // (unconfirmed_, and held in the activity log) until a flush it confirmed covers it.
  void record_unconfirmed(const Pending& request);
  // Sends a flush covering the open epoch, and flushes the local disk; `done` (may be null) runs
  // with 0 once the peer confirmed it or, if it failed, once every write it may lack is marked
  // out of sync (not waiting for the local flush: the caller flushes its own disk).
  void request_peer_flush(Done done);
  // The secondary's side: flushes its disk for an epoch, answers BarrierAck.
  void on_barrier(const peer::FrameHeader& header, const peer::Barrier& barrier);
  void mark_epoch_out_of_sync(const Epoch& epoch);
  // Ends the activity-log holds of `epoch` (both disks flushed it, or its bits are set).
  void release_epoch(const Epoch& epoch);
  // The open epoch: marked out of sync, then released.
  void mark_unconfirmed_out_of_sync();
  void arm_flush_timer();

  // --- resync and verify (replicator_sync.cpp)
  void send_bitmap();
  void on_bitmap_chunk(const peer::BitmapChunk& chunk);
  void start_sync_after_exchange();
  void start_sync_target();
  void start_source_and_share_bitmap();
  void pump_resync();
  void request_resync_range(std::uint64_t offset, std::uint32_t length);
  void on_resync_request(const peer::FrameHeader& header, const peer::ResyncRequest& request);
  void on_resync_data(const peer::FrameHeader& header, const peer::ResyncData& data);
  void on_resync_acked(std::uint64_t offset, std::uint64_t length, int status);
  void finish_sync_target();
  void finish_sync_source();
  std::uint64_t resync_rate_now() const;
  void pump_verify();
  void on_checksum_request(const peer::FrameHeader& header, const peer::ChecksumRequest& request);
  void on_checksum_reply(const peer::FrameHeader& header, const peer::ChecksumReply& reply);
  void on_verify_done(const peer::VerifyDone& done);
  void finish_verify(int status);
  void reset_sync_state();

  boost::asio::io_context& io_;
  util::WorkerPool& workers_;
  const ReplicaSettings settings_;
  Volume& data_;
  MetadataStore& metadata_;
  std::unique_ptr<ReplicatedVolume> volume_;

  // Shared with worker threads.
  std::atomic<bool> replicating_{false};
  std::atomic<bool> peer_up_to_date_{false};
  std::atomic<std::uint64_t> epoch_{0};
  std::mutex generation_mutex_;
  std::atomic<std::uint64_t> writes_replicated_{0};
  std::atomic<std::uint64_t> bytes_resynced_{0};

  // io thread only.
  Phase phase_ = Phase::Idle;
  std::shared_ptr<PeerConnection> link_;
  std::optional<peer::Hello> peer_hello_;
  bool awaiting_settings_ = false;  // configuration hashes differ; the peer's SharedSettings is due
  peer::Role peer_role_ = peer::Role::Secondary;
  peer::DiskState peer_disk_ = peer::DiskState::Diskless;
  Generations peer_generations_;
  SyncDecision decision_ = SyncDecision::InSync;
  SyncRole sync_role_ = SyncRole::None;
  bool bitmap_sent_ = false;
  bool bitmap_received_ = false;
  bool resume_primary_ = false;
  std::string resume_reason_;  // why resume_primary_ was set, for the log
  std::string last_error_;
  std::map<std::uint64_t, Pending> pending_;
  // Our request ids have one parity (odd on the node with the lower id), the peer's the other,
  // so an acknowledgement names its request unambiguously.
  std::uint64_t next_request_id_ = 1;
  ReceiveOrder receive_order_;
  boost::asio::steady_timer dial_timer_;
  boost::asio::steady_timer sync_timer_;    // resync pacing
  boost::asio::steady_timer verify_timer_;  // verify pacing
  boost::asio::steady_timer tick_timer_;
  boost::asio::steady_timer flush_timer_;  // the open epoch's age
  UnconfirmedWrites unconfirmed_;
  std::uint64_t epochs_closed_ = 0;
  std::chrono::milliseconds backoff_{200};
  std::unique_ptr<ResyncProgress> resync_;
  std::unique_ptr<VerifyRun> verify_;
  VerifyProgress last_verify_;
  std::chrono::steady_clock::time_point last_app_write_{};
};

}  // namespace freevsa::replication
