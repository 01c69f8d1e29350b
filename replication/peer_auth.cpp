#include "replication/peer_auth.h"

#include <fmt/format.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <utility>

#include "util/endian.h"

namespace freevsa::replication::peer {

class HmacContext {
 public:
  explicit HmacContext(std::span<const std::uint8_t> key) {
    EVP_MAC* algorithm = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (algorithm == nullptr) return;
    ctx_ = EVP_MAC_CTX_new(algorithm);
    EVP_MAC_free(algorithm);
    char digest_name[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest_name, 0),
                                 OSSL_PARAM_construct_end()};
    keyed_ = ctx_ != nullptr && EVP_MAC_init(ctx_, key.data(), key.size(), params) == 1;
  }
  ~HmacContext() { EVP_MAC_CTX_free(ctx_); }
  HmacContext(const HmacContext&) = delete;
  HmacContext& operator=(const HmacContext&) = delete;

  // HMAC over the concatenation of `parts`, truncated to out.size() (at most 32) bytes. A null
  // key re-initialises with the key set above, so no allocation happens per frame.
  bool compute(std::initializer_list<std::span<const std::uint8_t>> parts, std::span<std::uint8_t> out) {
    if (!keyed_ || EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1) return false;
    for (const auto& part : parts) {
      if (!part.empty() && EVP_MAC_update(ctx_, part.data(), part.size()) != 1) return false;
    }
    std::uint8_t full[EVP_MAX_MD_SIZE];
    std::size_t length = 0;
    if (EVP_MAC_final(ctx_, full, &length, sizeof full) != 1 || length < out.size()) return false;
    std::copy_n(full, out.size(), out.begin());
    return true;
  }

 private:
  EVP_MAC_CTX* ctx_ = nullptr;
  bool keyed_ = false;
};

namespace {

constexpr std::string_view kTranscriptLabel = "freevsa peer link v2";

// The payload of an AuthHello as it travels: the transcript is over exactly these bytes.
std::optional<std::vector<std::uint8_t>> payload_of(const AuthHello& hello) {
  Result<OutgoingFrame> frame = encode(hello, 0);
  if (!frame.ok()) return std::nullopt;
  const auto head = frame.value.head().subspan(kFrameHeaderSize);
  return std::vector<std::uint8_t>(head.begin(), head.end());
}

bool hmac_once(std::span<const std::uint8_t> key, std::span<const std::uint8_t> data, AuthMac& out) {
  HmacContext mac(key);
  return mac.compute({data}, out);
}

}  // namespace

bool hkdf_sha256(std::string_view secret, std::span<const std::uint8_t> salt, std::string_view info,
                 std::span<std::uint8_t> out) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) return false;
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (ctx == nullptr) return false;
  char digest_name[] = "SHA256";
  // OpenSSL wants non-const buffers in its parameter list; it only reads them.
  std::string key(secret);
  std::vector<std::uint8_t> salt_copy(salt.begin(), salt.end());
  std::string info_copy(info);
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest_name, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, key.data(), key.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt_copy.data(), salt_copy.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info_copy.data(), info_copy.size()),
      OSSL_PARAM_construct_end()};
  const bool ok = EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
  EVP_KDF_CTX_free(ctx);
  return ok;
}

LinkHandshake::LinkHandshake(LinkCredentials credentials, LinkSide side, std::optional<std::uint32_t> expected_peer)
    : credentials_(std::move(credentials)), side_(side), expected_peer_(expected_peer) {}

HandshakeStep LinkHandshake::fail(std::string reason) {
  if (state_ != State::Failed) failure_ = std::move(reason);
  state_ = State::Failed;
  return HandshakeStep{std::nullopt, false, failure_};
}

std::optional<AuthHello> LinkHandshake::make_hello(LinkSide side) {
  AuthHello hello;
  hello.node_id = credentials_.node_id;
  hello.node_name = credentials_.node_name;
  hello.cluster_name = credentials_.cluster_name;
  hello.side = side;
  if (fixed_nonce_) {
    hello.nonce = *fixed_nonce_;
  } else if (RAND_bytes(hello.nonce.data(), static_cast<int>(hello.nonce.size())) != 1) {
    return std::nullopt;
  }
  our_hello_ = hello;
  return hello;
}

