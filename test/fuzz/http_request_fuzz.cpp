// The control endpoint's request handling up to the handlers on arbitrary bytes: the HTTP parser,
// the authorisation decision and the commands' JSON body. A value for every input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/control_auth.h"
#include "daemon/http_request.h"
#include "daemon/json_object.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace freevsa::daemon;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto parsed = parse_http_request(input);
  if (parsed.state != HttpParse::State::Complete) return 0;
  if (parsed.consumed > size) __builtin_trap();
  const ControlPolicy policy{"127.0.0.1:7799", "0123456789abcdef0123456789abcdef"};
  const auto refusal = authorise(parsed.request, policy);
  // A refusal quotes what the client sent as Host or Content-Type, never its Authorization: the
  // token may appear in the reason only where the client itself put it in one of those.
  if (refusal && refusal->reason.find(policy.token) != std::string::npos) {
    const auto quoted = [&](const char* name) {
      const auto it = parsed.request.headers.find(name);
      return it != parsed.request.headers.end() && it->second.find(policy.token) != std::string::npos;
    };
    if (!quoted("host") && !quoted("content-type")) __builtin_trap();
  }
  const JsonObjectParse body = parse_json_object(parsed.request.body);
  if (!body.error.empty() && !body.values.empty()) __builtin_trap();
  return 0;
}
