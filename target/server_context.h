// What every connection of the server shares: the configuration it serves, the session table,
// the workers that execute SCSI commands, and the set of live connections (for shutdown).
#pragma once

#include <memory>
#include <mutex>
#include <set>

#include "target/session_table.h"
#include "target/target_config.h"
#include "util/worker_pool.h"

namespace freevsa::target {

class Connection;

struct ServerContext {
  ServerContext(const TargetServerConfig& config_in, util::WorkerPool& workers_in)
      : config(config_in), workers(workers_in) {}

  const TargetServerConfig& config;
  util::WorkerPool& workers;
  SessionTable sessions;

  std::mutex connections_mutex;
  std::set<std::weak_ptr<Connection>, std::owner_less<std::weak_ptr<Connection>>> connections;
};

}  // namespace freevsa::target
