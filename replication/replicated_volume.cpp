#include "replication/replicated_volume.h"

#include "util/log.h"

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace freevsa::replication {

// One peer operation's outcome, waited for by the worker that started it.
class ReplicatedVolume::PeerOutcome {
 public:
  void complete(int error) {
    std::function<void()> then;
    {
      std::lock_guard lock(mutex_);
      error_ = error;
      then = std::move(then_);
    }
    done_.notify_all();
    if (then) then();
  }
  // Runs `work` once the outcome is known (at once if it is), on the completing thread.
  void then(std::function<void()> work) {
    {
      std::lock_guard lock(mutex_);
      if (!error_.has_value()) {
        then_ = std::move(work);
        return;
      }
    }
    work();
  }
  int wait() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return error_.has_value(); });
    return *error_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::optional<int> error_;
  std::function<void()> then_;
};

// Counts an operation as under way as primary; admitted() says whether this node was primary
// when it started. Counted first and checked second, so that drain() after set_role() sees
// every operation that got in.
class ReplicatedVolume::PrimaryOp {
 public:
  explicit PrimaryOp(ReplicatedVolume& volume) : volume_(volume) {
    std::lock_guard lock(volume_.ops_mutex_);
    ++volume_.primary_ops_;
  }
  ~PrimaryOp() {
    std::lock_guard lock(volume_.ops_mutex_);
    if (--volume_.primary_ops_ == 0) volume_.ops_done_.notify_all();
  }
  bool admitted() const { return volume_.role_.load() == Role::Primary; }

 private:
  ReplicatedVolume& volume_;
};

void ReplicatedVolume::drain() {
  std::unique_lock lock(ops_mutex_);
  ops_done_.wait(lock, [this] { return primary_ops_ == 0; });
}

ReplicatedVolume::ReplicatedVolume(Volume& local, PeerChannel& peer, OutOfSyncRecorder& out_of_sync, Protocol protocol)
    : local_(local), peer_(peer), out_of_sync_(out_of_sync), protocol_(protocol) {}

Access ReplicatedVolume::access() const {
  if (transitioning_.load()) return Access::Transitioning;
  if (role_.load() == Role::Primary) return local_.access();
  return local_up_to_date_.load() && !detached_.load() ? Access::Standby : Access::Unavailable;
}

Access ReplicatedVolume::peer_access() const {
  if (peer_primary_.load()) return Access::Active;
  return peer_.connected() && !peer_.peer_up_to_date() ? Access::Unavailable : Access::Standby;
}

std::vector<PortGroup> ReplicatedVolume::port_groups() const {
  return {PortGroup{own_group_, access()}, PortGroup{peer_group_, peer_access()}};
}

std::uint64_t ReplicatedVolume::port_group_states() const {
  return std::uint64_t{own_group_} << 48 | std::uint64_t{peer_group_} << 32 |
         static_cast<std::uint64_t>(access()) << 8 | static_cast<std::uint64_t>(peer_access());
}

void ReplicatedVolume::with_range_locked(std::uint64_t offset, std::uint64_t length, const std::function<void()>& work) {
  auto guard = in_flight_.lock(offset, length);
  work();
}

int ReplicatedVolume::wait_for_peer(const std::function<void(PeerChannel::Done)>& start) {
  // Shared: the completing thread may still be inside complete() when the waiter returns.
  auto outcome = std::make_shared<PeerOutcome>();
  start([outcome](int error) { outcome->complete(error); });
  return outcome->wait();
}

int ReplicatedVolume::on_peer_only(const std::function<void(PeerChannel::Done)>& start) {
  if (!peer_.peer_up_to_date()) return EIO;
  return wait_for_peer(start) == 0 ? 0 : EIO;  // failed there too: neither disk has it
}

bool ReplicatedVolume::detach_if_peer_can_serve(int error, const char* operation) {
  if (!peer_.peer_up_to_date()) return false;
  if (!detached_.exchange(true) && on_detach_) on_detach_(error, operation);
  return true;
}

int ReplicatedVolume::read_from_peer(std::uint64_t offset, std::span<std::uint8_t> dst) {
  // A frame carries at most kMaxDataLength (1 MiB); SCSI reads may be longer.
  constexpr std::size_t kPiece = 1u << 20;
  for (std::size_t done = 0; done < dst.size(); done += kPiece) {
    const std::span<std::uint8_t> piece = dst.subspan(done, std::min(kPiece, dst.size() - done));
    if (int error = on_peer_only([&](PeerChannel::Done finished) {
          peer_.send_read(offset + done, piece, std::move(finished));
        });
        error != 0) {
      return error;
    }
  }
  return 0;
}

int ReplicatedVolume::write_on_peer_only(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) {
  return on_peer_only([&](PeerChannel::Done done) { peer_.send_write(offset, src, fua, std::move(done)); });
}

