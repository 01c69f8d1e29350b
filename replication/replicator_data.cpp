// Replication of application I/O: the primary's side (PeerChannel: send, wait for the
// acknowledgement) and the secondary's (apply in order, acknowledge).
#include <openssl/rand.h>

#include <algorithm>
#include <cerrno>

#include "replication/replicator.h"
#include "replication/replicator_sync_state.h"
#include "replication/replicator_internal.h"
#include "util/aligned_buffer.h"
#include "util/log.h"

namespace freevsa::replication {

namespace asio = boost::asio;

namespace {
constexpr std::size_t kApplyInlineMax = 64 * 1024;

std::uint64_t random_generation() {
  std::uint64_t value = 0;
  while (value == 0 || value == kFreshAndEmpty) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&value), sizeof value) != 1) {
      value = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) * 0x9e3779b97f4a7c15ull;
    }
  }
  return value;
}

// Completes the caller's Done once every piece of a request answered; the first error wins.
struct Gather {
  PeerChannel::Done done;
  std::size_t remaining;
  int error = 0;
  void piece_done(int piece_error) {
    if (error == 0) error = piece_error;
    if (--remaining == 0) done(error);
  }
};
}  // namespace

// ---- primary: sending

void Replicator::send_request(peer::Message message, Pending request, std::shared_ptr<const void> owner) {
  if (!link_ || phase_ != Phase::Up) {
    request.done(ECONNRESET);
    return;
  }
  const std::uint64_t id = next_request_id_;
  next_request_id_ += 2;
  request.sent_at = std::chrono::steady_clock::now();
  pending_.emplace(id, std::move(request));
  link_->send(message, id);
  if (owner) link_->hold_until_sent(std::move(owner));
}

void Replicator::send_write(std::uint64_t offset, std::span<const std::uint8_t> data, bool fua, Done done) {
  // The epoch of the moment the write is issued: a write the initiator issues after another
  // completed (protocols A and B) must carry a later epoch even if the link's thread is slow
  // to send the first.
  const std::uint64_t epoch = epoch_.load();
  asio::post(io_, [self = shared_from_this(), offset, data, fua, epoch, done = std::move(done)]() mutable {
    if (!self->replicating_.load() || !self->link_) {
      done(ECONNRESET);
      return;
    }
    if (data.empty()) {
      done(0);
      return;
    }
    // A frame carries at most kMaxDataLength; longer writes go in pieces, answered together.
    const std::size_t pieces = (data.size() + peer::kMaxDataLength - 1) / peer::kMaxDataLength;
    auto gather = std::make_shared<Gather>(Gather{std::move(done), pieces});
    for (std::size_t sent = 0; sent < data.size(); sent += peer::kMaxDataLength) {
      const std::size_t length = std::min<std::size_t>(peer::kMaxDataLength, data.size() - sent);
      peer::Write write{offset + sent, fua ? peer::kWriteFua : 0u, epoch, data.subspan(sent, length)};
      Pending request{[gather](int error) { gather->piece_done(error); }, {}, offset + sent, length};
      request.until_flushed = true;
      self->send_request(write, std::move(request));
    }
    self->writes_replicated_.fetch_add(1);
  });
}

void Replicator::send_flush(Done done) {
  asio::post(io_, [self = shared_from_this(), done = std::move(done)]() mutable {
    if (!self->replicating_.load()) {
      // The peer takes no writes: the bitmap holds every write it lacks (link_down,
      // on_state_change and the write path put them there).
      self->mark_unconfirmed_out_of_sync();
      done(0);
      return;
    }
    self->request_peer_flush(std::move(done));
  });
}

void Replicator::send_discard(std::uint64_t offset, std::uint64_t length, Done done) {
  const std::uint64_t epoch = epoch_.load();
  asio::post(io_, [self = shared_from_this(), offset, length, epoch, done = std::move(done)]() mutable {
    if (!self->replicating_.load()) {
      done(ECONNRESET);
      return;
    }
    Pending request{std::move(done), {}, offset, length};
    request.until_flushed = true;  // a discard is not durable on the peer before its flush either
    self->send_request(peer::Discard{offset, length, epoch}, std::move(request));
  });
}

void Replicator::send_read(std::uint64_t offset, std::span<std::uint8_t> dst, Done done) {
  asio::post(io_, [self = shared_from_this(), offset, dst, done = std::move(done)]() mutable {
    if (!self->replicating_.load()) {
      done(ECONNRESET);
      return;
    }
    self->send_request(peer::Read{offset, static_cast<std::uint32_t>(dst.size())}, Pending{std::move(done), dst, offset});
  });
}

void Replicator::on_read_data(const peer::FrameHeader& header, const peer::ReadData& data) {
  auto it = pending_.find(header.request_id);
  if (it == pending_.end()) return;
  Pending request = std::move(it->second);
  pending_.erase(it);
  if (data.status != 0 || data.data.size() != request.read_into.size()) {
    request.done(data.status != 0 ? data.status : EIO);
    return;
  }
  std::copy(data.data.begin(), data.data.end(), request.read_into.begin());
  request.done(0);
}

