// Mutual shared-secret authentication of the peer link: HMAC-SHA256 challenge/response bound to
// the direction by both node ids.
#include <gtest/gtest.h>

#include "replication/peer_auth.h"

namespace freevsa::replication::peer {
namespace {

constexpr std::string_view kSecret = "correct horse battery staple";

AuthNonce nonce(std::uint8_t first) {
  AuthNonce n{};
  for (std::size_t i = 0; i < n.size(); ++i) n[i] = static_cast<std::uint8_t>(first + i);
  return n;
}

// Runs the whole exchange between a (node 1) and b (node 2).
void handshake(PeerAuthenticator& a, PeerAuthenticator& b) {
  const auto challenge_a = a.start();
  const auto challenge_b = b.start();
  ASSERT_TRUE(challenge_a && challenge_b);
  const auto response_a = a.answer(*challenge_b);
  const auto response_b = b.answer(*challenge_a);
  ASSERT_TRUE(response_a && response_b);
  const AuthResult result_a = a.check(*response_b);
  const AuthResult result_b = b.check(*response_a);
  a.on_result(result_b);
  b.on_result(result_a);
}

TEST(PeerAuth, MutualAuthenticationWithTheSameSecretSucceeds) {
  PeerAuthenticator a(std::string(kSecret), 1, 2), b(std::string(kSecret), 2, 1);
  handshake(a, b);
  EXPECT_TRUE(a.complete()) << a.failure();
  EXPECT_TRUE(b.complete()) << b.failure();
}

TEST(PeerAuth, WrongSecretFailsOnBothSides) {
  PeerAuthenticator a(std::string(kSecret), 1, 2), b("another secret", 2, 1);
  handshake(a, b);
  EXPECT_FALSE(a.complete());
  EXPECT_FALSE(b.complete());
  EXPECT_TRUE(a.failed());
  EXPECT_TRUE(b.failed());
}

TEST(PeerAuth, ResponseMatchesAnIndependentHmacSha256) {
  // python3: hmac.new(secret, b"freevsa-peer-auth-v1" + bytes(range(32)) + pack(">II", 2, 1), sha256)
  const auto mac = compute_auth_response(kSecret, nonce(0), 2, 1);
  ASSERT_TRUE(mac);
  const AuthMac expected = {0xfe, 0xdd, 0x5e, 0x3d, 0x4d, 0xdb, 0xf5, 0xae, 0xab, 0x6b, 0xe6,
                            0xe7, 0x72, 0x48, 0xb3, 0xd7, 0x8b, 0x9e, 0x4c, 0x0e, 0xe3, 0x06,
                            0xc9, 0xd5, 0x88, 0x69, 0x19, 0xca, 0xb3, 0x76, 0xfb, 0x6d};
  EXPECT_EQ(*mac, expected);
}

TEST(PeerAuth, ResponseDependsOnTheDirection) {
  EXPECT_NE(compute_auth_response(kSecret, nonce(7), 1, 2), compute_auth_response(kSecret, nonce(7), 2, 1));
}

TEST(PeerAuth, ReflectedResponseFromASecondConnectionFails) {
  // An attacker without the secret connects twice to node 1, claiming to be node 2, and gets
  // node 1's answer to node 1's own challenge from the second connection.
  PeerAuthenticator first(std::string(kSecret), 1, 2), second(std::string(kSecret), 1, 2);
  const AuthChallenge challenge = first.start_with(nonce(10));
  second.start_with(nonce(50));
  const auto answer_from_second = second.answer(challenge);
  ASSERT_TRUE(answer_from_second);
  EXPECT_FALSE(first.check(*answer_from_second).accepted);
  EXPECT_TRUE(first.failed());
}

TEST(PeerAuth, OwnChallengeSentBackIsRefused) {
  PeerAuthenticator a(std::string(kSecret), 1, 2);
  const AuthChallenge challenge = a.start_with(nonce(3));
  EXPECT_FALSE(a.answer(challenge));
  EXPECT_TRUE(a.failed());
}

TEST(PeerAuth, TamperedChallengeFails) {
  PeerAuthenticator a(std::string(kSecret), 1, 2), b(std::string(kSecret), 2, 1);
  AuthChallenge challenge_a = a.start_with(nonce(20));
  b.start_with(nonce(90));
  challenge_a.challenge[5] ^= 0x01;  // changed on the way to b
  const auto response_b = b.answer(challenge_a);
  ASSERT_TRUE(response_b);
  EXPECT_FALSE(a.check(*response_b).accepted);
}

TEST(PeerAuth, TamperedResponseFails) {
  PeerAuthenticator a(std::string(kSecret), 1, 2), b(std::string(kSecret), 2, 1);
  const AuthChallenge challenge_a = a.start_with(nonce(20));
  b.start_with(nonce(90));
  auto response_b = b.answer(challenge_a);
  ASSERT_TRUE(response_b);
  response_b->mac[31] ^= 0x80;
  EXPECT_FALSE(a.check(*response_b).accepted);
}

TEST(PeerAuth, ResponseFromAnotherNodeIdFails) {
  PeerAuthenticator a(std::string(kSecret), 1, 2), c(std::string(kSecret), 3, 1);
  const AuthChallenge challenge_a = a.start_with(nonce(1));
  c.start_with(nonce(2));
  const auto response_c = c.answer(challenge_a);
  ASSERT_TRUE(response_c);
  EXPECT_FALSE(a.check(*response_c).accepted);
}

TEST(PeerAuth, RejectionByThePeerFailsTheHandshake) {
  PeerAuthenticator a(std::string(kSecret), 1, 2);
  a.start_with(nonce(1));
  a.on_result(AuthResult{false});
  EXPECT_FALSE(a.complete());
  EXPECT_TRUE(a.failed());
}

TEST(PeerAuth, PeerWithOurNodeIdIsRefused) {
  PeerAuthenticator a(std::string(kSecret), 4, 4);
  EXPECT_TRUE(a.failed());
  a.start_with(nonce(1));
  EXPECT_FALSE(a.answer(AuthChallenge{nonce(9)}));
}

TEST(PeerAuth, EmptySecretIsRefused) {
  PeerAuthenticator a("", 1, 2), b("", 2, 1);
  a.start_with(nonce(1));
  b.start_with(nonce(2));
  EXPECT_FALSE(a.answer(AuthChallenge{nonce(2)}));
  EXPECT_TRUE(a.failed());
}

TEST(PeerAuth, ChallengeBeforeOursWasSentIsRefused) {
  PeerAuthenticator a(std::string(kSecret), 1, 2);
  EXPECT_FALSE(a.answer(AuthChallenge{nonce(9)}));
  EXPECT_TRUE(a.failed());
}

TEST(PeerAuth, SecondResponseIsRefused) {
  PeerAuthenticator a(std::string(kSecret), 1, 2), b(std::string(kSecret), 2, 1);
  const AuthChallenge challenge_a = a.start_with(nonce(1));
  b.start_with(nonce(2));
  const auto response_b = b.answer(challenge_a);
  ASSERT_TRUE(response_b);
  EXPECT_TRUE(a.check(*response_b).accepted);
  EXPECT_FALSE(a.check(*response_b).accepted);
}

TEST(PeerAuth, ChallengesAreRandom) {
  const auto first = make_auth_challenge(), second = make_auth_challenge();
  ASSERT_TRUE(first && second);
  EXPECT_NE(*first, *second);
}

}  // namespace
}  // namespace freevsa::replication::peer