int ReplicatedVolume::read(std::uint64_t offset, std::span<std::uint8_t> dst) {
  if (role_.load() != Role::Primary) return EROFS;
  if (detached_.load()) return read_from_peer(offset, dst);
  const int error = local_.read(offset, dst);
  if (error != 0 && detach_if_peer_can_serve(error, "read")) return read_from_peer(offset, dst);
  return error;
}

std::shared_ptr<ReplicatedVolume::PeerOutcome> ReplicatedVolume::start_on_peer(
    std::uint64_t offset, std::uint64_t length, const std::function<void(PeerChannel::Done)>& start) {
  if (!peer_.connected()) {
    if (length > 0) out_of_sync_.mark_out_of_sync(offset, length);
    return nullptr;
  }
  auto outcome = std::make_shared<PeerOutcome>();
  OutOfSyncRecorder& out_of_sync = out_of_sync_;
  start([outcome, &out_of_sync, offset, length](int error) {
    // Recorded before the waiter wakes: once a write returned, its range is on the peer or in
    // the bitmap. (A failed flush names no range: the peer's disk failed, and a failed disk
    // is detached there and fully resynced later.)
    if (error != 0 && length > 0) out_of_sync.mark_out_of_sync(offset, length);
    outcome->complete(error);
  });
  return outcome;
}

void ReplicatedVolume::finish_on_peer(const std::shared_ptr<PeerOutcome>& outcome) {
  if (outcome && protocol_ != Protocol::A) outcome->wait();
}

int ReplicatedVolume::write(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) {
  const PrimaryOp op(*this);
  if (!op.admitted()) return EROFS;
  auto guard = in_flight_.lock(offset, src.size());
  if (detached_.load()) return write_on_peer_only(offset, src, fua);
  // The extent is hot on disk before either replica changes, so that after a crash of this
  // node the resync covers it whichever side the write reached.
  if (activity_log_ != nullptr) {
    if (int error = activity_log_->begin_write(offset, src.size()); error != 0) {
      return detach_if_peer_can_serve(error, "activity log write") ? write_on_peer_only(offset, src, fua) : error;
    }
  }
  // Protocol A returns before the peer answered: the link gets its own copy of the data.
  std::shared_ptr<std::vector<std::uint8_t>> copy;
  std::span<const std::uint8_t> to_peer = src;
  if (protocol_ == Protocol::A) {
    copy = std::make_shared<std::vector<std::uint8_t>>(src.begin(), src.end());
    to_peer = *copy;
  }
  // The peer write starts first and is waited for last, so both disks work at the same time.
  auto outcome = start_on_peer(offset, src.size(), [&](PeerChannel::Done done) {
    peer_.send_write(offset, to_peer, fua, [copy, done = std::move(done)](int error) { done(error); });
  });
  int local_error = local_.write(offset, src, fua);
  if (local_error != 0 && outcome) {
    // The data may now be on the peer's disk alone: with an UpToDate peer that is enough.
    if (outcome->wait() == 0) {
      if (detach_if_peer_can_serve(local_error, "write")) {
        local_error = 0;
      } else {
        out_of_sync_.mark_out_of_sync(offset, src.size());
      }
    }
  }
  finish_on_peer(outcome);
  release_activity_log(outcome, offset, src.size());
  if (protocol_ != Protocol::C) peer_.write_completed();
  return local_error;
}

void ReplicatedVolume::release_activity_log(const std::shared_ptr<PeerOutcome>& outcome, std::uint64_t offset,
                                            std::uint64_t length) {
  if (activity_log_ == nullptr) return;
  // Protocol A returns before the peer answered: the extent stays hot until it did, so that a
  // crash of this node in between still resyncs it.
  if (outcome && protocol_ == Protocol::A) {
    outcome->then([log = activity_log_, offset, length] { log->end_write(offset, length); });
    return;
  }
  activity_log_->end_write(offset, length);
}

int ReplicatedVolume::store_reservations(std::span<const std::uint8_t> record) {
  if (persist_reservations_) {
    if (int error = persist_reservations_(record); error != 0) return error;
  }
  Volume::store_reservations(record);
  if (!peer_.connected()) return 0;
  if (int error = wait_for_peer([&](PeerChannel::Done done) { peer_.send_reservations(record, std::move(done)); });
      error != 0) {
    // The link is dropped over it (Replicator), and the next one starts with the record.
    util::log_warn("{}: the peer did not store the persistent reservations: {}", name(), std::strerror(error));
  }
  return 0;
}

void ReplicatedVolume::adopt_peer_reservations(std::span<const std::uint8_t> record) {
  Volume::store_reservations(record);
  reservations_received_.fetch_add(1);
}

int ReplicatedVolume::forward_reservation_command(std::span<const std::uint8_t> request,
                                                  std::vector<std::uint8_t>& answer) {
  if (!peer_.connected() || !peer_primary_.load()) return ENOTCONN;
  const int error =
      wait_for_peer([&](PeerChannel::Done done) { peer_.send_reservation_command(request, &answer, std::move(done)); });
  return error != 0 || answer.empty() ? ENOTCONN : 0;
}

