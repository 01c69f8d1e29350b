// The peer link's wire format (docs/peer-protocol.md): frames and every message two replicas
// exchange. Pure codec - no sockets, no state; the link (transport) is built on top of it.
//
// A frame is a 32-byte header (magic, version, type, flags, request id, payload length, payload
// CRC32C, header CRC32C) followed by the payload. All integers are big-endian. Decoding is strict:
// reserved bytes must be zero, lengths must match exactly, enums must be known, so that every
// accepted frame re-encodes to the same bytes. Nothing here throws or reads out of bounds;
// malformed input yields a ProtocolError.
//
// Receiving: scan_frame() says, for the bytes buffered so far, "need N more", "a frame of N bytes
// is complete" or "bad frame: why"; decode_message() turns a complete frame into a Message.
// A transport that reads the payload straight into its own (aligned) buffer uses decode_header()
// and check_payload() instead; FrameReader does the buffering for callers that want none of that.
//
// Sending: encode() returns the header plus the fixed part of the message as a small array, and
// the bulk data (write data, bitmap body) as a span borrowed from the message, for scatter/gather
// without copying; encode_into() copies both into one caller buffer.
//
// Threading: free functions are reentrant; a FrameReader belongs to one thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "replication/generation.h"

namespace freevsa::replication::peer {

constexpr std::uint16_t kDefaultPort = 7788;
constexpr std::uint32_t kFrameMagic = 0x46565052;  // "FVPR"
constexpr std::uint8_t kFrameVersion = 1;
constexpr std::size_t kFrameHeaderSize = 32;
// Message set versions this build speaks (AuthHello and Hello protocol_min/max). Version 2
// authenticates the link before anything about a volume is said (peer_auth.h), and a peer
// answers Barrier (below); version 1's Hello-first handshake is refused.
constexpr std::uint16_t kProtocolVersionMin = 2;
constexpr std::uint16_t kProtocolVersionMax = 2;

constexpr std::uint32_t kMaxDataLength = 1u << 20;                 // per Write / ResyncData
constexpr std::uint32_t kMaxPayloadLength = kMaxDataLength + 4096;  // any frame
constexpr std::uint32_t kSectorSize = 512;  // offsets and lengths on the wire are multiples of it
constexpr std::size_t kNameLength = 64;      // fixed-size, NUL-padded text fields
constexpr std::size_t kMaxReasonLength = 256;

// Frame header flags.
constexpr std::uint16_t kFlagPayloadCrc = 1u << 0;  // payload_crc holds CRC32C(payload)
constexpr std::uint16_t kFlagIgnorable = 1u << 1;   // a receiver that does not know the type skips the frame
// A kFrameMacSize-byte message authentication code follows the payload (peer_auth.h: every
// frame after the handshake on a link without TLS). payload_length does not count it.
constexpr std::uint16_t kFlagMac = 1u << 2;
constexpr std::uint16_t kKnownFrameFlags = kFlagPayloadCrc | kFlagIgnorable | kFlagMac;
constexpr std::size_t kFrameMacSize = 16;

enum class MessageType : std::uint8_t {
  // handshake
  Hello = 0x01,
  // 0x02..0x04: protocol 1's challenge, response and result; no longer accepted
  SharedSettings = 0x05,
  AuthHello = 0x06,
  AuthProof = 0x07,
  // replication of application I/O
  Write = 0x10,
  WriteAck = 0x11,
  Discard = 0x12,
  Flush = 0x13,
  FlushAck = 0x14,
  Barrier = 0x15,
  BarrierAck = 0x16,
  Read = 0x17,
  ReadData = 0x18,
  // connection management
  Ping = 0x20,
  PingAck = 0x21,
  StateChange = 0x22,
  Disconnect = 0x23,
  // SCSI state that follows the volume
  Reservations = 0x40,
  ReservationsAck = 0x41,
  ReservationCommand = 0x42,
  ReservationAnswer = 0x43,
  // resync and verify
  BitmapChunk = 0x30,
  ResyncRequest = 0x31,
  ResyncData = 0x32,
  ChecksumRequest = 0x33,
  ChecksumReply = 0x34,
  VerifyDone = 0x35,
};
bool is_known_type(std::uint8_t type);
std::string_view to_string(MessageType type);  // "Write"; "Unknown" for values not listed

enum class ProtocolError : std::uint8_t {
  None = 0,
  BadMagic,
  UnsupportedFrameVersion,
  HeaderCrcMismatch,
  UnknownFrameFlags,
  ReservedNotZero,
  PayloadTooLarge,
  PayloadCrcMissing,    // the link requires payload CRCs and the frame has none
  PayloadCrcMismatch,
  UnknownType,          // unknown type without kFlagIgnorable
  BadPayloadLength,     // payload length impossible for the type
  BadLength,            // a length field disagrees with the data that follows, or is zero/too big
  Misaligned,           // offset or length not a multiple of kSectorSize
  OutOfRange,           // offset + length overflows, value outside its domain
  BadEnum,              // role, disk state, digest algorithm... not defined
  BadText,              // text field not printable ASCII, or not NUL-padded
  BadBitmap,            // bitmap body inconsistent with bit_count
  BufferTooSmall,       // encode_into: the caller's buffer cannot hold the frame
};
std::string_view to_string(ProtocolError error);

// A value or the reason there is none. Nothing in the codec throws.
template <typename T>
struct Result {
  ProtocolError error = ProtocolError::None;
  T value{};
  bool ok() const { return error == ProtocolError::None; }
};

// ---- wire enums
enum class Role : std::uint8_t { Secondary = 1, Primary = 2 };
enum class DiskState : std::uint8_t { Diskless = 1, Inconsistent = 2, Outdated = 3, UpToDate = 4 };
enum class DigestAlgorithm : std::uint8_t { None = 0, Crc32c = 1, Sha256 = 2 };
enum class BitmapEncoding : std::uint8_t { Raw = 0, Runs = 1 };
enum class DisconnectCode : std::uint32_t {  // informational: unknown values are accepted
  Unspecified = 0, Shutdown = 1, ConfigMismatch = 2, AuthFailed = 3, ProtocolError = 4,
  SplitBrain = 5, Unrelated = 6, Administrative = 7, Timeout = 8,
};

// Hello.feature_flags: each side announces what it supports; the link uses the intersection.
// Unknown bits are legal (a newer peer) and ignored.
constexpr std::uint64_t kFeaturePayloadCrc = 1ull << 0;      // wants payload CRCs on this link
constexpr std::uint64_t kFeatureDiscard = 1ull << 1;
constexpr std::uint64_t kFeatureChecksumResync = 1ull << 2;
constexpr std::uint64_t kFeatureOnlineVerify = 1ull << 3;
// Not a feature but an intent: the sender becomes primary once it has met this peer as
// secondary (it was primary when it went down, or is a new volume's initial primary).
constexpr std::uint64_t kFeaturePrimaryWhenMet = 1ull << 4;

using Digest = std::array<std::uint8_t, 32>;  // SHA-256, or CRC32C big-endian in bytes 0..3, rest 0
using AuthNonce = std::array<std::uint8_t, 32>;
using AuthMac = std::array<std::uint8_t, 32>;
using FrameMac = std::array<std::uint8_t, kFrameMacSize>;

// ---- messages. The request id lives in the frame header, not here: replies (WriteAck,
// FlushAck, BarrierAck, PingAck, ResyncData, ChecksumReply) carry the id of their request.

// Which end of the TCP connection sent an AuthHello.
enum class LinkSide : std::uint8_t { Dialler = 1, Acceptor = 2 };

// First frame on a connection, both directions, the dialler's first (peer_auth.h). It says
// nothing about volumes: only who claims to be talking, in which cluster, and a fresh nonce.
struct AuthHello {
  std::uint16_t protocol_min = kProtocolVersionMin;
  std::uint16_t protocol_max = kProtocolVersionMax;
  std::uint32_t node_id = 0;
  std::string node_name;
  std::string cluster_name;
  AuthNonce nonce{};
  LinkSide side = LinkSide::Dialler;
  bool operator==(const AuthHello&) const = default;
};
// Proof of the shared secret over the whole handshake (peer_auth.h): the dialler's first, the
// acceptor's only once it has checked the dialler's.
struct AuthProof {
  AuthMac mac{};
  bool operator==(const AuthProof&) const = default;
};

// After authentication, the first frame for a volume, both directions (the dialler's first).
// Text fields: 1..64 printable ASCII characters.
struct Hello {
  std::uint16_t protocol_min = kProtocolVersionMin;
  std::uint16_t protocol_max = kProtocolVersionMax;
  std::uint32_t node_id = 0;
  std::string node_name;
  std::string cluster_name;
  std::string volume_name;
  std::array<std::uint8_t, 16> volume_uuid{};
  std::uint64_t size_bytes = 0;      // multiple of kSectorSize
  std::uint32_t block_size = 512;    // power of two, 512..65536
  DiskState disk_state = DiskState::Diskless;
  Role role = Role::Secondary;
  Generations generations;
  std::array<std::uint8_t, 32> config_hash{};  // SHA-256 of the configuration both must share
  std::uint64_t feature_flags = 0;
  bool operator==(const Hello&) const = default;
};
constexpr std::uint32_t kMaxSharedSettingsLength = 16384;
// After authentication, when the two Hellos' configuration hashes differ: the settings this
// node hashed, as lines of "key=value" words, so that each side can name what differs. `text`:
// 1..kMaxSharedSettingsLength bytes of printable ASCII and newlines; borrowed like Write data.
struct SharedSettings {
  std::span<const std::uint8_t> text;
};
bool operator==(const SharedSettings& a, const SharedSettings& b);

constexpr std::uint32_t kWriteFua = 1u << 0;     // durable on the peer before it acknowledges
constexpr std::uint32_t kWriteResync = 1u << 1;  // resync traffic, not an application write
constexpr std::uint32_t kKnownWriteFlags = kWriteFua | kWriteResync;
// Acknowledged by WriteAck with the same request id. `data` borrows from the caller (encode) or
// from the received payload (decode) and is valid only as long as that buffer.
struct Write {
  std::uint64_t offset = 0;
  std::uint32_t flags = 0;
  std::uint64_t epoch = 0;
  std::span<const std::uint8_t> data;  // length: 1..kMaxDataLength, multiple of kSectorSize
};
bool operator==(const Write& a, const Write& b);

constexpr std::uint32_t kAckDurable = 1u << 0;   // the data is on stable storage on the peer
// Protocol B's first answer: the data arrived (a second WriteAck follows once it is written).
constexpr std::uint32_t kAckReceived = 1u << 1;
// Answers Write, Discard and ResyncData (same request id).
struct WriteAck {
  std::int32_t status = 0;  // 0 or a positive errno (< 4096)
  std::uint32_t flags = 0;
  bool operator==(const WriteAck&) const = default;
};
struct Discard {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;  // > 0, multiple of kSectorSize
  std::uint64_t epoch = 0;
  bool operator==(const Discard&) const = default;
};
struct Flush {
  bool operator==(const Flush&) const = default;
};
struct FlushAck {
  std::int32_t status = 0;
  bool operator==(const FlushAck&) const = default;
};
// Closes epoch `epoch` of `write_count` Writes and Discards the peer acknowledged: the peer flushes
// its disk (without holding back later items, unlike Flush) and answers BarrierAck; a peer that
// cannot flush drops the link instead (docs/durability.md).
struct Barrier {
  std::uint64_t epoch = 0;
  std::uint32_t write_count = 0;
  bool operator==(const Barrier&) const = default;
};
// Every write the peer acknowledged before it received Barrier `epoch` is durable on its disk.
struct BarrierAck {
  std::uint64_t epoch = 0;
  std::uint32_t write_count = 0;
  bool operator==(const BarrierAck&) const = default;
};
// A primary whose own disk failed reads from its peer's (on-io-error detach). Answered by
// ReadData with the same request id.
struct Read {
  std::uint64_t offset = 0;
  std::uint32_t length = 0;  // 1..kMaxDataLength, multiple of kSectorSize
  bool operator==(const Read&) const = default;
};
// Data is present, `length` bytes, exactly when status == 0.
struct ReadData {
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  std::int32_t status = 0;  // 0 or a positive errno (< 4096)
  std::span<const std::uint8_t> data;
};
bool operator==(const ReadData& a, const ReadData& b);
struct Ping {
  std::uint64_t timestamp_ns = 0;  // sender's monotonic clock, echoed in PingAck
  bool operator==(const Ping&) const = default;
};
struct PingAck {
  std::uint64_t timestamp_ns = 0;
  bool operator==(const PingAck&) const = default;
};
struct StateChange {
  Role role = Role::Secondary;
  DiskState disk_state = DiskState::Diskless;
  Generations generations;
  std::string reason;  // 0..kMaxReasonLength printable ASCII
  bool operator==(const StateChange&) const = default;
};
struct Disconnect {
  DisconnectCode code = DisconnectCode::Unspecified;
  std::string reason;
  bool operator==(const Disconnect&) const = default;
};

constexpr std::uint8_t kBitmapLast = 1u << 0;  // final chunk of this bitmap exchange
// Bits [bit_offset, bit_offset + bit_count) of the sender's dirty bitmap (one bit per 4 KiB).
// Raw: ceil(bit_count / 8) bytes, bit k in byte k / 8 under mask 1 << (k % 8), unused high bits
// of the last byte zero. Runs: big-endian u32 run lengths, alternately clear and set, starting
// with clear; only the first run may be 0; the runs sum to bit_count.
struct BitmapChunk {
  std::uint64_t bit_offset = 0;
  std::uint32_t bit_count = 0;
  BitmapEncoding encoding = BitmapEncoding::Raw;
  std::uint8_t flags = 0;
  std::span<const std::uint8_t> body;
};
bool operator==(const BitmapChunk& a, const BitmapChunk& b);

// SyncTarget asks for a range. With a digest (checksum-based resync) the source answers
// "identical" instead of sending data when its own digest of the range matches.
struct ResyncRequest {
  std::uint64_t offset = 0;
  std::uint32_t length = 0;  // 1..kMaxDataLength, multiple of kSectorSize
  DigestAlgorithm algorithm = DigestAlgorithm::None;
  Digest digest{};           // all zero with None
  bool operator==(const ResyncRequest&) const = default;
};
constexpr std::uint32_t kResyncIdentical = 1u << 0;
// Answers ResyncRequest (same request id); the target acknowledges it with WriteAck. Data is
// present exactly when status == 0 and the identical flag is clear.
struct ResyncData {
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  std::uint32_t flags = 0;
  std::int32_t status = 0;  // the source could not read the range: errno, no data
  std::span<const std::uint8_t> data;
};
bool operator==(const ResyncData& a, const ResyncData& b);

// Online verify: "send me your digest of this range".
struct ChecksumRequest {
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  DigestAlgorithm algorithm = DigestAlgorithm::Crc32c;  // not None
  bool operator==(const ChecksumRequest&) const = default;
};
struct ChecksumReply {
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
  DigestAlgorithm algorithm = DigestAlgorithm::Crc32c;
  std::int32_t status = 0;  // errno: could not read; digest then all zero
  Digest digest{};
  bool operator==(const ChecksumReply&) const = default;
};
struct VerifyDone {
  std::uint64_t bytes_checked = 0;
  std::uint64_t bytes_out_of_sync = 0;
  std::int32_t status = 0;  // 0 finished, errno aborted
  bool operator==(const VerifyDone&) const = default;
};
// The primary's persistent reservations (an opaque record of the SCSI layer, 0..
// kMaxReservationRecordBytes bytes; borrowed like Write data): sent on every change and when
// the link comes up. Answered by ReservationsAck (same request id) once stored.
constexpr std::uint32_t kMaxReservationsLength = 2048;
struct Reservations {
  std::span<const std::uint8_t> record;
};
bool operator==(const Reservations& a, const Reservations& b);
struct ReservationsAck {
  std::int32_t status = 0;  // errno: the secondary could not store it
  bool operator==(const ReservationsAck&) const = default;
};
// A PERSISTENT RESERVE OUT that reached the secondary's target port, for the primary to run
// (SPC-4 accepts it on a standby port); answered by ReservationAnswer with the same request id.
// Both carry opaque bytes of the SCSI layer, borrowed like Write data: a request of
// 1..kMaxReservationCommandLength, an answer of 0..kMaxReservationCommandLength (none: the
// sender does not serve the volume).
constexpr std::uint32_t kMaxReservationCommandLength = 4096;
struct ReservationCommand {
  std::span<const std::uint8_t> request;
};
bool operator==(const ReservationCommand& a, const ReservationCommand& b);
struct ReservationAnswer {
  std::span<const std::uint8_t> answer;
};
bool operator==(const ReservationAnswer& a, const ReservationAnswer& b);
// A frame of a type this build does not know, sent with kFlagIgnorable: skip it.
struct Ignored {
  std::uint8_t type = 0;
  bool operator==(const Ignored&) const = default;
};

using Message = std::variant<Hello, AuthHello, AuthProof, SharedSettings, Write, WriteAck, Discard,
                             Flush, FlushAck, Barrier, BarrierAck, Read, ReadData, Ping, PingAck, StateChange, Disconnect,
                             BitmapChunk, ResyncRequest, ResyncData, ChecksumRequest, ChecksumReply,
                             VerifyDone, Reservations, ReservationsAck, ReservationCommand, ReservationAnswer,
                             Ignored>;
MessageType type_of(const Message& message);  // Ignored: its raw type cast

// ---- frames
struct FrameHeader {
  std::uint8_t type = 0;  // raw: may be unknown when ignorable
  std::uint16_t flags = 0;
  std::uint64_t request_id = 0;
  std::uint32_t payload_length = 0;
  std::uint32_t payload_crc = 0;  // 0 unless kFlagPayloadCrc
  bool has_payload_crc() const { return (flags & kFlagPayloadCrc) != 0; }
  bool ignorable() const { return (flags & kFlagIgnorable) != 0; }
  bool has_mac() const { return (flags & kFlagMac) != 0; }
  std::size_t frame_size() const { return kFrameHeaderSize + payload_length + (has_mac() ? kFrameMacSize : 0); }
};

struct DecodeOptions {
  std::uint32_t max_payload_length = kMaxPayloadLength;  // may only lower the limit
  bool require_payload_crc = false;                       // set once both sides agreed on it
};

// Checks the first kFrameHeaderSize bytes of `bytes` (the caller guarantees that many): magic,
// version, header CRC, flags, reserved, and the payload length against the limit and the type.
Result<FrameHeader> decode_header(std::span<const std::uint8_t> bytes, const DecodeOptions& options = {});
// Checks the payload against the header (length, CRC).
ProtocolError check_payload(const FrameHeader& header, std::span<const std::uint8_t> payload);

struct ScanResult {
  enum class Status { NeedMore, Complete, Bad };
  Status status = Status::NeedMore;
  std::size_t bytes = 0;  // NeedMore: at least this many more bytes; Complete: the frame's size
  ProtocolError error = ProtocolError::None;
};
// `bytes` starts at a frame boundary. Garbage is reported as soon as it is seen (a wrong magic
// byte is Bad before the header is complete). Stateless: call again with more bytes.
ScanResult scan_frame(std::span<const std::uint8_t> bytes, const DecodeOptions& options = {});

// Decodes the payload of a frame whose header decode_header() accepted (a header that does not
// fit the payload is an error too). Spans in the result borrow from `payload`.
Result<Message> decode_message(const FrameHeader& header, std::span<const std::uint8_t> payload);

// ---- encoding
struct EncodeOptions {
  bool payload_crc = true;  // handshake frames always carry one; data frames per link
  bool ignorable = false;
  bool mac = false;         // kFlagMac: the link fills OutgoingFrame::mac before sending
};
// Header + fixed part of the message in `head`, bulk data borrowed in `tail` (the span the
// message pointed at), and with kFlagMac the MAC trailer. Send head, tail, then mac_trailer();
// the tail is not copied.
struct OutgoingFrame {
  static constexpr std::size_t kMaxHeadSize = kFrameHeaderSize + 304;  // Hello is the largest fixed part
  std::array<std::uint8_t, kMaxHeadSize> head_bytes{};
  std::size_t head_size = 0;
  std::span<const std::uint8_t> tail;
  bool has_mac = false;
  FrameMac mac{};  // written by the link (peer_auth.h FrameSealer) when has_mac

