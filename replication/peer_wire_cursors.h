// Bounds-checked cursors over a peer frame's payload, internal to the peer codec (the public API
// is replication/peer_protocol.h). Reader takes a received payload apart field by field; Writer
// lays out the fixed part of an outgoing one. Neither reads nor writes outside its span, so the
// per-message layouts can be written as plain field lists without a length check per field.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "replication/peer_protocol.h"
#include "util/endian.h"

namespace freevsa::replication::peer::codec {

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

}  // namespace freevsa::replication::peer::codec
