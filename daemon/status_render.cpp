#include "daemon/status_render.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <iterator>
#include <optional>

#include "daemon/json_object.h"
#include "util/human_bytes.h"

namespace freevsa::daemon {

using replication::ConnectionState;
using replication::PeerStatus;
using replication::SyncProgress;
using replication::VerifyProgress;
using replication::VolumeStatus;
using util::human_bytes;

namespace {

// Length of the well-formed UTF-8 sequence at the start of `text`, 0 when it is not one
// (overlong forms, surrogates and code points above U+10FFFF are not well-formed).
std::size_t utf8_sequence_length(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (text.size() < length) return 0;
  if (byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  }
  return length;
}

// Builds indented JSON. Keys and values are written in order; the writer only takes care of
// commas, indentation and escaping, so a caller cannot produce a malformed document.
class JsonWriter {
 public:
  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }

  void key(std::string_view name) {
    separate();
    out_ += json_quote(name);
    out_ += ": ";
    after_key_ = true;
  }

  void string(std::string_view value) { scalar(json_quote(value)); }
  void number(std::uint64_t value) { scalar(std::to_string(value)); }
  // JSON has no NaN or infinity.
  void number(double value) { scalar(std::isfinite(value) ? fmt::format("{}", value) : "null"); }
  void number(const std::optional<double>& value) {
    if (value) {
      number(*value);
    } else {
      null();
    }
  }
  void boolean(bool value) { scalar(value ? "true" : "false"); }
  void null() { scalar("null"); }

  std::string finish() { return std::move(out_) + "\n"; }

 private:
  void open(char bracket) {
    separate();
    out_ += bracket;
    empty_.push_back(true);
  }

  void close(char bracket) {
    const bool was_empty = empty_.back();
    empty_.pop_back();
    if (!was_empty) newline();
    out_ += bracket;
  }

  void scalar(std::string_view text) {
    separate();
    out_ += text;
  }

  // Before a key, or a value that follows no key (array elements and the document itself).
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (empty_.empty()) return;
    if (!empty_.back()) out_ += ',';
    empty_.back() = false;
    newline();
  }

  void newline() {
    out_ += '\n';
    out_.append(2 * empty_.size(), ' ');
  }

  std::string out_;
  std::vector<bool> empty_;  // per open object or array: nothing written into it yet
  bool after_key_ = false;
};

void write_sync(JsonWriter& json, const SyncProgress& sync) {
  json.begin_object();
  json.key("full");
  json.boolean(sync.full);
  json.key("total_bytes");
  json.number(sync.total_bytes);
  json.key("done_bytes");
  json.number(sync.done_bytes);
  json.key("skipped_bytes");
  json.number(sync.skipped_bytes);
  json.key("bytes_per_second");
  json.number(sync.bytes_per_second);
  json.key("eta_seconds");
  json.number(sync.eta_seconds);
  json.key("percent");
  json.number(sync.percent());
  json.end_object();
}

void write_verify(JsonWriter& json, const VerifyProgress& verify) {
  json.begin_object();
  json.key("running");
  json.boolean(verify.running);
  json.key("total_bytes");
  json.number(verify.total_bytes);
  json.key("checked_bytes");
  json.number(verify.checked_bytes);
  json.key("out_of_sync_bytes");
  json.number(verify.out_of_sync_bytes);
  json.key("bytes_per_second");
  json.number(verify.bytes_per_second);
  json.key("eta_seconds");
  json.number(verify.eta_seconds);
  json.key("finished_at");
  json.string(verify.finished_at);
  json.end_object();
}

void write_peer(JsonWriter& json, const PeerStatus& peer) {
  json.begin_object();
  json.key("node");
  json.string(peer.node);
  json.key("address");
  json.string(peer.address);
  json.key("role");
  json.string(peer.role);
  json.key("disk_state");
  json.string(peer.disk_state);
  json.key("connection");
  json.string(replication::to_string(peer.connection));
  json.key("last_error");
  json.string(peer.last_error);
  json.key("round_trip_ms");
  json.number(peer.round_trip_ms);
  json.key("unauthenticated_connections");
  json.number(peer.unauthenticated_connections);
  json.key("refused_connections");
  json.number(peer.refused_connections);
  json.key("last_refused_connection");
  json.string(peer.last_refused_connection);
  json.end_object();
}

