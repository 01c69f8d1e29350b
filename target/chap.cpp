#include "target/chap.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>

namespace freevsa::target {

std::array<std::uint8_t, 16> chap_md5_response(std::uint8_t id, std::string_view secret,
                                               std::span<const std::uint8_t> challenge) {
  std::array<std::uint8_t, 16> digest{};
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  unsigned int length = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), &id, 1) != 1 ||
      EVP_DigestUpdate(ctx.get(), secret.data(), secret.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), challenge.data(), challenge.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest.data(), &length) != 1 || length != digest.size()) {
    // MD5 unavailable (FIPS provider): a response that can never match a real one is returned
    // as all-ones; the caller's comparison then fails and the login is refused.
    digest.fill(0xff);
  }
  return digest;
}

bool chap_random_bytes(std::span<std::uint8_t> bytes) {
  return RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) == 1;
}

ChapAuthenticator::ChapAuthenticator(ChapSecret credentials, std::optional<ChapSecret> mutual)
    : credentials_(std::move(credentials)), mutual_(std::move(mutual)) {}

ChapAuthenticator::Outcome ChapAuthenticator::fail(std::string reason) {
  state_ = State::Failed;
  Outcome out;
  out.step = Step::Failure;
  out.reason = std::move(reason);
  return out;
}

namespace {
const KeyValue* find_key(const std::vector<KeyValue>& keys, std::string_view name) {
  for (const auto& kv : keys)
    if (kv.key == name) return &kv;
  return nullptr;
}
}  // namespace

ChapAuthenticator::Outcome ChapAuthenticator::on_keys(const std::vector<KeyValue>& keys) {
  const KeyValue* a = find_key(keys, "CHAP_A");
  const KeyValue* n = find_key(keys, "CHAP_N");
  const KeyValue* r = find_key(keys, "CHAP_R");
  const KeyValue* i = find_key(keys, "CHAP_I");
  const KeyValue* c = find_key(keys, "CHAP_C");

  switch (state_) {
    case State::Failed:
      return fail("authentication already failed");
    case State::Done:
      if (a || n || r || i || c) return fail("CHAP keys after authentication completed");
      return {};
    case State::WaitAlgorithm: {
      if (!a) {
        if (n || r || i || c) return fail("CHAP keys before CHAP_A");
        return {};  // nothing CHAP-related yet (e.g. the initiator sent only declarations)
      }
      bool md5_offered = false;
      for (const auto& alg : split_list(a->value)) {
        auto v = parse_number(alg);
        if (v && *v == kChapAlgorithmMd5) md5_offered = true;
      }
      if (!md5_offered) return fail("initiator offers no supported CHAP_A (" + a->value + ")");
      std::uint8_t id = 0;
      challenge_.assign(kChapChallengeLength, 0);
      if (!chap_random_bytes({&id, 1}) || !chap_random_bytes(challenge_))
        return fail("no random source for the CHAP challenge");
      id_ = id;
      state_ = State::WaitResponse;
      Outcome out;
      out.answer = {{"CHAP_A", "5"}, {"CHAP_I", std::to_string(id_)}, {"CHAP_C", encode_hex(challenge_)}};
      return out;
    }
    case State::WaitResponse: {
      if (a) return fail("CHAP_A sent twice");
      if (!n || !r) return fail("CHAP_N and CHAP_R expected");
      auto response = decode_binary(r->value);
      if (!response) return fail("CHAP_R is not a binary value");
      const auto expected = chap_md5_response(id_, credentials_.secret, challenge_);
      const bool user_ok = n->value == credentials_.user;
      const bool response_ok = response->size() == expected.size() &&
                               CRYPTO_memcmp(response->data(), expected.data(), expected.size()) == 0;
      if (!user_ok) return fail("unknown CHAP user '" + n->value + "'");
      if (!response_ok) return fail("wrong CHAP response for user '" + n->value + "'");

      Outcome out;
      if (i || c) {
        if (!i || !c) return fail("mutual CHAP needs both CHAP_I and CHAP_C");
        if (!mutual_) return fail("initiator asks for mutual CHAP, none configured");
        // RFC 7143 12.1.3: a secret must not authenticate both directions.
        if (mutual_->secret == credentials_.secret) return fail("mutual CHAP secret equals the initiator secret");
        auto their_id = parse_number(i->value);
        if (!their_id || *their_id > 255) return fail("CHAP_I out of range");
        auto their_challenge = decode_binary(c->value);
        if (!their_challenge || their_challenge->size() > kChapMaxChallengeLength)
          return fail("CHAP_C is not a valid challenge");
        // RFC 7143 12.1.3: a challenge equal to ours is a reflection attack.
        if (*their_challenge == challenge_) return fail("initiator reflected our CHAP challenge");
        auto answer = chap_md5_response(static_cast<std::uint8_t>(*their_id), mutual_->secret, *their_challenge);
        out.answer = {{"CHAP_N", mutual_->user}, {"CHAP_R", encode_hex(answer)}};
      }
      state_ = State::Done;
      out.step = Step::Success;
      return out;
    }
  }
  return fail("internal state");
}

}  // namespace freevsa::target
