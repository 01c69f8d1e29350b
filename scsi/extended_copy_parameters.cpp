#include "scsi/extended_copy_parameters.h"

#include "util/endian.h"

namespace freevsa::scsi {
namespace {

constexpr std::uint32_t kHeaderLength = 16;
constexpr std::uint16_t kSegmentListLengthOffset = 8;  // in the header
constexpr std::uint16_t kInlineDataLengthOffset = 12;
constexpr std::uint32_t kSegmentHeaderLength = 4;
constexpr std::uint32_t kMaxDesignatorLength = 20;  // bytes 8..27 of an E4h descriptor

// SPC-4 6.4.3: 26/06 TOO MANY TARGET DESCRIPTORS, 26/07 UNSUPPORTED TARGET DESCRIPTOR TYPE CODE,
// 26/08 TOO MANY SEGMENT DESCRIPTORS, 26/09 UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE; the field
// pointer names the descriptor's first byte.
Sense descriptor_error(std::uint8_t ascq, std::uint32_t at) {
  Sense s = Sense::make(sense_key::kIllegalRequest, 0x26, ascq);
  s.field = FieldPointer{false, static_cast<std::uint16_t>(at), {}};
  return s;
}
Sense field_error(std::uint32_t at, std::optional<std::uint8_t> bit = {}) {
  return Sense::invalid_field_in_parameter_list(static_cast<std::uint16_t>(at), bit);
}

// The identification descriptor CSCD descriptor (E4h, SPC-4 6.4.5.9): the peripheral device
// type, then a designation descriptor, then the block device parameters. SPC-4 has the
// designator name the logical unit, so LU ID TYPE is ignored, and made NUL obsolete: both are
// ignored, as libiscsi expects of an SPC-4 device.
Result parse_cscd(const std::uint8_t* list, std::uint32_t at, CopyTargetDescriptor& out) {
  const std::uint8_t* d = list + at;
  if ((d[1] & 0x1F) != 0) return field_error(at + 1, 4);  // only block devices
  const std::uint8_t designator_length = d[7];
  if (designator_length > kMaxDesignatorLength) return field_error(at + 7);
  out.offset = static_cast<std::uint16_t>(at);
  out.code_set = d[4] & 0x0F;
  out.association = (d[5] >> 4) & 0x03;
  out.designator_type = d[5] & 0x0F;
  out.designator.assign(d + 8, d + 8 + designator_length);
  out.disk_block_length = util::get_be24(d + kCscdDiskBlockLengthOffset);
  return good();
}

// The block device to block device segment descriptor (02h, SPC-4 6.4.6.5).
Result parse_segment(const std::uint8_t* list, std::uint32_t at, BlockCopySegment& out) {
  const std::uint8_t* d = list + at;
  // DESCRIPTOR LENGTH counts the bytes after itself; for type 02h it is always 18h.
  if (util::get_be16(d + 2) != kBlockSegmentDescriptorLength - kSegmentHeaderLength) return field_error(at + 2);
  out.offset = static_cast<std::uint16_t>(at);
  out.destination_count = (d[1] & 0x02) != 0;
  out.source_id = util::get_be16(d + kSegmentSourceIdOffset);
  out.destination_id = util::get_be16(d + kSegmentDestinationIdOffset);
  out.blocks = util::get_be16(d + kSegmentBlocksOffset);
  out.source_lba = util::get_be64(d + kSegmentSourceLbaOffset);
  out.destination_lba = util::get_be64(d + kSegmentDestinationLbaOffset);
  return good();
}

// What distinguishes the two descriptor lists: the one type each supports, its length, how
// many fit, the ASCQs of their errors and the header field holding the list's length.
struct DescriptorListRules {
  std::uint8_t type;
  std::uint32_t descriptor_length;
  std::size_t max_descriptors;
  std::uint8_t too_many_ascq;
  std::uint8_t unsupported_type_ascq;
  std::uint16_t list_length_offset;
};
constexpr DescriptorListRules kCscdList{kIdentificationCscd, kCscdDescriptorLength, kMaxCscdDescriptors,
                                        0x06, 0x07, 2};
constexpr DescriptorListRules kSegmentList{kBlockToBlockSegment, kBlockSegmentDescriptorLength,
                                           kMaxSegmentDescriptors, 0x08, 0x09, kSegmentListLengthOffset};

template <typename Descriptor>
Result parse_list(const std::uint8_t* list, std::uint32_t begin, std::uint32_t end, const DescriptorListRules& rules,
                  Result (*parse)(const std::uint8_t*, std::uint32_t, Descriptor&), std::vector<Descriptor>& out) {
  for (std::uint32_t at = begin; at < end; at += rules.descriptor_length) {
    if (out.size() == rules.max_descriptors) return descriptor_error(rules.too_many_ascq, at);
    if (list[at] != rules.type) return descriptor_error(rules.unsupported_type_ascq, at);
    // The list's length ends inside the descriptor.
    if (end - at < rules.descriptor_length) return field_error(rules.list_length_offset);
    if (Result res = parse(list, at, out.emplace_back()); !res.ok()) return res;
  }
  return good();
}

}  // namespace

// SPC-4 6.4.3: the 16-byte header (LIST IDENTIFIER; STR, LIST ID USAGE, PRIORITY; the lengths of
// the CSCD descriptor list, the segment descriptor list and the inline data), then the lists.
Result parse_extended_copy_parameters(std::span<const std::uint8_t> list, ExtendedCopyParameters& out) {
  if (list.size() < kHeaderLength) return Sense::parameter_list_length_error();
  const std::uint8_t* p = list.data();
  const std::uint8_t usage = (p[1] >> 3) & 0x03;
  if (usage == 0x01) return field_error(1, 4);  // reserved
  out.list_id = p[0];
  out.usage = static_cast<ListIdUsage>(usage);
  // NOLIST: the list identifier is not used and must be zero.
  if (out.usage == ListIdUsage::NoList && out.list_id != 0) return field_error(0);

  const std::uint32_t cscd_bytes = util::get_be16(p + 2);
  const std::uint32_t segment_bytes = util::get_be32(p + kSegmentListLengthOffset);
  const std::uint32_t inline_bytes = util::get_be32(p + kInlineDataLengthOffset);
  // The lengths must fit in what was sent, and the two lists in the maximum descriptor list
  // length (SPC-4 6.4.3: both are PARAMETER LIST LENGTH ERROR).
  if (std::uint64_t{kHeaderLength} + cscd_bytes + segment_bytes + inline_bytes > list.size()) {
    return Sense::parameter_list_length_error();
  }
  if (std::uint64_t{cscd_bytes} + segment_bytes > kMaxDescriptorListLength) {
    return Sense::parameter_list_length_error();
  }
  if (inline_bytes != 0) return field_error(kInlineDataLengthOffset);  // MAXIMUM INLINE DATA LENGTH 0

  const std::uint32_t cscd_end = kHeaderLength + cscd_bytes;
  if (Result res = parse_list(p, kHeaderLength, cscd_end, kCscdList, parse_cscd, out.targets); !res.ok()) {
    return res;
  }
  return parse_list(p, cscd_end, cscd_end + segment_bytes, kSegmentList, parse_segment, out.segments);
}

}  // namespace freevsa::scsi