void write_volume(JsonWriter& json, const VolumeStatus& volume) {
  json.begin_object();
  json.key("name");
  json.string(volume.name);
  json.key("role");
  json.string(volume.role);
  json.key("primary_when_peer_met");
  json.boolean(volume.primary_when_peer_met);
  json.key("disk_state");
  json.string(volume.disk_state);
  json.key("protocol");
  json.string(std::string(1, volume.protocol));
  json.key("protocol_meaning");
  json.string(volume.protocol_meaning);
  json.key("size_bytes");
  json.number(volume.size_bytes);
  json.key("out_of_sync_bytes");
  json.number(volume.out_of_sync_bytes);
  json.key("volume_uuid");
  json.string(volume.volume_uuid);
  json.key("generation");
  json.string(volume.generation);
  json.key("peers");
  json.begin_array();
  for (const PeerStatus& peer : volume.peers) write_peer(json, peer);
  json.end_array();
  json.key("sync");
  if (volume.sync) {
    write_sync(json, *volume.sync);
  } else {
    json.null();
  }
  json.key("verify");
  write_verify(json, volume.verify);
  json.key("backing");
  json.string(volume.backing);
  json.key("writes_replicated");
  json.number(volume.writes_replicated);
  json.key("bytes_resynced");
  json.number(volume.bytes_resynced);
  json.end_object();
}

// Status strings come from the peer link and the disks (error messages, paths); a control
// character in them must not reach the administrator's terminal as an escape sequence.
std::string printable(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    out += (byte < 0x20 || byte == 0x7F) ? '?' : c;
  }
  return out;
}

std::string rate(double bytes_per_second) {
  if (!std::isfinite(bytes_per_second) || bytes_per_second < 0) return "? B/s";
  return human_bytes(static_cast<std::uint64_t>(bytes_per_second)) + "/s";
}

std::string eta(const std::optional<double>& seconds) {
  return seconds ? "ETA " + human_duration(*seconds) : "ETA unknown";
}

std::string percent(std::uint64_t done, std::uint64_t total) {
  const double value = total == 0 ? 100.0 : 100.0 * static_cast<double>(done) / static_cast<double>(total);
  return fmt::format("{:.1f}%", value);
}

std::string round_trip(double ms) {
  // Loopback and LAN round trips are fractions of a millisecond.
  return ms < 1.0 ? fmt::format("round trip {:.2f} ms", ms) : fmt::format("round trip {:.1f} ms", ms);
}

std::string protocol_text(const VolumeStatus& volume) {
  const std::string letter(1, volume.protocol);
  if (volume.protocol_meaning.empty()) return "protocol " + letter;
  // The meaning usually starts with its letter already ("C: a write completes when ...").
  if (volume.protocol_meaning.starts_with(letter + ":")) return "protocol " + printable(volume.protocol_meaning);
  return "protocol " + letter + ": " + printable(volume.protocol_meaning);
}

using Row = std::array<std::string, 6>;

// A line of the text: either free text or a row of the node table, whose columns line up across
// every volume so that the states can be read down one column.
struct Line {
  std::string text;
  std::optional<Row> row;
};

// Columns padded to the widest cell, two spaces apart; no trailing blanks.
std::string render(const std::vector<Line>& lines) {
  std::array<std::size_t, 6> widths{};
  for (const Line& line : lines) {
    if (!line.row) continue;
    for (std::size_t i = 0; i < widths.size(); ++i) widths[i] = std::max(widths[i], (*line.row)[i].size());
  }
  std::string out;
  for (const Line& line : lines) {
    if (!line.row) {
      out += line.text + "\n";
      continue;
    }
    std::string text = "  ";
    for (std::size_t i = 0; i < widths.size(); ++i) {
      if (widths[i] == 0) continue;
      const std::string& cell = (*line.row)[i];
      text += cell;
      text.append(widths[i] - cell.size() + 2, ' ');
    }
    text.erase(text.find_last_not_of(' ') + 1);
    out += text + "\n";
  }
  return out;
}

