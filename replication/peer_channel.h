// What a replicated volume needs from the link to its peer. The peer link (TCP, handshake,
// authentication, framing) implements it; tests use an in-memory double.
//
// Threading: every method is thread-safe. Completion callbacks run on the link's own thread
// and must not block.
#pragma once

#include <cerrno>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace freevsa::replication {

class PeerChannel {
 public:
  using Done = std::function<void(int error)>;

  virtual ~PeerChannel() = default;

  // True while the link is up and the peer's disk takes replicated writes.
  virtual bool connected() const = 0;
  // True while, besides, the peer's disk is UpToDate: it can serve this volume's reads and take
  // its writes alone when the local disk has failed.
  virtual bool peer_up_to_date() const { return false; }

  // Replicates a write. `done` runs exactly once: with 0 when the peer reports the data on its
  // disk (with fua: on stable storage there), or with an errno when that is not known - the link
  // went down, or the peer's disk failed. `data` stays valid until `done` ran.
  virtual void send_write(std::uint64_t offset, std::span<const std::uint8_t> data, bool fua, Done done) = 0;
  // Asks the peer to make everything it acknowledged durable. `done` runs with 0 once the peer
  // has on stable storage every write it acknowledged before the flush was sent, or once every
  // write it acknowledged and may still lose is recorded out of sync here (the peer is away, its
  // disk failed, or its flush failed); with an errno when neither is known.
  virtual void send_flush(Done done) = 0;
  virtual void send_discard(std::uint64_t offset, std::uint64_t length, Done done) = 0;
  // Reads from the peer's disk (the local one failed). `dst` stays valid until `done` ran.
  virtual void send_read(std::uint64_t /*offset*/, std::span<std::uint8_t> /*dst*/, Done done) { done(ENOTCONN); }
  // Sends the volume's persistent reservation record; `done` runs with 0 once the peer stored
  // it. `record` stays valid until `done` ran.
  virtual void send_reservations(std::span<const std::uint8_t> /*record*/, Done done) { done(ENOTCONN); }
  // Has the peer run a PERSISTENT RESERVE OUT for this node (opaque bytes of the SCSI layer);
  // `done` runs with 0 once `answer` holds the peer's answer. Both stay valid until then.
  virtual void send_reservation_command(std::span<const std::uint8_t> /*request*/, std::vector<std::uint8_t>* /*answer*/,
                                        Done done) {
    done(ENOTCONN);
  }
  // A write completed to the initiator before the peer confirmed it (protocols A and B): writes
  // sent from now on must not be applied on the peer before the ones sent so far.
  virtual void write_completed() {}
};

}  // namespace freevsa::replication
