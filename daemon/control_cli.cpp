#include "daemon/control_cli.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <exception>
#include <variant>

#include "daemon/control_auth.h"
#include "daemon/control_client.h"
#include "daemon/control_token.h"
#include "daemon/status_render.h"

namespace freevsa::daemon {

namespace {

constexpr std::array<const char*, 5> kCommands = {"status", "promote", "demote", "verify", "reconnect"};

constexpr int kExitDone = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

ControlArguments usage_error(std::string error) {
  ControlArguments result;
  result.error = std::move(error);
  return result;
}

bool is_unreserved(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// Volume names are plain words, but a mistyped one must arrive as typed, not as another query.
std::string form_encode(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (is_unreserved(c)) {
      out += c;
    } else {
      out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
    }
  }
  return out;
}

// control_request's reason already names the address and asks whether the node runs; our own
// message says both more precisely, so only the cause itself is kept.
std::string connection_cause(const std::string& error, const Endpoint& endpoint) {
  const std::string suffix = fmt::format(" at {}:{} (is the node running?)", endpoint.address, endpoint.port);
  if (error.size() > suffix.size() && error.ends_with(suffix)) return error.substr(0, error.size() - suffix.size());
  return error;
}

void print(std::FILE* stream, const std::string& text) {
  std::fputs(text.c_str(), stream);
  if (!text.empty() && text.back() != '\n') std::fputc('\n', stream);
}

// The node as the configuration file describes it (its control endpoint and token file), or the
// exit status when the command cannot go on (the reason has been printed).
std::variant<ClusterNode, int> find_node(const ControlCommand& command) {
  try {
    if (!command.node.empty()) return load_config(command.config_path, command.node).local.value().self;
    // Only a cluster file has nodes to ask; it needs the node named.
    Config config = load_config(command.config_path);
    if (!config.cluster) {
      fmt::print(stderr, "freevsa: {} describes a single node without replication: it has no replicated volumes\n",
                 command.config_path);
      return kExitUsage;
    }
    std::vector<std::string> names;
    for (const ClusterNode& node : config.cluster->nodes) names.push_back(node.name);
    fmt::print(stderr, "freevsa: {} describes the cluster '{}' of nodes {}: name the node to ask with --node NAME\n",
               command.config_path, config.cluster->name, fmt::join(names, ", "));
    return kExitUsage;
  } catch (const std::exception& e) {
    fmt::print(stderr, "freevsa: configuration error: {}\n", e.what());
    return kExitFailed;
  }
}

}  // namespace

const char* const kControlUsage =
    "  freevsa status --config FILE [--node NAME] [--json] [VOLUME]   show the replicated volumes\n"
    "  freevsa promote VOLUME --config FILE [--node NAME] [--force]   make this node primary\n"
    "  freevsa demote VOLUME --config FILE [--node NAME]              make this node secondary\n"
    "  freevsa verify VOLUME --config FILE [--node NAME]              compare the data with the peer's\n"
    "  freevsa reconnect VOLUME --config FILE [--node NAME]           drop and re-establish the peer link\n";

bool is_control_command(const std::string& name) {
  return std::find(kCommands.begin(), kCommands.end(), name) != kCommands.end();
}

ControlArguments parse_control_arguments(const std::vector<std::string>& args) {
  if (args.empty()) return usage_error("no command given");
  ControlCommand command;
  command.command = args[0];
  if (!is_control_command(command.command)) return usage_error(fmt::format("unknown command '{}'", command.command));
  bool have_config = false;
  bool have_node = false;
  bool have_volume = false;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    // "--config FILE" or "--config=FILE"
    auto option_value = [&](const std::string& name, std::string& into, bool& seen) -> std::optional<std::string> {
      if (seen) return fmt::format("{} is given twice", name);
      seen = true;
      if (arg.size() > name.size() && arg[name.size()] == '=') {
        into = arg.substr(name.size() + 1);
      } else if (i + 1 < args.size()) {
        into = args[++i];
      } else {
        return fmt::format("{} needs a value", name);
      }
      if (into.empty()) return fmt::format("{} needs a value", name);
      return std::nullopt;
    };
    auto is_option = [&](std::string_view name) { return arg == name || arg.starts_with(std::string(name) + "="); };
    std::optional<std::string> error;
    if (is_option("--config")) {
      error = option_value("--config", command.config_path, have_config);
    } else if (arg == "-c") {
      error = option_value("-c", command.config_path, have_config);
    } else if (is_option("--node")) {
      error = option_value("--node", command.node, have_node);
    } else if (arg == "--json") {
      if (command.command != "status") error = "--json applies to status only";
      command.json = true;
    } else if (arg == "--force") {
      if (command.command != "promote") error = "--force applies to promote only";
      command.force = true;
    } else if (arg.starts_with('-')) {
      error = fmt::format("unknown option '{}'", arg);
    } else if (have_volume) {
      error = fmt::format("one volume at a time: '{}' and '{}'", command.volume, arg);
    } else {
      command.volume = arg;
      have_volume = true;
    }
    if (error) return usage_error(*error);
  }
  if (!have_config) return usage_error(fmt::format("{} needs --config FILE", command.command));
  if (command.command != "status" && !have_volume) {
    return usage_error(fmt::format("{} needs the volume: freevsa {} VOLUME --config FILE --node NAME", command.command,
                                   command.command));
  }
  ControlArguments result;
  result.command = std::move(command);
  return result;
}

