#include "target/chap.h"

#include <gtest/gtest.h>

#include "test/unit/target_login_test_helpers.h"

namespace freevsa::target {
namespace {

using testing::test_chap_response;
using testing::test_hex_decode;


std::string find(const std::vector<KeyValue>& keys, const std::string& k) {
  for (const auto& kv : keys)
    if (kv.key == k) return kv.value;
  return "<absent>";
}

TEST(Chap, Md5MatchesIndependentComputation) {
  std::vector<std::uint8_t> challenge{1, 2, 3, 4, 5};
  auto ours = chap_md5_response(7, "secret", challenge);
  auto expected = test_hex_decode(test_chap_response(7, "secret", challenge));
  EXPECT_EQ(std::vector<std::uint8_t>(ours.begin(), ours.end()), expected);
}

TEST(Chap, ChoosesMd5FromInitiatorList) {
  ChapAuthenticator chap({"u", "s"}, std::nullopt);
  auto out = chap.on_keys({{"CHAP_A", "7,6,5"}});
  ASSERT_EQ(out.step, ChapAuthenticator::Step::Continue);
  EXPECT_EQ(find(out.answer, "CHAP_A"), "5");
  EXPECT_EQ(find(out.answer, "CHAP_I"), std::to_string(chap.id()));
  EXPECT_EQ(chap.challenge().size(), kChapChallengeLength);
  EXPECT_EQ(test_hex_decode(find(out.answer, "CHAP_C")), chap.challenge());
}

TEST(Chap, RejectsAlgorithmListWithoutMd5) {
  ChapAuthenticator chap({"u", "s"}, std::nullopt);
  EXPECT_EQ(chap.on_keys({{"CHAP_A", "6,7"}}).step, ChapAuthenticator::Step::Failure);
}

TEST(Chap, AcceptsCorrectResponse) {
  ChapAuthenticator chap({"u", "s"}, std::nullopt);
  chap.on_keys({{"CHAP_A", "5"}});
  auto out = chap.on_keys({{"CHAP_N", "u"}, {"CHAP_R", test_chap_response(chap.id(), "s", chap.challenge())}});
  EXPECT_EQ(out.step, ChapAuthenticator::Step::Success);
  EXPECT_TRUE(out.answer.empty());
}

TEST(Chap, AcceptsBase64Response) {
  ChapAuthenticator chap({"u", "s"}, std::nullopt);
  chap.on_keys({{"CHAP_A", "5"}});
  auto bytes = test_hex_decode(test_chap_response(chap.id(), "s", chap.challenge()));
  // Base64 of 16 bytes by hand via OpenSSL.
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, bytes.data(), static_cast<int>(bytes.size()));
  auto out = chap.on_keys({{"CHAP_N", "u"}, {"CHAP_R", "0b" + std::string(reinterpret_cast<char*>(b64), n)}});
  EXPECT_EQ(out.step, ChapAuthenticator::Step::Success);
}

TEST(Chap, RejectsWrongSecret) {
  ChapAuthenticator chap({"u", "s"}, std::nullopt);
  chap.on_keys({{"CHAP_A", "5"}});
  auto out = chap.on_keys({{"CHAP_N", "u"}, {"CHAP_R", test_chap_response(chap.id(), "wrong", chap.challenge())}});
  EXPECT_EQ(out.step, ChapAuthenticator::Step::Failure);
}

TEST(Chap, RejectsWrongUser) {
  ChapAuthenticator chap({"u", "s"}, std::nullopt);
  chap.on_keys({{"CHAP_A", "5"}});
  auto out = chap.on_keys({{"CHAP_N", "mallory"}, {"CHAP_R", test_chap_response(chap.id(), "s", chap.challenge())}});
  EXPECT_EQ(out.step, ChapAuthenticator::Step::Failure);
}

TEST(Chap, RejectsResponseBeforeChallenge) {
  ChapAuthenticator chap({"u", "s"}, std::nullopt);
  EXPECT_EQ(chap.on_keys({{"CHAP_N", "u"}, {"CHAP_R", "0x00"}}).step, ChapAuthenticator::Step::Failure);
}

TEST(Chap, MutualAnswersInitiatorChallenge) {
  ChapAuthenticator chap({"u", "s"}, ChapSecret{"tuser", "tsecret"});
  chap.on_keys({{"CHAP_A", "5"}});
  std::vector<std::uint8_t> their{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
  auto out = chap.on_keys({{"CHAP_N", "u"},
                           {"CHAP_R", test_chap_response(chap.id(), "s", chap.challenge())},
                           {"CHAP_I", "42"},
                           {"CHAP_C", encode_hex(their)}});
  ASSERT_EQ(out.step, ChapAuthenticator::Step::Success);
  EXPECT_EQ(find(out.answer, "CHAP_N"), "tuser");
  EXPECT_EQ(test_hex_decode(find(out.answer, "CHAP_R")), test_hex_decode(test_chap_response(42, "tsecret", their)));
}

TEST(Chap, RefusesReflectedChallenge) {
  ChapAuthenticator chap({"u", "s"}, ChapSecret{"tuser", "tsecret"});
  chap.on_keys({{"CHAP_A", "5"}});
  auto out = chap.on_keys({{"CHAP_N", "u"},
                           {"CHAP_R", test_chap_response(chap.id(), "s", chap.challenge())},
                           {"CHAP_I", std::to_string(chap.id())},
                           {"CHAP_C", encode_hex(chap.challenge())}});
  EXPECT_EQ(out.step, ChapAuthenticator::Step::Failure);
}

TEST(Chap, RefusesMutualWithoutMutualSecret) {
  ChapAuthenticator chap({"u", "s"}, std::nullopt);
  chap.on_keys({{"CHAP_A", "5"}});
  auto out = chap.on_keys({{"CHAP_N", "u"},
                           {"CHAP_R", test_chap_response(chap.id(), "s", chap.challenge())},
                           {"CHAP_I", "1"},
                           {"CHAP_C", "0x0102030405060708"}});
  EXPECT_EQ(out.step, ChapAuthenticator::Step::Failure);
}

TEST(Chap, RefusesMutualWithSameSecretBothWays) {
  ChapAuthenticator chap({"u", "s"}, ChapSecret{"tuser", "s"});
  chap.on_keys({{"CHAP_A", "5"}});
  auto out = chap.on_keys({{"CHAP_N", "u"},
                           {"CHAP_R", test_chap_response(chap.id(), "s", chap.challenge())},
                           {"CHAP_I", "1"},
                           {"CHAP_C", "0x0102030405060708"}});
  EXPECT_EQ(out.step, ChapAuthenticator::Step::Failure);
}

TEST(Chap, ChallengesDifferBetweenLogins) {
  ChapAuthenticator a({"u", "s"}, std::nullopt), b({"u", "s"}, std::nullopt);
  a.on_keys({{"CHAP_A", "5"}});
  b.on_keys({{"CHAP_A", "5"}});
  EXPECT_NE(a.challenge(), b.challenge());
}

}  // namespace
}  // namespace freevsa::target
