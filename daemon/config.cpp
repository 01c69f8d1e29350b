#include "daemon/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>
#include <string_view>
#include <utility>

namespace freevsa::daemon {
namespace {

// RFC 7143 section 12.1.3 allows CHAP secrets of fewer than 96 bits only under IPsec, which we
// do not do. Shorter ones are refused rather than warned about: a warning scrolls by while the
// weak secret stays in production.
constexpr std::size_t kMinChapSecretBytes = 12;
// RFC 3720 section 3.2.6.1: iSCSI names are at most 223 bytes.
constexpr std::size_t kMaxIscsiNameBytes = 223;
// Flat space LUN addressing (SAM-5) reaches 16383; peripheral addressing only 255.
constexpr std::uint64_t kMaxLun = 16383;
// RFC 7143 section 13.12: MaxRecvDataSegmentLength, MaxBurstLength and FirstBurstLength.
constexpr std::uint64_t kMinSegment = 512;
constexpr std::uint64_t kMaxSegment = 16777215;
constexpr std::uint16_t kDefaultPort = 3260;

// A value inside the document together with where it is and what it is called, so that every
// check can produce "file:line: path: reason" without threading three arguments around.
struct Field {
  YAML::Node node;
  std::string path;
  int line = 1;  // 1-based
};

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return fmt::format("'{}'", node.Scalar());
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: break;
  }
  return "nothing";
}

int line_of(const YAML::Node& node, int fallback) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? fallback : mark.line + 1;
}

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// RFC 3720 section 3.2.6.3 (kept in RFC 7143 section 4.2.7): "iqn." date "." reversed domain
// [":" anything], "eui." 16 hex digits, "naa." 16 or 32 hex digits. Names are compared after
// stringprep, which lowercases them; we only accept the already-normalized ASCII form so that the
// name in the file is byte for byte the name on the wire.
std::optional<std::string> iscsi_name_problem(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > kMaxIscsiNameBytes) {
    return fmt::format("is {} bytes long; iSCSI names are at most {} bytes", name.size(), kMaxIscsiNameBytes);
  }
  if (std::any_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
    return fmt::format("iSCSI names are lowercase: write '{}'", lower);
  }
  for (char c : name) {
    bool allowed = (c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '.' || c == ':';
    if (!allowed) {
      return fmt::format(
          "character '{}' is not allowed (use a-z, 0-9, '-', '.', ':')",
          (c >= 0x20 && c < 0x7f) ? std::string(1, c) : fmt::format("\\x{:02x}", static_cast<unsigned char>(c)));
    }
  }
  auto hex_run = [](std::string_view digits) { return std::all_of(digits.begin(), digits.end(), is_lower_hex); };
  if (name.starts_with("eui.")) {
    std::string_view digits = name.substr(4);
    if (digits.size() != 16 || !hex_run(digits)) return std::string("an 'eui.' name has exactly 16 hex digits");
    return std::nullopt;
  }
  if (name.starts_with("naa.")) {
    std::string_view digits = name.substr(4);
    if ((digits.size() != 16 && digits.size() != 32) || !hex_run(digits)) {
      return std::string("an 'naa.' name has 16 or 32 hex digits");
    }
    return std::nullopt;
  }
  if (!name.starts_with("iqn.")) return std::string("must start with 'iqn.', 'eui.' or 'naa.'");
  std::string_view rest = name.substr(4);
  const char* date_form = "an 'iqn.' name continues with a date 'yyyy-mm.' (e.g. iqn.2026-01.org.example:disk0)";
  if (rest.size() < 8 || !is_digit(rest[0]) || !is_digit(rest[1]) || !is_digit(rest[2]) || !is_digit(rest[3]) ||
      rest[4] != '-' || !is_digit(rest[5]) || !is_digit(rest[6]) || rest[7] != '.') {
    return std::string(date_form);
  }
  int month = (rest[5] - '0') * 10 + (rest[6] - '0');
  if (month < 1 || month > 12) return fmt::format("month {:02d} in the date does not exist", month);
  rest = rest.substr(8);
  std::size_t colon = rest.find(':');
  std::string_view authority = rest.substr(0, colon);
  if (authority.empty()) return std::string("the reversed domain name after the date is missing");
  if (authority.front() == '.' || authority.back() == '.' || authority.find("..") != std::string_view::npos) {
    return std::string("the reversed domain name has an empty label");
  }
  if (colon != std::string_view::npos && colon + 1 == rest.size()) return std::string("nothing follows the ':'");
  return std::nullopt;
}