void Replicator::on_read(const peer::FrameHeader& header, const peer::Read& read) {
  if (read.offset > data_.size_bytes() || read.length > data_.size_bytes() - read.offset) {
    drop_link("read request beyond the end of the volume", peer::DisconnectCode::ProtocolError);
    return;
  }
  // Ordered like a write, so that it sees every overlapping write that arrived before it
  // (protocols A and B acknowledge those before they are written).
  const std::uint64_t id = header.request_id;
  auto buffer = std::make_shared<util::AlignedBuffer>(read.length);
  apply_in_order(
      read.offset, read.length, 0, false,
      [self = shared_from_this(), read, buffer] {
        return self->volume_->detached() ? EIO : self->data_.read(read.offset, buffer->span());
      },
      [read, id, buffer](PeerConnection& link, int error) {
        peer::ReadData reply{read.offset, read.length, error, {}};
        if (error == 0) reply.data = buffer->span();
        link.send(reply, id);
        link.hold_until_sent(buffer);
      });
}

void Replicator::complete_request(std::uint64_t id, int status, std::uint32_t flags) {
  auto it = pending_.find(id);
  if (it == pending_.end()) {
    // Not one of ours: the peer's request ids have the other parity. A sync target acknowledges
    // the resync data we served under its request's id.
    if (resync_) {
      auto served = resync_->served.find(id);
      if (served != resync_->served.end()) {
        const auto [offset, length] = served->second;
        resync_->served.erase(served);
        on_resync_acked(offset, length, status);
      }
    }
    return;
  }
  if ((flags & peer::kAckReceived) != 0 && status == 0) {
    // Protocol B: the writer may go on; the request stays until the write is on the peer's disk.
    if (Done done = std::move(it->second.done)) {
      if (it->second.until_flushed) record_unconfirmed(it->second);
      done(0);
    }
    it->second.done = nullptr;
    return;
  }
  Pending request = std::move(it->second);
  pending_.erase(it);
  // Written on the peer, but durable there only with FUA: until a flush, it may still be lost.
  if (status == 0 && request.done && request.until_flushed && (flags & peer::kAckDurable) == 0) {
    record_unconfirmed(request);
  }
  settle(request, status);
}

void Replicator::settle(Pending& request, int status) {
  if (request.done) {
    request.done(status);
  } else if (status != 0 && request.length > 0) {
    // Completed to the initiator already (protocol B): the peer lacks it after all.
    mark_out_of_sync(request.offset, request.length);
  }
}

void Replicator::fail_pending(int error) {
  std::map<std::uint64_t, Pending> pending;
  pending.swap(pending_);
  for (auto& [id, request] : pending) settle(request, error);
}

void Replicator::mark_out_of_sync(std::uint64_t offset, std::uint64_t length) {
  ensure_new_generation();
  metadata_.bitmap().set_range(offset, length);
}

void Replicator::ensure_new_generation() {
  // Before the first write the peer does not get completes, the metadata says that this
  // node's data moved on: after a crash the next connect must not find the two "in sync".
  std::lock_guard lock(generation_mutex_);
  if (metadata_.superblock().generations.bitmap != 0) return;
  const std::uint64_t next = random_generation();
  update_metadata([next](Superblock& sb) {
    start_new_generation(sb.generations, next);
    sb.set(metadata_flag::kPeerOutdated, true);
  });
  util::log_info("{}: writing without {}; new generation {:016x}", settings_.volume_name, settings_.peer_name, next);
}

// ---- persistent reservations

static_assert(kMaxReservationRecordBytes <= peer::kMaxReservationsLength);

void Replicator::send_reservations(std::span<const std::uint8_t> record, Done done) {
  auto copy = std::make_shared<std::vector<std::uint8_t>>(record.begin(), record.end());
  asio::post(io_, [self = shared_from_this(), copy, done = std::move(done)]() mutable {
    self->send_request(peer::Reservations{*copy}, Pending{std::move(done)}, copy);
  });
}

void Replicator::push_reservations() {
  send_reservations(volume_->stored_reservations(), [](int) {});
}

void Replicator::on_reservations(const peer::FrameHeader& header, const peer::Reservations& reservations) {
  const int error = update_metadata(
      [&reservations](Superblock& sb) { sb.reservations.assign(reservations.record.begin(), reservations.record.end()); });
  if (error == 0) volume_->adopt_peer_reservations(reservations.record);
  link_->send(peer::ReservationsAck{error}, header.request_id);
}

void Replicator::on_reservations_ack(const peer::FrameHeader& header, const peer::ReservationsAck& ack) {
  complete_request(header.request_id, ack.status);
  // Dropping the link makes the next one start with the record again.
  if (ack.status != 0) {
    drop_link(fmt::format("{} could not store the persistent reservations: {}", settings_.peer_name,
                          std::strerror(ack.status)),
              peer::DisconnectCode::Unspecified);
  }
}

