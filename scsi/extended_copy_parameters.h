// The EXTENDED COPY(LID1) parameter list (SPC-4 6.4.3) decoded into plain structs, and the
// limits of the copy manager that the decoding enforces. Decoding is a pure function of the
// bytes (fuzzable on its own); resolving the descriptors to logical units and copying happen
// in extended_copy.cpp.
//
// Supported: CSCD descriptors of type E4h (identification descriptor, block devices) and
// segment descriptors of type 02h (block device to block device) - what VMware's VAAI XCOPY
// sends. No inline or held data.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "scsi/sense.h"

namespace freevsa::scsi {

// Limits reported by RECEIVE COPY RESULTS (OPERATING PARAMETERS) and the Third-party Copy VPD
// page, and enforced by EXTENDED COPY.
inline constexpr std::uint16_t kMaxCscdDescriptors = 8;
inline constexpr std::uint16_t kMaxSegmentDescriptors = 16;
inline constexpr std::uint32_t kCscdDescriptorLength = 32;     // type E4h
inline constexpr std::uint32_t kBlockSegmentDescriptorLength = 28;  // type 02h
// Room for the most descriptors of each kind, as SPC-4 6.18.4 defines it (both lists together).
inline constexpr std::uint32_t kMaxDescriptorListLength =
    kMaxCscdDescriptors * kCscdDescriptorLength + kMaxSegmentDescriptors * kBlockSegmentDescriptorLength;
// Bytes one segment descriptor may copy (the copy runs in the command's worker thread).
inline constexpr std::uint32_t kMaxSegmentBytes = 16u << 20;
// Copies one logical unit runs at the same time (each occupies a worker thread).
inline constexpr std::uint16_t kMaxConcurrentCopies = 64;
// DATA SEGMENT GRANULARITY (log2 of bytes): copies move whole logical blocks.
inline std::uint8_t data_segment_granularity(std::uint32_t block_size) {
  std::uint8_t n = 0;
  while ((1u << n) < block_size) ++n;
  return n;
}
// The descriptor type codes this copy manager implements.
inline constexpr std::uint8_t kBlockToBlockSegment = 0x02;
inline constexpr std::uint8_t kIdentificationCscd = 0xE4;
inline constexpr std::array<std::uint8_t, 2> kImplementedDescriptorTypes = {kBlockToBlockSegment,
                                                                           kIdentificationCscd};
// CSCD descriptor ID FFFFh (SPC-4 6.4.5.1): the logical unit that received the EXTENDED COPY.
inline constexpr std::uint16_t kCopyManagerLuId = 0xFFFF;
inline constexpr std::array<std::uint16_t, 1> kSupportedCscdIds = {kCopyManagerLuId};

// LIST ID USAGE (SPC-4 6.4.3, table 107).
enum class ListIdUsage : std::uint8_t {
  Hold = 0,     // status kept for RECEIVE COPY RESULTS; the list identifier is unique
  Discard = 2,  // nothing need be kept; the list identifier is still unique
  NoList = 3,   // no list identifier (it is zero): nothing can be asked about the copy later
};

// A CSCD descriptor of type E4h: a logical unit named by a designation descriptor as in the
// Device Identification VPD page (SPC-4 6.4.5.9).
struct CopyTargetDescriptor {
  std::uint16_t offset = 0;           // where it starts in the parameter list (field pointers)
  std::uint8_t code_set = 0;
  std::uint8_t association = 0;
  std::uint8_t designator_type = 0;
  std::vector<std::uint8_t> designator;
  std::uint32_t disk_block_length = 0;  // block device type specific parameters
};

// A segment descriptor of type 02h (SPC-4 6.4.6.5): blocks from one CSCD to another.
struct BlockCopySegment {
  std::uint16_t offset = 0;           // where it starts in the parameter list
  bool destination_count = false;     // DC: the block count is in destination blocks
  std::uint16_t source_id = 0;        // CSCD descriptor IDs
  std::uint16_t destination_id = 0;
  std::uint16_t blocks = 0;
  std::uint64_t source_lba = 0;
  std::uint64_t destination_lba = 0;
};

struct ExtendedCopyParameters {
  std::uint8_t list_id = 0;
  ListIdUsage usage = ListIdUsage::Hold;
  std::vector<CopyTargetDescriptor> targets;
  std::vector<BlockCopySegment> segments;
};

// Offsets of fields within the descriptors (for field pointers).
inline constexpr std::uint16_t kCscdDiskBlockLengthOffset = 29;
inline constexpr std::uint16_t kSegmentBlocksOffset = 10;
inline constexpr std::uint16_t kSegmentSourceLbaOffset = 12;
inline constexpr std::uint16_t kSegmentDestinationLbaOffset = 20;
inline constexpr std::uint16_t kSegmentSourceIdOffset = 4;
inline constexpr std::uint16_t kSegmentDestinationIdOffset = 6;

// Decodes and checks a whole parameter list (at least its 16-byte header) against the limits
// above. Errors are ILLEGAL REQUEST: 1A/00 for lengths that do not add up, 26/06..26/09 for too
// many or unsupported descriptors, 26/00 with a field pointer for any other field.
Result parse_extended_copy_parameters(std::span<const std::uint8_t> list, ExtendedCopyParameters& out);

}  // namespace freevsa::scsi
