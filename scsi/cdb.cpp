#include "scsi/cdb.h"

#include "util/endian.h"

namespace freevsa::scsi {

BlockRequest decode_block_request(std::uint8_t cdb_length, const std::uint8_t* cdb) {
  BlockRequest r;
  switch (cdb_length) {
    case 6:
      r.lba = (std::uint64_t{cdb[1] & 0x1Fu} << 16) | (std::uint64_t{cdb[2]} << 8) | cdb[3];
      r.blocks = cdb[4] == 0 ? 256 : cdb[4];
      r.length_offset = 4;
      return r;  // no flag byte in 6-byte CDBs
    case 10:
      r.lba = util::get_be32(cdb + 2);
      r.group = cdb[6] & 0x1F;
      r.blocks = util::get_be16(cdb + 7);
      r.length_offset = 7;
      break;
    case 12:
      r.lba = util::get_be32(cdb + 2);
      r.blocks = util::get_be32(cdb + 6);
      r.group = cdb[10] & 0x1F;
      r.length_offset = 6;
      break;
    default:  // 16
      r.lba = util::get_be64(cdb + 2);
      r.blocks = util::get_be32(cdb + 10);
      r.group = cdb[14] & 0x1F;
      r.length_offset = 10;
      break;
  }
  r.protect = static_cast<std::uint8_t>(cdb[1] >> 5);
  r.dpo = (cdb[1] & 0x10) != 0;
  r.fua = (cdb[1] & 0x08) != 0;
  r.bytchk = static_cast<std::uint8_t>((cdb[1] >> 1) & 0x03);
  r.immed = (cdb[1] & 0x02) != 0;
  return r;
}

std::uint32_t allocation_length(const std::uint8_t* cdb) {
  switch (cdb[0]) {
    case 0x03:  // REQUEST SENSE
    case 0x1A:  // MODE SENSE(6)
      return cdb[4];
    case 0x12:  // INQUIRY
      return util::get_be16(cdb + 3);
    case 0x37:  // READ DEFECT DATA(10)
    case 0x5A:  // MODE SENSE(10)
    case 0x5E:  // PERSISTENT RESERVE IN
      return util::get_be16(cdb + 7);
    case 0x9E:  // SERVICE ACTION IN(16)
      return util::get_be32(cdb + 10);
    case 0xA0:  // REPORT LUNS
    case 0xA3:  // MAINTENANCE IN
    case 0xB7:  // READ DEFECT DATA(12)
      return util::get_be32(cdb + 6);
    default:
      return 0;
  }
}

}  // namespace freevsa::scsi