void Replicator::send_reservation_command(std::span<const std::uint8_t> request, std::vector<std::uint8_t>* answer,
                                          Done done) {
  auto copy = std::make_shared<std::vector<std::uint8_t>>(request.begin(), request.end());
  asio::post(io_, [self = shared_from_this(), copy, answer, done = std::move(done)]() mutable {
    Pending pending{std::move(done)};
    pending.answer_into = answer;
    self->send_request(peer::ReservationCommand{*copy}, std::move(pending), copy);
  });
}

void Replicator::on_reservation_command(const peer::FrameHeader& header, const peer::ReservationCommand& command) {
  const std::uint64_t id = header.request_id;
  std::vector<std::uint8_t> request(command.request.begin(), command.request.end());
  // On a worker: the command stores the new reservations on the peer and waits for that.
  on_worker_then_answer(
      [self = shared_from_this(), request = std::move(request)] {
        return std::make_shared<std::vector<std::uint8_t>>(self->volume_->run_forwarded_reservation_command(request));
      },
      [id](PeerConnection& link, std::shared_ptr<std::vector<std::uint8_t>> answer) {
        link.send(peer::ReservationAnswer{*answer}, id);
        link.hold_until_sent(std::move(answer));
      });
}

void Replicator::on_reservation_answer(const peer::FrameHeader& header, const peer::ReservationAnswer& answer) {
  auto it = pending_.find(header.request_id);
  if (it == pending_.end()) return;
  Pending request = std::move(it->second);
  pending_.erase(it);
  if (request.answer_into != nullptr) request.answer_into->assign(answer.answer.begin(), answer.answer.end());
  if (request.done) request.done(0);
}

// ---- secondary: applying

void Replicator::on_write(const peer::FrameHeader& header, const peer::Write& write) {
  if (volume_->role() == Role::Primary) {
    drop_link(fmt::format("{} sent a replicated write, but this node is primary", settings_.peer_name),
              peer::DisconnectCode::SplitBrain);
    return;
  }
  last_app_write_ = std::chrono::steady_clock::now();
  auto buffer = std::make_shared<util::AlignedBuffer>(write.data.size());
  std::copy(write.data.begin(), write.data.end(), buffer->data());
  const std::uint64_t id = header.request_id;
  const std::uint64_t offset = write.offset;
  const bool fua = (write.flags & peer::kWriteFua) != 0;
  // Protocol B: the primary completes the write once the data arrived here; it still tracks it
  // until the second answer says it is written (or failed, which it then records for resync).
  if (settings_.protocol == Protocol::B) link_->send(peer::WriteAck{0, peer::kAckReceived}, id);
  // Alone in the queue and small, a write is applied right here on the link's thread: at low
  // queue depth that saves two thread hand-offs per write (about 70 us on a busy 2-core
  // machine). Otherwise the workers apply writes in parallel while this thread goes on reading.
  apply_in_order(
      offset, buffer->size(), write.epoch, buffer->size() <= kApplyInlineMax,
      [self = shared_from_this(), buffer, offset, fua] { return self->volume_->apply_peer_write(offset, buffer->span(), fua); },
      [id, fua](PeerConnection& link, int error) {
        link.send(peer::WriteAck{error, fua && error == 0 ? peer::kAckDurable : 0u}, id);
      });
}

void Replicator::on_discard(const peer::FrameHeader& header, const peer::Discard& discard) {
  if (volume_->role() == Role::Primary) {
    drop_link(fmt::format("{} sent a replicated discard, but this node is primary", settings_.peer_name),
              peer::DisconnectCode::SplitBrain);
    return;
  }
  const std::uint64_t id = header.request_id;
  apply_in_order(
      discard.offset, discard.length, discard.epoch, false,
      [self = shared_from_this(), discard] { return self->volume_->apply_peer_discard(discard.offset, discard.length); },
      [id](PeerConnection& link, int error) { link.send(peer::WriteAck{error, 0}, id); });
}

void Replicator::on_flush(const peer::FrameHeader& header) {
  const std::uint64_t id = header.request_id;
  // A barrier over the whole volume: it waits for every write that arrived before it (protocols
  // A and B acknowledge those before they are written) and holds back those after it.
  apply_in_order(
      0, data_.size_bytes(), 0, false, [self = shared_from_this()] { return self->volume_->apply_peer_flush(); },
      [id](PeerConnection& link, int error) { link.send(peer::FlushAck{error}, id); });
}

void Replicator::apply_in_order(std::uint64_t offset, std::uint64_t length, std::uint64_t epoch, bool may_apply_here,
                                std::function<int()> apply, std::function<void(PeerConnection&, int)> answer) {
  std::weak_ptr<PeerConnection> link = link_;
  receive_order_.submit(offset, length, epoch, [self = shared_from_this(), link, may_apply_here, apply,
                                                answer](ReceiveOrder::Ticket ticket) {
    auto run = [self, link, ticket, apply, answer] {
      const int result = apply();
      asio::post(self->io_, [self, link, ticket, answer, result] {
        self->receive_order_.complete(ticket);
        auto connection = link.lock();
        if (connection && connection == self->link_) answer(*connection, result);
      });
    };
    if (may_apply_here && self->receive_order_.pending() == 1) {
      run();
    } else {
      self->workers_.post(std::move(run));
    }
  });
}

}  // namespace freevsa::replication