// The parsed pair and where its secret was written, for the "mutual secret must differ" error.
struct ChapField {
  ChapConfig chap;
  Field secret;
};

// Counts documents without building them. YAML::LoadAll of yaml-cpp 0.7 loops forever,
// allocating, on a stray ',' (jbeder/yaml-cpp#1040, fixed upstream in 0.8 by #1319): the parser
// reports an empty document at the same token again and again. Here that repetition is caught
// and reported as the syntax error it is.
class DocumentScanner final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  YAML::Mark start = YAML::Mark::null_mark();
};

struct ParsedTarget {
  TargetConfig config;
  Field iqn;
  std::vector<Field> lun_paths;
};

class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  Config parse(const std::string& text);
  void check_documents(const std::string& text) const;

 private:
  // A map whose keys have been checked against what the schema knows, each present once.
  class MapView {
   public:
    MapView(const Parser& parser, const Field& field, std::initializer_list<std::string_view> known);
    std::optional<Field> get(std::string_view key) const;
    Field require(std::string_view key) const;

   private:
    const Parser& parser_;
    Field field_;
    std::map<std::string, Field, std::less<>> entries_;
  };

  [[noreturn]] void fail(int line, std::string_view path, std::string_view reason) const {
    if (path.empty()) throw ConfigError(fmt::format("{}:{}: {}", source_, line, reason));
    throw ConfigError(fmt::format("{}:{}: {}: {}", source_, line, path, reason));
  }
  [[noreturn]] void fail(const Field& field, std::string_view reason) const { fail(field.line, field.path, reason); }

  std::vector<Field> sequence(const Field& field) const;
  std::string scalar(const Field& field, std::string_view what) const;
  std::string text(const Field& field, std::size_t max_bytes) const;
  std::uint64_t number(const Field& field, std::uint64_t min, std::uint64_t max) const;
  std::uint64_t size(const Field& field, std::uint64_t min, std::uint64_t max) const;
  bool boolean(const Field& field) const;
  std::string iscsi_name(const Field& field) const;

  PortalConfig portal(const Field& field) const;
  ParsedTarget target(const Field& field) const;
  LunConfig lun(const Field& field, Field& path_field) const;
  ChapField chap(const Field& field) const;
  void chap_pair(const MapView& map, std::string_view chap_key, std::string_view mutual_key,
                 std::optional<ChapConfig>& chap_out, std::optional<ChapConfig>& mutual_out) const;
  void iscsi_limits(const Field& field, Config& config) const;

  std::string source_;
};

Parser::MapView::MapView(const Parser& parser, const Field& field, std::initializer_list<std::string_view> known)
    : parser_(parser), field_(field) {
  if (!field.node.IsMap()) parser.fail(field, fmt::format("expected a map, got {}", describe(field.node)));
  for (auto it = field.node.begin(); it != field.node.end(); ++it) {
    const YAML::Node key = it->first;
    int key_line = line_of(key, field.line);
    if (!key.IsScalar()) parser.fail(key_line, field.path, fmt::format("a key must be a word, got {}", describe(key)));
    const std::string& name = key.Scalar();
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string_view best;
      std::size_t best_distance = std::numeric_limits<std::size_t>::max();
      for (std::string_view candidate : known) {
        std::size_t distance = edit_distance(name, candidate);
        if (distance < best_distance) {
          best_distance = distance;
          best = candidate;
        }
      }
      // Near misses ("blocksize") and truncations ("max_burst") are the typos worth a hint.
      std::string hint;
      if (best_distance <= 2 && best_distance < std::max<std::size_t>(name.size(), 3) / 2 + 1) {
        hint = fmt::format(" (did you mean '{}'?)", best);
      } else if (name.size() >= 4) {
        auto prefixed = [&](std::string_view candidate) { return candidate.starts_with(name); };
        if (std::count_if(known.begin(), known.end(), prefixed) == 1) {
          hint = fmt::format(" (did you mean '{}'?)", *std::find_if(known.begin(), known.end(), prefixed));
        }
      }
      parser.fail(key_line, field.path, fmt::format("unknown key '{}'{}", name, hint));
    }
    if (auto previous = entries_.find(name); previous != entries_.end()) {
      parser.fail(key_line, child_path(field.path, name),
                  fmt::format("given twice (first at line {})", previous->second.line));
    }
    // A key with no value ("block_size:") has a null node whose mark is the next token, possibly
    // lines further down; the key's own line is where the user looks.
    const YAML::Node value = it->second;
    int value_line = value.IsNull() ? key_line : line_of(value, key_line);
    entries_.emplace(name, Field{value, child_path(field.path, name), value_line});
  }
}

