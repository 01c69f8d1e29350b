#include "daemon/control_auth.h"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <string_view>

namespace freevsa::daemon {

namespace {

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::tolower(x) == std::tolower(y);
         });
}

const std::string* header(const HttpRequest& request, const std::string& name) {
  auto it = request.headers.find(name);
  return it == request.headers.end() ? nullptr : &it->second;
}

// Constant time in the token's bytes, so that the answer's timing does not reveal how much of a
// guess was right. Only the length can differ quickly, and every token has the same length.
bool same_token(std::string_view presented, const std::string& token) {
  return !token.empty() && presented.size() == token.size() &&
         CRYPTO_memcmp(presented.data(), token.data(), token.size()) == 0;
}

std::optional<AccessRefusal> check_host(const HttpRequest& request, const ControlPolicy& policy) {
  const std::string* host = header(request, "host");
  if (host == nullptr) return AccessRefusal{400, fmt::format("no Host header: this endpoint is {}", policy.host)};
  if (*host != policy.host) {
    return AccessRefusal{403, fmt::format("Host '{}' is not this endpoint ({})", *host, policy.host)};
  }
  return std::nullopt;
}

std::optional<AccessRefusal> check_token(const HttpRequest& request, const ControlPolicy& policy) {
  const std::string* authorization = header(request, "authorization");
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization == nullptr) {
    return AccessRefusal{401, "no control token: this request changes state and needs 'Authorization: Bearer TOKEN'"};
  }
  if (authorization->size() <= kScheme.size() ||
      !equal_ignoring_case(std::string_view(*authorization).substr(0, kScheme.size()), kScheme)) {
    return AccessRefusal{401, "the Authorization header is not 'Bearer TOKEN'"};
  }
  if (!same_token(std::string_view(*authorization).substr(kScheme.size()), policy.token)) {
    return AccessRefusal{403, "wrong control token"};
  }
  return std::nullopt;
}

std::optional<AccessRefusal> check_content_type(const HttpRequest& request) {
  const std::string* type = header(request, "content-type");
  std::string_view media = type == nullptr ? std::string_view() : std::string_view(*type);
  media = media.substr(0, media.find(';'));
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (equal_ignoring_case(media, "application/json")) return std::nullopt;
  return AccessRefusal{415, fmt::format("the body must be JSON (Content-Type: application/json), not {}",
                                        type == nullptr ? "untyped" : "'" + *type + "'")};
}

}  // namespace

bool changes_state(const HttpRequest& request) { return request.method != "GET"; }

std::optional<AccessRefusal> authorise(const HttpRequest& request, const ControlPolicy& policy) {
  if (auto refusal = check_host(request, policy)) return refusal;
  if (!changes_state(request)) return std::nullopt;
  if (auto refusal = check_token(request, policy)) return refusal;
  return check_content_type(request);
}

std::string host_header_of(const std::string& address, std::uint16_t port) {
  if (address.find(':') == std::string::npos) return fmt::format("{}:{}", address, port);
  return fmt::format("[{}]:{}", address, port);
}

}  // namespace freevsa::daemon
