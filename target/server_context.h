// What every connection of the server shares: the configuration it serves, the session table,
// the workers that execute SCSI commands, the set of live connections (for shutdown), and the
// bounds on connections and Data-Out memory.
#pragma once

#include <memory>
#include <mutex>
#include <set>

#include "target/connection_limiter.h"
#include "target/data_out_budget.h"
#include "target/session_table.h"
#include "target/target_config.h"
#include "util/worker_pool.h"

namespace freevsa::target {

class Connection;

struct ServerContext {
  ServerContext(const TargetServerConfig& config_in, util::WorkerPool& workers_in)
      : config(config_in),
        workers(workers_in),
        limiter(config_in.portals.size(), config_in.resources.connections_per_portal,
                config_in.resources.connections_per_initiator_address),
        data_out(std::make_shared<DataOutBudget>(config_in.resources.data_out_bytes_total)) {}

  const TargetServerConfig& config;
  util::WorkerPool& workers;
  SessionTable sessions;
  ConnectionLimiter limiter;
  std::shared_ptr<DataOutBudget> data_out;  // the whole process's

  std::mutex connections_mutex;
  std::set<std::weak_ptr<Connection>, std::owner_less<std::weak_ptr<Connection>>> connections;
};

}  // namespace freevsa::target
