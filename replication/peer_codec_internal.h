// What the peer codec's source files share; nothing outside the codec includes it (the public
// API is replication/peer_protocol.h). The codec's files:
//   peer_frame.cpp           the frame: header, CRCs, checks, encode(), FrameReader, per-type table
//   peer_message_layouts.cpp each message's payload, byte by byte, and decode_message()
//   peer_message_rules.cpp   which values each message's fields may hold
//   peer_wire_cursors.h      the bounds-checked Reader and Writer the layouts are written with
//   peer_protocol.cpp        error texts, type_of(), equality of messages that borrow their data
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "replication/peer_protocol.h"
#include "replication/peer_wire_cursors.h"

namespace freevsa::replication::peer::codec {

// ---- per-type sizes: the payload is a fixed part plus 0..max_tail bytes of data or text.
struct TypeInfo {
  MessageType type;
  std::string_view name;
  std::uint32_t fixed;
  std::uint32_t max_tail;

  bool fits(std::size_t payload_length) const {
    return payload_length >= fixed && payload_length - fixed <= max_tail;
  }
};
// The table entry of a raw type byte; nullptr for a type this build does not know.
const TypeInfo* find_type(std::uint8_t type);

// The field rules, shared by encode (before writing) and decode (after reading), so that an
// encodable message always decodes back to itself. Ignored is never valid: it cannot be sent.
ProtocolError validate_message(const Message& message);

// Writes the fixed part (and text) of a validated message and returns the bulk data to send
// after it (borrowed from the message). The inverse is decode_message().
std::span<const std::uint8_t> write_message(Writer& w, const Message& message);

}  // namespace freevsa::replication::peer::codec
