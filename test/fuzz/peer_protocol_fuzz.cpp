// libFuzzer target for the peer link codec (replication/peer_protocol.h). Nothing may crash or
// leak, and three properties must hold for any input:
//  1. every message type's decoder accepts or rejects the bytes as a payload; what it accepts
//     re-encodes to exactly those bytes (decoding is strict, so the encoding is canonical);
//  2. a FrameReader fed the stream in arbitrary chunks yields the same frames and the same final
//     verdict as scan_frame() over the whole stream;
//  3. every complete frame that decodes re-encodes to exactly the frame's bytes.
//
// Input: mode(1) then the body. mode bit 0: the body is a list of frame specs
// [type(1) flags(1) length(2, big endian) payload(length)] that are sealed with valid CRCs (so
// the fuzzer reaches the message decoders through the framing), else the body is the raw stream.
// Bit 1: the link requires payload CRCs. Bit 2: a 4 KiB payload limit. Bits 3..7: chunking seed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "replication/peer_protocol.h"
#include "util/crc32c.h"
#include "util/endian.h"

using namespace freevsa::replication::peer;
using Bytes = std::vector<std::uint8_t>;

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

// The frame's header and payload re-encoded (a MAC trailer, which the link computes, is not).
Bytes encoded(const Message& m, const FrameHeader& h, bool* ok) {
  auto frame = encode(m, h.request_id, EncodeOptions{h.has_payload_crc(), h.ignorable(), h.has_mac()});
  *ok = frame.ok();
  if (!frame.ok()) return {};
  Bytes out(frame.value.head().begin(), frame.value.head().end());
  out.insert(out.end(), frame.value.tail.begin(), frame.value.tail.end());
  return out;
}

void decode_as_every_type(std::span<const std::uint8_t> payload) {
  for (int type = 0; type < 256; ++type) {
    FrameHeader h;
    h.type = static_cast<std::uint8_t>(type);
    h.flags = (type & 0x80) != 0 ? kFlagIgnorable : 0;
    h.payload_length = static_cast<std::uint32_t>(payload.size());
    auto decoded = decode_message(h, payload);
    if (!decoded.ok()) continue;
    require(!to_string(type_of(decoded.value)).empty());
    if (std::holds_alternative<Ignored>(decoded.value)) continue;
    bool ok = false;
    const Bytes again = encoded(decoded.value, h, &ok);
    require(ok);
    require(again.size() == kFrameHeaderSize + payload.size());
    require(std::equal(payload.begin(), payload.end(), again.begin() + kFrameHeaderSize));
  }
}

Bytes seal_frames(std::span<const std::uint8_t> specs) {
  Bytes stream;
  std::size_t pos = 0;
  while (pos + 4 <= specs.size()) {
    const std::uint8_t type = specs[pos];
    const std::uint16_t flags = specs[pos + 1];  // mostly the known two bits, sometimes not
    std::size_t length = freevsa::util::get_be16(&specs[pos + 2]);
    pos += 4;
    length = std::min(length, specs.size() - pos);
    const auto payload = specs.subspan(pos, length);
    pos += length;
    std::uint8_t header[kFrameHeaderSize] = {};
    freevsa::util::put_be32(header, kFrameMagic);
    header[4] = kFrameVersion;
    header[5] = type;
    freevsa::util::put_be16(header + 6, flags);
    freevsa::util::put_be64(header + 8, pos);
    freevsa::util::put_be32(header + 16, static_cast<std::uint32_t>(length));
    if ((flags & kFlagPayloadCrc) != 0) freevsa::util::put_be32(header + 20, freevsa::util::crc32c(payload));
    freevsa::util::put_be32(header + 28, freevsa::util::crc32c_extend(0, header, 28));
    stream.insert(stream.end(), header, header + kFrameHeaderSize);
    stream.insert(stream.end(), payload.begin(), payload.end());
  }
  return stream;
}

std::span<const std::uint8_t> payload_of(std::span<const std::uint8_t> frame) {
  return frame.subspan(kFrameHeaderSize, freevsa::util::get_be32(&frame[16]));
}

void check_frame(const FrameHeader& h, std::span<const std::uint8_t> frame) {
  auto decoded = decode_message(h, payload_of(frame));
  if (!decoded.ok() || std::holds_alternative<Ignored>(decoded.value)) return;
  bool ok = false;
  const Bytes again = encoded(decoded.value, h, &ok);
  require(ok);
  require(again.size() + (h.has_mac() ? kFrameMacSize : 0) == frame.size() &&
          std::equal(again.begin(), again.end(), frame.begin()));
}

void check_stream(const Bytes& stream, const DecodeOptions& options, std::uint32_t seed) {
  // The whole stream at once.
  std::vector<std::span<const std::uint8_t>> frames;
  ScanResult last;
  std::size_t pos = 0;
  for (;;) {
    last = scan_frame(std::span(stream).subspan(pos), options);
    if (last.status != ScanResult::Status::Complete) break;
    const auto frame = std::span(stream).subspan(pos, last.bytes);
    auto header = decode_header(frame, options);
    require(header.ok() && header.value.frame_size() == frame.size());
    check_frame(header.value, frame);
    frames.push_back(frame);
    pos += last.bytes;
  }

  // The same stream in chunks.
  FrameReader reader(options);
  std::size_t fed = 0, seen = 0;
  FrameReader::Frame frame;
  std::uint32_t state = seed * 2654435761u + 1;
  while (true) {
    frame = reader.next();
    if (frame.status == ScanResult::Status::Complete) {
      require(seen < frames.size());
      const auto expected = payload_of(frames[seen++]);
      require(frame.payload.size() == expected.size() &&
              std::equal(expected.begin(), expected.end(), frame.payload.begin()));
      continue;
    }
    if (frame.status == ScanResult::Status::Bad || fed == stream.size()) break;
    require(frame.need > 0);
    state = state * 1103515245u + 12345u;
    const std::size_t chunk = std::min<std::size_t>(1 + (state >> 16) % ((seed & 7) == 0 ? 3 : 700), stream.size() - fed);
    reader.append(std::span(stream).subspan(fed, chunk));
    fed += chunk;
  }
  require(seen == frames.size());
  require(frame.status == last.status);
  if (last.status == ScanResult::Status::Bad) require(frame.error == last.error);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::span<const std::uint8_t> body(data + 1, size - 1);

  decode_as_every_type(body);

  DecodeOptions options;
  options.require_payload_crc = (mode & 2) != 0;
  if ((mode & 4) != 0) options.max_payload_length = 4096;
  const Bytes stream = (mode & 1) != 0 ? seal_frames(body) : Bytes(body.begin(), body.end());
  check_stream(stream, options, mode >> 3);
  return 0;
}
