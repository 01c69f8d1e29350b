// iSCSI text keys (RFC 7143 section 6.1): the data segment of Login and Text PDUs is a list of
// key=value pairs, each followed by one NUL byte. This file parses such a segment into pairs,
// formats pairs back into a segment, and decodes the value types of RFC 7143 section 5.1
// (numerical, boolean, list, binary). Pure functions; no state.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace freevsa::target {

struct KeyValue {
  std::string key;
  std::string value;
  bool operator==(const KeyValue&) const = default;
};

constexpr std::size_t kMaxKeyLength = 63;           // RFC 7143 6.1
constexpr std::size_t kMaxValueLength = 255;        // RFC 7143 6.1, most keys
constexpr std::size_t kMaxBinaryValueLength = 8192; // RFC 7143 6.1, binary values (CHAP_C, CHAP_R)

enum class TextError {
  None,
  MissingSeparator,  // a pair without '='
  EmptyKey,
  KeyTooLong,
  BadKeyCharacter,   // key characters: letters, digits, '.', '-', '+', '@', '_'
  ValueTooLong,
  MissingTerminator, // the last pair is not followed by NUL
  DuplicateKey,
};

struct ParsedText {
  std::vector<KeyValue> pairs;
  TextError error = TextError::None;
  std::string error_key;  // the offending key, when known
  bool ok() const { return error == TextError::None; }
};

const char* text_error_name(TextError error);

// Parses a complete text (all continued PDUs concatenated). Empty strings between NULs (extra
// padding some initiators send) are skipped. A key may occur once (RFC 7143 6.2).
ParsedText parse_text(std::string_view text);

// key=value\0 for each pair.
std::string format_text(const std::vector<KeyValue>& pairs);

// The maximum value length for a key: binary CHAP values may be longer than other values.
std::size_t max_value_length(std::string_view key);

// Numerical values (RFC 7143 5.1): decimal, hex "0x..." or base64 "0b..." (at most 64 bits).
std::optional<std::uint64_t> parse_number(std::string_view value);
// Boolean values: exactly "Yes" or "No".
std::optional<bool> parse_bool(std::string_view value);
// Comma separated list of values; an empty value gives an empty list.
std::vector<std::string> split_list(std::string_view value);

// Binary values (RFC 7143 5.1): "0x" or "0X" followed by hex digits (odd count allowed, a
// leading zero nibble is implied), or "0b"/"0B" followed by base64. Empty payloads are invalid.
std::optional<std::vector<std::uint8_t>> decode_binary(std::string_view value);
// "0x" followed by lowercase hex digits.
std::string encode_hex(std::span<const std::uint8_t> bytes);

// Answers a responder may give instead of a value (RFC 7143 6.2).
inline constexpr std::string_view kNotUnderstood = "NotUnderstood";
inline constexpr std::string_view kReject = "Reject";
inline constexpr std::string_view kIrrelevant = "Irrelevant";

}  // namespace freevsa::target