std::optional<Field> Parser::MapView::get(std::string_view key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

Field Parser::MapView::require(std::string_view key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) parser_.fail(field_.line, child_path(field_.path, key), "required");
  return it->second;
}

std::vector<Field> Parser::sequence(const Field& field) const {
  if (!field.node.IsSequence()) fail(field, fmt::format("expected a list, got {}", describe(field.node)));
  std::vector<Field> items;
  std::size_t index = 0;
  for (auto it = field.node.begin(); it != field.node.end(); ++it, ++index) {
    // A bare "-" is a null item whose mark is the next token; the list's line is closer to the truth.
    int line = it->IsNull() ? field.line : line_of(*it, field.line);
    items.push_back(Field{*it, fmt::format("{}[{}]", field.path, index), line});
  }
  return items;
}

std::string Parser::scalar(const Field& field, std::string_view what) const {
  if (!field.node.IsScalar()) fail(field, fmt::format("expected {}, got {}", what, describe(field.node)));
  return field.node.Scalar();
}

std::string Parser::text(const Field& field, std::size_t max_bytes) const {
  std::string value = scalar(field, "a string");
  if (value.empty()) fail(field, "must not be empty");
  if (value.size() > max_bytes)
    fail(field, fmt::format("is {} bytes long, at most {} allowed", value.size(), max_bytes));
  if (std::any_of(value.begin(), value.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    fail(field, "contains a control character");
  }
  return value;
}

std::uint64_t Parser::number(const Field& field, std::uint64_t min, std::uint64_t max) const {
  std::string value = scalar(field, "a number");
  bool negative = value.starts_with('-');
  std::string_view digits = std::string_view(value).substr(negative ? 1 : 0);
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), is_digit)) {
    fail(field, fmt::format("expected a number, got '{}'", value));
  }
  std::uint64_t result = 0;
  bool overflow = false;
  for (char c : digits) {
    auto digit = static_cast<std::uint64_t>(c - '0');
    if (result > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
      overflow = true;
      break;
    }
    result = result * 10 + digit;
  }
  if ((negative && result != 0) || overflow || result < min || result > max) {
    fail(field, fmt::format("must be between {} and {}, got {}", min, max, value));
  }
  return result;
}

// Sizes are binary whatever the spelling ("1G" == "1GiB" == 1073741824): disk sizes in block
// storage are counted in sectors, and a decimal "1GB" that is not a whole number of 4096-byte
// blocks would only produce a second, more confusing error.
std::uint64_t Parser::size(const Field& field, std::uint64_t min, std::uint64_t max) const {
  std::string value = scalar(field, "a size");
  const std::string usage = fmt::format("expected a size such as 1073741824, 512M, 1G or 10GiB, got '{}'", value);
  std::size_t end = 0;
  while (end < value.size() && is_digit(value[end])) ++end;
  if (end == 0) fail(field, usage);
  std::string unit = value.substr(end);
  if (unit.starts_with(' ')) unit.erase(0, 1);
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
  static constexpr std::array<std::string_view, 6> kUnits{"", "k", "m", "g", "t", "p"};
  unsigned shift = 0;
  bool known = false;
  for (std::size_t i = 0; i < kUnits.size(); ++i) {
    if (unit == kUnits[i] || (i > 0 && unit == fmt::format("{}ib", kUnits[i]))) {
      shift = static_cast<unsigned>(i) * 10;
      known = true;
      break;
    }
    if (i > 0 && unit == fmt::format("{}b", kUnits[i])) {
      std::string letter(1, static_cast<char>(kUnits[i][0] - 'a' + 'A'));
      fail(field, fmt::format("'{}' is ambiguous; sizes are binary here: write '{}{}' or '{}{}iB'", value,
                              value.substr(0, end), letter, value.substr(0, end), letter));
    }
  }
  if (!known) fail(field, usage);
  std::uint64_t count = 0;
  for (std::size_t i = 0; i < end; ++i) {
    auto digit = static_cast<std::uint64_t>(value[i] - '0');
    if (count > (std::numeric_limits<std::uint64_t>::max() - digit) / 10)
      fail(field, fmt::format("'{}' is too large", value));
    count = count * 10 + digit;
  }
  if (shift > 0 && count > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
    fail(field, fmt::format("'{}' is too large", value));
  }
  std::uint64_t bytes = count << shift;
  if (bytes < min || bytes > max) fail(field, fmt::format("must be between {} and {} bytes, got {}", min, max, value));
  return bytes;
}

