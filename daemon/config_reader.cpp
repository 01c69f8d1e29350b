#include "daemon/config_reader.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <array>
#include <limits>
#include <sstream>

namespace freevsa::daemon::config_detail {
namespace {

// RFC 3720 section 3.2.6.1: iSCSI names are at most 223 bytes.
constexpr std::size_t kMaxIscsiNameBytes = 223;

int line_of(const YAML::Node& node, int fallback) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? fallback : mark.line + 1;
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

}  // namespace

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

std::string child_path(const std::string& parent, std::string_view key) {
  return parent.empty() ? std::string(key) : fmt::format("{}.{}", parent, key);
}

std::string did_you_mean(std::string_view name, const std::vector<std::string_view>& known) {
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
  // A hint that replaces the whole word ("c" -> "a") is not a near miss.
  if (best_distance <= 2 && best_distance < std::max<std::size_t>(name.size(), 3) / 2 + 1 &&
      best_distance < name.size()) {
    return fmt::format(" (did you mean '{}'?)", best);
  }
  if (name.size() >= 4) {
    auto prefixed = [&](std::string_view candidate) { return candidate.starts_with(name); };
    if (std::count_if(known.begin(), known.end(), prefixed) == 1) {
      return fmt::format(" (did you mean '{}'?)", *std::find_if(known.begin(), known.end(), prefixed));
    }
  }
  return "";
}

bool is_wildcard(const std::string& canonical_address) {
  return canonical_address == "0.0.0.0" || canonical_address == "::";
}

bool is_loopback(const std::string& canonical_address) {
  in_addr v4{};
  if (::inet_pton(AF_INET, canonical_address.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return canonical_address == "::1";
}

std::string endpoint_text(const PortalConfig& endpoint) {
  if (endpoint.address.find(':') == std::string::npos) return fmt::format("{}:{}", endpoint.address, endpoint.port);
  return fmt::format("[{}]:{}", endpoint.address, endpoint.port);
}

Reader::MapView::MapView(const Reader& reader, const Field& field) : reader_(reader), field_(field) {
  if (!field.node.IsMap()) reader.fail(field, fmt::format("expected a map, got {}", describe(field.node)));
}

Reader::MapView::MapView(const Reader& reader, const Field& field, std::initializer_list<std::string_view> known)
    : MapView(reader, field) {
  std::vector<std::string_view> names(known);
  for (auto it = field.node.begin(); it != field.node.end(); ++it) {
    const YAML::Node key = it->first;
    if (key.IsScalar() && std::find(names.begin(), names.end(), key.Scalar()) == names.end()) {
      reader.fail(line_of(key, field.line), field.path,
                  fmt::format("unknown key '{}'{}", key.Scalar(), did_you_mean(key.Scalar(), names)));
    }
    add(key, it->second);
  }
}

void Reader::MapView::add(const YAML::Node& key, const YAML::Node& value) {
  int key_line = line_of(key, field_.line);
  if (!key.IsScalar()) reader_.fail(key_line, field_.path, fmt::format("a key must be a word, got {}", describe(key)));
  const std::string& name = key.Scalar();
  if (auto previous = entries_.find(name); previous != entries_.end()) {
    reader_.fail(key_line, child_path(field_.path, name),
                 fmt::format("given twice (first at line {})", previous->second.line));
  }
  // A key with no value ("block_size:") has a null node whose mark is the next token, possibly
  // lines further down; the key's own line is where the user looks.
  int value_line = value.IsNull() ? key_line : line_of(value, key_line);
  entries_.emplace(name, Field{value, child_path(field_.path, name), value_line});
}

Reader::MapView Reader::open_map(const Field& field) const {
  MapView map(*this, field);
  for (auto it = field.node.begin(); it != field.node.end(); ++it) map.add(it->first, it->second);
  return map;
}

std::optional<Field> Reader::MapView::get(std::string_view key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

Field Reader::MapView::require(std::string_view key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) reader_.fail(field_.line, child_path(field_.path, key), "required");
  return it->second;
}

std::string Reader::located(int line, std::string_view path, std::string_view reason) const {
  if (path.empty()) return fmt::format("{}:{}: {}", source_, line, reason);
  return fmt::format("{}:{}: {}: {}", source_, line, path, reason);
}

void Reader::fail(int line, std::string_view path, std::string_view reason) const {
  throw ConfigError(located(line, path, reason));
}

void Reader::warn(const Field& field, std::string_view reason) const {
  warnings_.push_back(located(field.line, field.path, reason));
}

std::vector<Field> Reader::sequence(const Field& field) const {
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

std::string Reader::scalar(const Field& field, std::string_view what) const {
  if (!field.node.IsScalar()) fail(field, fmt::format("expected {}, got {}", what, describe(field.node)));
  return field.node.Scalar();
}

std::string Reader::text(const Field& field, std::size_t max_bytes) const {
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

std::uint64_t Reader::number(const Field& field, std::uint64_t min, std::uint64_t max) const {
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
std::uint64_t Reader::size(const Field& field, std::uint64_t min, std::uint64_t max) const {
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

std::string Reader::name(const Field& field, std::size_t max_bytes) const {
  std::string value = text(field, max_bytes);
  auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_' || c == '.';
  };
  if (!std::all_of(value.begin(), value.end(), allowed) || value.front() == '-' || value.front() == '.') {
    fail(field, fmt::format("'{}' is not a valid name: use letters, digits, '-', '_' and '.', starting with a "
                            "letter or digit",
                            value));
  }
  return value;
}

std::chrono::milliseconds Reader::duration(const Field& field, std::chrono::milliseconds min,
                                           std::chrono::milliseconds max) const {
  std::string value = scalar(field, "a duration");
  std::size_t end = 0;
  while (end < value.size() && is_digit(value[end])) ++end;
  std::string unit = value.substr(end);
  if (unit.starts_with(' ')) unit.erase(0, 1);
  std::uint64_t scale = 0;
  if (unit == "ms") scale = 1;
  if (unit == "s" || unit.empty()) scale = 1000;
  if (unit == "m" || unit == "min") scale = 60000;
  if (end == 0 || end > 9 || scale == 0) {
    fail(field, fmt::format("expected a duration such as 500ms, 2s or 1m, got '{}'", value));
  }
  std::chrono::milliseconds result(static_cast<std::int64_t>(std::stoull(value.substr(0, end)) * scale));
  if (result < min || result > max) {
    fail(field, fmt::format("must be between {}ms and {}ms, got {}", min.count(), max.count(), value));
  }
  return result;
}

bool Reader::boolean(const Field& field) const {
  std::string value = scalar(field, "true or false");
  std::string lower = value;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  fail(field, fmt::format("expected true or false, got '{}'", value));
}

std::string Reader::iscsi_name(const Field& field) const {
  std::string value = scalar(field, "an iSCSI name");
  if (auto problem = iscsi_name_problem(value)) {
    fail(field, fmt::format("'{}' is not a valid iSCSI name: {}", value, *problem));
  }
  return value;
}

// Listening addresses are IP literals: resolving a host name at start-up would make the set of
// sockets depend on DNS, and "localhost" may mean ::1, 127.0.0.1 or both.
PortalConfig Reader::endpoint(const Field& field, std::uint16_t default_port) const {
  std::string address;
  std::uint16_t port = default_port;
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
      if (colons > 1) fail(field, fmt::format("an IPv6 address needs brackets: write '[{}]:{}'", value, default_port));
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

void Reader::check_documents(const std::string& yaml_text) const {
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

YAML::Node Reader::load(const std::string& yaml_text) const {
  check_documents(yaml_text);
  try {
    return YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    fail(e.mark.is_null() ? 1 : e.mark.line + 1, "", fmt::format("YAML syntax error: {}", e.msg));
  }
}

}  // namespace freevsa::daemon::config_detail
