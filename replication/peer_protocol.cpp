#include "replication/peer_protocol.h"

#include <algorithm>
#include <cstring>

#include "util/crc32c.h"
#include "util/endian.h"

namespace freevsa::replication::peer {
namespace {

// ---- per-type sizes: the payload is a fixed part plus 0..max_tail bytes of data or text.
struct TypeInfo {
  MessageType type;
  std::string_view name;
  std::uint32_t fixed;
  std::uint32_t max_tail;
};

constexpr std::uint32_t kHelloSize = 304;
constexpr TypeInfo kTypes[] = {
    {MessageType::Hello, "Hello", kHelloSize, 0},
    {MessageType::AuthChallenge, "AuthChallenge", 32, 0},
    {MessageType::AuthResponse, "AuthResponse", 32, 0},
    {MessageType::AuthResult, "AuthResult", 4, 0},
    {MessageType::SharedSettings, "SharedSettings", 0, kMaxSharedSettingsLength},
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
};
static_assert(OutgoingFrame::kMaxHeadSize >= kFrameHeaderSize + kHelloSize);
static_assert(OutgoingFrame::kMaxHeadSize >= kFrameHeaderSize + 40 + kMaxReasonLength);

const TypeInfo* find_type(std::uint8_t type) {
  for (const auto& info : kTypes) {
    if (static_cast<std::uint8_t>(info.type) == type) return &info;
  }
  return nullptr;
}

// ---- bounds-checked cursors. The first problem sticks; reads past the end return zeros.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  std::uint8_t u8() { return take(1) ? bytes_[pos_ - 1] : 0; }
  std::uint16_t u16() { return take(2) ? util::get_be16(&bytes_[pos_ - 2]) : 0; }
  std::uint32_t u32() { return take(4) ? util::get_be32(&bytes_[pos_ - 4]) : 0; }
  std::uint64_t u64() { return take(8) ? util::get_be64(&bytes_[pos_ - 8]) : 0; }
  std::int32_t i32() { return static_cast<std::int32_t>(u32()); }
  template <std::size_t N>
  std::array<std::uint8_t, N> bytes() {
    std::array<std::uint8_t, N> out{};
    if (take(N)) std::memcpy(out.data(), &bytes_[pos_ - N], N);
    return out;
  }
  void reserved(std::size_t n) {
    if (!take(n)) return;
    for (std::size_t i = pos_ - n; i < pos_; ++i) {
      if (bytes_[i] != 0) fail(ProtocolError::ReservedNotZero);
    }
  }
  // A fixed-size field: text, then NUL padding to the end.
  std::string name() {
    if (!take(kNameLength)) return {};
    const auto* field = &bytes_[pos_ - kNameLength];
    std::size_t length = 0;
    while (length < kNameLength && field[length] != 0) ++length;
    for (std::size_t i = length; i < kNameLength; ++i) {
      if (field[i] != 0) fail(ProtocolError::BadText);
    }
    return std::string(reinterpret_cast<const char*>(field), length);
  }
  std::span<const std::uint8_t> rest() {
    auto out = bytes_.subspan(pos_);
    pos_ = bytes_.size();
    return out;
  }
  std::string rest_as_text() {
    auto r = rest();
    return std::string(reinterpret_cast<const char*>(r.data()), r.size());
  }
  void fail(ProtocolError error) {
    if (error_ == ProtocolError::None) error_ = error;
  }
  // The outcome once the fixed part was read: every byte consumed, nothing wrong.
  ProtocolError finish() const {
    if (error_ != ProtocolError::None) return error_;
    return pos_ == bytes_.size() ? ProtocolError::None : ProtocolError::BadPayloadLength;
  }

 private:
  bool take(std::size_t n) {
    if (bytes_.size() - pos_ < n) {
      fail(ProtocolError::BadPayloadLength);
      pos_ = bytes_.size();
      return false;
    }
    pos_ += n;
    return true;
  }

  std::span<const std::uint8_t> bytes_;
  std::size_t pos_ = 0;
  ProtocolError error_ = ProtocolError::None;
};

class Writer {
 public:
  explicit Writer(std::span<std::uint8_t> out) : out_(out) {}