std::optional<AuthHello> LinkHandshake::start() {
  if (state_ != State::Start) return std::nullopt;
  state_ = State::AwaitHello;
  if (credentials_.secret.empty()) {
    fail("no shared secret configured (cluster.secret)");
    return std::nullopt;
  }
  if (side_ == LinkSide::Acceptor) return std::nullopt;
  auto hello = make_hello(LinkSide::Dialler);
  if (!hello) fail("no random bytes for the handshake nonce");
  return hello;
}

HandshakeStep LinkHandshake::on_message(const Message& message) {
  if (state_ == State::Start) start();
  if (state_ == State::Failed) return fail(failure_);
  if (const auto* hello = std::get_if<AuthHello>(&message)) return on_hello(*hello);
  if (const auto* proof = std::get_if<AuthProof>(&message)) return on_proof(*proof);
  if (std::holds_alternative<Hello>(message)) {
    return fail("it sent a volume Hello before authenticating: an older freevsa (protocol 1) or not a freevsa node");
  }
  return fail(fmt::format("it sent {} before authenticating", to_string(type_of(message))));
}

std::string LinkHandshake::check_hello(const AuthHello& hello) {
  const LinkSide expected_side = side_ == LinkSide::Dialler ? LinkSide::Acceptor : LinkSide::Dialler;
  // Each text names both nodes: the refused side logs it, and the other gets it in a Disconnect.
  if (hello.side != expected_side) return "an AuthHello from the wrong side of the connection";
  if (hello.cluster_name != credentials_.cluster_name) {
    return fmt::format("cluster mismatch: node '{}' belongs to cluster '{}', node '{}' to cluster '{}'",
                       hello.node_name, hello.cluster_name, credentials_.node_name, credentials_.cluster_name);
  }
  if (hello.protocol_max < kProtocolVersionMin || hello.protocol_min > kProtocolVersionMax) {
    return fmt::format("no common protocol version (node '{}' speaks {}..{}, node '{}' {}..{})", hello.node_name,
                       hello.protocol_min, hello.protocol_max, credentials_.node_name, kProtocolVersionMin,
                       kProtocolVersionMax);
  }
  if (hello.node_id == credentials_.node_id) {
    return fmt::format("the other end claims node '{}''s own id {}", credentials_.node_name, credentials_.node_id);
  }
  const auto known = std::find_if(credentials_.peers.begin(), credentials_.peers.end(),
                                  [&](const KnownNode& n) { return n.id == hello.node_id; });
  if (known == credentials_.peers.end() || known->name != hello.node_name) {
    return fmt::format("node '{}' (id {}) is not in node '{}''s configuration of the cluster", hello.node_name,
                       hello.node_id, credentials_.node_name);
  }
  if (expected_peer_ && hello.node_id != *expected_peer_) {
    return fmt::format("node '{}' (id {}) answered, not the node that was dialled (id {})", hello.node_name,
                       hello.node_id, *expected_peer_);
  }
  peer_ = *known;
  return "";
}

HandshakeStep LinkHandshake::on_hello(const AuthHello& hello) {
  if (state_ != State::AwaitHello) return fail("it sent a second AuthHello");
  if (std::string refusal = check_hello(hello); !refusal.empty()) return fail(std::move(refusal));
  version_ = std::min(hello.protocol_max, kProtocolVersionMax);
  state_ = State::AwaitProof;
  if (side_ == LinkSide::Acceptor) {
    std::optional<AuthHello> ours = make_hello(LinkSide::Acceptor);
    if (!ours) return fail("no random bytes for the handshake nonce");
    if (!derive(hello, *ours)) return fail("HMAC-SHA256 or HKDF unavailable");
    return HandshakeStep{Message(*ours), false, ""};
  }
  if (!derive(*our_hello_, hello)) return fail("HMAC-SHA256 or HKDF unavailable");
  return HandshakeStep{Message(AuthProof{dialler_proof_}), false, ""};
}

