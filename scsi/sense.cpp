#include "scsi/sense.h"

#include <cstring>

#include "util/endian.h"

namespace freevsa::scsi {

void write_fixed_sense(const Sense& sense, std::uint8_t* out) {
  std::memset(out, 0, kFixedSenseLength);
  out[0] = 0x70;  // current error, fixed format
  if (sense.information) {
    out[0] |= 0x80;  // VALID
    util::put_be32(out + 3, *sense.information);
  }
  out[2] = sense.key & 0x0F;
  out[7] = kFixedSenseLength - 8;  // additional sense length
  out[12] = sense.asc;
  out[13] = sense.ascq;
  if (sense.field) {
    std::uint8_t sks = 0x80;  // SKSV
    if (sense.field->in_cdb) sks |= 0x40;  // C/D
    if (sense.field->bit) sks |= 0x08 | (*sense.field->bit & 0x07);  // BPV + bit pointer
    out[15] = sks;
    util::put_be16(out + 16, sense.field->byte);
  }
}

std::vector<std::uint8_t> build_fixed_sense(const Sense& sense) {
  std::vector<std::uint8_t> out(kFixedSenseLength);
  write_fixed_sense(sense, out.data());
  return out;
}

}  // namespace freevsa::scsi