void describe_volume(std::vector<Line>& lines, const std::string& node, const VolumeStatus& volume) {
  auto add = [&](std::string text) { lines.push_back(Line{std::move(text), std::nullopt}); };
  add(fmt::format("{}  {}  {}", printable(volume.name), human_bytes(volume.size_bytes), protocol_text(volume)));
  // This node has no connection of its own: that cell stays blank so that its states line up with the peers'.
  Row self{printable(node), "(this node)", "", printable(volume.role), printable(volume.disk_state),
           "out of sync " + human_bytes(volume.out_of_sync_bytes)};
  lines.push_back(Line{"", std::move(self)});
  for (const PeerStatus& peer : volume.peers) {
    Row row{printable(peer.node), printable(peer.address), replication::to_string(peer.connection),
            printable(peer.role), printable(peer.disk_state),
            peer.round_trip_ms ? round_trip(*peer.round_trip_ms) : ""};
    lines.push_back(Line{"", std::move(row)});
    if (peer.unauthenticated_connections > 0 || peer.refused_connections > 0) {
      add(fmt::format("  peer port: {} connection(s) not authenticated yet, {} refused since start{}",
                      peer.unauthenticated_connections, peer.refused_connections,
                      peer.last_refused_connection.empty() ? "" : "; last " + printable(peer.last_refused_connection)));
    }
  }
  if (const auto& sync = volume.sync) {
    std::string text =
        fmt::format("  sync{}: {} ({} of {}), {}, {}", sync->full ? " (full)" : "",
                    percent(sync->done_bytes, sync->total_bytes), human_bytes(sync->done_bytes),
                    human_bytes(sync->total_bytes), rate(sync->bytes_per_second), eta(sync->eta_seconds));
    if (sync->skipped_bytes > 0) text += fmt::format(", {} identical (not sent)", human_bytes(sync->skipped_bytes));
    add(std::move(text));
  }
  const VerifyProgress& verify = volume.verify;
  if (verify.running) {
    add(fmt::format("  verify: {} ({} of {}), {}, {}, {} out of sync",
                    percent(verify.checked_bytes, verify.total_bytes), human_bytes(verify.checked_bytes),
                    human_bytes(verify.total_bytes), rate(verify.bytes_per_second), eta(verify.eta_seconds),
                    human_bytes(verify.out_of_sync_bytes)));
  } else if (!verify.finished_at.empty()) {
    add(fmt::format("  verify: last completed {}, {} out of sync", printable(verify.finished_at),
                    human_bytes(verify.out_of_sync_bytes)));
  }
  if (volume.primary_when_peer_met) add("  becomes primary once it has met its peer as secondary");
  for (const PeerStatus& peer : volume.peers) {
    if (peer.last_error.empty()) continue;
    add(fmt::format("  last error from {}: {}", printable(peer.node), printable(peer.last_error)));
  }
}

}  // namespace

std::string json_quote(std::string_view text) {
  std::string out = "\"";
  std::size_t i = 0;
  while (i < text.size()) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x80) {
      const std::size_t length = utf8_sequence_length(text.substr(i));
      if (length == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    const auto escape = std::find_if(std::begin(kJsonEscapes), std::end(kJsonEscapes),
                                     [&](const JsonEscape& e) { return e.byte == static_cast<char>(byte); });
    if (escape != std::end(kJsonEscapes)) {
      out += '\\';
      out += escape->letter;
    } else if (byte < 0x20) {
      out += fmt::format("\\u{:04x}", byte);
    } else {
      out += static_cast<char>(byte);
    }
    ++i;
  }
  return out + "\"";
}

std::string human_duration(double seconds) {
  // Beyond a few years an estimate means "not moving", not a date.
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 1e8) return "?";
  const auto total = static_cast<std::uint64_t>(std::llround(seconds));
  const std::uint64_t hours = total / 3600;
  const std::uint64_t minutes = total / 60 % 60;
  const std::uint64_t rest = total % 60;
  if (hours > 0) return fmt::format("{}:{:02}:{:02}", hours, minutes, rest);
  return fmt::format("{}:{:02}", minutes, rest);
}

std::string status_json(const std::string& node, const std::vector<VolumeStatus>& volumes) {
  JsonWriter json;
  json.begin_object();
  json.key("node");
  json.string(node);
  json.key("volumes");
  json.begin_array();
  for (const VolumeStatus& volume : volumes) write_volume(json, volume);
  json.end_array();
  json.end_object();
  return json.finish();
}

std::string status_text(const std::string& node, const std::vector<VolumeStatus>& volumes) {
  if (volumes.empty()) return fmt::format("node {}: no replicated volumes\n", printable(node));
  std::vector<Line> lines = {Line{fmt::format("node {}", printable(node)), std::nullopt}};
  for (const VolumeStatus& volume : volumes) describe_volume(lines, node, volume);
  return render(lines);
}

}  // namespace freevsa::daemon
