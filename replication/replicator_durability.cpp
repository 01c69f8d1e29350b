// The peer's durability, seen from the primary: a write the peer acknowledged is written there,
// but durable only once the peer flushed. Until a flush the peer confirmed covers it, the write
// stays in the record of unconfirmed writes and keeps its activity-log extents hot; if the link
// drops, the peer's disk fails or a flush fails first, it goes to the dirty bitmap, so that the
// resync copies it again whatever the peer lost (docs/durability.md).
//
// The primary asks for such flushes by itself (EpochPolicy) and on every SYNCHRONIZE CACHE.
#include "replication/replicator.h"

#include <memory>

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
  auto epoch = std::make_shared<Epoch>(unconfirmed_.close());
  // The peer's flush is a barrier behind everything it received before it; every write of the
  // epoch was acknowledged, so received, before this goes out.
  send_request(peer::Flush{}, Pending{[self = shared_from_this(), epoch, done = std::move(done)](int error) {
                 self->settle_epoch(*epoch, error == 0);
                 // A failed flush: the peer may have lost any write it acknowledged, also those
                 // acknowledged since this flush went out.
                 if (error != 0) self->mark_unconfirmed_out_of_sync();
                 if (done) done(0);
               }});
}

void Replicator::settle_epoch(const Epoch& epoch, bool durable) {
  for (const WrittenRange& range : epoch) {
    if (!durable) mark_out_of_sync(range.offset, range.length);
    // After the bit: an extent leaves the on-disk activity log only with its bits durable.
    if (range.held) metadata_.activity_log().end_write(range.offset, range.length);
  }
}

void Replicator::mark_unconfirmed_out_of_sync() { settle_epoch(unconfirmed_.close(), false); }

}  // namespace freevsa::replication
