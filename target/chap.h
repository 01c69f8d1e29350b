// CHAP authentication of iSCSI initiators (RFC 1994, RFC 7143 section 12.1.3), target side, with
// optional mutual authentication. Only CHAP_A=5 (MD5) is supported.
//
// Exchange, driven by the login negotiator in the security stage:
//   initiator: CHAP_A=<list>                 -> target: CHAP_A=5 CHAP_I=<id> CHAP_C=0x<challenge>
//   initiator: CHAP_N CHAP_R [CHAP_I CHAP_C] -> target: [CHAP_N CHAP_R]   (mutual)
// Not thread-safe; one instance per login.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "target/target_config.h"
#include "target/text_keys.h"

namespace freevsa::target {

constexpr std::uint8_t kChapAlgorithmMd5 = 5;
constexpr std::size_t kChapChallengeLength = 16;
constexpr std::size_t kChapMaxChallengeLength = 1024;

// MD5(id || secret || challenge) - the CHAP response (RFC 1994 4.1).
std::array<std::uint8_t, 16> chap_md5_response(std::uint8_t id, std::string_view secret,
                                               std::span<const std::uint8_t> challenge);

// Fills bytes from a cryptographically secure source; false if none is available.
bool chap_random_bytes(std::span<std::uint8_t> bytes);

class ChapAuthenticator {
 public:
  enum class Step { Continue, Success, Failure };
  struct Outcome {
    Step step = Step::Continue;
    std::vector<KeyValue> answer;  // keys to send in the Login Response
    std::string reason;            // for the log on failure
  };

  // credentials: what the initiator must present; mutual: what we answer an initiator's
  // challenge with (may be absent: mutual authentication is then refused).
  ChapAuthenticator(ChapSecret credentials, std::optional<ChapSecret> mutual);

  // Feeds the CHAP_* keys of one request (other keys are ignored).
  Outcome on_keys(const std::vector<KeyValue>& keys);

  bool done() const { return state_ == State::Done; }
  // Test seams: the id and challenge we sent.
  std::uint8_t id() const { return id_; }
  const std::vector<std::uint8_t>& challenge() const { return challenge_; }

 private:
  enum class State { WaitAlgorithm, WaitResponse, Done, Failed };
  Outcome fail(std::string reason);

  ChapSecret credentials_;
  std::optional<ChapSecret> mutual_;
  State state_ = State::WaitAlgorithm;
  std::uint8_t id_ = 0;
  std::vector<std::uint8_t> challenge_;
};

}  // namespace freevsa::target
