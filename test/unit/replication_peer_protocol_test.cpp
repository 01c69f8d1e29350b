// The peer link's wire format: framing, every message, and what malformed input decodes to.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "replication/peer_protocol.h"
#include "util/crc32c.h"
#include "util/endian.h"

namespace freevsa::replication::peer {
namespace {

using Bytes = std::vector<std::uint8_t>;

Bytes encode_bytes(const Message& m, std::uint64_t request_id = 42, EncodeOptions options = {}) {
  auto frame = encode(m, request_id, options);
  EXPECT_TRUE(frame.ok()) << to_string(frame.error);
  Bytes out(frame.value.head().begin(), frame.value.head().end());
  out.insert(out.end(), frame.value.tail.begin(), frame.value.tail.end());
  return out;
}

// Decodes one whole frame the way a receiver does.
Result<Message> decode_bytes(const Bytes& bytes, DecodeOptions options = {}) {
  const ScanResult scan = scan_frame(bytes, options);
  if (scan.status == ScanResult::Status::Bad) return {scan.error, {}};
  EXPECT_EQ(scan.status, ScanResult::Status::Complete);
  EXPECT_EQ(scan.bytes, bytes.size());
  auto header = decode_header(bytes, options);
  EXPECT_TRUE(header.ok());
  return decode_message(header.value, std::span(bytes).subspan(kFrameHeaderSize));
}

void expect_round_trip(const Message& m) {
  const Bytes bytes = encode_bytes(m, 0x0123456789abcdefull);
  const auto header = decode_header(bytes);
  ASSERT_TRUE(header.ok()) << to_string(header.error);
  EXPECT_EQ(header.value.type, static_cast<std::uint8_t>(type_of(m)));
  EXPECT_EQ(header.value.request_id, 0x0123456789abcdefull);
  const auto decoded = decode_bytes(bytes);
  ASSERT_TRUE(decoded.ok()) << to_string(decoded.error);
  EXPECT_EQ(decoded.value, m) << to_string(type_of(m));
  EXPECT_EQ(encode_bytes(decoded.value, 0x0123456789abcdefull), bytes);  // canonical
}

// A frame for `type` around a hand-made payload, with a correct header and payload CRC.
Bytes raw_frame(std::uint8_t type, const Bytes& payload, std::uint16_t flags = kFlagPayloadCrc) {
  Bytes out(kFrameHeaderSize);
  util::put_be32(&out[0], kFrameMagic);
  out[4] = kFrameVersion;
  out[5] = type;
  util::put_be16(&out[6], flags);
  util::put_be64(&out[8], 7);
  util::put_be32(&out[16], static_cast<std::uint32_t>(payload.size()));
  util::put_be32(&out[20], (flags & kFlagPayloadCrc) != 0 ? util::crc32c(payload) : 0);
  util::put_be32(&out[28], util::crc32c_extend(0, out.data(), 28));
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}
// Recomputes both CRCs after a test changed header fields or payload bytes on purpose.
void reseal(Bytes& frame) {
  if ((util::get_be16(&frame[6]) & kFlagPayloadCrc) != 0) {
    util::put_be32(&frame[20], util::crc32c(std::span(frame).subspan(kFrameHeaderSize)));
  }
  util::put_be32(&frame[28], util::crc32c_extend(0, frame.data(), 28));
}
Bytes payload_of(const Message& m) {
  const Bytes frame = encode_bytes(m);
  return Bytes(frame.begin() + kFrameHeaderSize, frame.end());
}
ProtocolError decode_error(const Bytes& frame) { return decode_bytes(frame).error; }

Bytes pattern(std::size_t size) {
  Bytes b(size);
  for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return b;
}

Hello sample_hello() {
  Hello h;
  h.protocol_min = 1;
  h.protocol_max = 3;
  h.node_id = 2;
  h.node_name = "node-b";
  h.cluster_name = "lab";
  h.volume_name = "vol0";
  for (std::size_t i = 0; i < 16; ++i) h.volume_uuid[i] = static_cast<std::uint8_t>(0xa0 + i);
  h.size_bytes = 10ull << 30;
  h.block_size = 4096;
  h.disk_state = DiskState::UpToDate;
  h.role = Role::Primary;
  h.generations = Generations{0x1111, 0x2222, {0x3333, 0x4444}};
  for (std::size_t i = 0; i < 32; ++i) h.config_hash[i] = static_cast<std::uint8_t>(i);
  h.feature_flags = kFeaturePayloadCrc | kFeatureChecksumResync | (1ull << 63);
  return h;
}

const Bytes kData = pattern(8192);

// ---- round trips, one per message

TEST(PeerProtocol, HelloRoundTrips) { expect_round_trip(sample_hello()); }
TEST(PeerProtocol, HelloWithNamesOfFullLengthRoundTrips) {
  Hello h = sample_hello();
  h.node_name = std::string(kNameLength, 'n');
  h.volume_name = std::string(kNameLength, 'v');
  expect_round_trip(h);
}
AuthHello sample_auth_hello() {
  AuthHello m;
  m.node_id = 2;
  m.node_name = "b";
  m.cluster_name = "lab";
  m.nonce[0] = 1;
  m.nonce[31] = 0xff;
  m.side = LinkSide::Acceptor;
  return m;
}
TEST(PeerProtocol, AuthHelloRoundTrips) { expect_round_trip(sample_auth_hello()); }
TEST(PeerProtocol, AuthProofRoundTrips) {
  AuthProof m;
  m.mac.fill(0x5a);
  expect_round_trip(m);
}
TEST(PeerProtocol, AFrameWithAMacCarriesItsTrailerAfterThePayload) {
  EncodeOptions options;
  options.mac = true;
  Result<OutgoingFrame> frame = encode(Ping{77}, 3, options);
  ASSERT_TRUE(frame.ok());
  frame.value.mac.fill(0xab);
  EXPECT_EQ(frame.value.size(), kFrameHeaderSize + 8 + kFrameMacSize);
  Bytes bytes(frame.value.size());
  ASSERT_TRUE(encode_into(Ping{77}, 3, bytes, options).ok());
  std::copy(frame.value.mac.begin(), frame.value.mac.end(), bytes.end() - kFrameMacSize);
  FrameReader reader;
  reader.append(bytes);
  const FrameReader::Frame got = reader.next();
  ASSERT_EQ(got.status, ScanResult::Status::Complete);
  EXPECT_TRUE(got.header.has_mac());
  EXPECT_EQ(got.payload.size(), 8u);
  ASSERT_EQ(got.mac.size(), kFrameMacSize);
  EXPECT_EQ(got.mac[0], 0xab);
  EXPECT_EQ(got.raw_header.size(), kFrameHeaderSize);
  EXPECT_EQ(reader.buffered(), 0u);
}
TEST(PeerProtocol, AFrameWithAMacIsIncompleteWithoutTheTrailer) {
  EncodeOptions options;
  options.mac = true;
  Bytes bytes(kFrameHeaderSize + 8 + kFrameMacSize);
  ASSERT_TRUE(encode_into(Ping{77}, 3, bytes, options).ok());
  bytes.resize(bytes.size() - 1);
  EXPECT_EQ(scan_frame(bytes).status, ScanResult::Status::NeedMore);
}
TEST(PeerProtocol, WriteRoundTrips) {
  expect_round_trip(Write{1ull << 40, kWriteFua | kWriteResync, 99, kData});
}
TEST(PeerProtocol, WriteOfTheMaximumSizeRoundTrips) {
  const Bytes big = pattern(kMaxDataLength);
  expect_round_trip(Write{0, 0, 1, big});
}
TEST(PeerProtocol, WriteAckRoundTrips) { expect_round_trip(WriteAck{5, kAckDurable}); }
TEST(PeerProtocol, DiscardRoundTrips) { expect_round_trip(Discard{4096, 1ull << 35, 12}); }
TEST(PeerProtocol, FlushRoundTrips) { expect_round_trip(Flush{}); }
TEST(PeerProtocol, FlushAckRoundTrips) { expect_round_trip(FlushAck{28}); }
TEST(PeerProtocol, BarrierRoundTrips) { expect_round_trip(Barrier{77, 3}); }
TEST(PeerProtocol, BarrierAckRoundTrips) { expect_round_trip(BarrierAck{77, 3}); }
TEST(PeerProtocol, ReadRoundTrips) { expect_round_trip(Read{1ull << 33, 65536}); }
TEST(PeerProtocol, ReadDataRoundTrips) {
  const Bytes data(4096, 0xab);
  expect_round_trip(ReadData{8192, 4096, 0, data});
  expect_round_trip(ReadData{8192, 4096, 5, {}});
}
TEST(PeerProtocol, ReadDataCarriesDataExactlyWhenItSucceeded) {
  const Bytes data(4096, 0xab);
  EXPECT_EQ(encode(ReadData{0, 4096, 5, data}, 1).error, ProtocolError::BadLength);
  EXPECT_EQ(encode(ReadData{0, 4096, 0, {}}, 1).error, ProtocolError::BadLength);
  EXPECT_EQ(encode(Read{0, 0}, 1).error, ProtocolError::BadLength);
  EXPECT_EQ(encode(Read{0, 100}, 1).error, ProtocolError::Misaligned);
  EXPECT_EQ(encode(Read{0, kMaxDataLength + 512}, 1).error, ProtocolError::BadLength);
}
TEST(PeerProtocol, ReservationsRoundTrip) {
  const Bytes record(300, 0x5c);
  expect_round_trip(Reservations{record});
  expect_round_trip(Reservations{});
  expect_round_trip(ReservationsAck{5});
  const Bytes too_long(kMaxReservationsLength + 1, 0);
  EXPECT_NE(encode(Reservations{too_long}, 1).error, ProtocolError::None);
}
TEST(PeerProtocol, PingRoundTrips) { expect_round_trip(Ping{0xfedcba9876543210ull}); }
TEST(PeerProtocol, PingAckRoundTrips) { expect_round_trip(PingAck{123456789}); }
TEST(PeerProtocol, StateChangeRoundTrips) {
  expect_round_trip(StateChange{Role::Secondary, DiskState::Outdated, Generations{9, 8, {7, 6}},
                                "peer lost, outdating"});
}
TEST(PeerProtocol, DisconnectRoundTrips) {
  expect_round_trip(Disconnect{DisconnectCode::ConfigMismatch, "config hash differs"});
  expect_round_trip(Disconnect{static_cast<DisconnectCode>(4711), ""});  // unknown codes pass
}
TEST(PeerProtocol, SharedSettingsRoundTrips) {
  const std::string text = "cluster name=demo\nvolume name=vol0 protocol=C\n";
  expect_round_trip(SharedSettings{{reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}});
}
TEST(PeerProtocol, SharedSettingsMustBeNonEmptyPrintableTextOfBoundedLength) {
  const auto settings = [](const std::string& text) {
    return SharedSettings{{reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}};
  };
  EXPECT_EQ(encode(settings(""), 0).error, ProtocolError::BadText);
  EXPECT_EQ(encode(settings(std::string("a\0b", 3)), 0).error, ProtocolError::BadText);
  EXPECT_EQ(encode(settings("tab\there"), 0).error, ProtocolError::BadText);
  const std::string longest(kMaxSharedSettingsLength, 'x');
  EXPECT_TRUE(encode(settings(longest), 0).ok());
  EXPECT_FALSE(encode(settings(longest + "x"), 0).ok());
}
TEST(PeerProtocol, RawBitmapChunkRoundTrips) {
  const Bytes body = {0xff, 0x00, 0x81, 0x05};  // 27 bits: the last byte uses 3
  expect_round_trip(BitmapChunk{1024, 27, BitmapEncoding::Raw, 0, body});
}
TEST(PeerProtocol, RunLengthBitmapChunkRoundTrips) {
  Bytes body(12);
  util::put_be32(&body[0], 0);    // starts with set bits
  util::put_be32(&body[4], 100);  // set
  util::put_be32(&body[8], 900);  // clear
  expect_round_trip(BitmapChunk{0, 1000, BitmapEncoding::Runs, kBitmapLast, body});
}
TEST(PeerProtocol, ResyncRequestRoundTrips) {
  ResyncRequest m{8192, 65536, DigestAlgorithm::Sha256, {}};
  m.digest.fill(0x3c);
  expect_round_trip(m);
  expect_round_trip(ResyncRequest{0, 4096, DigestAlgorithm::None, {}});
}
TEST(PeerProtocol, ResyncDataRoundTrips) {
  expect_round_trip(ResyncData{4096, 8192, 0, 0, kData});
  expect_round_trip(ResyncData{4096, 8192, kResyncIdentical, 0, {}});
  expect_round_trip(ResyncData{4096, 8192, 0, 5, {}});
}
TEST(PeerProtocol, ChecksumRequestRoundTrips) { expect_round_trip(ChecksumRequest{512, 1024, DigestAlgorithm::Crc32c}); }
TEST(PeerProtocol, ChecksumReplyRoundTrips) {
  ChecksumReply m{512, 1024, DigestAlgorithm::Crc32c, 0, {}};
  util::put_be32(m.digest.data(), 0xdeadbeef);
  expect_round_trip(m);
}
TEST(PeerProtocol, VerifyDoneRoundTrips) { expect_round_trip(VerifyDone{1ull << 40, 1ull << 20, 0}); }

// ---- framing

TEST(PeerProtocol, WriteDataIsSentFromTheCallersBufferWithoutCopy) {
  auto frame = encode(Write{0, 0, 1, kData}, 1);
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(frame.value.tail.data(), kData.data());
  EXPECT_EQ(frame.value.head_size, kFrameHeaderSize + 24);
  EXPECT_EQ(frame.value.size(), kFrameHeaderSize + 24 + kData.size());
}

TEST(PeerProtocol, EncodeIntoCopiesTheWholeFrame) {
  const Message m = Write{512, kWriteFua, 3, kData};
  Bytes out(kFrameHeaderSize + 24 + kData.size());
  const auto written = encode_into(m, 42, out);
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(written.value, out.size());
  EXPECT_EQ(out, encode_bytes(m));
}

TEST(PeerProtocol, EncodeIntoATooSmallBufferFails) {
  Bytes out(kFrameHeaderSize + 24 + kData.size() - 1);
  EXPECT_EQ(encode_into(Write{512, 0, 3, kData}, 42, out).error, ProtocolError::BufferTooSmall);
}

TEST(PeerProtocol, HeaderCrcDamageIsDetected) {
  for (std::size_t byte : {6u, 8u, 15u, 19u, 29u}) {
    Bytes frame = encode_bytes(Ping{1});
    frame[byte] ^= 0x10;
    EXPECT_EQ(decode_error(frame), ProtocolError::HeaderCrcMismatch) << "byte " << byte;
  }
}

TEST(PeerProtocol, PayloadCrcDamageIsDetected) {
  Bytes frame = encode_bytes(Write{0, 0, 1, kData});
  frame[kFrameHeaderSize + 24 + 100] ^= 0x01;
  EXPECT_EQ(decode_error(frame), ProtocolError::PayloadCrcMismatch);
  Bytes header_part = encode_bytes(Write{0, 0, 1, kData});
  header_part[kFrameHeaderSize + 3] ^= 0x02;  // the offset field is covered as well
  EXPECT_EQ(decode_error(header_part), ProtocolError::PayloadCrcMismatch);
}

TEST(PeerProtocol, PayloadWithoutCrcIsAcceptedWhenTheLinkDoesNotRequireOne) {
  Bytes frame = encode_bytes(Write{0, 0, 1, kData}, 1, EncodeOptions{.payload_crc = false});
  EXPECT_EQ(util::get_be32(&frame[20]), 0u);
  EXPECT_TRUE(decode_bytes(frame).ok());
}

TEST(PeerProtocol, PayloadWithoutCrcIsBadWhenTheLinkRequiresOne) {
  const Bytes frame = encode_bytes(Write{0, 0, 1, kData}, 1, EncodeOptions{.payload_crc = false});
  EXPECT_EQ(decode_bytes(frame, DecodeOptions{.require_payload_crc = true}).error,
            ProtocolError::PayloadCrcMissing);
}

TEST(PeerProtocol, PayloadCrcFieldWithoutItsFlagIsBad) {
  Bytes frame = encode_bytes(Ping{1}, 1, EncodeOptions{.payload_crc = false});
  util::put_be32(&frame[20], 0x1234);
  reseal(frame);
  EXPECT_EQ(decode_error(frame), ProtocolError::ReservedNotZero);
}

TEST(PeerProtocol, TruncatedFrameNeedsMoreBytes) {
  const Bytes frame = encode_bytes(Write{0, 0, 1, kData});
  for (std::size_t n = 0; n < frame.size(); n += (n < 64 ? 1 : 997)) {
    const ScanResult s = scan_frame(std::span(frame).first(n));
    ASSERT_EQ(s.status, ScanResult::Status::NeedMore) << n;
    EXPECT_EQ(s.bytes, n < kFrameHeaderSize ? kFrameHeaderSize - n : frame.size() - n) << n;
  }
}

TEST(PeerProtocol, CompleteFrameFollowedByMoreBytesReportsItsOwnSize) {
  Bytes two = encode_bytes(Ping{1});
  const std::size_t first = two.size();
  const Bytes second = encode_bytes(Write{0, 0, 1, kData});
  two.insert(two.end(), second.begin(), second.end());
  const ScanResult s = scan_frame(two);
  EXPECT_EQ(s.status, ScanResult::Status::Complete);
  EXPECT_EQ(s.bytes, first);
}

TEST(PeerProtocol, OversizedPayloadLengthIsBad) {
  Bytes frame = encode_bytes(Write{0, 0, 1, kData});
  frame.resize(kFrameHeaderSize);
  util::put_be32(&frame[16], kMaxPayloadLength + 1);
  util::put_be32(&frame[28], util::crc32c_extend(0, frame.data(), 28));
  const ScanResult s = scan_frame(frame);  // bad from the header alone
  EXPECT_EQ(s.status, ScanResult::Status::Bad);
  EXPECT_EQ(s.error, ProtocolError::PayloadTooLarge);
}

TEST(PeerProtocol, PayloadLengthAboveALinkLimitIsBad) {
  const Bytes frame = encode_bytes(Write{0, 0, 1, kData});
  EXPECT_EQ(decode_bytes(frame, DecodeOptions{.max_payload_length = 4096}).error, ProtocolError::PayloadTooLarge);
}

TEST(PeerProtocol, PayloadLengthThatDoesNotFitTheTypeIsBad) {
  EXPECT_EQ(decode_error(raw_frame(static_cast<std::uint8_t>(MessageType::Ping), Bytes(9))),
            ProtocolError::BadPayloadLength);
  EXPECT_EQ(decode_error(raw_frame(static_cast<std::uint8_t>(MessageType::Write), Bytes(20))),
            ProtocolError::BadPayloadLength);
}

TEST(PeerProtocol, UnknownTypeIsBad) {
  EXPECT_EQ(decode_error(raw_frame(0x7e, Bytes(8))), ProtocolError::UnknownType);
}

TEST(PeerProtocol, UnknownTypeMarkedIgnorableIsSkipped) {
  const auto decoded = decode_bytes(raw_frame(0x7e, Bytes(8, 1), kFlagPayloadCrc | kFlagIgnorable));
  ASSERT_TRUE(decoded.ok());
  ASSERT_TRUE(std::holds_alternative<Ignored>(decoded.value));
  EXPECT_EQ(std::get<Ignored>(decoded.value).type, 0x7e);
}

TEST(PeerProtocol, IgnorableFlagOnAKnownTypeDecodesNormally) {
  const Bytes frame = encode_bytes(Ping{5}, 1, EncodeOptions{.ignorable = true});
  const auto decoded = decode_bytes(frame);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded.value, Message(Ping{5}));
}

TEST(PeerProtocol, ReservedHeaderFieldNotZeroIsBad) {
  Bytes frame = encode_bytes(Ping{1});
  frame[25] = 1;
  reseal(frame);
  EXPECT_EQ(decode_error(frame), ProtocolError::ReservedNotZero);
}

TEST(PeerProtocol, UnknownHeaderFlagIsBad) {
  Bytes frame = encode_bytes(Ping{1});
  frame[6] = 0x80;
  reseal(frame);
  EXPECT_EQ(decode_error(frame), ProtocolError::UnknownFrameFlags);
}

TEST(PeerProtocol, ReservedPayloadBytesNotZeroAreBad) {
  struct Case {
    Message message;
    std::size_t reserved_offset;
  };
  const Case cases[] = {
      {sample_hello(), 230},
      {sample_auth_hello(), 169},
      {FlushAck{0}, 4},
      {Barrier{1, 1}, 12},
      {StateChange{Role::Primary, DiskState::UpToDate, {}, ""}, 2},
      {Disconnect{DisconnectCode::Shutdown, ""}, 4},
      {ResyncRequest{0, 512, DigestAlgorithm::None, {}}, 13},
      {ResyncRequest{0, 512, DigestAlgorithm::None, {}}, 40},  // digest with no algorithm
      {ResyncData{0, 512, kResyncIdentical, 0, {}}, 20},
      {ChecksumRequest{0, 512, DigestAlgorithm::Crc32c}, 15},
      {ChecksumReply{0, 512, DigestAlgorithm::Crc32c, 0, {}}, 24 + 4},  // beyond the CRC's 4 bytes
      {VerifyDone{1, 0, 0}, 20},
  };
  for (const auto& c : cases) {
    Bytes payload = payload_of(c.message);
    payload[c.reserved_offset] = 0x40;
    EXPECT_EQ(decode_error(raw_frame(static_cast<std::uint8_t>(type_of(c.message)), payload)),
              ProtocolError::ReservedNotZero)
        << to_string(type_of(c.message)) << " at " << c.reserved_offset;
  }
}

TEST(PeerProtocol, UnknownWriteFlagIsBad) {
  Bytes payload = payload_of(Write{0, 0, 1, kData});
  payload[12] = 0x80;
  EXPECT_EQ(decode_error(raw_frame(static_cast<std::uint8_t>(MessageType::Write), payload)),
            ProtocolError::ReservedNotZero);
}

TEST(PeerProtocol, BadMagicIsReportedBeforeTheHeaderIsComplete) {
  const Bytes http = {'G', 'E', 'T'};
  const ScanResult s = scan_frame(http);
  EXPECT_EQ(s.status, ScanResult::Status::Bad);
  EXPECT_EQ(s.error, ProtocolError::BadMagic);
}

TEST(PeerProtocol, UnsupportedFrameVersionIsBad) {
  Bytes frame = encode_bytes(Ping{1});
  frame[4] = 2;
  reseal(frame);
  EXPECT_EQ(decode_error(frame), ProtocolError::UnsupportedFrameVersion);
}

TEST(PeerProtocol, IncrementalDecodingOneByteAtATime) {
  const Message messages[] = {sample_hello(), Write{4096, kWriteFua, 2, kData}, Flush{}, Barrier{2, 1},
                              Disconnect{DisconnectCode::Shutdown, "bye"}};
  Bytes stream;
  for (std::size_t i = 0; i < std::size(messages); ++i) {
    const Bytes f = encode_bytes(messages[i], i);
    stream.insert(stream.end(), f.begin(), f.end());
  }
  FrameReader reader;
  std::vector<Message> decoded;
  for (std::uint8_t byte : stream) {
    reader.append(std::span(&byte, 1));
    for (;;) {
      const auto frame = reader.next();
      ASSERT_NE(frame.status, ScanResult::Status::Bad) << to_string(frame.error);
      if (frame.status == ScanResult::Status::NeedMore) {
        EXPECT_GT(frame.need, 0u);
        break;
      }
      EXPECT_EQ(frame.header.request_id, decoded.size());
      auto m = decode_message(frame.header, frame.payload);
      ASSERT_TRUE(m.ok()) << to_string(m.error);
      if (auto* w = std::get_if<Write>(&m.value)) {
        // The payload span dies with the next append: compare now.
        EXPECT_EQ(*w, std::get<Write>(messages[1]));
        m.value = Flush{};  // placeholder so that the vector holds no dangling span
      }
      decoded.push_back(m.value);
    }
  }
  ASSERT_EQ(decoded.size(), std::size(messages));
  EXPECT_EQ(decoded[0], messages[0]);
  EXPECT_EQ(decoded[2], messages[2]);
  EXPECT_EQ(decoded[3], messages[3]);
  EXPECT_EQ(decoded[4], messages[4]);
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(PeerProtocol, FrameReaderStaysBadAfterABadFrame) {
  FrameReader reader;
  Bytes frame = encode_bytes(Ping{1});
  frame[10] ^= 1;
  reader.append(frame);
  EXPECT_EQ(reader.next().error, ProtocolError::HeaderCrcMismatch);
  reader.append(encode_bytes(Ping{2}));
  EXPECT_EQ(reader.next().status, ScanResult::Status::Bad);
}

// ---- message rules

TEST(PeerProtocol, WriteLengthFieldMustMatchTheData) {
  Bytes payload = payload_of(Write{0, 0, 1, kData});
  util::put_be32(&payload[8], 4096);
  EXPECT_EQ(decode_error(raw_frame(static_cast<std::uint8_t>(MessageType::Write), payload)),
            ProtocolError::BadLength);
}

TEST(PeerProtocol, UnalignedWriteIsRefused) {
  EXPECT_EQ(encode(Write{100, 0, 1, kData}, 1).error, ProtocolError::Misaligned);
  const Bytes odd = pattern(1000);
  EXPECT_EQ(encode(Write{0, 0, 1, odd}, 1).error, ProtocolError::Misaligned);
}

TEST(PeerProtocol, EmptyOrTooLargeWriteIsRefused) {
  EXPECT_EQ(encode(Write{0, 0, 1, {}}, 1).error, ProtocolError::BadLength);
  const Bytes big = pattern(kMaxDataLength + kSectorSize);
  EXPECT_EQ(encode(Write{0, 0, 1, big}, 1).error, ProtocolError::BadLength);
}

TEST(PeerProtocol, RangeThatWrapsAroundIsRefused) {
  EXPECT_EQ(encode(Discard{~std::uint64_t{0} - 511, 1024, 1}, 1).error, ProtocolError::OutOfRange);
}

TEST(PeerProtocol, HelloWithBadNamesIsRefused) {
  Hello h = sample_hello();
  h.node_name = "";
  EXPECT_EQ(encode(h, 1).error, ProtocolError::BadText);
  h.node_name = std::string(kNameLength + 1, 'x');
  EXPECT_EQ(encode(h, 1).error, ProtocolError::BadText);
  h.node_name = "tab\there";
  EXPECT_EQ(encode(h, 1).error, ProtocolError::BadText);
}

TEST(PeerProtocol, HelloNameWithBytesAfterItsPaddingStartsIsBad) {
  Bytes payload = payload_of(sample_hello());
  payload[8 + 40] = 'x';  // node_name is "node-b" then NULs
  EXPECT_EQ(decode_error(raw_frame(static_cast<std::uint8_t>(MessageType::Hello), payload)),
            ProtocolError::BadText);
}

TEST(PeerProtocol, HelloWithUndefinedRoleIsBad) {
  Bytes payload = payload_of(sample_hello());
  payload[229] = 9;
  EXPECT_EQ(decode_error(raw_frame(static_cast<std::uint8_t>(MessageType::Hello), payload)),
            ProtocolError::BadEnum);
}

TEST(PeerProtocol, HelloWithInvertedVersionRangeIsRefused) {
  Hello h = sample_hello();
  h.protocol_min = 3;
  h.protocol_max = 2;
  EXPECT_EQ(encode(h, 1).error, ProtocolError::OutOfRange);
}

TEST(PeerProtocol, HelloWithABlockSizeThatIsNoPowerOfTwoIsRefused) {
  Hello h = sample_hello();
  h.block_size = 3000;
  EXPECT_EQ(encode(h, 1).error, ProtocolError::OutOfRange);
}

TEST(PeerProtocol, AuthHelloOfNeitherSideIsBad) {
  Bytes payload = payload_of(sample_auth_hello());
  payload[168] = 3;
  EXPECT_EQ(decode_error(raw_frame(static_cast<std::uint8_t>(MessageType::AuthHello), payload)), ProtocolError::BadEnum);
}

TEST(PeerProtocol, TheFirstProtocolsChallengeIsAnUnknownType) {
  EXPECT_EQ(decode_error(raw_frame(0x02, Bytes(32))), ProtocolError::UnknownType);
}

TEST(PeerProtocol, ReasonTextMustBePrintable) {
  EXPECT_EQ(encode(Disconnect{DisconnectCode::Shutdown, std::string("a\0b", 3)}, 1).error, ProtocolError::BadText);
  EXPECT_EQ(encode(Disconnect{DisconnectCode::Shutdown, std::string(kMaxReasonLength + 1, 'r')}, 1).error,
            ProtocolError::BadText);
}

TEST(PeerProtocol, RawBitmapWithBitsBeyondItsCountIsBad) {
  const Bytes body = {0xff, 0x08};  // 11 bits, but bit 11 set
  EXPECT_EQ(encode(BitmapChunk{0, 11, BitmapEncoding::Raw, 0, body}, 1).error, ProtocolError::BadBitmap);
  EXPECT_EQ(encode(BitmapChunk{0, 17, BitmapEncoding::Raw, 0, body}, 1).error, ProtocolError::BadBitmap);
}

TEST(PeerProtocol, BitmapRunsMustSumToTheBitCount) {
  Bytes body(8);
  util::put_be32(&body[0], 10);
  util::put_be32(&body[4], 20);
  EXPECT_EQ(encode(BitmapChunk{0, 31, BitmapEncoding::Runs, 0, body}, 1).error, ProtocolError::BadBitmap);
  util::put_be32(&body[4], 0);  // only the first run may be empty
  EXPECT_EQ(encode(BitmapChunk{0, 10, BitmapEncoding::Runs, 0, body}, 1).error, ProtocolError::BadBitmap);
}

TEST(PeerProtocol, ResyncDataCarriesDataExactlyWhenNotIdenticalAndNotFailed) {
  EXPECT_EQ(encode(ResyncData{0, 8192, kResyncIdentical, 0, kData}, 1).error, ProtocolError::BadLength);
  EXPECT_EQ(encode(ResyncData{0, 8192, 0, 0, {}}, 1).error, ProtocolError::BadLength);
  EXPECT_EQ(encode(ResyncData{0, 8192, 0, 5, kData}, 1).error, ProtocolError::BadLength);
}

TEST(PeerProtocol, ChecksumRequestWithoutAnAlgorithmIsRefused) {
  EXPECT_EQ(encode(ChecksumRequest{0, 512, DigestAlgorithm::None}, 1).error, ProtocolError::BadEnum);
}

TEST(PeerProtocol, AckStatusMustBeAnErrno) {
  EXPECT_EQ(encode(WriteAck{-1, 0}, 1).error, ProtocolError::OutOfRange);
  EXPECT_EQ(encode(WriteAck{4096, 0}, 1).error, ProtocolError::OutOfRange);
}

TEST(PeerProtocol, IgnoredIsNotEncodable) { EXPECT_EQ(encode(Ignored{0x7e}, 1).error, ProtocolError::UnknownType); }

TEST(PeerProtocol, EveryErrorHasItsOwnText) {
  std::vector<std::string_view> texts;
  for (int e = 0; e <= static_cast<int>(ProtocolError::BufferTooSmall); ++e) {
    texts.push_back(to_string(static_cast<ProtocolError>(e)));
  }
  std::sort(texts.begin(), texts.end());
  EXPECT_EQ(std::adjacent_find(texts.begin(), texts.end()), texts.end());
}

TEST(PeerProtocol, TypeNamesAreKnown) {
  EXPECT_EQ(to_string(MessageType::ResyncData), "ResyncData");
  EXPECT_EQ(to_string(static_cast<MessageType>(0x7e)), "Unknown");
  EXPECT_TRUE(is_known_type(0x01));
  EXPECT_FALSE(is_known_type(0x00));
}

}  // namespace
}  // namespace freevsa::replication::peer
