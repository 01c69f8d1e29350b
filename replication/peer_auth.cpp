#include "replication/peer_auth.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <memory>
#include <utility>

#include "util/endian.h"

namespace freevsa::replication::peer {
namespace {

constexpr std::string_view kLabel = "freevsa-peer-auth-v1";

// HMAC-SHA256 over the concatenation of `parts`; nullopt on any OpenSSL failure, so that a
// broken crypto library can never make two failures compare equal.
std::optional<AuthMac> hmac_sha256(std::string_view key, std::initializer_list<std::span<const std::uint8_t>> parts) {
  const std::optional<AuthMac> mac;
  std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> algorithm(EVP_MAC_fetch(nullptr, "HMAC", nullptr),
                                                              EVP_MAC_free);
  if (!algorithm) return mac;
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(EVP_MAC_CTX_new(algorithm.get()),
                                                                EVP_MAC_CTX_free);
  char digest_name[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                               OSSL_PARAM_construct_end()};
  // HMAC accepts an empty key; a null pointer is not a valid key buffer, so point at the label.
  const auto* key_bytes = reinterpret_cast<const unsigned char*>(key.empty() ? kLabel.data() : key.data());
  if (!ctx || EVP_MAC_init(ctx.get(), key_bytes, key.size(), params) != 1) return mac;
  for (const auto& part : parts) {
    if (EVP_MAC_update(ctx.get(), part.data(), part.size()) != 1) return mac;
  }
  AuthMac out{};
  std::size_t length = 0;
  if (EVP_MAC_final(ctx.get(), out.data(), &length, out.size()) != 1 || length != out.size()) return mac;
  return out;
}

}  // namespace

std::optional<AuthNonce> make_auth_challenge() {
  AuthNonce nonce{};
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) return std::nullopt;
  return nonce;
}

std::optional<AuthMac> compute_auth_response(std::string_view secret, const AuthNonce& challenge, std::uint32_t responder_id,
                              std::uint32_t challenger_id) {
  std::uint8_t ids[8];
  util::put_be32(ids, responder_id);
  util::put_be32(ids + 4, challenger_id);
  return hmac_sha256(secret, {{reinterpret_cast<const std::uint8_t*>(kLabel.data()), kLabel.size()},
                              challenge,
                              ids});
}

bool verify_auth_response(std::string_view secret, const AuthNonce& our_challenge, std::uint32_t our_id,
                          std::uint32_t peer_id, const AuthMac& response) {
  const auto expected = compute_auth_response(secret, our_challenge, peer_id, our_id);
  return expected && CRYPTO_memcmp(expected->data(), response.data(), expected->size()) == 0;
}

PeerAuthenticator::PeerAuthenticator(std::string secret, std::uint32_t local_id, std::uint32_t peer_id)
    : secret_(std::move(secret)), local_id_(local_id), peer_id_(peer_id) {
  if (secret_.empty()) fail("no shared secret configured");
  if (local_id_ == peer_id_) fail("peer claims our own node id");
}

void PeerAuthenticator::fail(std::string reason) {
  if (failure_.empty()) failure_ = std::move(reason);
}

std::optional<AuthChallenge> PeerAuthenticator::start() {
  auto nonce = make_auth_challenge();
  if (!nonce) {
    fail("no random bytes for the challenge");
    return std::nullopt;
  }
  return start_with(*nonce);
}

AuthChallenge PeerAuthenticator::start_with(const AuthNonce& challenge) {
  our_challenge_ = challenge;
  return AuthChallenge{challenge};
}

std::optional<AuthResponse> PeerAuthenticator::answer(const AuthChallenge& peer_challenge) {
  if (!our_challenge_) fail("peer challenge before ours was sent");
  if (answered_) fail("second challenge from the peer");
  // Reflection: the peer hands us our own challenge to get an answer it could send back.
  if (our_challenge_ && CRYPTO_memcmp(our_challenge_->data(), peer_challenge.challenge.data(),
                                      peer_challenge.challenge.size()) == 0) {
    fail("peer reflected our challenge");
  }
  answered_ = true;
  if (failed()) return std::nullopt;
  auto mac = compute_auth_response(secret_, peer_challenge.challenge, local_id_, peer_id_);
  if (!mac) {
    fail("HMAC-SHA256 unavailable");
    return std::nullopt;
  }
  return AuthResponse{*mac};
}

AuthResult PeerAuthenticator::check(const AuthResponse& peer_response) {
  if (!our_challenge_) fail("peer response before our challenge");
  if (checked_) fail("second response from the peer");
  checked_ = true;
  if (!failed() && !verify_auth_response(secret_, *our_challenge_, local_id_, peer_id_, peer_response.mac)) {
    fail("peer response does not match: wrong shared secret or node id");
  }
  peer_verified_ = !failed();
  return AuthResult{peer_verified_};
}

void PeerAuthenticator::on_result(const AuthResult& result) {
  accepted_by_peer_ = result.accepted;
  if (!result.accepted) fail("peer rejected our response");
}

}  // namespace freevsa::replication::peer
