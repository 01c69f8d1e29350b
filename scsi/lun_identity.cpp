#include <openssl/evp.h>

#include <array>
#include <cstdint>

#include "scsi/logical_unit.h"

namespace freevsa::scsi {
namespace {

// IEEE company ID in the NAA designator. 0x000000 is a placeholder until the project has its
// own registered OUI (never borrow another vendor's): replace it here, in one place, once
// registered. Changing it changes every LUN's NAA, so do it before the first release.
constexpr std::uint32_t kIeeeCompanyId = 0x000000;

std::array<std::uint8_t, 32> sha256(const std::string& text) {
  std::array<std::uint8_t, 32> digest{};
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

}  // namespace

LunIdentity LunIdentity::from_name(const std::string& stable_name) {
  const auto digest = sha256(stable_name);
  LunIdentity id;

  // Unit serial number: 32 hex digits of the hash (printable ASCII, as VPD 80h requires).
  static constexpr char kHex[] = "0123456789abcdef";
  id.serial.reserve(32);
  for (int i = 0; i < 16; ++i) {
    id.serial.push_back(kHex[digest[i] >> 4]);
    id.serial.push_back(kHex[digest[i] & 0x0F]);
  }

  // NAA 6 (IEEE Registered Extended, SPC-4 7.8.6.6.5): NAA(4 bits) | IEEE company ID (24) |
  // vendor specific identifier (36) | vendor specific identifier extension (64). The 100
  // vendor bits come from the hash (bytes 16.. so they are independent of the serial).
  const std::uint8_t* h = digest.data() + 16;
  id.naa[0] = static_cast<std::uint8_t>(0x60 | ((kIeeeCompanyId >> 20) & 0x0F));
  id.naa[1] = static_cast<std::uint8_t>(kIeeeCompanyId >> 12);
  id.naa[2] = static_cast<std::uint8_t>(kIeeeCompanyId >> 4);
  id.naa[3] = static_cast<std::uint8_t>(((kIeeeCompanyId & 0x0F) << 4) | (h[0] & 0x0F));
  for (int i = 4; i < 16; ++i) id.naa[i] = h[i - 3];
  return id;
}

}  // namespace freevsa::scsi
