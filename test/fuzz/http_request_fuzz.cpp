// The control endpoint's HTTP request parser on arbitrary bytes: a value for every input.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/http_request.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto parsed = freevsa::daemon::parse_http_request(input);
  if (parsed.state == freevsa::daemon::HttpParse::State::Complete && parsed.consumed > size) __builtin_trap();
  return 0;
}