HandshakeStep LinkHandshake::on_proof(const AuthProof& proof) {
  if (state_ != State::AwaitProof) return fail("it sent a proof out of order");
  const AuthMac& expected = side_ == LinkSide::Acceptor ? dialler_proof_ : acceptor_proof_;
  if (CRYPTO_memcmp(expected.data(), proof.mac.data(), expected.size()) != 0) {
    return fail(fmt::format(
        "the proof of node '{}' does not match: the shared secret (cluster.secret) differs between the nodes, or the "
        "handshake was relayed or replayed",
        peer_.name));
  }
  state_ = State::Authenticated;
  std::optional<Message> reply;
  if (side_ == LinkSide::Acceptor) reply = AuthProof{acceptor_proof_};
  return HandshakeStep{std::move(reply), true, ""};
}

bool LinkHandshake::derive(const AuthHello& dialler, const AuthHello& acceptor) {
  const auto dialler_bytes = payload_of(dialler);
  const auto acceptor_bytes = payload_of(acceptor);
  if (!dialler_bytes || !acceptor_bytes) return false;
  std::vector<std::uint8_t> input(kTranscriptLabel.begin(), kTranscriptLabel.end());
  input.insert(input.end(), dialler_bytes->begin(), dialler_bytes->end());
  input.insert(input.end(), acceptor_bytes->begin(), acceptor_bytes->end());
  std::array<std::uint8_t, SHA256_DIGEST_LENGTH> transcript{};
  if (EVP_Digest(input.data(), input.size(), transcript.data(), nullptr, EVP_sha256(), nullptr) != 1) return false;

  auto key = [&](std::string_view what, SessionKey& out) {
    return hkdf_sha256(credentials_.secret, transcript, fmt::format("{} {}", kTranscriptLabel, what), out);
  };
  SessionKey dialler_proof_key{}, acceptor_proof_key{}, to_acceptor{}, to_dialler{};
  if (!key("dialler proof", dialler_proof_key) || !key("acceptor proof", acceptor_proof_key) ||
      !key("dialler to acceptor", to_acceptor) || !key("acceptor to dialler", to_dialler)) {
    return false;
  }
  if (!hmac_once(dialler_proof_key, transcript, dialler_proof_) ||
      !hmac_once(acceptor_proof_key, transcript, acceptor_proof_)) {
    return false;
  }
  send_key_ = side_ == LinkSide::Dialler ? to_acceptor : to_dialler;
  receive_key_ = side_ == LinkSide::Dialler ? to_dialler : to_acceptor;
  return true;
}

FrameSealer::FrameSealer(const SessionKey& key) : mac_(std::make_unique<HmacContext>(key)) {}
FrameSealer::~FrameSealer() = default;

bool FrameSealer::seal(OutgoingFrame& frame) {
  if (!frame.has_mac) return false;
  std::uint8_t sequence[8];
  util::put_be64(sequence, sequence_++);
  return mac_->compute({sequence, frame.head(), frame.tail}, frame.mac);
}

FrameOpener::FrameOpener(const SessionKey& key) : mac_(std::make_unique<HmacContext>(key)) {}
FrameOpener::~FrameOpener() = default;

bool FrameOpener::open(std::span<const std::uint8_t> header, std::span<const std::uint8_t> payload,
                       std::span<const std::uint8_t> mac) {
  if (mac.size() != kFrameMacSize || header.size() != kFrameHeaderSize) return false;
  std::uint8_t sequence[8];
  util::put_be64(sequence, sequence_++);
  FrameMac expected{};
  return mac_->compute({sequence, header, payload}, expected) &&
         CRYPTO_memcmp(expected.data(), mac.data(), expected.size()) == 0;
}

}  // namespace freevsa::replication::peer
