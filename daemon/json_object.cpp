#include "daemon/json_object.h"

#include <fmt/format.h>

#include <cstdint>
#include <optional>

namespace freevsa::daemon {

namespace {

const JsonEscape* short_escape(char letter) {
  for (const JsonEscape& escape : kJsonEscapes) {
    if (escape.letter == letter) return &escape;
  }
  return nullptr;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  JsonObjectParse object() {
    JsonObjectParse result;
    if (!expect('{')) return fail("expected a JSON object {...}");
    skip_space();
    if (peek() == '}') {
      ++at_;
    } else {
      while (true) {
        std::optional<std::string> key = string();
        if (!key) return fail(error_.empty() ? "expected a key in double quotes" : error_);
        if (!expect(':')) return fail(fmt::format("expected ':' after \"{}\"", *key));
        std::optional<JsonScalar> value = scalar();
        if (!value) return fail(error_.empty() ? fmt::format("\"{}\" must be a string, true or false", *key) : error_);
        if (!result.values.emplace(*key, std::move(*value)).second) {
          return fail(fmt::format("\"{}\" is given twice", *key));
        }
        skip_space();
        if (peek() == ',') {
          ++at_;
          continue;
        }
        if (peek() == '}') {
          ++at_;
          break;
        }
        return fail("expected ',' or '}'");
      }
    }
    skip_space();
    if (at_ != text_.size()) return fail("text after the object");
    return result;
  }

 private:
  JsonObjectParse fail(std::string why) const {
    JsonObjectParse result;
    result.error = fmt::format("malformed JSON at byte {}: {}", at_, why);
    return result;
  }

  char peek() const { return at_ < text_.size() ? text_[at_] : '\0'; }

  void skip_space() {
    while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r')) {
      ++at_;
    }
  }

  bool expect(char c) {
    skip_space();
    if (peek() != c) return false;
    ++at_;
    return true;
  }

  bool literal(std::string_view word) {
    if (text_.substr(at_, word.size()) != word) return false;
    at_ += word.size();
    return true;
  }

  std::optional<JsonScalar> scalar() {
    skip_space();
    if (literal("true")) return true;
    if (literal("false")) return false;
    if (peek() != '"') return std::nullopt;
    std::optional<std::string> s = string();
    if (!s) return std::nullopt;
    return std::move(*s);
  }

  std::optional<std::uint32_t> hex4() {
    if (text_.size() - at_ < 4) return std::nullopt;
    std::uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[at_++];
      value <<= 4;
      if (c >= '0' && c <= '9') {
        value |= static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        value |= static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        value |= static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return std::nullopt;
      }
    }
    return value;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // \uXXXX, with a surrogate pair for what lies beyond the basic plane.
  bool unicode_escape(std::string& out) {
    std::optional<std::uint32_t> cp = hex4();
    if (!cp) return false;
    if (*cp >= 0xDC00 && *cp <= 0xDFFF) return false;
    if (*cp >= 0xD800 && *cp <= 0xDBFF) {
      if (!literal("\\u")) return false;
      std::optional<std::uint32_t> low = hex4();
      if (!low || *low < 0xDC00 || *low > 0xDFFF) return false;
      *cp = 0x10000 + ((*cp - 0xD800) << 10) + (*low - 0xDC00);
    }
    append_utf8(out, *cp);
    return true;
  }

  std::optional<std::string> string() {
    skip_space();
    if (peek() != '"') return std::nullopt;
    ++at_;
    std::string out;
    while (at_ < text_.size()) {
      const char c = text_[at_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) {
        error_ = "control character in a string";
        return std::nullopt;
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      const char e = peek();
      ++at_;
      if (e == 'u') {
        if (!unicode_escape(out)) {
          error_ = "malformed \\u escape";
          return std::nullopt;
        }
      } else if (e == '/') {
        out += '/';
      } else if (const JsonEscape* escape = short_escape(e)) {
        out += escape->byte;
      } else {
        error_ = "unknown escape in a string";
        return std::nullopt;
      }
    }
    error_ = "unterminated string";
    return std::nullopt;
  }

  std::string_view text_;
  std::size_t at_ = 0;
  std::string error_;
};

}  // namespace

JsonObjectParse parse_json_object(std::string_view text) { return Parser(text).object(); }

}  // namespace freevsa::daemon
