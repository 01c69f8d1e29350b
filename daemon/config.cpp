#include "daemon/config.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <string_view>
#include <utility>

#include "daemon/config_reader.h"

namespace freevsa::daemon {
namespace {

using config_detail::child_path;
using config_detail::describe;
using config_detail::Field;
using config_detail::kMaxLun;
using config_detail::Reader;
using MapView = Reader::MapView;

// RFC 7143 section 13.12: MaxRecvDataSegmentLength, MaxBurstLength and FirstBurstLength.
constexpr std::uint64_t kMinSegment = 512;
constexpr std::uint64_t kMaxSegment = 16777215;

struct ParsedTarget {
  TargetConfig config;
  Field iqn;
  std::vector<Field> lun_paths;
};

// The single-node form and the settings both forms share.
class Parser : private Reader {
 public:
  using Reader::Reader;

  Config parse(const std::string& text, const std::optional<std::string>& node);

 private:
  ParsedTarget target(const Field& field) const;
  LunConfig lun(const Field& field, Field& path_field) const;
  void iscsi_limits(const Field& field, Config& config) const;
  void resource_limits(const Field& field, target::ResourceLimits& limits) const;
  void single_node(const MapView& map, Config& config) const;
  void common(const MapView& map, Config& config) const;
};

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

  target.access = config_detail::read_access(*this, map, {});
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

void Parser::resource_limits(const Field& field, target::ResourceLimits& limits) const {
  MapView map(*this, field,
              {"connections_per_portal", "connections_per_initiator_address", "login_timeout_seconds",
               "data_out_timeout_seconds", "data_out_buffer_per_connection", "data_out_buffer_total"});
  if (auto f = map.get("connections_per_portal")) limits.connections_per_portal = number(*f, 1, 1000000);
  if (auto f = map.get("connections_per_initiator_address"))
    limits.connections_per_initiator_address = number(*f, 1, 1000000);
  if (auto f = map.get("login_timeout_seconds"))
    limits.login_timeout_seconds = static_cast<unsigned>(number(*f, 1, 3600));
  if (auto f = map.get("data_out_timeout_seconds"))
    limits.data_out_timeout_seconds = static_cast<unsigned>(number(*f, 1, 3600));
  // Below the largest transfer a write of that length could never start: TASK SET FULL forever.
  constexpr std::uint64_t kMaxBudget = std::uint64_t{1} << 50;
  if (auto f = map.get("data_out_buffer_per_connection"))
    limits.data_out_bytes_per_connection = size(*f, target::kMaxTransferBytes, kMaxBudget);
  if (auto f = map.get("data_out_buffer_total")) {
    limits.data_out_bytes_total = size(*f, target::kMaxTransferBytes, kMaxBudget);
    if (limits.data_out_bytes_total < limits.data_out_bytes_per_connection) {
      fail(*f, fmt::format("must not be less than data_out_buffer_per_connection ({}), got {}",
                           limits.data_out_bytes_per_connection, limits.data_out_bytes_total));
    }
  } else {
    // Only the per-connection budget was raised: the total follows it rather than fault the default.
    limits.data_out_bytes_total = std::max(limits.data_out_bytes_total, limits.data_out_bytes_per_connection);
  }
}

void Parser::single_node(const MapView& map, Config& config) const {
  Field portals_field = map.require("portals");
  std::vector<Field> portals = sequence(portals_field);
  if (portals.empty()) fail(portals_field, "at least one portal is needed");
  std::map<std::pair<std::string, std::uint16_t>, int> portal_lines;
  for (const Field& item : portals) {
    PortalConfig portal = endpoint(item, config_detail::kDefaultIscsiPort);
    if (auto [it, inserted] = portal_lines.emplace(std::pair(portal.address, portal.port), item.line); !inserted) {
      fail(item, fmt::format("portal {} is listed twice (first at line {})", config_detail::endpoint_text(portal),
                             it->second));
    }
    config.portals.push_back(std::move(portal));
  }

  Field targets_field = map.require("targets");
  std::vector<Field> targets = sequence(targets_field);
  if (targets.empty()) fail(targets_field, "at least one target is needed");
  std::map<std::string, int> iqn_lines;
  std::map<std::string, std::string> path_owners;
  std::vector<config_detail::ServedPortal> served;
  for (const PortalConfig& portal : config.portals) served.push_back({portal, ""});
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
    config_detail::warn_if_exposed(*this, item, fmt::format("target '{}'", target.config.iqn), target.config.access,
                                   served, "set chap or allowed_initiators");
    config.targets.push_back(std::move(target.config));
  }
}

void Parser::common(const MapView& map, Config& config) const {
  config_detail::read_chap_pair(*this, map, "discovery_chap", "discovery_mutual_chap", config.discovery_chap,
                                config.discovery_mutual_chap);

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
  if (auto f = map.get("limits")) resource_limits(*f, config.resources);
}

// This node's iSCSI side of a cluster file, in the single-node shape the target server is built
// from: its portals, and one target per distinct volume target name.
void derive_targets(const LocalCluster& local, Config& config) {
  config.portals = local.self.portals;
  for (const LocalVolume& volume : local.volumes) {
    auto target = std::find_if(config.targets.begin(), config.targets.end(),
                               [&](const TargetConfig& t) { return t.iqn == volume.target_iqn; });
    if (target == config.targets.end()) {
      // Volumes behind one target have the same access (read_cluster checks).
      config.targets.push_back(TargetConfig{.iqn = volume.target_iqn, .access = volume.access});
      target = config.targets.end() - 1;
    }
    target->luns.push_back(LunConfig{.number = volume.lun,
                                     .path = volume.backing_path,
                                     .size_bytes = volume.size_bytes,
                                     .block_size = volume.block_size,
                                     .direct_io = volume.direct_io});
  }
}

Config Parser::parse(const std::string& yaml_text, const std::optional<std::string>& node) {
  YAML::Node document = load(yaml_text);
  if (document.IsNull()) fail(1, "", "the file has no settings; it needs at least 'portals' and 'targets'");
  Field root{document, "", document.Mark().is_null() ? 1 : document.Mark().line + 1};
  if (!root.node.IsMap()) {
    fail(root, fmt::format("the top level must be a map of settings (portals:, targets:, ...), got {}",
                           describe(root.node)));
  }
  MapView map(*this, root,
              {"portals", "targets", "discovery_chap", "discovery_mutual_chap", "log_level", "network_threads",
               "worker_threads", "nop_interval_seconds", "nop_timeout_seconds", "iscsi", "limits", "cluster",
               "nodes", "volumes"});
  Config config;
  config.source_path = source();

  std::optional<Field> cluster_key = map.get("nodes");
  if (!cluster_key) cluster_key = map.get("volumes");
  if (!cluster_key) cluster_key = map.get("cluster");
  if (!cluster_key) {
    if (node && !node->empty()) {
      fail(root.line, "",
           fmt::format("--node {} was given, but this file describes a single node (it has no 'nodes' section)",
                       *node));
    }
    single_node(map, config);
    common(map, config);
    config.warnings = warnings();
    return config;
  }

  // A cluster file: every node serves the volumes it replicates; portals and targets follow
  // from nodes and volumes, so writing them as well could only contradict.
  if (auto portals = map.get("portals")) {
    fail(portals->line, "portals",
         "a cluster file lists the iSCSI portals per node (nodes[].portals), not at the top level");
  }
  if (auto targets = map.get("targets")) {
    fail(targets->line, "targets",
         "a cluster file exports volumes (volumes[].target and volumes[].lun); it has no 'targets' section");
  }
  for (std::string_view key : {"cluster", "nodes", "volumes"}) {
    if (!map.get(key)) {
      fail(root.line, key,
           fmt::format("required: '{}' makes this a cluster file, which needs 'cluster', 'nodes' and 'volumes'",
                       cluster_key->path));
    }
  }
  config.cluster = config_detail::read_cluster(*this, map);
  common(map, config);
  if (node) {
    config.local = config_detail::resolve_node(*this, map, *config.cluster, *node);
    derive_targets(*config.local, config);
  }
  config.warnings = warnings();
  return config;
}


Config parse(const std::string& yaml_text, const std::string& source_name, const std::optional<std::string>& node) {
  try {
    return Parser(source_name).parse(yaml_text, node);
  } catch (const YAML::Exception& e) {
    // Only reachable through a yaml-cpp quirk on a document we already accepted as syntax; still
    // a configuration problem, not a reason to let a foreign exception type escape.
    throw ConfigError(fmt::format("{}:{}: {}", source_name, e.mark.is_null() ? 1 : e.mark.line + 1, e.msg));
  }
}

std::string read_file(const std::string& path) {
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
  return text;
}

}  // namespace

Config parse_config(const std::string& yaml_text, const std::string& source_name) {
  return parse(yaml_text, source_name, std::nullopt);
}

Config parse_config(const std::string& yaml_text, const std::string& source_name, const std::string& node) {
  return parse(yaml_text, source_name, node);
}

Config load_config(const std::string& path) { return parse(read_file(path), path, std::nullopt); }

Config load_config(const std::string& path, const std::string& node) { return parse(read_file(path), path, node); }

}  // namespace freevsa::daemon
