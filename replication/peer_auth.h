// Authentication of a peer link (docs/peer-protocol.md, "Authentication"): who is on the other
// end of a TCP connection, proved with the cluster's shared secret before anything about a
// volume is said, and a key per direction that authenticates every frame after it.
//
// The handshake (protocol 2), D the side that dialled, A the side that accepted:
//
//   D -> A  AuthHello{versions, D's id and name, cluster, nonce_D, side=Dialler}
//   A -> D  AuthHello{versions, A's id and name, cluster, nonce_A, side=Acceptor}
//   D -> A  AuthProof{HMAC(K_dialler_proof, T)}
//   A -> D  AuthProof{HMAC(K_acceptor_proof, T)}       (only once D's proof verified)
//
//   T = SHA-256("freevsa peer link v2" || D's AuthHello payload || A's AuthHello payload)
//   K_x = HKDF-SHA256(ikm = secret, salt = T, info = "freevsa peer link v2 " x)
//
// T covers both nonces, both node ids and names, which side connected and which accepted, the
// cluster name and both protocol ranges, so a proof is valid on one connection, in one
// direction only: a relay that passes one node's frames to the other gets nothing it can use
// (the acceptor's nonce makes every transcript new, and a node never sends a proof for the
// side it is not), and a replayed handshake meets a fresh nonce. The acceptor proves nothing
// to a peer that has not proved the secret first; neither side says anything but its name
// and a nonce before that.
//
// After the handshake, on a link without TLS, every frame carries a kFrameMacSize-byte MAC
// (kFlagMac): HMAC-SHA256(K_direction, be64(sequence) || header || payload), truncated, with
// K_direction "dialler to acceptor" or "acceptor to dialler" and `sequence` counting the
// frames sent in that direction since the handshake from 0. A frame injected, altered,
// dropped, reordered, replayed, or reflected back to its sender fails the check; the link is
// then closed and re-established by the nodes. TLS links rely on TLS for that.
//
// Not thread-safe: one LinkHandshake per connection, one FrameSealer/FrameOpener per direction.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "replication/peer_protocol.h"

namespace freevsa::replication::peer {

struct KnownNode {
  std::uint32_t id = 0;
  std::string name;
  std::string address;  // its configured replication address (IP literal), for the logs; may be empty
};

// What a node proves itself with, and whom it accepts.
struct LinkCredentials {
  std::string cluster_name;
  std::uint32_t node_id = 0;
  std::string node_name;
  std::string secret;             // the cluster's shared secret; empty refuses every peer
  std::vector<KnownNode> peers;   // every other node of the cluster
};

using SessionKey = std::array<std::uint8_t, 32>;

// What one handshake frame led to: at most one frame to send, then authenticated or failed.
struct HandshakeStep {
  std::optional<Message> reply;
  bool authenticated = false;
  std::string failure;  // non-empty: close the connection, logging this
};

class LinkHandshake {
 public:
  // `expected_peer`: the node a dialler dialled (it accepts no other); an acceptor accepts any
  // node in `credentials.peers`.
  LinkHandshake(LinkCredentials credentials, LinkSide side, std::optional<std::uint32_t> expected_peer = {});

  // The dialler's first frame; an acceptor sends nothing first (nullopt). Fails (failed())
  // when no random bytes are available.
  std::optional<AuthHello> start();
  // Test seam: the nonce start() or the acceptor's reply uses, instead of a random one.
  void use_nonce(const AuthNonce& nonce) { fixed_nonce_ = nonce; }

  // A frame received during the handshake. Anything but the next expected AuthHello or
  // AuthProof fails it.
  HandshakeStep on_message(const Message& message);

  LinkSide side() const { return side_; }
  bool authenticated() const { return state_ == State::Authenticated; }
  bool failed() const { return state_ == State::Failed; }
  const std::string& failure() const { return failure_; }
  // Once authenticated: who the peer is, the protocol version in use, the frame keys.
  const KnownNode& peer() const { return peer_; }
  std::uint16_t version() const { return version_; }
  const SessionKey& send_key() const { return send_key_; }
  const SessionKey& receive_key() const { return receive_key_; }

 private:
  enum class State { Start, AwaitHello, AwaitProof, Authenticated, Failed };
  HandshakeStep fail(std::string reason);
  HandshakeStep on_hello(const AuthHello& hello);
  HandshakeStep on_proof(const AuthProof& proof);
  std::string check_hello(const AuthHello& hello);
  std::optional<AuthHello> make_hello(LinkSide side);
  bool derive(const AuthHello& dialler, const AuthHello& acceptor);

  LinkCredentials credentials_;
  LinkSide side_;
  std::optional<std::uint32_t> expected_peer_;
  std::optional<AuthNonce> fixed_nonce_;
  State state_ = State::Start;
  std::string failure_;
  std::optional<AuthHello> our_hello_;
  KnownNode peer_;
  std::uint16_t version_ = 0;
  AuthMac dialler_proof_{};
  AuthMac acceptor_proof_{};
  SessionKey send_key_{};
  SessionKey receive_key_{};
};

// HKDF-SHA256 of `secret` with `salt` and `info`, `out.size()` bytes; false on an OpenSSL failure.
bool hkdf_sha256(std::string_view secret, std::span<const std::uint8_t> salt, std::string_view info,
                 std::span<std::uint8_t> out);

// A keyed HMAC-SHA256, set up once and reused for every frame (peer_auth.cpp).
class HmacContext;

// Adds the MAC to each frame a link sends, in sending order.
class FrameSealer {
 public:
  explicit FrameSealer(const SessionKey& key);
  ~FrameSealer();
  FrameSealer(const FrameSealer&) = delete;
  FrameSealer& operator=(const FrameSealer&) = delete;
  // Writes frame.mac (the frame was encoded with EncodeOptions::mac); false on an OpenSSL failure.
  bool seal(OutgoingFrame& frame);

 private:
  std::unique_ptr<HmacContext> mac_;
  std::uint64_t sequence_ = 0;
};

// Checks the MAC of each frame a link receives, in receiving order.
class FrameOpener {
 public:
  explicit FrameOpener(const SessionKey& key);
  ~FrameOpener();
  FrameOpener(const FrameOpener&) = delete;
  FrameOpener& operator=(const FrameOpener&) = delete;
  // `header`: the frame's kFrameHeaderSize bytes as received. False when the frame has no MAC
  // or the MAC does not match (the link must close: the sequence is then lost).
  bool open(std::span<const std::uint8_t> header, std::span<const std::uint8_t> payload,
            std::span<const std::uint8_t> mac);

 private:
  std::unique_ptr<HmacContext> mac_;
  std::uint64_t sequence_ = 0;
};

}  // namespace freevsa::replication::peer
