// freevsa: one process per node that serves iSCSI targets on local volumes.
//
//   freevsa serve --config FILE [--node NAME]    run in the foreground until SIGINT/SIGTERM
//   freevsa check-config --config FILE           parse and validate, touch nothing
//   freevsa --version
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/node.h"
#include "target/server.h"
#include "util/log.h"

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  freevsa serve --config FILE [--node NAME]   serve the configured targets (foreground)\n"
    "  freevsa check-config --config FILE          validate a configuration file\n"
    "  freevsa --version\n";

struct Arguments {
  std::string command;
  std::string config;
  std::string node;
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
    } else {
      error = "unknown argument '" + a + "'";
      return false;
    }
  }
  if ((out.command == "serve" || out.command == "check-config") && out.config.empty()) {
    error = out.command + " needs --config FILE";
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

int serve(const freevsa::daemon::Config& config) {
  using namespace freevsa;
  // Block the stop signals in every thread; the main thread waits for them below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  daemon::Node node(config);
  target::Server server(node.target_config());
  server.start();
  util::log_info("freevsa serving {} target(s); stop with SIGINT or SIGTERM", node.target_config().targets.size());

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  util::log_info("{} received: logging sessions out and flushing", strsignal(signal_number));
  server.stop();
  node.flush_all();
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
    return 0;
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
      if (config.cluster) {
        std::printf("%s: valid cluster '%s' (%zu node(s), %zu volume(s), configuration hash %s)\n",
                    args.config.c_str(), config.cluster->name.c_str(), config.cluster->nodes.size(),
                    config.cluster->volumes.size(), daemon::to_hex(config.cluster->config_hash).c_str());
      } else {
        std::printf("%s: valid (%zu target(s))\n", args.config.c_str(), config.targets.size());
      }
      return 0;
    }
    if (args.command == "serve") {
      daemon::Config config = daemon::load_config(args.config, args.node);
      util::set_log_level(level_from(config.log_level));
      if (config.cluster) {
        // Serving a cluster volume from one node without replicating it would let two nodes
        // accept different writes under one device identity. Refuse until replication runs.
        std::fprintf(stderr,
                     "freevsa: %s describes a replicated cluster; replication is not available in this "
                     "build yet, so its volumes are not served (single-node files such as "
                     "etc/freevsa.yaml are)\n",
                     args.config.c_str());
        return 1;
      }
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
