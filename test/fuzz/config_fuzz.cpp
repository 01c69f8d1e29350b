// Feeds arbitrary bytes to the configuration parser. A ConfigError is the parser doing its job;
// a crash, a sanitizer report or any other exception escaping is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    freevsa::daemon::parse_config(text, "fuzz.yaml");
  } catch (const freevsa::daemon::ConfigError&) {
  }
  return 0;
}
