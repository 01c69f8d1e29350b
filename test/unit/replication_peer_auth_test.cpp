// Authentication of a peer link (peer_auth.h): the handshake's state machine, what a relay, a
// reflection or a replay gets out of it, and the per-frame MAC.
#include <gtest/gtest.h>

#include <deque>

#include "replication/peer_auth.h"
#include "util/endian.h"

namespace freevsa::replication::peer {
namespace {

constexpr std::string_view kSecret = "correct horse battery staple";

LinkCredentials node(std::uint32_t id, std::string name, std::string secret = std::string(kSecret)) {
  LinkCredentials c{"lab", id, std::move(name), std::move(secret), {}};
  if (id != 1) c.peers.push_back({1, "a", ""});
  if (id != 2) c.peers.push_back({2, "b", ""});
  return c;
}

// What an attacker sends, claiming to be node `id`.
AuthHello claim(std::uint32_t id, std::string name, LinkSide side = LinkSide::Dialler) {
  AuthHello hello;
  hello.node_id = id;
  hello.node_name = std::move(name);
  hello.cluster_name = "lab";
  hello.side = side;
  return hello;
}

AuthNonce nonce(std::uint8_t first) {
  AuthNonce n{};
  for (std::size_t i = 0; i < n.size(); ++i) n[i] = static_cast<std::uint8_t>(first + i);
  return n;
}

// Runs the exchange between dialler `d` and acceptor `a` until both are done.
void run(LinkHandshake& d, LinkHandshake& a) {
  std::optional<AuthHello> first = d.start();
  a.start();
  ASSERT_TRUE(first);
  std::optional<Message> to_acceptor = Message(*first);
  for (int round = 0; round < 4 && to_acceptor; ++round) {
    HandshakeStep at_acceptor = a.on_message(*to_acceptor);
    to_acceptor.reset();
    if (!at_acceptor.reply) break;
    HandshakeStep at_dialler = d.on_message(*at_acceptor.reply);
    to_acceptor = at_dialler.reply;
  }
}

TEST(LinkHandshake, TwoNodesWithTheSecretAuthenticateEachOther) {
  LinkHandshake d(node(1, "a"), LinkSide::Dialler, 2), a(node(2, "b"), LinkSide::Acceptor);
  run(d, a);
  EXPECT_TRUE(d.authenticated());
  EXPECT_TRUE(a.authenticated());
  EXPECT_EQ(d.peer().name, "b");
  EXPECT_EQ(a.peer().name, "a");
  EXPECT_EQ(d.version(), kProtocolVersionMax);
  // One key per direction, the same on both ends.
  EXPECT_EQ(d.send_key(), a.receive_key());
  EXPECT_EQ(a.send_key(), d.receive_key());
  EXPECT_NE(d.send_key(), d.receive_key());
}

TEST(LinkHandshake, AWrongSecretFailsAtTheAcceptorBeforeItProvesAnything) {
  LinkHandshake d(node(1, "a", "another secret of the same length"), LinkSide::Dialler, 2);
  LinkHandshake a(node(2, "b"), LinkSide::Acceptor);
  const auto hello = d.start();
  a.start();
  const HandshakeStep acceptor_hello = a.on_message(*hello);
  ASSERT_TRUE(acceptor_hello.reply);
  const HandshakeStep dialler_proof = d.on_message(*acceptor_hello.reply);
  ASSERT_TRUE(dialler_proof.reply);
  const HandshakeStep verdict = a.on_message(*dialler_proof.reply);
  EXPECT_FALSE(verdict.reply) << "the acceptor must not send its proof to a peer that failed";
  EXPECT_TRUE(a.failed());
  EXPECT_NE(verdict.failure.find("shared secret"), std::string::npos);
}

TEST(LinkHandshake, TheAcceptorSendsNothingButItsHelloBeforeTheDiallersProof) {
  LinkHandshake a(node(2, "b"), LinkSide::Acceptor);
  EXPECT_FALSE(a.start());
  const HandshakeStep step = a.on_message(claim(1, "a"));
  ASSERT_TRUE(step.reply);
  EXPECT_TRUE(std::holds_alternative<AuthHello>(*step.reply));
  EXPECT_FALSE(a.authenticated());
}

// The attack protocol 1 allowed: M dials b claiming to be a, and dials a claiming to be b, and
// passes each node's frames to the other. Whatever it forwards, b never authenticates it.
TEST(LinkHandshake, ARelayBetweenTwoAcceptorsGetsNoProof) {
  LinkHandshake at_a(node(1, "a"), LinkSide::Acceptor), at_b(node(2, "b"), LinkSide::Acceptor);
  at_a.start();
  at_b.start();
  const HandshakeStep b_hello = at_b.on_message(claim(1, "a"));
  ASSERT_TRUE(b_hello.reply);
  // b's AuthHello, passed to a as if it were b dialling: a answers with its own AuthHello only.
  AuthHello relayed = std::get<AuthHello>(*b_hello.reply);
  const HandshakeStep a_reply = at_a.on_message(relayed);
  EXPECT_TRUE(a_reply.failure.find("wrong side") != std::string::npos) << a_reply.failure;
  EXPECT_FALSE(a_reply.reply);
  relayed.side = LinkSide::Dialler;  // rewritten: a now answers, but still only with a hello
  LinkHandshake at_a2(node(1, "a"), LinkSide::Acceptor);
  const HandshakeStep a_hello = at_a2.on_message(relayed);
  ASSERT_TRUE(a_hello.reply);
  EXPECT_TRUE(std::holds_alternative<AuthHello>(*a_hello.reply));
  // Nothing M holds is a proof b accepts.
  EXPECT_FALSE(at_b.on_message(AuthProof{}).authenticated);
  EXPECT_TRUE(at_b.failed());
}

// M relays a real dialler's handshake to the acceptor: that is just a network path; but the
// proof a dialler makes for one acceptor's nonce is useless towards another acceptor.
TEST(LinkHandshake, AProofIsValidOnlyForTheAcceptorsNonce) {
  LinkHandshake d(node(1, "a"), LinkSide::Dialler, 2), a1(node(2, "b"), LinkSide::Acceptor),
      a2(node(2, "b"), LinkSide::Acceptor);
  d.use_nonce(nonce(1));
  a1.use_nonce(nonce(50));
  a2.use_nonce(nonce(90));
  const auto hello = d.start();
  const HandshakeStep h1 = a1.on_message(*hello);
  const HandshakeStep proof = d.on_message(*h1.reply);
  ASSERT_TRUE(proof.reply);
  a2.on_message(*hello);
  const HandshakeStep replayed = a2.on_message(*proof.reply);
  EXPECT_FALSE(replayed.authenticated);
  EXPECT_TRUE(a2.failed());
  EXPECT_TRUE(a1.on_message(*proof.reply).authenticated);
}

// The proof an acceptor sends never serves as a dialler's proof, even over the same
// transcript (the side is in the key): reflecting it back to an acceptor fails.
TEST(LinkHandshake, AnAcceptorsProofIsNoDiallersProof) {
  LinkHandshake d2(node(1, "a"), LinkSide::Dialler, 2), a2(node(2, "b"), LinkSide::Acceptor);
  d2.use_nonce(nonce(3));
  a2.use_nonce(nonce(3));
  const auto hello = d2.start();
  const HandshakeStep acceptor_hello = a2.on_message(*hello);
  ASSERT_TRUE(acceptor_hello.reply);
  const HandshakeStep dialler_proof = d2.on_message(*acceptor_hello.reply);
  const HandshakeStep accepted = a2.on_message(*dialler_proof.reply);
  ASSERT_TRUE(accepted.reply);
  LinkHandshake a3(node(2, "b"), LinkSide::Acceptor);
  a3.use_nonce(nonce(3));
  a3.on_message(*hello);
  EXPECT_FALSE(a3.on_message(*accepted.reply).authenticated);
}

TEST(LinkHandshake, RefusesANodeTheClusterDoesNotList) {
  LinkHandshake a(node(2, "b"), LinkSide::Acceptor);
  LinkHandshake stranger(LinkCredentials{"lab", 7, "x", std::string(kSecret), {{2, "b", ""}}}, LinkSide::Dialler, 2);
  const HandshakeStep step = a.on_message(*stranger.start());
  EXPECT_TRUE(a.failed());
  EXPECT_NE(step.failure.find("is not in node 'b''s configuration"), std::string::npos) << step.failure;
}

TEST(LinkHandshake, RefusesAnotherClusterAndOurOwnId) {
  LinkHandshake a(node(2, "b"), LinkSide::Acceptor);
  LinkCredentials other = node(1, "a");
  other.cluster_name = "elsewhere";
  LinkHandshake d(other, LinkSide::Dialler, 2);
  EXPECT_NE(a.on_message(*d.start()).failure.find("cluster 'elsewhere'"), std::string::npos);

  LinkHandshake a2(node(2, "b"), LinkSide::Acceptor);
  LinkHandshake me(LinkCredentials{"lab", 2, "b", std::string(kSecret), {{2, "b", ""}}}, LinkSide::Dialler, 2);
  EXPECT_NE(a2.on_message(*me.start()).failure.find("own id"), std::string::npos);
}

TEST(LinkHandshake, ADiallerAcceptsOnlyTheNodeItDialled) {
  const AuthHello impostor = claim(3, "c", LinkSide::Acceptor);
  LinkCredentials with_c = node(1, "a");
  with_c.peers.push_back({3, "c", ""});
  LinkHandshake d2(with_c, LinkSide::Dialler, 2);
  d2.start();
  EXPECT_NE(d2.on_message(impostor).failure.find("not the node that was dialled"), std::string::npos);
}

TEST(LinkHandshake, AVolumeHelloFirstIsTheOldProtocol) {
  LinkHandshake a(node(2, "b"), LinkSide::Acceptor);
  Hello old;
  const HandshakeStep step = a.on_message(old);
  EXPECT_NE(step.failure.find("protocol 1"), std::string::npos) << step.failure;
}

TEST(LinkHandshake, OutOfOrderFramesFail) {
  LinkHandshake a(node(2, "b"), LinkSide::Acceptor);
  EXPECT_FALSE(a.on_message(AuthProof{}).failure.empty());
  LinkHandshake d(node(1, "a"), LinkSide::Dialler, 2), b(node(2, "b"), LinkSide::Acceptor);
  const auto hello = d.start();
  b.on_message(*hello);
  EXPECT_NE(b.on_message(*hello).failure.find("second AuthHello"), std::string::npos);
  EXPECT_FALSE(b.on_message(Ping{}).failure.empty());
}

TEST(LinkHandshake, AnEmptySecretRefusesEverything) {
  LinkHandshake d(node(1, "a", ""), LinkSide::Dialler, 2);
  EXPECT_FALSE(d.start());
  EXPECT_TRUE(d.failed());
}

TEST(LinkHandshake, NoCommonVersionFails) {
  LinkHandshake a(node(2, "b"), LinkSide::Acceptor);
  AuthHello future = claim(1, "a");
  future.protocol_min = kProtocolVersionMax + 1;
  future.protocol_max = kProtocolVersionMax + 3;
  EXPECT_NE(a.on_message(future).failure.find("no common protocol version"), std::string::npos);
}

// ---- the frame MAC

OutgoingFrame encoded(const Message& m, std::uint64_t request_id = 0) {
  EncodeOptions options;
  options.mac = true;
  Result<OutgoingFrame> f = encode(m, request_id, options);
  EXPECT_TRUE(f.ok());
  return f.value;
}

struct Received {
  std::vector<std::uint8_t> bytes;
  std::span<const std::uint8_t> header() const { return std::span(bytes).first(kFrameHeaderSize); }
  std::span<const std::uint8_t> payload() const {
    return std::span(bytes).subspan(kFrameHeaderSize, bytes.size() - kFrameHeaderSize - kFrameMacSize);
  }
  std::span<const std::uint8_t> mac() const { return std::span(bytes).last(kFrameMacSize); }
};

Received wire(const OutgoingFrame& f) {
  Received r;
  r.bytes.insert(r.bytes.end(), f.head().begin(), f.head().end());
  r.bytes.insert(r.bytes.end(), f.tail.begin(), f.tail.end());
  r.bytes.insert(r.bytes.end(), f.mac.begin(), f.mac.end());
  return r;
}

SessionKey key(std::uint8_t v) {
  SessionKey k{};
  k.fill(v);
  return k;
}

TEST(FrameMac, FramesSealedInOrderOpenInOrder) {
  FrameSealer sealer(key(1));
  FrameOpener opener(key(1));
  for (std::uint64_t i = 0; i < 5; ++i) {
    OutgoingFrame f = encoded(Ping{i});
    ASSERT_TRUE(sealer.seal(f));
    const Received r = wire(f);
    EXPECT_TRUE(opener.open(r.header(), r.payload(), r.mac())) << i;
  }
}

TEST(FrameMac, AnAlteredBitFailsTheCheck) {
  FrameSealer sealer(key(1));
  FrameOpener opener(key(1));
  const std::vector<std::uint8_t> data(4096, 0x11);
  OutgoingFrame f = encoded(Write{0, 0, 1, data}, 9);
  ASSERT_TRUE(sealer.seal(f));
  Received r = wire(f);
  r.bytes[kFrameHeaderSize + 100] ^= 0x01;
  EXPECT_FALSE(opener.open(r.header(), r.payload(), r.mac()));
}

TEST(FrameMac, AReplayedOrReorderedFrameFailsTheCheck) {
  FrameSealer sealer(key(1));
  OutgoingFrame first = encoded(Ping{1});
  OutgoingFrame second = encoded(Ping{2});
  ASSERT_TRUE(sealer.seal(first));
  ASSERT_TRUE(sealer.seal(second));
  FrameOpener replayed(key(1));
  const Received r1 = wire(first);
  EXPECT_TRUE(replayed.open(r1.header(), r1.payload(), r1.mac()));
  EXPECT_FALSE(replayed.open(r1.header(), r1.payload(), r1.mac())) << "the same frame twice";
  FrameOpener reordered(key(1));
  const Received r2 = wire(second);
  EXPECT_FALSE(reordered.open(r2.header(), r2.payload(), r2.mac())) << "the second frame first";
}

TEST(FrameMac, AnInjectedFrameOrAnotherDirectionsKeyFailsTheCheck) {
  FrameSealer other_direction(key(2));
  FrameOpener opener(key(1));
  OutgoingFrame f = encoded(Ping{1});
  ASSERT_TRUE(other_direction.seal(f));
  const Received r = wire(f);
  EXPECT_FALSE(opener.open(r.header(), r.payload(), r.mac()));
  // Without any MAC at all.
  FrameOpener fresh(key(1));
  EXPECT_FALSE(fresh.open(r.header(), r.payload(), {}));
}

TEST(FrameMac, TheRequestIdInTheHeaderIsCovered) {
  FrameSealer sealer(key(1));
  FrameOpener opener(key(1));
  OutgoingFrame f = encoded(WriteAck{0, kAckDurable}, 41);
  ASSERT_TRUE(sealer.seal(f));
  Received r = wire(f);
  util::put_be64(&r.bytes[8], 42);  // a WriteAck for another write (the header CRC does not matter here)
  EXPECT_FALSE(opener.open(r.header(), r.payload(), r.mac()));
}

TEST(Hkdf, KnownAnswerFromRfc5869TestCase1) {
  const std::vector<std::uint8_t> ikm(22, 0x0b);
  const std::uint8_t salt[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const char info[] = {'\xf0', '\xf1', '\xf2', '\xf3', '\xf4', '\xf5', '\xf6', '\xf7', '\xf8', '\xf9'};
  std::array<std::uint8_t, 42> okm{};
  ASSERT_TRUE(hkdf_sha256(std::string_view(reinterpret_cast<const char*>(ikm.data()), ikm.size()), salt,
                          std::string_view(info, sizeof info), okm));
  const std::array<std::uint8_t, 42> expected = {
      0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f, 0x64, 0xd0, 0x36,
      0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a, 0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56,
      0xec, 0xc4, 0xc5, 0xbf, 0x34, 0x00, 0x72, 0x08, 0xd5, 0xb8, 0x87, 0x18, 0x58, 0x65};
  EXPECT_EQ(okm, expected);
}

}  // namespace
}  // namespace freevsa::replication::peer