void ReplicatedVolume::set_reservation_command_runner(ReservationCommandRunner runner) {
  std::lock_guard lock(runner_mutex_);
  run_reservation_command_ = std::move(runner);
}

std::vector<std::uint8_t> ReplicatedVolume::run_forwarded_reservation_command(std::span<const std::uint8_t> request) {
  std::lock_guard lock(runner_mutex_);
  if (!run_reservation_command_ || role_.load() != Role::Primary || transitioning_.load()) return {};
  return run_reservation_command_(request);
}

int ReplicatedVolume::flush() {
  const PrimaryOp op(*this);
  if (!op.admitted()) return EROFS;
  if (detached_.load()) return on_peer_only([&](PeerChannel::Done done) { peer_.send_flush(std::move(done)); });
  auto outcome = start_on_peer(0, 0, [&](PeerChannel::Done done) { peer_.send_flush(std::move(done)); });
  int local_error = local_.flush();
  if (local_error != 0 && outcome && outcome->wait() == 0 && detach_if_peer_can_serve(local_error, "flush")) {
    local_error = 0;
  }
  // Protocol A does not wait for the peer (its flush still settles what the peer acknowledged).
  if (local_error != 0 || !outcome || protocol_ == Protocol::A) return local_error;
  if (const int peer_error = outcome->wait(); peer_error != 0) {
    // Neither flushed there nor recorded as missing there (PeerChannel::send_flush): a failover
    // could lose what the initiator is about to be told is durable.
    util::log_warn("{}: SYNCHRONIZE CACHE fails: the peer's flush failed ({}) and what it may lack is not recorded",
                   name(), std::strerror(peer_error));
    return EIO;
  }
  return 0;
}

int ReplicatedVolume::discard(std::uint64_t offset, std::uint64_t length) {
  const PrimaryOp op(*this);
  if (!op.admitted()) return EROFS;
  // A discard may span the whole volume; the activity log holds a bounded number of extents,
  // so it goes in pieces.
  constexpr std::uint64_t kPiece = 64ull << 20;
  for (std::uint64_t done = 0; done < length;) {
    const std::uint64_t piece = std::min(kPiece, length - done);
    if (int error = discard_piece(offset + done, piece); error != 0) return error;
    done += piece;
  }
  return 0;
}

int ReplicatedVolume::discard_piece(std::uint64_t offset, std::uint64_t length) {
  auto guard = in_flight_.lock(offset, length);
  const auto discard_on_peer = [&] {
    return on_peer_only([&](PeerChannel::Done done) { peer_.send_discard(offset, length, std::move(done)); });
  };
  if (detached_.load()) return discard_on_peer();
  if (activity_log_ != nullptr) {
    if (int error = activity_log_->begin_write(offset, length); error != 0) {
      return detach_if_peer_can_serve(error, "activity log write") ? discard_on_peer() : error;
    }
  }
  auto outcome = start_on_peer(offset, length, [&](PeerChannel::Done done) {
    peer_.send_discard(offset, length, std::move(done));
  });
  int local_error = local_.discard(offset, length);
  if (local_error != 0 && outcome && outcome->wait() == 0) {
    if (detach_if_peer_can_serve(local_error, "discard")) {
      local_error = 0;
    } else {
      out_of_sync_.mark_out_of_sync(offset, length);
    }
  }
  finish_on_peer(outcome);
  release_activity_log(outcome, offset, length);
  if (protocol_ != Protocol::C) peer_.write_completed();
  return local_error;
}

int ReplicatedVolume::apply_peer_write(std::uint64_t offset, std::span<const std::uint8_t> data, bool fua) {
  // Two primaries must never both write: the replication stream is only taken by a secondary.
  if (role_.load() == Role::Primary) return EBUSY;
  if (offset > size_bytes() || data.size() > size_bytes() - offset) return EINVAL;
  auto guard = in_flight_.lock(offset, data.size());
  if (detached_.load()) return EIO;
  const int error = local_.write(offset, data, fua);
  if (error != 0) detach_secondary(error, "write");
  return error;
}

void ReplicatedVolume::detach_secondary(int error, const char* operation) {
  // The primary keeps the data; this replica is no longer a copy of it.
  if (!detached_.exchange(true) && on_detach_) on_detach_(error, operation);
}

int ReplicatedVolume::apply_peer_discard(std::uint64_t offset, std::uint64_t length) {
  if (role_.load() == Role::Primary) return EBUSY;
  if (offset > size_bytes() || length > size_bytes() - offset) return EINVAL;
  auto guard = in_flight_.lock(offset, length);
  if (detached_.load()) return EIO;
  const int error = local_.discard(offset, length);
  if (error != 0) detach_secondary(error, "discard");
  return error;
}

int ReplicatedVolume::apply_peer_flush() {
  if (detached_.load()) return EIO;
  const int error = local_.flush();
  if (error != 0) detach_secondary(error, "flush");
  return error;
}

}  // namespace freevsa::replication