ControlCall control_call(const ControlCommand& command) {
  if (command.command == "status") {
    std::string path = command.json ? "/v1/status" : "/v1/status.txt";
    if (!command.volume.empty()) path += "?volume=" + form_encode(command.volume);
    return {"GET", path, ""};
  }
  std::string body = "{\"volume\": " + json_quote(command.volume);
  if (command.force) body += ", \"force\": true";
  return {"POST", "/v1/" + command.command, body + "}"};
}

namespace {
// The token to present, "" for none, or the exit status when the command cannot go on.
std::variant<std::string, int> control_token_for(const ControlCommand& command, const std::string& path) {
  ControlTokenRead read = read_control_token(path);
  if (read.error.empty()) return read.token;
  // The status is open to every local user; only what changes state needs the token.
  if (command.command == "status") return std::string();
  fmt::print(stderr, "freevsa: cannot read the control token of node '{}' in {}: {}; '{}' changes state and needs it "
             "(run it as the user the node runs as; the node creates the file when it first starts)\n",
             command.node, path, read.error, command.command);
  return kExitFailed;
}
}  // namespace

int run_control_cli(const std::vector<std::string>& args) {
  ControlArguments parsed = parse_control_arguments(args);
  if (!parsed.command) {
    fmt::print(stderr, "freevsa: {}\nusage:\n{}", parsed.error, kControlUsage);
    return kExitUsage;
  }
  const ControlCommand& command = *parsed.command;
  std::variant<ClusterNode, int> node = find_node(command);
  if (const int* exit_status = std::get_if<int>(&node)) return *exit_status;
  const Endpoint& address = std::get<ClusterNode>(node).control;
  std::variant<std::string, int> token = control_token_for(command, std::get<ClusterNode>(node).control_token);
  if (const int* exit_status = std::get_if<int>(&token)) return *exit_status;

  const ControlCall call = control_call(command);
  ControlReply reply =
      control_request(address.address, address.port, call.method, call.path, call.body, std::get<std::string>(token));
  if (reply.status == 0) {
    fmt::print(stderr, "freevsa: node '{}' is not reachable at {} (is 'freevsa serve --config {} --node {}' running?): "
               "{}\n", command.node, host_header_of(address.address, address.port), command.config_path, command.node,
               connection_cause(reply.error, address));
    return kExitUnreachable;
  }
  if (reply.status >= 200 && reply.status < 300) {
    print(stdout, reply.body);
    return kExitDone;
  }
  print(stderr, reply.body.empty() ? fmt::format("freevsa: the node answered HTTP {}", reply.status) : reply.body);
  return kExitFailed;
}

}  // namespace freevsa::daemon
