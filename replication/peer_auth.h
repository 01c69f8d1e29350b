// Mutual shared-secret authentication of the two ends of a peer link (docs/peer-protocol.md,
// "Authentication"). After the Hello exchange each side sends an AuthChallenge of 32 random
// bytes, answers the peer's challenge with an AuthResponse, checks the peer's answer to its own
// challenge and sends AuthResult. The link is up only when both AuthResults say accepted.
//
//   response = HMAC-SHA256(secret, "freevsa-peer-auth-v1" || challenge
//                                  || be32(responder node id) || be32(challenger node id))
//
// Binding both node ids in order makes a response valid in one direction only: a peer that
// reflects our own challenge back to us gets an answer it cannot replay as its response to us.
// Responses are compared in constant time.
//
// What this does not do: protect the frames after the handshake (no per-message MAC, no
// encryption). Run the peer link on a trusted network or inside IPsec/WireGuard.
//
// Not thread-safe; one PeerAuthenticator per connection attempt.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "replication/peer_protocol.h"

namespace freevsa::replication::peer {

// 32 bytes from OpenSSL's CSPRNG; nullopt if it cannot deliver.
std::optional<AuthNonce> make_auth_challenge();

// The response `responder_id` gives to a challenge sent by `challenger_id`; nullopt if OpenSSL
// cannot compute HMAC-SHA256.
std::optional<AuthMac> compute_auth_response(std::string_view secret, const AuthNonce& challenge, std::uint32_t responder_id,
                              std::uint32_t challenger_id);

// True when `response` is the peer's (responder) correct answer to our (challenger) challenge.
bool verify_auth_response(std::string_view secret, const AuthNonce& our_challenge, std::uint32_t our_id,
                          std::uint32_t peer_id, const AuthMac& response);

class PeerAuthenticator {
 public:
  // `peer_id` comes from the peer's Hello. An empty secret or equal node ids refuse everything.
  PeerAuthenticator(std::string secret, std::uint32_t local_id, std::uint32_t peer_id);

  // Our challenge, to send first. nullopt if no random bytes are available.
  std::optional<AuthChallenge> start();
  // Test seam: start with a given challenge instead of a random one.
  AuthChallenge start_with(const AuthNonce& challenge);

  // The peer's challenge -> our response to send. nullopt (and failed()) if we did not start,
  // already answered, or the peer sent our own challenge back (reflection).
  std::optional<AuthResponse> answer(const AuthChallenge& peer_challenge);

  // The peer's response to our challenge -> the AuthResult to send.
  AuthResult check(const AuthResponse& peer_response);

  // The peer's verdict on our response.
  void on_result(const AuthResult& result);

  // Both directions verified: we accepted the peer and the peer accepted us.
  bool complete() const { return peer_verified_ && accepted_by_peer_ && failure_.empty(); }
  bool failed() const { return !failure_.empty(); }
  const std::string& failure() const { return failure_; }

 private:
  void fail(std::string reason);

  std::string secret_;
  std::uint32_t local_id_;
  std::uint32_t peer_id_;
  std::optional<AuthNonce> our_challenge_;
  bool answered_ = false;
  bool checked_ = false;
  bool peer_verified_ = false;
  bool accepted_by_peer_ = false;
  std::string failure_;
};

}  // namespace freevsa::replication::peer
