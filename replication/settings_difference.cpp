#include "replication/settings_difference.h"

#include <fmt/format.h>

#include <map>
#include <vector>

namespace freevsa::replication {

namespace {

struct Line {
  std::map<std::string, std::string> values;  // key -> value; words without '=' keyed "#position"
};
using Lines = std::map<std::string, Line>;  // identity -> line

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (!text.empty()) {
    const std::size_t end = text.find(separator);
    std::string_view part = text.substr(0, end);
    if (!part.empty()) parts.push_back(part);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return parts;
}

Lines parse(std::string_view text) {
  Lines lines;
  for (std::string_view row : split(text, '\n')) {
    const std::vector<std::string_view> words = split(row, ' ');
    Line line;
    std::string identity;
    bool leading = true;  // the words before the first key=value name the line
    for (std::size_t i = 0; i < words.size(); ++i) {
      const std::size_t eq = words[i].find('=');
      leading = leading && eq == std::string_view::npos;
      if (leading) {
        if (!identity.empty()) identity += ' ';
        identity += words[i];
        continue;
      }
      if (eq == std::string_view::npos) {
        line.values[fmt::format("#{}", i)] = std::string(words[i]);
      } else {
        line.values[std::string(words[i].substr(0, eq))] = std::string(words[i].substr(eq + 1));
      }
    }
    if (auto name = line.values.find("name"); name != line.values.end()) {
      identity += ' ';
      identity += name->second;
    }
    lines[identity] = std::move(line);
  }
  return lines;
}

bool is_digest(const std::string& key) { return key.find("sha256") != std::string::npos; }

}  // namespace

std::string describe_settings_difference(std::string_view local, std::string_view peer, std::string_view peer_name) {
  const Lines here = parse(local);
  const Lines there = parse(peer);
  std::vector<std::string> clauses;
  for (const auto& [identity, line] : here) {
    auto other = there.find(identity);
    if (other == there.end()) {
      clauses.push_back(fmt::format("{} is only here", identity));
      continue;
    }
    std::map<std::string, std::pair<std::string, std::string>> keys;  // key -> (here, there)
    for (const auto& [key, value] : line.values) keys[key].first = value;
    for (const auto& [key, value] : other->second.values) keys[key].second = value;
    for (const auto& [key, values] : keys) {
      if (values.first == values.second) continue;
      const std::string subject = identity.empty() ? key : fmt::format("{}: {}", identity, key);
      if (is_digest(key)) {
        clauses.push_back(fmt::format("{} differs", subject));
      } else {
        clauses.push_back(fmt::format("{} is {} here, {} on {}", subject, values.first.empty() ? "unset" : values.first,
                                      values.second.empty() ? "unset" : values.second, peer_name));
      }
    }
  }
  for (const auto& [identity, line] : there) {
    if (!here.contains(identity)) clauses.push_back(fmt::format("{} is only on {}", identity, peer_name));
  }
  std::string out;
  for (const std::string& clause : clauses) {
    if (!out.empty()) out += "; ";
    out += clause;
  }
  return out;
}

}  // namespace freevsa::replication
