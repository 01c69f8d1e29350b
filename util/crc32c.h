// CRC32C (Castagnoli), as iSCSI uses it for header and data digests (RFC 7143 section 13.1,
// test vectors in RFC 3720 appendix B.4). Uses the SSE4.2 CRC32 instruction when the CPU has it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace freevsa::util {

// Continues a CRC: crc32c_extend(crc32c_extend(0, a), b) == crc32c(a ++ b).
std::uint32_t crc32c_extend(std::uint32_t crc, const std::uint8_t* data, std::size_t size);
inline std::uint32_t crc32c(std::span<const std::uint8_t> data) {
  return crc32c_extend(0, data.data(), data.size());
}
// The portable implementation, exposed so tests can check both paths agree.
std::uint32_t crc32c_extend_portable(std::uint32_t crc, const std::uint8_t* data, std::size_t size);
bool crc32c_hardware_available();

}  // namespace freevsa::util