bool Parser::boolean(const Field& field) const {
  std::string value = scalar(field, "true or false");
  std::string lower = value;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  fail(field, fmt::format("expected true or false, got '{}'", value));
}

std::string Parser::iscsi_name(const Field& field) const {
  std::string value = scalar(field, "an iSCSI name");
  if (auto problem = iscsi_name_problem(value)) {
    fail(field, fmt::format("'{}' is not a valid iSCSI name: {}", value, *problem));
  }
  return value;
}

// Listening addresses are IP literals: resolving a host name at start-up would make the set of
// sockets depend on DNS, and "localhost" may mean ::1, 127.0.0.1 or both.
PortalConfig Parser::portal(const Field& field) const {
  std::string address;
  std::uint16_t port = kDefaultPort;
  bool bracketed = false;
  if (field.node.IsMap()) {
    MapView map(*this, field, {"address", "port"});
    Field address_field = map.require("address");
    address = text(address_field, 255);
    if (address.starts_with('[') && address.ends_with(']')) {
      address = address.substr(1, address.size() - 2);
      bracketed = true;
    }
    if (auto port_field = map.get("port")) port = static_cast<std::uint16_t>(number(*port_field, 1, 65535));
  } else {
    std::string value = scalar(field, "\"address:port\" or a map with address and port");
    std::string port_text;
    if (value.starts_with('[')) {
      std::size_t close = value.find(']');
      if (close == std::string::npos) fail(field, fmt::format("'{}' has no closing ']'", value));
      address = value.substr(1, close - 1);
      bracketed = true;
      std::string after = value.substr(close + 1);
      if (!after.empty()) {
        if (after[0] != ':') fail(field, fmt::format("expected ':port' after ']' in '{}'", value));
        port_text = after.substr(1);
        if (port_text.empty()) fail(field, fmt::format("'{}' ends with ':' but has no port", value));
      }
    } else {
      std::size_t colons = static_cast<std::size_t>(std::count(value.begin(), value.end(), ':'));
      if (colons > 1) fail(field, fmt::format("an IPv6 address needs brackets: write '[{}]:{}'", value, kDefaultPort));
      std::size_t colon = value.find(':');
      address = value.substr(0, colon);
      if (colon != std::string::npos) {
        port_text = value.substr(colon + 1);
        if (port_text.empty()) fail(field, fmt::format("'{}' ends with ':' but has no port", value));
      }
    }
    if (!port_text.empty()) {
      bool digits = std::all_of(port_text.begin(), port_text.end(), is_digit);
      if (!digits || port_text.size() > 5 || std::stoul(port_text) < 1 || std::stoul(port_text) > 65535) {
        fail(field, fmt::format("port must be between 1 and 65535, got '{}'", port_text));
      }
      port = static_cast<std::uint16_t>(std::stoul(port_text));
    }
  }
  if (address.empty()) fail(field, "the address is empty");

  std::string zone;
  std::string ip = address;
  if (std::size_t percent = ip.find('%'); percent != std::string::npos) {
    zone = ip.substr(percent);
    ip.erase(percent);
  }
  char canonical[INET6_ADDRSTRLEN] = {};
  in6_addr v6{};
  in_addr v4{};
  if (::inet_pton(AF_INET6, ip.c_str(), &v6) == 1) {
    if (zone.size() == 1) fail(field, fmt::format("'{}' has an empty zone after '%'", address));
    ::inet_ntop(AF_INET6, &v6, canonical, sizeof canonical);
    return PortalConfig{std::string(canonical) + zone, port};
  }
  if (zone.empty() && !bracketed && ::inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
    ::inet_ntop(AF_INET, &v4, canonical, sizeof canonical);
    return PortalConfig{canonical, port};
  }
  if (bracketed) fail(field, fmt::format("'{}' in brackets is not an IPv6 address", address));
  fail(field,
       fmt::format("'{}' is not an IP address (host names are not resolved; use e.g. 127.0.0.1, 0.0.0.0 or [::])",
                   address));
}

