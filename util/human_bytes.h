// Byte counts for people: "1023 B", "1.5 KiB", "431.0 MiB" (binary units, one decimal), for
// status pages and log lines alike.
#pragma once

#include <cstdint>
#include <string>

namespace freevsa::util {

std::string human_bytes(std::uint64_t bytes);

}  // namespace freevsa::util
