// freevsa: one process per node that serves iSCSI targets on local or replicated volumes.
//
//   freevsa serve --config FILE [--node NAME]    run in the foreground until SIGINT/SIGTERM
//   freevsa check-config --config FILE           parse and validate, touch nothing
//   freevsa create-md VOLUME --config FILE --node NAME [--in-sync] [--force]
//   freevsa status|promote|demote|verify|reconnect ...   ask a running node (control_cli.h)
//   freevsa --version
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/control_api.h"
#include "daemon/control_cli.h"
#include "daemon/control_server.h"
#include "daemon/control_token.h"
#include "daemon/node.h"
#include "daemon/node_replicas.h"
#include "target/server.h"
#include "util/log.h"

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  freevsa serve --config FILE [--node NAME]   serve the configured targets (foreground)\n"
    "  freevsa check-config --config FILE          validate a configuration file\n"
    "  freevsa create-md VOLUME --config FILE --node NAME [--in-sync] [--force]\n"
    "                                              write fresh replication metadata for this node's replica\n"
    "  freevsa --version\n";

struct Arguments {
  std::string command;
  std::string config;
  std::string node;
  std::string volume;  // create-md
  bool in_sync = false;
  bool force = false;
};

bool parse_arguments(int argc, char** argv, Arguments& out, std::string& error) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    error = "no command given";
    return false;
  }
  out.command = args[0];
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string& into) {
      if (i + 1 >= args.size()) {
        error = a + " needs a value";
        return false;
      }
      into = args[++i];
      return true;
    };
    if (a == "--config" || a == "-c") {
      if (!value(out.config)) return false;
    } else if (a == "--node") {
      if (!value(out.node)) return false;
    } else if (out.command == "create-md" && a == "--in-sync") {
      out.in_sync = true;
    } else if (out.command == "create-md" && a == "--force") {
      out.force = true;
    } else if (out.command == "create-md" && out.volume.empty() && !a.empty() && a[0] != '-') {
      out.volume = a;
    } else {
      error = "unknown argument '" + a + "'";
      return false;
    }
  }
  if ((out.command == "serve" || out.command == "check-config" || out.command == "create-md") && out.config.empty()) {
    error = out.command + " needs --config FILE";
    return false;
  }
  if (out.command == "create-md" && (out.volume.empty() || out.node.empty())) {
    error = "create-md needs a VOLUME and --node NAME";
    return false;
  }
  return true;
}

freevsa::util::LogLevel level_from(const std::string& name) {
  using freevsa::util::LogLevel;
  if (name == "debug") return LogLevel::Debug;
  if (name == "warn") return LogLevel::Warn;
  if (name == "error") return LogLevel::Error;
  return LogLevel::Info;
}

// Every connection costs a descriptor: take all the hard limit allows (service managers often
// start a process with a soft limit of 1024), and say so when the connection caps cannot be
// reached with what is left.
void raise_descriptor_limit(const freevsa::daemon::Config& config) {
  using namespace freevsa;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  if (limit.rlim_cur < limit.rlim_max) {
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = before;
  }
  const std::uint64_t wanted = config.resources.connections_per_portal * config.portals.size();
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < wanted) {
    util::log_warn("only {} file descriptors (ulimit -n) for up to {} iSCSI connections: beyond that, accepting "
                   "pauses until connections close",
                   static_cast<std::uint64_t>(limit.rlim_cur), wanted);
  }
}

int serve(const freevsa::daemon::Config& config) {
  using namespace freevsa;
  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  // A write past a file-size limit (RLIMIT_FSIZE) is an I/O error of that volume, not a reason to die.
  signal(SIGXFSZ, SIG_IGN);
  raise_descriptor_limit(config);

  // Only a cluster has a control endpoint; its token exists before anything else is opened.
  const std::string control_token = config.cluster ? daemon::ensure_control_token(config.local->self.control_token) : "";
  // A cluster file's volumes are replicated: their storage and links come first, the targets
  // serve them.
  std::unique_ptr<daemon::NodeReplicas> replicas;
  if (config.cluster) replicas = std::make_unique<daemon::NodeReplicas>(config);
  daemon::Node node(config, [&](const daemon::LunConfig& lun) -> replication::Volume* {
    return replicas ? replicas->volume_for(lun) : nullptr;
  });
  // Its handlers use the replicas: it goes first.
  daemon::ControlServer control(control_token);
  if (replicas) {
    replicas->start();
    daemon::register_control_api(control, replicas->manager(), config.local->self.name);
    const daemon::Endpoint& endpoint = config.local->self.control;
    control.start(endpoint.address, endpoint.port);
    util::log_info("control endpoint on {}:{}, token in {} (freevsa status --config {} --node {})", endpoint.address,
                   control.port(), config.local->self.control_token, config.source_path, config.local->self.name);
  }
  target::Server server(node.target_config());
  server.start();
  util::log_info("freevsa serving {} target(s); stop with SIGINT or SIGTERM", node.target_config().targets.size());
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  util::log_info("{} received: logging sessions out and flushing", strsignal(signal_number));
  server.stop();
  node.flush_all();
  if (replicas) {
    control.stop();
    replicas->stop();
  }
  util::log_info("stopped cleanly");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace freevsa;
  if (argc >= 2 && (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "version") == 0)) {
    std::printf("freevsa %s\n", FREEVSA_VERSION);
    return 0;
  }
  if (argc >= 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::fputs(kUsage, stdout);
    std::fputs(daemon::kControlUsage, stdout);
    return 0;
  }
  if (argc >= 2 && daemon::is_control_command(argv[1])) {
    return daemon::run_control_cli(std::vector<std::string>(argv + 1, argv + argc));
  }
  Arguments args;
  std::string error;
  if (!parse_arguments(argc, argv, args, error)) {
    std::fprintf(stderr, "freevsa: %s\n%s", error.c_str(), kUsage);
    return 2;
  }
  try {
    if (args.command == "check-config") {
      daemon::Config config =
          args.node.empty() ? daemon::load_config(args.config) : daemon::load_config(args.config, args.node);
      for (const std::string& warning : config.warnings) std::fprintf(stderr, "freevsa: warning: %s\n", warning.c_str());
      if (config.cluster) {
        std::printf("%s: valid cluster '%s' (%zu node(s), %zu volume(s), configuration hash %s)\n",
                    args.config.c_str(), config.cluster->name.c_str(), config.cluster->nodes.size(),
                    config.cluster->volumes.size(), daemon::to_hex(config.cluster->config_hash).c_str());
      } else {
        std::printf("%s: valid (%zu target(s))\n", args.config.c_str(), config.targets.size());
      }
      return 0;
    }
    if (args.command == "create-md") {
      daemon::Config config = daemon::load_config(args.config, args.node);
      return daemon::create_metadata(config, daemon::CreateMetadataOptions{args.volume, args.in_sync, args.force});
    }
    if (args.command == "serve") {
      daemon::Config config = daemon::load_config(args.config, args.node);
      util::set_log_level(level_from(config.log_level));
      for (const std::string& warning : config.warnings) util::log_warn("configuration: {}", warning);
      return serve(config);
    }
    std::fprintf(stderr, "freevsa: unknown command '%s'\n%s", args.command.c_str(), kUsage);
    return 2;
  } catch (const daemon::ConfigError& e) {
    std::fprintf(stderr, "freevsa: configuration error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "freevsa: %s\n", e.what());
    return 1;
  }
}