ChapField Parser::chap(const Field& field) const {
  MapView map(*this, field, {"user", "secret"});
  ChapField result;
  result.chap.user = text(map.require("user"), 255);
  result.secret = map.require("secret");
  // The secret itself never appears in a message: logs and terminals outlive the config file's mode.
  if (!result.secret.node.IsScalar())
    fail(result.secret, fmt::format("expected a string, got {}", describe(result.secret.node)));
  result.chap.secret = result.secret.node.Scalar();
  if (result.chap.secret.size() < kMinChapSecretBytes) {
    fail(result.secret, fmt::format("must be at least {} bytes long (RFC 7143 section 12.1.3), got {}",
                                    kMinChapSecretBytes, result.chap.secret.size()));
  }
  if (result.chap.secret.size() > 255) {
    fail(result.secret, fmt::format("is {} bytes long, at most 255 allowed", result.chap.secret.size()));
  }
  return result;
}

void Parser::chap_pair(const MapView& map, std::string_view chap_key, std::string_view mutual_key,
                       std::optional<ChapConfig>& chap_out, std::optional<ChapConfig>& mutual_out) const {
  std::optional<ChapField> incoming;
  if (auto field = map.get(chap_key)) incoming = chap(*field);
  auto mutual_field = map.get(mutual_key);
  if (!mutual_field) {
    if (incoming) chap_out = incoming->chap;
    return;
  }
  if (!incoming) {
    fail(*mutual_field, fmt::format("needs '{}' as well: the target only proves itself to initiators that "
                                    "authenticated first",
                                    chap_key));
  }
  ChapField outgoing = chap(*mutual_field);
  if (outgoing.chap.secret == incoming->chap.secret) {
    fail(outgoing.secret, fmt::format("must differ from {}.secret: a shared secret lets anyone reflect the "
                                      "target's own challenge back at it",
                                      chap_key));
  }
  chap_out = incoming->chap;
  mutual_out = outgoing.chap;
}

LunConfig Parser::lun(const Field& field, Field& path_field) const {
  MapView map(*this, field, {"lun", "path", "size", "block_size", "direct_io", "serial"});
  LunConfig lun;
  lun.number = number(map.require("lun"), 0, kMaxLun);
  path_field = map.require("path");
  lun.path = text(path_field, 4095);
  if (auto block_size = map.get("block_size")) {
    std::uint64_t value = number(*block_size, 0, std::numeric_limits<std::uint64_t>::max());
    if (value != 512 && value != 4096) fail(*block_size, fmt::format("must be 512 or 4096, got {}", value));
    lun.block_size = static_cast<std::uint32_t>(value);
  }
  // Whether the file exists is start-up's business; here size only has to make sense on its own.
  if (auto size_field = map.get("size")) {
    lun.size_bytes = size(*size_field, 1, std::numeric_limits<std::uint64_t>::max());
    if (lun.size_bytes % lun.block_size != 0) {
      fail(*size_field, fmt::format("{} bytes is not a multiple of block_size {}", lun.size_bytes, lun.block_size));
    }
  }
  if (auto direct = map.get("direct_io")) lun.direct_io = boolean(*direct);
  if (auto serial = map.get("serial")) {
    lun.serial = text(*serial, 64);
    // Unit serial numbers are space-padded ASCII in VPD page 0x80; a space of our own would blur
    // where the serial ends.
    if (std::any_of(lun.serial.begin(), lun.serial.end(), [](char c) { return c <= ' ' || c > '~'; })) {
      fail(*serial, "may only contain printable ASCII without spaces");
    }
  }
  return lun;
}