  std::span<const std::uint8_t> head() const { return {head_bytes.data(), head_size}; }
  std::span<const std::uint8_t> mac_trailer() const { return {mac.data(), has_mac ? mac.size() : 0}; }
  std::size_t size() const { return head_size + tail.size() + mac_trailer().size(); }
};
// Validates the message as the decoder would (an encodable message always decodes back to
// itself) and encodes it.
Result<OutgoingFrame> encode(const Message& message, std::uint64_t request_id, const EncodeOptions& options = {});
// The same, copied into `out`; returns the frame size.
Result<std::size_t> encode_into(const Message& message, std::uint64_t request_id, std::span<std::uint8_t> out,
                                const EncodeOptions& options = {});

// ---- buffering receiver: append what the socket delivered, take frames out.
class FrameReader {
 public:
  explicit FrameReader(DecodeOptions options = {}) : options_(options) {}

  struct Frame {
    ScanResult::Status status = ScanResult::Status::NeedMore;
    ProtocolError error = ProtocolError::None;
    std::size_t need = 0;                    // NeedMore: at least this many more bytes
    FrameHeader header;                      // Complete
    std::span<const std::uint8_t> payload;   // Complete: valid until the next append()
    std::span<const std::uint8_t> mac;       // Complete with kFlagMac: the trailer, likewise
    std::span<const std::uint8_t> raw_header;  // Complete: the header's bytes, likewise
  };

  void append(std::span<const std::uint8_t> bytes);
  // The next frame. Bad is sticky: after a bad frame the byte stream has no known boundary left,
  // and the link must be closed.
  Frame next();
  std::size_t buffered() const { return buffer_.size() - start_; }
  void set_options(const DecodeOptions& options) { options_ = options; }

 private:
  DecodeOptions options_;
  std::vector<std::uint8_t> buffer_;
  std::size_t start_ = 0;
  ProtocolError failed_ = ProtocolError::None;
};

}  // namespace freevsa::replication::peer
