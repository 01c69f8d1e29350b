// The peer protocol's payload layouts (docs/peer-protocol.md), byte by byte: how each message
// is written after the frame header and read back, and decode_message(), which picks the
// layout by the frame's type. Which values the fields may hold is peer_message_rules.cpp's job.
#include <span>
#include <utility>
#include <variant>

#include "replication/peer_codec_internal.h"

namespace freevsa::replication::peer {
namespace codec {
namespace {

// ---- payload layouts (docs/peer-protocol.md). write_body() writes the fixed part (and text)
// and returns the bulk data to send after it; read_body() is its exact inverse.
void write_generations(Writer& w, const Generations& g) {
  w.u64(g.current);
  w.u64(g.bitmap);
  w.u64(g.history[0]);
  w.u64(g.history[1]);
}
Generations read_generations(Reader& r) {
  Generations g;
  g.current = r.u64();
  g.bitmap = r.u64();
  g.history[0] = r.u64();
  g.history[1] = r.u64();
  return g;
}

using Tail = std::span<const std::uint8_t>;

Tail write_body(Writer& w, const Hello& m) {
  w.u16(m.protocol_min);
  w.u16(m.protocol_max);
  w.u32(m.node_id);
  w.name(m.node_name);
  w.name(m.cluster_name);
  w.name(m.volume_name);
  w.bytes(m.volume_uuid);
  w.u64(m.size_bytes);
  w.u32(m.block_size);
  w.u8(static_cast<std::uint8_t>(m.disk_state));
  w.u8(static_cast<std::uint8_t>(m.role));
  w.reserved(2);
  write_generations(w, m.generations);
  w.bytes(m.config_hash);
  w.u64(m.feature_flags);
  return {};
}
void read_body(Reader& r, Hello& m) {
  m.protocol_min = r.u16();
  m.protocol_max = r.u16();
  m.node_id = r.u32();
  m.node_name = r.name();
  m.cluster_name = r.name();
  m.volume_name = r.name();
  m.volume_uuid = r.bytes<16>();
  m.size_bytes = r.u64();
  m.block_size = r.u32();
  m.disk_state = static_cast<DiskState>(r.u8());
  m.role = static_cast<Role>(r.u8());
  r.reserved(2);
  m.generations = read_generations(r);
  m.config_hash = r.bytes<32>();
  m.feature_flags = r.u64();
}

Tail write_body(Writer& w, const AuthHello& m) {
  w.u16(m.protocol_min);
  w.u16(m.protocol_max);
  w.u32(m.node_id);
  w.name(m.node_name);
  w.name(m.cluster_name);
  w.bytes(m.nonce);
  w.u8(static_cast<std::uint8_t>(m.side));
  w.reserved(7);
  return {};
}
void read_body(Reader& r, AuthHello& m) {
  m.protocol_min = r.u16();
  m.protocol_max = r.u16();
  m.node_id = r.u32();
  m.node_name = r.name();
  m.cluster_name = r.name();
  m.nonce = r.bytes<32>();
  m.side = static_cast<LinkSide>(r.u8());
  r.reserved(7);
}
Tail write_body(Writer& w, const AuthProof& m) {
  w.bytes(m.mac);
  return {};
}
void read_body(Reader& r, AuthProof& m) { m.mac = r.bytes<32>(); }

Tail write_body(Writer& w, const Write& m) {
  w.u64(m.offset);
  w.u32(static_cast<std::uint32_t>(m.data.size()));
  w.u32(m.flags);
  w.u64(m.epoch);
  return m.data;
}
void read_body(Reader& r, Write& m) {
  m.offset = r.u64();
  const std::uint32_t length = r.u32();
  m.flags = r.u32();
  m.epoch = r.u64();
  m.data = r.rest();
  if (m.data.size() != length) r.fail(ProtocolError::BadLength);
}

Tail write_body(Writer& w, const WriteAck& m) {
  w.i32(m.status);
  w.u32(m.flags);
  return {};
}
void read_body(Reader& r, WriteAck& m) {
  m.status = r.i32();
  m.flags = r.u32();
}

Tail write_body(Writer& w, const Discard& m) {
  w.u64(m.offset);
  w.u64(m.length);
  w.u64(m.epoch);
  return {};
}
void read_body(Reader& r, Discard& m) {
  m.offset = r.u64();
  m.length = r.u64();
  m.epoch = r.u64();
}

Tail write_body(Writer&, const Flush&) { return {}; }
void read_body(Reader&, Flush&) {}

Tail write_body(Writer& w, const FlushAck& m) {
  w.i32(m.status);
  w.reserved(4);
  return {};
}
void read_body(Reader& r, FlushAck& m) {
  m.status = r.i32();
  r.reserved(4);
}

template <typename EpochMessage>
Tail write_epoch(Writer& w, const EpochMessage& m) {
  w.u64(m.epoch);
  w.u32(m.write_count);
  w.reserved(4);
  return {};
}
template <typename EpochMessage>
void read_epoch(Reader& r, EpochMessage& m) {
  m.epoch = r.u64();
  m.write_count = r.u32();
  r.reserved(4);
}
Tail write_body(Writer& w, const Barrier& m) { return write_epoch(w, m); }
void read_body(Reader& r, Barrier& m) { read_epoch(r, m); }
Tail write_body(Writer& w, const BarrierAck& m) { return write_epoch(w, m); }
void read_body(Reader& r, BarrierAck& m) { read_epoch(r, m); }

Tail write_body(Writer& w, const Ping& m) {
  w.u64(m.timestamp_ns);
  return {};
}
void read_body(Reader& r, Ping& m) { m.timestamp_ns = r.u64(); }
Tail write_body(Writer& w, const PingAck& m) {
  w.u64(m.timestamp_ns);
  return {};
}
void read_body(Reader& r, PingAck& m) { m.timestamp_ns = r.u64(); }

Tail write_body(Writer& w, const StateChange& m) {
  w.u8(static_cast<std::uint8_t>(m.role));
  w.u8(static_cast<std::uint8_t>(m.disk_state));
  w.reserved(6);
  write_generations(w, m.generations);
  w.text(m.reason);
  return {};
}
void read_body(Reader& r, StateChange& m) {
  m.role = static_cast<Role>(r.u8());
  m.disk_state = static_cast<DiskState>(r.u8());
  r.reserved(6);
  m.generations = read_generations(r);
  m.reason = r.rest_as_text();
}

Tail write_body(Writer& w, const Disconnect& m) {
  w.u32(static_cast<std::uint32_t>(m.code));
  w.reserved(4);
  w.text(m.reason);
  return {};
}
void read_body(Reader& r, Disconnect& m) {
  m.code = static_cast<DisconnectCode>(r.u32());
  r.reserved(4);
  m.reason = r.rest_as_text();
}

Tail write_body(Writer&, const Reservations& m) { return m.record; }
void read_body(Reader& r, Reservations& m) { m.record = r.rest(); }
Tail write_body(Writer& w, const ReservationsAck& m) {
  w.i32(m.status);
  w.reserved(4);
  return {};
}
void read_body(Reader& r, ReservationsAck& m) {
  m.status = r.i32();
  r.reserved(4);
}

Tail write_body(Writer&, const ReservationCommand& m) { return m.request; }
void read_body(Reader& r, ReservationCommand& m) { m.request = r.rest(); }
Tail write_body(Writer&, const ReservationAnswer& m) { return m.answer; }
void read_body(Reader& r, ReservationAnswer& m) { m.answer = r.rest(); }

Tail write_body(Writer&, const SharedSettings& m) { return m.text; }
void read_body(Reader& r, SharedSettings& m) { m.text = r.rest(); }

Tail write_body(Writer& w, const BitmapChunk& m) {
  w.u64(m.bit_offset);
  w.u32(m.bit_count);
  w.u8(static_cast<std::uint8_t>(m.encoding));
  w.u8(m.flags);
  w.reserved(2);
  return m.body;
}
void read_body(Reader& r, BitmapChunk& m) {
  m.bit_offset = r.u64();
  m.bit_count = r.u32();
  m.encoding = static_cast<BitmapEncoding>(r.u8());
  m.flags = r.u8();
  r.reserved(2);
  m.body = r.rest();
}

Tail write_body(Writer& w, const ResyncRequest& m) {
  w.u64(m.offset);
  w.u32(m.length);
  w.u8(static_cast<std::uint8_t>(m.algorithm));
  w.reserved(3);
  w.bytes(m.digest);
  return {};
}
void read_body(Reader& r, ResyncRequest& m) {
  m.offset = r.u64();
  m.length = r.u32();
  m.algorithm = static_cast<DigestAlgorithm>(r.u8());
  r.reserved(3);
  m.digest = r.bytes<32>();
}

Tail write_body(Writer& w, const Read& m) {
  w.u64(m.offset);
  w.u32(m.length);
  w.reserved(4);
  return {};
}
void read_body(Reader& r, Read& m) {
  m.offset = r.u64();
  m.length = r.u32();
  r.reserved(4);
}

Tail write_body(Writer& w, const ReadData& m) {
  w.u64(m.offset);
  w.u32(m.length);
  w.i32(m.status);
  return m.data;
}
void read_body(Reader& r, ReadData& m) {
  m.offset = r.u64();
  m.length = r.u32();
  m.status = r.i32();
  m.data = r.rest();
}

Tail write_body(Writer& w, const ResyncData& m) {
  w.u64(m.offset);
  w.u32(m.length);
  w.u32(m.flags);
  w.i32(m.status);
  w.reserved(4);
  return m.data;
}
void read_body(Reader& r, ResyncData& m) {
  m.offset = r.u64();
  m.length = r.u32();
  m.flags = r.u32();
  m.status = r.i32();
  r.reserved(4);
  m.data = r.rest();
}

Tail write_body(Writer& w, const ChecksumRequest& m) {
  w.u64(m.offset);
  w.u32(m.length);
  w.u8(static_cast<std::uint8_t>(m.algorithm));
  w.reserved(3);
  return {};
}
void read_body(Reader& r, ChecksumRequest& m) {
  m.offset = r.u64();
  m.length = r.u32();
  m.algorithm = static_cast<DigestAlgorithm>(r.u8());
  r.reserved(3);
}

Tail write_body(Writer& w, const ChecksumReply& m) {
  w.u64(m.offset);
  w.u32(m.length);
  w.u8(static_cast<std::uint8_t>(m.algorithm));
  w.reserved(3);
  w.i32(m.status);
  w.reserved(4);
  w.bytes(m.digest);
  return {};
}
void read_body(Reader& r, ChecksumReply& m) {
  m.offset = r.u64();
  m.length = r.u32();
  m.algorithm = static_cast<DigestAlgorithm>(r.u8());
  r.reserved(3);
  m.status = r.i32();
  r.reserved(4);
  m.digest = r.bytes<32>();
}

Tail write_body(Writer& w, const VerifyDone& m) {
  w.u64(m.bytes_checked);
  w.u64(m.bytes_out_of_sync);
  w.i32(m.status);
  w.reserved(4);
  return {};
}
void read_body(Reader& r, VerifyDone& m) {
  m.bytes_checked = r.u64();
  m.bytes_out_of_sync = r.u64();
  m.status = r.i32();
  r.reserved(4);
}

Tail write_body(Writer&, const Ignored&) { return {}; }

template <typename M>
Result<Message> read_message(std::span<const std::uint8_t> payload) {
  Reader r(payload);
  M m;
  read_body(r, m);
  if (auto e = r.finish(); e != ProtocolError::None) return {e, {}};
  return {ProtocolError::None, Message(std::move(m))};
}

// The payload of a known type, read but not yet validated.
Result<Message> read_payload(MessageType type, std::span<const std::uint8_t> payload) {
  switch (type) {
    case MessageType::Hello: return read_message<Hello>(payload);
    case MessageType::AuthHello: return read_message<AuthHello>(payload);
    case MessageType::AuthProof: return read_message<AuthProof>(payload);
    case MessageType::SharedSettings: return read_message<SharedSettings>(payload);
    case MessageType::Write: return read_message<Write>(payload);
    case MessageType::WriteAck: return read_message<WriteAck>(payload);
    case MessageType::Discard: return read_message<Discard>(payload);
    case MessageType::Flush: return read_message<Flush>(payload);
    case MessageType::FlushAck: return read_message<FlushAck>(payload);
    case MessageType::Barrier: return read_message<Barrier>(payload);
    case MessageType::BarrierAck: return read_message<BarrierAck>(payload);
    case MessageType::Read: return read_message<Read>(payload);
    case MessageType::ReadData: return read_message<ReadData>(payload);
    case MessageType::Ping: return read_message<Ping>(payload);
    case MessageType::PingAck: return read_message<PingAck>(payload);
    case MessageType::StateChange: return read_message<StateChange>(payload);
    case MessageType::Disconnect: return read_message<Disconnect>(payload);
    case MessageType::BitmapChunk: return read_message<BitmapChunk>(payload);
    case MessageType::ResyncRequest: return read_message<ResyncRequest>(payload);
    case MessageType::ResyncData: return read_message<ResyncData>(payload);
    case MessageType::ChecksumRequest: return read_message<ChecksumRequest>(payload);
    case MessageType::ChecksumReply: return read_message<ChecksumReply>(payload);
    case MessageType::VerifyDone: return read_message<VerifyDone>(payload);
    case MessageType::Reservations: return read_message<Reservations>(payload);
    case MessageType::ReservationsAck: return read_message<ReservationsAck>(payload);
    case MessageType::ReservationCommand: return read_message<ReservationCommand>(payload);
    case MessageType::ReservationAnswer: return read_message<ReservationAnswer>(payload);
  }
  return {ProtocolError::UnknownType, {}};
}

}  // namespace

Tail write_message(Writer& w, const Message& message) {
  return std::visit([&w](const auto& m) { return write_body(w, m); }, message);
}

}  // namespace codec

Result<Message> decode_message(const FrameHeader& header, std::span<const std::uint8_t> payload) {
  if (payload.size() != header.payload_length) return {ProtocolError::BadPayloadLength, {}};
  const auto* info = codec::find_type(header.type);
  if (info == nullptr) {
    if (!header.ignorable()) return {ProtocolError::UnknownType, {}};
    return {ProtocolError::None, Ignored{header.type}};
  }
  // decode_header() checked this already, but the caller may have built the header itself.
  if (!info->fits(payload.size())) return {ProtocolError::BadPayloadLength, {}};
  Result<Message> decoded = codec::read_payload(info->type, payload);
  if (!decoded.ok()) return decoded;
  if (auto e = codec::validate_message(decoded.value); e != ProtocolError::None) return {e, {}};
  return decoded;
}

}  // namespace freevsa::replication::peer
