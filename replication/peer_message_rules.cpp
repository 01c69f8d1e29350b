// The peer protocol's field rules (docs/peer-protocol.md): which values each message may carry,
// whatever their place in the payload (that is peer_message_layouts.cpp's job).
#include <algorithm>
#include <initializer_list>
#include <variant>

#include "replication/peer_codec_internal.h"
#include "util/endian.h"

namespace freevsa::replication::peer::codec {
namespace {

// ---- field rules shared by encode (before writing) and decode (after reading)
bool printable(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}
ProtocolError check_name(const std::string& text) {
  return !text.empty() && text.size() <= kNameLength && printable(text) ? ProtocolError::None
                                                                       : ProtocolError::BadText;
}
ProtocolError check_reason(const std::string& text) {
  return text.size() <= kMaxReasonLength && printable(text) ? ProtocolError::None : ProtocolError::BadText;
}
bool valid_role(Role r) { return r == Role::Secondary || r == Role::Primary; }
bool valid_disk_state(DiskState d) {
  return d == DiskState::Diskless || d == DiskState::Inconsistent || d == DiskState::Outdated ||
         d == DiskState::UpToDate;
}
bool valid_algorithm(DigestAlgorithm a) {
  return a == DigestAlgorithm::None || a == DigestAlgorithm::Crc32c || a == DigestAlgorithm::Sha256;
}
bool valid_status(std::int32_t status) { return status >= 0 && status < 4096; }
bool all_zero(std::span<const std::uint8_t> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}
// Digest bytes beyond what the algorithm produces are zero.
bool digest_fits(DigestAlgorithm algorithm, const Digest& digest) {
  switch (algorithm) {
    case DigestAlgorithm::None: return all_zero(digest);
    case DigestAlgorithm::Crc32c: return all_zero(std::span(digest).subspan(4));
    case DigestAlgorithm::Sha256: return true;
  }
  return false;
}
// A sector-aligned range that does not wrap around.
ProtocolError check_range(std::uint64_t offset, std::uint64_t length, std::uint64_t max_length) {
  if (length == 0 || length > max_length) return ProtocolError::BadLength;
  if (offset % kSectorSize != 0 || length % kSectorSize != 0) return ProtocolError::Misaligned;
  if (offset + length < offset) return ProtocolError::OutOfRange;
  return ProtocolError::None;
}
constexpr std::uint64_t kNoLimit = ~std::uint64_t{0};

ProtocolError first_error(std::initializer_list<ProtocolError> errors) {
  for (auto e : errors) {
    if (e != ProtocolError::None) return e;
  }
  return ProtocolError::None;
}
ProtocolError require(bool ok, ProtocolError error) { return ok ? ProtocolError::None : error; }

ProtocolError check_bitmap(const BitmapChunk& m) {
  if (m.encoding != BitmapEncoding::Raw && m.encoding != BitmapEncoding::Runs) return ProtocolError::BadEnum;
  if ((m.flags & ~kBitmapLast) != 0) return ProtocolError::ReservedNotZero;
  if (m.bit_offset + m.bit_count < m.bit_offset) return ProtocolError::OutOfRange;
  if (m.body.size() > kMaxPayloadLength - 16) return ProtocolError::BadLength;
  if (m.encoding == BitmapEncoding::Raw) {
    if (m.body.size() != (std::uint64_t{m.bit_count} + 7) / 8) return ProtocolError::BadBitmap;
    const unsigned used = m.bit_count % 8;
    if (used != 0 && (m.body.back() >> used) != 0) return ProtocolError::BadBitmap;
    return ProtocolError::None;
  }
  if (m.body.size() % 4 != 0) return ProtocolError::BadBitmap;
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < m.body.size(); i += 4) {
    const std::uint32_t run = util::get_be32(&m.body[i]);
    if (run == 0 && i != 0) return ProtocolError::BadBitmap;
    sum += run;
  }
  return require(sum == m.bit_count, ProtocolError::BadBitmap);
}

ProtocolError validate(const Hello& m) {
  return first_error({require(m.protocol_min >= 1 && m.protocol_min <= m.protocol_max, ProtocolError::OutOfRange),
                      check_name(m.node_name), check_name(m.cluster_name), check_name(m.volume_name),
                      require(m.size_bytes % kSectorSize == 0, ProtocolError::Misaligned),
                      require(m.block_size >= 512 && m.block_size <= 65536 && (m.block_size & (m.block_size - 1)) == 0,
                              ProtocolError::OutOfRange),
                      require(valid_disk_state(m.disk_state) && valid_role(m.role), ProtocolError::BadEnum)});
}
ProtocolError validate(const AuthHello& m) {
  return first_error({require(m.protocol_min >= 1 && m.protocol_min <= m.protocol_max, ProtocolError::OutOfRange),
                      check_name(m.node_name), check_name(m.cluster_name),
                      require(m.side == LinkSide::Dialler || m.side == LinkSide::Acceptor, ProtocolError::BadEnum)});
}
ProtocolError validate(const AuthProof&) { return ProtocolError::None; }
ProtocolError validate(const Write& m) {
  return first_error({check_range(m.offset, m.data.size(), kMaxDataLength),
                      require((m.flags & ~kKnownWriteFlags) == 0, ProtocolError::ReservedNotZero)});
}
ProtocolError validate(const WriteAck& m) {
  return first_error({require(valid_status(m.status), ProtocolError::OutOfRange),
                      require((m.flags & ~(kAckDurable | kAckReceived)) == 0, ProtocolError::ReservedNotZero)});
}
ProtocolError validate(const Discard& m) { return check_range(m.offset, m.length, kNoLimit); }
ProtocolError validate(const Flush&) { return ProtocolError::None; }
ProtocolError validate(const FlushAck& m) { return require(valid_status(m.status), ProtocolError::OutOfRange); }
ProtocolError validate(const Barrier&) { return ProtocolError::None; }
ProtocolError validate(const BarrierAck&) { return ProtocolError::None; }
ProtocolError validate(const Read& m) { return check_range(m.offset, m.length, kMaxDataLength); }
ProtocolError validate(const ReadData& m) {
  return first_error({check_range(m.offset, m.length, kMaxDataLength),
                      require(valid_status(m.status), ProtocolError::OutOfRange),
                      require(m.data.size() == (m.status == 0 ? m.length : 0), ProtocolError::BadLength)});
}
ProtocolError validate(const Reservations& m) {
  return require(m.record.size() <= kMaxReservationsLength, ProtocolError::BadLength);
}
ProtocolError validate(const ReservationsAck& m) { return require(valid_status(m.status), ProtocolError::OutOfRange); }
ProtocolError validate(const ReservationCommand& m) {
  return require(!m.request.empty() && m.request.size() <= kMaxReservationCommandLength, ProtocolError::BadLength);
}
ProtocolError validate(const ReservationAnswer& m) {
  return require(m.answer.size() <= kMaxReservationCommandLength, ProtocolError::BadLength);
}
ProtocolError validate(const Ping&) { return ProtocolError::None; }
ProtocolError validate(const PingAck&) { return ProtocolError::None; }
ProtocolError validate(const StateChange& m) {
  return first_error({require(valid_disk_state(m.disk_state) && valid_role(m.role), ProtocolError::BadEnum),
                      check_reason(m.reason)});
}
ProtocolError validate(const Disconnect& m) { return check_reason(m.reason); }
ProtocolError validate(const SharedSettings& m) {
  const bool text = std::all_of(m.text.begin(), m.text.end(), [](std::uint8_t c) { return c == '\n' || (c >= 0x20 && c <= 0x7e); });
  return require(!m.text.empty() && m.text.size() <= kMaxSharedSettingsLength && text, ProtocolError::BadText);
}
ProtocolError validate(const BitmapChunk& m) { return check_bitmap(m); }
ProtocolError validate(const ResyncRequest& m) {
  return first_error({check_range(m.offset, m.length, kMaxDataLength),
                      require(valid_algorithm(m.algorithm), ProtocolError::BadEnum),
                      require(digest_fits(m.algorithm, m.digest), ProtocolError::ReservedNotZero)});
}
ProtocolError validate(const ResyncData& m) {
  const bool carries_data = m.status == 0 && (m.flags & kResyncIdentical) == 0;
  return first_error({check_range(m.offset, m.length, kMaxDataLength),
                      require(valid_status(m.status), ProtocolError::OutOfRange),
                      require((m.flags & ~kResyncIdentical) == 0 && (m.status == 0 || m.flags == 0),
                              ProtocolError::ReservedNotZero),
                      require(m.data.size() == (carries_data ? m.length : 0), ProtocolError::BadLength)});
}
ProtocolError validate(const ChecksumRequest& m) {
  return first_error({check_range(m.offset, m.length, kMaxDataLength),
                      require(valid_algorithm(m.algorithm) && m.algorithm != DigestAlgorithm::None,
                              ProtocolError::BadEnum)});
}
ProtocolError validate(const ChecksumReply& m) {
  return first_error({check_range(m.offset, m.length, kMaxDataLength),
                      require(valid_algorithm(m.algorithm) && m.algorithm != DigestAlgorithm::None,
                              ProtocolError::BadEnum),
                      require(valid_status(m.status), ProtocolError::OutOfRange),
                      require(digest_fits(m.algorithm, m.digest) && (m.status == 0 || all_zero(m.digest)),
                              ProtocolError::ReservedNotZero)});
}
ProtocolError validate(const VerifyDone& m) {
  return first_error({require(valid_status(m.status), ProtocolError::OutOfRange),
                      require(m.bytes_out_of_sync <= m.bytes_checked, ProtocolError::OutOfRange)});
}
ProtocolError validate(const Ignored&) { return ProtocolError::UnknownType; }

}  // namespace

ProtocolError validate_message(const Message& message) {
  return std::visit([](const auto& m) { return validate(m); }, message);
}

}  // namespace freevsa::replication::peer::codec
