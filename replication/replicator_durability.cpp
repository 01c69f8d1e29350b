// The peer's durability, seen from the primary: a write the peer acknowledged is written there,
// but durable only once the peer flushed. Until a flush the peer confirmed covers it, the write
// stays in the record of unconfirmed writes and keeps its activity-log extents hot; if the link
// drops, the peer's disk fails or a flush fails first, it goes to the dirty bitmap, so that the
// resync copies it again whatever the peer lost (docs/durability.md).
//
// The primary asks for such flushes by itself (EpochPolicy) and on every SYNCHRONIZE CACHE.
#include "replication/replicator.h"

#include <fmt/format.h>

#include <cstring>
#include <memory>

#include "util/log.h"

namespace freevsa::replication {

namespace asio = boost::asio;

void Replicator::record_unconfirmed(const Pending& request) {
  // The write's own begin_write still holds the extents (it ends when the write's Done ran).
  const bool held = metadata_.activity_log().hold(request.offset, request.length);
  const auto now = UnconfirmedWrites::Clock::now();
  if (unconfirmed_.add({request.offset, request.length, held}, now)) arm_flush_timer();
  if (unconfirmed_.flush_due(now)) request_peer_flush(nullptr);
}

void Replicator::arm_flush_timer() {
  flush_timer_.expires_after(unconfirmed_.policy().max_age);
  flush_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->phase_ == Phase::Stopped) return;
    if (self->unconfirmed_.flush_due(UnconfirmedWrites::Clock::now())) self->request_peer_flush(nullptr);
  });
}

void Replicator::request_peer_flush(Done done) {
  // The epoch leaves the activity log only once both disks flushed it: after a crash of both
  // nodes, a write durable on one side only must lie in an extent the log still names.
  struct Flushes {
    Epoch epoch;
    int waiting = 2;  // the peer's flush and the local disk's
  };
  auto flushes = std::make_shared<Flushes>(Flushes{unconfirmed_.close()});
  auto finished = [self = shared_from_this(), flushes] {
    if (--flushes->waiting == 0) self->release_epoch(flushes->epoch);
  };
  if (volume_->detached()) {
    --flushes->waiting;
  } else {
    workers_.post([self = shared_from_this(), finished] {
      if (const int error = self->data_.flush(); error != 0) {
        util::log_error("{}: flushing the local disk failed: {}", self->settings_.volume_name, std::strerror(error));
      }
      asio::post(self->io_, finished);
    });
  }
  // Every write of the epoch was acknowledged before this goes out. Under protocols A and C it was
  // written on the peer by then, so the peer's Barrier need not hold back what follows; a
  // protocol B acknowledgement says only "received", and an initiator's flush (`done`) must cover
  // every write completed before it: Flush waits behind everything received before it.
  const bool barrier = !done && settings_.protocol != Protocol::B;
  const peer::Message request =
      barrier ? peer::Message(peer::Barrier{++epochs_closed_, static_cast<std::uint32_t>(flushes->epoch.size())})
              : peer::Message(peer::Flush{});
  send_request(request, Pending{[self = shared_from_this(), flushes, finished, done = std::move(done)](int error) {
                 if (error != 0) {
                   // The peer may have lost any write it acknowledged, also those acknowledged
                   // since this flush went out.
                   self->mark_epoch_out_of_sync(flushes->epoch);
                   self->mark_unconfirmed_out_of_sync();
                 }
                 if (done) done(0);
                 finished();
               }});
}

void Replicator::on_barrier(const peer::FrameHeader& header, const peer::Barrier& barrier) {
  const std::uint64_t id = header.request_id;
  on_worker_then_answer([self = shared_from_this()] { return self->volume_->apply_peer_flush(); },
                        [self = shared_from_this(), id, barrier](PeerConnection& link, int error) {
                          if (error != 0) {
                            // The primary then records the epoch's writes for a resync.
                            self->drop_link(fmt::format("flushing the disk for epoch {} failed: {}", barrier.epoch,
                                                        std::strerror(error)),
                                            peer::DisconnectCode::Unspecified);
                            return;
                          }
                          link.send(peer::BarrierAck{barrier.epoch, barrier.write_count}, id);
                        });
}

void Replicator::mark_epoch_out_of_sync(const Epoch& epoch) {
  for (const WrittenRange& range : epoch) mark_out_of_sync(range.offset, range.length);
}

void Replicator::release_epoch(const Epoch& epoch) {
  // After the bits: an extent leaves the on-disk activity log only with its bits durable.
  for (const WrittenRange& range : epoch) {
    if (range.held) metadata_.activity_log().end_write(range.offset, range.length);
  }
}

void Replicator::mark_unconfirmed_out_of_sync() {
  const Epoch epoch = unconfirmed_.close();
  mark_epoch_out_of_sync(epoch);
  release_epoch(epoch);
}

}  // namespace freevsa::replication
