// CDB decoding, separate from the handlers that act on the result: the READ/WRITE/VERIFY/
// PRE-FETCH/SYNCHRONIZE CACHE families of every CDB size decode into one BlockRequest.
// Pure functions of the CDB bytes (fuzzable on their own).
#pragma once

#include <cstdint>

namespace freevsa::scsi {

struct BlockRequest {
  std::uint64_t lba = 0;
  std::uint32_t blocks = 0;        // transfer / verification / prefetch length, in blocks
  std::uint8_t protect = 0;        // RDPROTECT / WRPROTECT / VRPROTECT (cdb[1] bits 7..5)
  bool dpo = false;
  bool fua = false;
  bool immed = false;              // PRE-FETCH / SYNCHRONIZE CACHE
  std::uint8_t bytchk = 0;         // VERIFY / WRITE AND VERIFY (cdb[1] bits 2..1)
  std::uint8_t group = 0;
  std::uint8_t length_offset = 0;  // CDB byte where the length field starts (field pointers)
};

// cdb_length is 6, 10, 12 or 16 (the CommandInfo's length). For 6-byte CDBs (READ(6)/WRITE(6))
// the LBA is 21 bits and a transfer length of 0 means 256 blocks (SBC-3 5.8, 5.36).
BlockRequest decode_block_request(std::uint8_t cdb_length, const std::uint8_t* cdb);

// Allocation length field of commands that return parameter data, by opcode; 0 for others.
std::uint32_t allocation_length(const std::uint8_t* cdb);

}  // namespace freevsa::scsi
