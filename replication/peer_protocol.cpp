// The vocabulary of peer_protocol.h that is neither framing nor payload layout: error texts,
// a message's type, and equality of the messages that borrow their data (a span compares by
// content, not by address). The codec itself: peer_frame.cpp, peer_message_layouts.cpp and
// peer_message_rules.cpp.
#include "replication/peer_protocol.h"

#include <algorithm>
#include <iterator>

namespace freevsa::replication::peer {

std::string_view to_string(ProtocolError error) {
  switch (error) {
    case ProtocolError::None: return "no error";
    case ProtocolError::BadMagic: return "bad magic: not a freevsa peer frame";
    case ProtocolError::UnsupportedFrameVersion: return "unsupported frame version";
    case ProtocolError::HeaderCrcMismatch: return "header CRC32C mismatch";
    case ProtocolError::UnknownFrameFlags: return "unknown frame header flags";
    case ProtocolError::ReservedNotZero: return "reserved field or flag not zero";
    case ProtocolError::PayloadTooLarge: return "payload length above the limit";
    case ProtocolError::PayloadCrcMissing: return "payload CRC required on this link but absent";
    case ProtocolError::PayloadCrcMismatch: return "payload CRC32C mismatch";
    case ProtocolError::UnknownType: return "unknown message type";
    case ProtocolError::BadPayloadLength: return "payload length does not fit the message type";
    case ProtocolError::BadLength: return "length field zero, too large, or not matching the data";
    case ProtocolError::Misaligned: return "offset or length not a multiple of 512";
    case ProtocolError::OutOfRange: return "value out of range";
    case ProtocolError::BadEnum: return "undefined enumeration value";
    case ProtocolError::BadText: return "text field not printable ASCII or badly padded";
    case ProtocolError::BadBitmap: return "bitmap body inconsistent with its bit count";
    case ProtocolError::BufferTooSmall: return "buffer too small";
  }
  return "unknown error";
}

bool operator==(const Write& a, const Write& b) {
  return a.offset == b.offset && a.flags == b.flags && a.epoch == b.epoch &&
         std::ranges::equal(a.data, b.data);
}
bool operator==(const SharedSettings& a, const SharedSettings& b) { return std::ranges::equal(a.text, b.text); }
bool operator==(const BitmapChunk& a, const BitmapChunk& b) {
  return a.bit_offset == b.bit_offset && a.bit_count == b.bit_count && a.encoding == b.encoding &&
         a.flags == b.flags && std::ranges::equal(a.body, b.body);
}
bool operator==(const Reservations& a, const Reservations& b) { return std::ranges::equal(a.record, b.record); }
bool operator==(const ReservationCommand& a, const ReservationCommand& b) {
  return std::ranges::equal(a.request, b.request);
}
bool operator==(const ReservationAnswer& a, const ReservationAnswer& b) { return std::ranges::equal(a.answer, b.answer); }
bool operator==(const ReadData& a, const ReadData& b) {
  return a.offset == b.offset && a.length == b.length && a.status == b.status && std::ranges::equal(a.data, b.data);
}
bool operator==(const ResyncData& a, const ResyncData& b) {
  return a.offset == b.offset && a.length == b.length && a.flags == b.flags && a.status == b.status &&
         std::ranges::equal(a.data, b.data);
}

MessageType type_of(const Message& message) {
  constexpr MessageType kByIndex[] = {
      MessageType::Hello,         MessageType::AuthHello,       MessageType::AuthProof,
      MessageType::SharedSettings,  MessageType::Write,           MessageType::WriteAck,
      MessageType::Discard,       MessageType::Flush,           MessageType::FlushAck,
      MessageType::Barrier,       MessageType::BarrierAck,      MessageType::Read,
      MessageType::ReadData,      MessageType::Ping,
      MessageType::PingAck,       MessageType::StateChange,     MessageType::Disconnect,
      MessageType::BitmapChunk,   MessageType::ResyncRequest,   MessageType::ResyncData,
      MessageType::ChecksumRequest, MessageType::ChecksumReply, MessageType::VerifyDone,
      MessageType::Reservations,  MessageType::ReservationsAck, MessageType::ReservationCommand,
      MessageType::ReservationAnswer,
  };
  static_assert(std::size(kByIndex) + 1 == std::variant_size_v<Message>);
  if (const auto* ignored = std::get_if<Ignored>(&message)) return static_cast<MessageType>(ignored->type);
  return kByIndex[message.index()];
}

}  // namespace freevsa::replication::peer
