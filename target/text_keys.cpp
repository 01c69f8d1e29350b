#include "target/text_keys.h"

#include <algorithm>
#include <unordered_set>

namespace freevsa::target {

namespace {

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '+' || c == '@' || c == '_';
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int base64_digit(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::optional<std::vector<std::uint8_t>> decode_hex(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  std::vector<std::uint8_t> out;
  out.reserve(digits.size() / 2 + 1);
  std::size_t i = 0;
  if (digits.size() % 2 == 1) {  // odd count: the first digit is the low nibble of byte 0
    int d = hex_digit(digits[0]);
    if (d < 0) return std::nullopt;
    out.push_back(static_cast<std::uint8_t>(d));
    i = 1;
  }
  for (; i < digits.size(); i += 2) {
    int hi = hex_digit(digits[i]);
    int lo = hex_digit(digits[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return out;
}

std::optional<std::vector<std::uint8_t>> decode_base64(std::string_view digits) {
  // Padding '=' only at the end, and the length (with padding) a multiple of 4.
  if (digits.empty() || digits.size() % 4 != 0) return std::nullopt;
  std::size_t pad = 0;
  while (pad < 2 && !digits.empty() && digits[digits.size() - 1 - pad] == '=') ++pad;
  std::vector<std::uint8_t> out;
  out.reserve(digits.size() / 4 * 3);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < digits.size() - pad; ++i) {
    int d = base64_digit(digits[i]);
    if (d < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>((acc >> bits) & 0xff));
    }
  }
  if (out.empty()) return std::nullopt;
  return out;
}

}  // namespace

const char* text_error_name(TextError error) {
  switch (error) {
    case TextError::None: return "none";
    case TextError::MissingSeparator: return "pair without '='";
    case TextError::EmptyKey: return "empty key";
    case TextError::KeyTooLong: return "key longer than 63 bytes";
    case TextError::BadKeyCharacter: return "invalid character in key";
    case TextError::ValueTooLong: return "value too long";
    case TextError::MissingTerminator: return "last pair not NUL terminated";
    case TextError::DuplicateKey: return "key sent twice";
  }
  return "unknown";
}

std::size_t max_value_length(std::string_view key) {
  if (key == "CHAP_C" || key == "CHAP_R") return kMaxBinaryValueLength;
  return kMaxValueLength;
}

ParsedText parse_text(std::string_view text) {
  ParsedText result;
  std::unordered_set<std::string_view> seen;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\0', pos);
    const bool terminated = end != std::string_view::npos;
    if (!terminated) end = text.size();
    std::string_view pair = text.substr(pos, end - pos);
    pos = terminated ? end + 1 : end;
    if (pair.empty()) continue;  // padding or a stray NUL
    std::size_t eq = pair.find('=');
    auto fail = [&](TextError e, std::string_view key) {
      result.error = e;
      result.error_key = std::string(key.substr(0, std::min<std::size_t>(key.size(), 80)));
      result.pairs.clear();
      return result;
    };
    if (eq == std::string_view::npos) return fail(TextError::MissingSeparator, pair);
    std::string_view key = pair.substr(0, eq);
    std::string_view value = pair.substr(eq + 1);
    if (key.empty()) return fail(TextError::EmptyKey, key);
    if (key.size() > kMaxKeyLength) return fail(TextError::KeyTooLong, key);
    if (!std::all_of(key.begin(), key.end(), is_key_char)) return fail(TextError::BadKeyCharacter, key);
    if (value.size() > max_value_length(key)) return fail(TextError::ValueTooLong, key);
    if (!terminated) return fail(TextError::MissingTerminator, key);
    if (!seen.insert(key).second) return fail(TextError::DuplicateKey, key);
    result.pairs.push_back({std::string(key), std::string(value)});
  }
  return result;
}

std::string format_text(const std::vector<KeyValue>& pairs) {
  std::string out;
  for (const auto& kv : pairs) {
    out += kv.key;
    out += '=';
    out += kv.value;
    out += '\0';
  }
  return out;
}

std::optional<std::uint64_t> parse_number(std::string_view value) {
  if (value.empty()) return std::nullopt;
  if (value.size() > 2 && value[0] == '0' && (value[1] == 'x' || value[1] == 'X' || value[1] == 'b' || value[1] == 'B')) {
    auto bytes = decode_binary(value);
    if (!bytes) return std::nullopt;
    // Leading zero bytes do not count against the 64-bit limit.
    auto first = std::find_if(bytes->begin(), bytes->end(), [](std::uint8_t b) { return b != 0; });
    if (bytes->end() - first > 8) return std::nullopt;
    std::uint64_t v = 0;
    for (auto it = first; it != bytes->end(); ++it) v = v << 8 | *it;
    return v;
  }
  if (value.size() > 20) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    std::uint64_t next = v * 10 + static_cast<std::uint64_t>(c - '0');
    if (next / 10 != v) return std::nullopt;  // overflow
    v = next;
  }
  return v;
}

std::optional<bool> parse_bool(std::string_view value) {
  if (value == "Yes") return true;
  if (value == "No") return false;
  return std::nullopt;
}

std::vector<std::string> split_list(std::string_view value) {
  std::vector<std::string> out;
  if (value.empty()) return out;
  std::size_t pos = 0;
  while (true) {
    std::size_t comma = value.find(',', pos);
    out.emplace_back(value.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::optional<std::vector<std::uint8_t>> decode_binary(std::string_view value) {
  if (value.size() < 3 || value[0] != '0') return std::nullopt;
  if (value[1] == 'x' || value[1] == 'X') return decode_hex(value.substr(2));
  if (value[1] == 'b' || value[1] == 'B') return decode_base64(value.substr(2));
  return std::nullopt;
}

std::string encode_hex(std::span<const std::uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out = "0x";
  out.reserve(2 + bytes.size() * 2);
  for (std::uint8_t b : bytes) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

}  // namespace freevsa::target