  void u8(std::uint8_t v) {
    if (auto* p = take(1)) *p = v;
  }
  void u16(std::uint16_t v) {
    if (auto* p = take(2)) util::put_be16(p, v);
  }
  void u32(std::uint32_t v) {
    if (auto* p = take(4)) util::put_be32(p, v);
  }
  void u64(std::uint64_t v) {
    if (auto* p = take(8)) util::put_be64(p, v);
  }
  void i32(std::int32_t v) { u32(static_cast<std::uint32_t>(v)); }
  void bytes(std::span<const std::uint8_t> v) {
    if (auto* p = take(v.size()); p != nullptr && !v.empty()) std::memcpy(p, v.data(), v.size());
  }
  void reserved(std::size_t n) {
    if (auto* p = take(n)) std::memset(p, 0, n);
  }
  void name(const std::string& text) {  // validated: at most kNameLength
    if (auto* p = take(kNameLength)) {
      std::memset(p, 0, kNameLength);
      std::memcpy(p, text.data(), std::min(text.size(), kNameLength));
    }
  }
  void text(const std::string& text) {
    bytes({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  }
  std::size_t size() const { return pos_; }
  bool overflowed() const { return overflow_; }

 private:
  std::uint8_t* take(std::size_t n) {
    if (out_.size() - pos_ < n) {
      overflow_ = true;
      return nullptr;
    }
    pos_ += n;
    return &out_[pos_ - n];
  }

  std::span<std::uint8_t> out_;
  std::size_t pos_ = 0;
  bool overflow_ = false;
};

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
ProtocolError validate(const AuthChallenge&) { return ProtocolError::None; }
ProtocolError validate(const AuthResponse&) { return ProtocolError::None; }
ProtocolError validate(const AuthResult&) { return ProtocolError::None; }
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

Tail write_body(Writer& w, const AuthChallenge& m) {
  w.bytes(m.challenge);
  return {};
}
void read_body(Reader& r, AuthChallenge& m) { m.challenge = r.bytes<32>(); }
Tail write_body(Writer& w, const AuthResponse& m) {
  w.bytes(m.mac);
  return {};
}
void read_body(Reader& r, AuthResponse& m) { m.mac = r.bytes<32>(); }
Tail write_body(Writer& w, const AuthResult& m) {
  w.u8(m.accepted ? 1 : 0);
  w.reserved(3);
  return {};
}
void read_body(Reader& r, AuthResult& m) {
  const std::uint8_t v = r.u8();
  if (v > 1) r.fail(ProtocolError::BadEnum);
  m.accepted = v == 1;
  r.reserved(3);
}

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
  if (auto e = validate(m); e != ProtocolError::None) return {e, {}};
  return {ProtocolError::None, Message(std::move(m))};
}

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
bool operator==(const ReadData& a, const ReadData& b) {
  return a.offset == b.offset && a.length == b.length && a.status == b.status && std::ranges::equal(a.data, b.data);
}
bool operator==(const ResyncData& a, const ResyncData& b) {
  return a.offset == b.offset && a.length == b.length && a.flags == b.flags && a.status == b.status &&
         std::ranges::equal(a.data, b.data);
}

MessageType type_of(const Message& message) {
  constexpr MessageType kByIndex[] = {
      MessageType::Hello,         MessageType::AuthChallenge,   MessageType::AuthResponse,
      MessageType::AuthResult,    MessageType::SharedSettings,  MessageType::Write,           MessageType::WriteAck,
      MessageType::Discard,       MessageType::Flush,           MessageType::FlushAck,
      MessageType::Barrier,       MessageType::BarrierAck,      MessageType::Read,
      MessageType::ReadData,      MessageType::Ping,
      MessageType::PingAck,       MessageType::StateChange,     MessageType::Disconnect,
      MessageType::BitmapChunk,   MessageType::ResyncRequest,   MessageType::ResyncData,
      MessageType::ChecksumRequest, MessageType::ChecksumReply, MessageType::VerifyDone,
  };
  static_assert(std::size(kByIndex) + 1 == std::variant_size_v<Message>);
  if (const auto* ignored = std::get_if<Ignored>(&message)) return static_cast<MessageType>(ignored->type);
  return kByIndex[message.index()];
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
    if (h.payload_length < info->fixed || h.payload_length - info->fixed > info->max_tail) {
      return {ProtocolError::BadPayloadLength, {}};
    }
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

Result<Message> decode_message(const FrameHeader& header, std::span<const std::uint8_t> payload) {
  if (payload.size() != header.payload_length) return {ProtocolError::BadPayloadLength, {}};
  const auto* info = find_type(header.type);
  if (info == nullptr) {
    if (!header.ignorable()) return {ProtocolError::UnknownType, {}};
    return {ProtocolError::None, Ignored{header.type}};
  }
  if (payload.size() < info->fixed || payload.size() - info->fixed > info->max_tail) {
    return {ProtocolError::BadPayloadLength, {}};
  }
  switch (info->type) {
    case MessageType::Hello: return read_message<Hello>(payload);
    case MessageType::AuthChallenge: return read_message<AuthChallenge>(payload);
    case MessageType::AuthResponse: return read_message<AuthResponse>(payload);
    case MessageType::AuthResult: return read_message<AuthResult>(payload);
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
  }
  return {ProtocolError::UnknownType, {}};
}

Result<OutgoingFrame> encode(const Message& message, std::uint64_t request_id, const EncodeOptions& options) {
  Result<OutgoingFrame> out;
  out.error = std::visit([](const auto& m) { return validate(m); }, message);
  if (!out.ok()) return out;
  OutgoingFrame& frame = out.value;
  Writer w(std::span(frame.head_bytes).subspan(kFrameHeaderSize));
  frame.tail = std::visit([&w](const auto& m) { return write_body(w, m); }, message);
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
      frame.payload = view.subspan(kFrameHeaderSize, frame.header.payload_length);
      start_ += s.bytes;
      break;
  }
  return frame;
}

}  // namespace freevsa::replication::peer