ParsedTarget Parser::target(const Field& field) const {
  MapView map(*this, field, {"iqn", "alias", "luns", "chap", "mutual_chap", "allowed_initiators"});
  ParsedTarget parsed;
  TargetConfig& target = parsed.config;
  parsed.iqn = map.require("iqn");
  target.iqn = iscsi_name(parsed.iqn);
  if (auto alias = map.get("alias")) target.alias = text(*alias, 255);

  Field luns_field = map.require("luns");
  std::vector<Field> luns = sequence(luns_field);
  if (luns.empty()) fail(luns_field, "a target needs at least one LUN");
  std::map<std::uint64_t, int> lun_lines;
  for (const Field& item : luns) {
    Field path;
    LunConfig lun = this->lun(item, path);
    parsed.lun_paths.push_back(std::move(path));
    if (auto [it, inserted] = lun_lines.emplace(lun.number, item.line); !inserted) {
      fail(item.line, child_path(item.path, "lun"),
           fmt::format("LUN {} is defined twice (first at line {})", lun.number, it->second));
    }
    target.luns.push_back(std::move(lun));
  }

  chap_pair(map, "chap", "mutual_chap", target.chap, target.mutual_chap);

  if (auto allowed = map.get("allowed_initiators")) {
    std::map<std::string, int> seen;
    for (const Field& item : sequence(*allowed)) {
      std::string name = iscsi_name(item);
      if (auto [it, inserted] = seen.emplace(name, item.line); !inserted) {
        fail(item, fmt::format("'{}' is listed twice (first at line {})", name, it->second));
      }
      target.allowed_initiators.push_back(std::move(name));
    }
  }
  return parsed;
}

void Parser::iscsi_limits(const Field& field, Config& config) const {
  MapView map(*this, field,
              {"max_recv_data_segment_length", "max_burst_length", "first_burst_length", "max_outstanding_r2t",
               "immediate_data", "initial_r2t"});
  if (auto f = map.get("max_recv_data_segment_length")) {
    config.max_recv_data_segment_length = static_cast<std::uint32_t>(size(*f, kMinSegment, kMaxSegment));
  }
  if (auto f = map.get("max_burst_length")) {
    config.max_burst_length = static_cast<std::uint32_t>(size(*f, kMinSegment, kMaxSegment));
  }
  if (auto f = map.get("first_burst_length")) {
    config.first_burst_length = static_cast<std::uint32_t>(size(*f, kMinSegment, kMaxSegment));
    if (config.first_burst_length > config.max_burst_length) {
      fail(*f, fmt::format("must not exceed max_burst_length ({}), got {}", config.max_burst_length,
                           config.first_burst_length));
    }
  } else {
    // Only max_burst_length was lowered: follow it rather than fault the unchanged default.
    config.first_burst_length = std::min(config.first_burst_length, config.max_burst_length);
  }
  if (auto f = map.get("max_outstanding_r2t"))
    config.max_outstanding_r2t = static_cast<std::uint32_t>(number(*f, 1, 65535));
  if (auto f = map.get("immediate_data")) config.immediate_data = boolean(*f);
  if (auto f = map.get("initial_r2t")) config.initial_r2t = boolean(*f);
}

void Parser::check_documents(const std::string& yaml_text) const {
  std::istringstream stream(yaml_text);
  YAML::Parser parser(stream);
  DocumentScanner scanner;
  std::vector<YAML::Mark> starts;
  try {
    while (parser.HandleNextDocument(scanner)) {
      if (!starts.empty() && scanner.start.pos == starts.back().pos) {
        std::size_t at = static_cast<std::size_t>(std::max(scanner.start.pos, 0));
        std::string token = at < yaml_text.size() ? fmt::format(" '{}'", yaml_text[at]) : "";
        fail(scanner.start.line + 1, "", fmt::format("YAML syntax error: unexpected{}", token));
      }
      starts.push_back(scanner.start);
    }
  } catch (const YAML::Exception& e) {
    fail(e.mark.is_null() ? 1 : e.mark.line + 1, "", fmt::format("YAML syntax error: {}", e.msg));
  }
  if (starts.size() > 1) fail(starts[1].line + 1, "", "only one YAML document is allowed (remove the second '---')");
}

