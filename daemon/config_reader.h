// Reading values out of the YAML document with "file:line: key.path: reason" errors. Shared by
// the single-node parser (config.cpp) and the cluster parser (cluster_config.cpp); internal to
// freevsa_config, not for the daemon.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config.h"

namespace freevsa::daemon::config_detail {

constexpr std::uint16_t kDefaultIscsiPort = 3260;
// Flat space LUN addressing (SAM-5) reaches 16383; peripheral addressing only 255.
constexpr std::uint64_t kMaxLun = 16383;

// A value inside the document together with where it is and what it is called, so that every
// check can produce "file:line: path: reason" without threading three arguments around.
struct Field {
  YAML::Node node;
  std::string path;
  int line = 1;  // 1-based
};

std::string describe(const YAML::Node& node);
std::string child_path(const std::string& parent, std::string_view key);
// " (did you mean 'x'?)" when `name` is a near miss or an unambiguous prefix of one of `known`.
std::string did_you_mean(std::string_view name, const std::vector<std::string_view>& known);
// 0.0.0.0 or :: (listens everywhere, never an address to connect to).
bool is_wildcard(const std::string& canonical_address);
// 127.0.0.0/8 or ::1: only this machine reaches it.
bool is_loopback(const std::string& canonical_address);
// How an address:port is written in messages: IPv6 in brackets.
std::string endpoint_text(const PortalConfig& endpoint);

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  // A map whose keys have been checked against what the schema knows, each present once.
  class MapView {
   public:
    MapView(const Reader& reader, const Field& field, std::initializer_list<std::string_view> known);
    std::optional<Field> get(std::string_view key) const;
    Field require(std::string_view key) const;
    const Field& field() const { return field_; }
    // Every entry, in key order, for maps whose keys are names (per-node maps).
    const std::map<std::string, Field, std::less<>>& entries() const { return entries_; }

   private:
    MapView(const Reader& reader, const Field& field);
    void add(const YAML::Node& key, const YAML::Node& value);

    const Reader& reader_;
    Field field_;
    std::map<std::string, Field, std::less<>> entries_;
    friend class Reader;
  };

  // Parses the one YAML document of the file; syntax errors become ConfigError.
  YAML::Node load(const std::string& yaml_text) const;
  // A map with any (scalar, unique) keys: the caller checks them.
  MapView open_map(const Field& field) const;

  [[noreturn]] void fail(int line, std::string_view path, std::string_view reason) const;
  [[noreturn]] void fail(const Field& field, std::string_view reason) const { fail(field.line, field.path, reason); }
  // Something the file may say but probably should not; collected in warnings(), same form as errors.
  void warn(const Field& field, std::string_view reason) const;
  const std::vector<std::string>& warnings() const { return warnings_; }

  std::vector<Field> sequence(const Field& field) const;
  std::string scalar(const Field& field, std::string_view what) const;
  std::string text(const Field& field, std::size_t max_bytes) const;
  // 1..max_bytes of [A-Za-z0-9._-], starting with a letter or digit: node, volume, cluster names.
  std::string name(const Field& field, std::size_t max_bytes) const;
  std::uint64_t number(const Field& field, std::uint64_t min, std::uint64_t max) const;
  std::uint64_t size(const Field& field, std::uint64_t min, std::uint64_t max) const;
  // "500ms", "2s", "1m" or a bare number of seconds.
  std::chrono::milliseconds duration(const Field& field, std::chrono::milliseconds min,
                                     std::chrono::milliseconds max) const;
  bool boolean(const Field& field) const;
  std::string iscsi_name(const Field& field) const;
  // "address[:port]", "[v6][:port]" or {address, port}; IP literals only, returned canonical.
  PortalConfig endpoint(const Field& field, std::uint16_t default_port) const;

  const std::string& source() const { return source_; }

 private:
  void check_documents(const std::string& yaml_text) const;
  std::string located(int line, std::string_view path, std::string_view reason) const;

  std::string source_;
  mutable std::vector<std::string> warnings_;  // reading is const; noticing is not a change of the result
};

}  // namespace freevsa::daemon::config_detail

namespace freevsa::daemon::config_detail {

// The access keys of a target or volume (config_access.cpp).
//
// chap_key and mutual_key of `map` (chap and mutual_chap, or discovery_chap and
// discovery_mutual_chap): both absent leaves the outputs alone.
void read_chap_pair(const Reader& reader, const Reader::MapView& map, std::string_view chap_key,
                    std::string_view mutual_key, std::optional<ChapConfig>& chap, std::optional<ChapConfig>& mutual);
// chap, mutual_chap and allowed_initiators of `map` over `defaults`: chap or mutual_chap given
// replaces the defaults' pair, allowed_initiators given (even empty) replaces their list.
TargetAccess read_access(const Reader& reader, const Reader::MapView& map, const TargetAccess& defaults);
// A portal and whose it is ("" on a single node, else "node NAME").
struct ServedPortal {
  Endpoint endpoint;
  std::string owner;
};
// Warns at `where` when `access` lets every initiator in that reaches one of `portals` from
// another machine; `what` names the target or volume.
void warn_if_exposed(const Reader& reader, const Field& where, std::string_view what, const TargetAccess& access,
                     const std::vector<ServedPortal>& portals, std::string_view remedy);

// The cluster form (cluster_config.cpp): reads and cross-checks the cluster, nodes and volumes
// sections of the top-level map and computes the hashes.
ClusterConfig read_cluster(const Reader& reader, const Reader::MapView& root);
// What node `node` ("" when none was given) runs; fails at the nodes section when it is not listed.
LocalCluster resolve_node(const Reader& reader, const Reader::MapView& root, const ClusterConfig& cluster,
                          const std::string& node);

}  // namespace freevsa::daemon::config_detail
