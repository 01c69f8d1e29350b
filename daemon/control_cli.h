// The administrator's commands that talk to a running node over its control endpoint:
//
//   freevsa status    --config FILE [--node NAME] [--json] [VOLUME]
//   freevsa promote   VOLUME --config FILE [--node NAME] [--force]
//   freevsa demote    VOLUME --config FILE [--node NAME]
//   freevsa verify    VOLUME --config FILE [--node NAME]
//   freevsa reconnect VOLUME --config FILE [--node NAME]
//
// The file is a cluster file and --node names the node to ask (without it the command lists the
// nodes). The node's control endpoint and its token file come from the file (nodes[].control,
// nodes[].control_token), so the command needs the same file the node runs with, run from the
// same directory when the file's paths are relative. Commands that change state present the token
// and so must be run by a user who can read it (the one the node runs as); status does not need it. What the node answers goes to stdout when it succeeded, to
// stderr when not.
//
// Exit status: 0 done; 1 refused or failed (the node's answer says why), a configuration error or
// a token that cannot be read; 2 bad usage; 3 the node could not be reached.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "daemon/cluster_config.h"
#include "daemon/config.h"

namespace freevsa::daemon {

// The command names above; main dispatches these to run_control_cli().
bool is_control_command(const std::string& name);
// Usage lines for the commands above, for `freevsa --help` and usage errors.
extern const char* const kControlUsage;

// args[0] is the command, the rest its arguments (argv without the program name).
int run_control_cli(const std::vector<std::string>& args);

// --- the steps of run_control_cli, separate so that they can be tested without a node ---

struct ControlCommand {
  std::string command;      // status, promote, demote, verify, reconnect
  std::string config_path;
  std::string node;         // "" when --node was not given
  std::string volume;       // for status "" means every volume
  bool json = false;        // status only
  bool force = false;       // promote only
};

struct ControlArguments {
  std::optional<ControlCommand> command;
  std::string error;  // when there is no command: what is wrong with the arguments
};
ControlArguments parse_control_arguments(const std::vector<std::string>& args);

struct ControlCall {
  std::string method;
  std::string path;
  std::string body;
};
// The HTTP request (control_api.h) that carries out `command`.
ControlCall control_call(const ControlCommand& command);

}  // namespace freevsa::daemon