Config Parser::parse(const std::string& yaml_text) {
  check_documents(yaml_text);
  YAML::Node document;
  try {
    document = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail(e.mark.is_null() ? 1 : e.mark.line + 1, "", fmt::format("YAML syntax error: {}", e.msg));
  }
  if (document.IsNull()) fail(1, "", "the file has no settings; it needs at least 'portals' and 'targets'");
  Field root{document, "", line_of(document, 1)};
  if (!root.node.IsMap()) {
    fail(root,
         fmt::format("the top level must be a map of settings (portals:, targets:, ...), got {}", describe(root.node)));
  }
  MapView map(*this, root,
              {"portals", "targets", "discovery_chap", "discovery_mutual_chap", "log_level", "network_threads",
               "worker_threads", "nop_interval_seconds", "nop_timeout_seconds", "iscsi"});
  Config config;
  config.source_path = source_;

  Field portals_field = map.require("portals");
  std::vector<Field> portals = sequence(portals_field);
  if (portals.empty()) fail(portals_field, "at least one portal is needed");
  std::map<std::pair<std::string, std::uint16_t>, int> portal_lines;
  for (const Field& item : portals) {
    PortalConfig portal = this->portal(item);
    if (auto [it, inserted] = portal_lines.emplace(std::pair(portal.address, portal.port), item.line); !inserted) {
      fail(item,
           fmt::format("portal {}:{} is listed twice (first at line {})",
                       portal.address.find(':') == std::string::npos ? portal.address : "[" + portal.address + "]",
                       portal.port, it->second));
    }
    config.portals.push_back(std::move(portal));
  }

  Field targets_field = map.require("targets");
  std::vector<Field> targets = sequence(targets_field);
  if (targets.empty()) fail(targets_field, "at least one target is needed");
  std::map<std::string, int> iqn_lines;
  std::map<std::string, std::string> path_owners;
  for (const Field& item : targets) {
    ParsedTarget target = this->target(item);
    if (auto [it, inserted] = iqn_lines.emplace(target.config.iqn, target.iqn.line); !inserted) {
      fail(target.iqn, fmt::format("target '{}' is defined twice (first at line {})", target.config.iqn, it->second));
    }
    // The same backing file under two LUNs would be two caches of one disk; the volume's lock
    // would refuse it at start-up anyway, but only here can the message name both places.
    for (const Field& path : target.lun_paths) {
      const std::string& value = path.node.Scalar();
      if (auto [it, inserted] = path_owners.emplace(value, path.path); !inserted) {
        fail(path, fmt::format("'{}' is already used by {}", value, it->second));
      }
    }
    config.targets.push_back(std::move(target.config));
  }

  chap_pair(map, "discovery_chap", "discovery_mutual_chap", config.discovery_chap, config.discovery_mutual_chap);

  if (auto f = map.get("log_level")) {
    config.log_level = scalar(*f, "a log level");
    if (config.log_level != "debug" && config.log_level != "info" && config.log_level != "warn" &&
        config.log_level != "error") {
      fail(*f, fmt::format("must be one of debug, info, warn, error, got '{}'", config.log_level));
    }
  }
  if (auto f = map.get("network_threads")) config.network_threads = static_cast<unsigned>(number(*f, 1, 256));
  if (auto f = map.get("worker_threads")) config.worker_threads = static_cast<unsigned>(number(*f, 1, 1024));
  if (auto f = map.get("nop_interval_seconds"))
    config.nop_interval_seconds = static_cast<unsigned>(number(*f, 1, 3600));
  if (auto f = map.get("nop_timeout_seconds")) config.nop_timeout_seconds = static_cast<unsigned>(number(*f, 1, 3600));
  if (auto f = map.get("iscsi")) iscsi_limits(*f, config);
  return config;
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source_name) {
  try {
    return Parser(source_name).parse(yaml_text);
  } catch (const YAML::Exception& e) {
    // Only reachable through a yaml-cpp quirk on a document we already accepted as syntax; still
    // a configuration problem, not a reason to let a foreign exception type escape.
    throw ConfigError(fmt::format("{}:{}: {}", source_name, e.mark.is_null() ? 1 : e.mark.line + 1, e.msg));
  }
}

Config load_config(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw ConfigError(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  std::string text;
  char chunk[65536];
  while (true) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      throw ConfigError(fmt::format("{}: cannot read: {}", path, std::strerror(error)));
    }
    if (n == 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return parse_config(text, path);
}

}  // namespace freevsa::daemon
