// The peer protocol's frame layer (docs/peer-protocol.md): the 32-byte header and its CRCs, the
// per-type payload sizes, the checks a frame passes before its payload is decoded, encode(), and
// FrameReader's buffering. What the payload holds is peer_message_layouts.cpp's job.
#include <algorithm>
#include <cstring>

#include "replication/peer_codec_internal.h"
#include "util/crc32c.h"
#include "util/endian.h"

namespace freevsa::replication::peer {
namespace codec {
namespace {

// ---- the per-type table (TypeInfo): payload sizes and names.
constexpr std::uint32_t kHelloSize = 304;
constexpr TypeInfo kTypes[] = {
    {MessageType::Hello, "Hello", kHelloSize, 0},
    {MessageType::SharedSettings, "SharedSettings", 0, kMaxSharedSettingsLength},
    {MessageType::AuthHello, "AuthHello", 176, 0},
    {MessageType::AuthProof, "AuthProof", 32, 0},
    {MessageType::Write, "Write", 24, kMaxDataLength},
    {MessageType::WriteAck, "WriteAck", 8, 0},
    {MessageType::Discard, "Discard", 24, 0},
    {MessageType::Flush, "Flush", 0, 0},
    {MessageType::FlushAck, "FlushAck", 8, 0},
    {MessageType::Barrier, "Barrier", 16, 0},
    {MessageType::BarrierAck, "BarrierAck", 16, 0},
    {MessageType::Read, "Read", 16, 0},
    {MessageType::ReadData, "ReadData", 16, kMaxDataLength},
    {MessageType::Ping, "Ping", 8, 0},
    {MessageType::PingAck, "PingAck", 8, 0},
    {MessageType::StateChange, "StateChange", 40, kMaxReasonLength},
    {MessageType::Disconnect, "Disconnect", 8, kMaxReasonLength},
    {MessageType::BitmapChunk, "BitmapChunk", 16, kMaxPayloadLength - 16},
    {MessageType::ResyncRequest, "ResyncRequest", 48, 0},
    {MessageType::ResyncData, "ResyncData", 24, kMaxDataLength},
    {MessageType::ChecksumRequest, "ChecksumRequest", 16, 0},
    {MessageType::ChecksumReply, "ChecksumReply", 56, 0},
    {MessageType::VerifyDone, "VerifyDone", 24, 0},
    {MessageType::Reservations, "Reservations", 0, kMaxReservationsLength},
    {MessageType::ReservationsAck, "ReservationsAck", 8, 0},
    {MessageType::ReservationCommand, "ReservationCommand", 0, kMaxReservationCommandLength},
    {MessageType::ReservationAnswer, "ReservationAnswer", 0, kMaxReservationCommandLength},
};
static_assert(OutgoingFrame::kMaxHeadSize >= kFrameHeaderSize + kHelloSize);
static_assert(OutgoingFrame::kMaxHeadSize >= kFrameHeaderSize + 40 + kMaxReasonLength);

}  // namespace

const TypeInfo* find_type(std::uint8_t type) {
  for (const auto& info : kTypes) {
    if (static_cast<std::uint8_t>(info.type) == type) return &info;
  }
  return nullptr;
}

}  // namespace codec

namespace {

using codec::find_type;

// ---- the header
namespace hdr {
constexpr std::size_t kMagic = 0, kVersion = 4, kType = 5, kFlags = 6, kRequestId = 8, kPayloadLength = 16,
                      kPayloadCrc = 20, kReserved = 24, kHeaderCrc = 28;
}  // namespace hdr

ScanResult bad(ProtocolError e) { return {ScanResult::Status::Bad, 0, e}; }

// scan_frame(), also handing the decoded header to FrameReader.
ScanResult scan(std::span<const std::uint8_t> bytes, const DecodeOptions& options, FrameHeader* header_out) {
  std::uint8_t magic[4];
  util::put_be32(magic, kFrameMagic);
  for (std::size_t i = 0; i < 4 && i < bytes.size(); ++i) {
    if (bytes[i] != magic[i]) return bad(ProtocolError::BadMagic);
  }
  if (bytes.size() > hdr::kVersion && bytes[hdr::kVersion] != kFrameVersion) {
    return bad(ProtocolError::UnsupportedFrameVersion);
  }
  if (bytes.size() < kFrameHeaderSize) return {ScanResult::Status::NeedMore, kFrameHeaderSize - bytes.size()};
  auto header = decode_header(bytes, options);
  if (!header.ok()) return bad(header.error);
  const std::size_t frame_size = header.value.frame_size();
  if (bytes.size() < frame_size) return {ScanResult::Status::NeedMore, frame_size - bytes.size()};
  if (auto e = check_payload(header.value, bytes.subspan(kFrameHeaderSize, header.value.payload_length));
      e != ProtocolError::None) {
    return bad(e);
  }
  if (header_out != nullptr) *header_out = header.value;
  return {ScanResult::Status::Complete, frame_size};
}

}  // namespace

bool is_known_type(std::uint8_t type) { return find_type(type) != nullptr; }

std::string_view to_string(MessageType type) {
  const auto* info = find_type(static_cast<std::uint8_t>(type));
  return info != nullptr ? info->name : "Unknown";
}

Result<FrameHeader> decode_header(std::span<const std::uint8_t> bytes, const DecodeOptions& options) {
  if (bytes.size() < kFrameHeaderSize) return {ProtocolError::BufferTooSmall, {}};
  const std::uint8_t* p = bytes.data();
  if (util::get_be32(p + hdr::kMagic) != kFrameMagic) return {ProtocolError::BadMagic, {}};
  if (p[hdr::kVersion] != kFrameVersion) return {ProtocolError::UnsupportedFrameVersion, {}};
  if (util::crc32c_extend(0, p, hdr::kHeaderCrc) != util::get_be32(p + hdr::kHeaderCrc)) {
    return {ProtocolError::HeaderCrcMismatch, {}};
  }
  FrameHeader h;
  h.type = p[hdr::kType];
  h.flags = util::get_be16(p + hdr::kFlags);
  h.request_id = util::get_be64(p + hdr::kRequestId);
  h.payload_length = util::get_be32(p + hdr::kPayloadLength);
  h.payload_crc = util::get_be32(p + hdr::kPayloadCrc);
  if ((h.flags & ~kKnownFrameFlags) != 0) return {ProtocolError::UnknownFrameFlags, {}};
  if (util::get_be32(p + hdr::kReserved) != 0) return {ProtocolError::ReservedNotZero, {}};
  if (!h.has_payload_crc() && h.payload_crc != 0) return {ProtocolError::ReservedNotZero, {}};
  if (h.payload_length > std::min(options.max_payload_length, kMaxPayloadLength)) {
    return {ProtocolError::PayloadTooLarge, {}};
  }
  if (options.require_payload_crc && !h.has_payload_crc()) return {ProtocolError::PayloadCrcMissing, {}};
  if (const auto* info = find_type(h.type)) {
    if (!info->fits(h.payload_length)) return {ProtocolError::BadPayloadLength, {}};
  } else if (!h.ignorable()) {
    return {ProtocolError::UnknownType, {}};
  }
  return {ProtocolError::None, h};
}

ProtocolError check_payload(const FrameHeader& header, std::span<const std::uint8_t> payload) {
  if (payload.size() != header.payload_length) return ProtocolError::BadPayloadLength;
  if (header.has_payload_crc() && util::crc32c(payload) != header.payload_crc) {
    return ProtocolError::PayloadCrcMismatch;
  }
  return ProtocolError::None;
}

ScanResult scan_frame(std::span<const std::uint8_t> bytes, const DecodeOptions& options) {
  return scan(bytes, options, nullptr);
}

Result<OutgoingFrame> encode(const Message& message, std::uint64_t request_id, const EncodeOptions& options) {
  Result<OutgoingFrame> out;
  out.error = codec::validate_message(message);
  if (!out.ok()) return out;
  OutgoingFrame& frame = out.value;
  codec::Writer w(std::span(frame.head_bytes).subspan(kFrameHeaderSize));
  frame.tail = codec::write_message(w, message);
  const auto* info = find_type(static_cast<std::uint8_t>(type_of(message)));
  if (w.overflowed() || info == nullptr || w.size() < info->fixed ||
      w.size() - info->fixed + frame.tail.size() > info->max_tail) {
    out.error = ProtocolError::BadPayloadLength;  // unreachable for validated messages
    return out;
  }
  frame.head_size = kFrameHeaderSize + w.size();
  const auto payload_length = static_cast<std::uint32_t>(w.size() + frame.tail.size());

  std::uint8_t* p = frame.head_bytes.data();
  std::uint16_t flags = 0;
  std::uint32_t payload_crc = 0;
  if (options.payload_crc) {
    flags |= kFlagPayloadCrc;
    payload_crc = util::crc32c_extend(util::crc32c_extend(0, p + kFrameHeaderSize, w.size()), frame.tail.data(),
                                      frame.tail.size());
  }
  if (options.ignorable) flags |= kFlagIgnorable;
  if (options.mac) flags |= kFlagMac;
  frame.has_mac = options.mac;
  util::put_be32(p + hdr::kMagic, kFrameMagic);
  p[hdr::kVersion] = kFrameVersion;
  p[hdr::kType] = static_cast<std::uint8_t>(info->type);
  util::put_be16(p + hdr::kFlags, flags);
  util::put_be64(p + hdr::kRequestId, request_id);
  util::put_be32(p + hdr::kPayloadLength, payload_length);
  util::put_be32(p + hdr::kPayloadCrc, payload_crc);
  util::put_be32(p + hdr::kReserved, 0);
  util::put_be32(p + hdr::kHeaderCrc, util::crc32c_extend(0, p, hdr::kHeaderCrc));
  return out;
}

Result<std::size_t> encode_into(const Message& message, std::uint64_t request_id, std::span<std::uint8_t> out,
                                const EncodeOptions& options) {
  auto frame = encode(message, request_id, options);
  if (!frame.ok()) return {frame.error, 0};
  const OutgoingFrame& f = frame.value;
  if (out.size() < f.size()) return {ProtocolError::BufferTooSmall, 0};
  std::memcpy(out.data(), f.head_bytes.data(), f.head_size);
  if (!f.tail.empty()) std::memcpy(out.data() + f.head_size, f.tail.data(), f.tail.size());
  if (f.has_mac) std::memcpy(out.data() + f.head_size + f.tail.size(), f.mac.data(), f.mac.size());
  return {ProtocolError::None, f.size()};
}

void FrameReader::append(std::span<const std::uint8_t> bytes) {
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ > 0 && start_ >= buffer_.size() / 2) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

FrameReader::Frame FrameReader::next() {
  Frame frame;
  if (failed_ != ProtocolError::None) {
    frame.status = ScanResult::Status::Bad;
    frame.error = failed_;
    return frame;
  }
  const auto view = std::span<const std::uint8_t>(buffer_).subspan(start_);
  const ScanResult s = scan(view, options_, &frame.header);
  frame.status = s.status;
  frame.error = s.error;
  switch (s.status) {
    case ScanResult::Status::NeedMore: frame.need = s.bytes; break;
    case ScanResult::Status::Bad: failed_ = s.error; break;
    case ScanResult::Status::Complete:
      frame.raw_header = view.first(kFrameHeaderSize);
      frame.payload = view.subspan(kFrameHeaderSize, frame.header.payload_length);
      if (frame.header.has_mac()) frame.mac = view.subspan(kFrameHeaderSize + frame.header.payload_length, kFrameMacSize);
      start_ += s.bytes;
      break;
  }
  return frame;
}

}  // namespace freevsa::replication::peer
