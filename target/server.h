// The iSCSI target server: listens on every portal, runs connections on a small set of network
// threads, and executes SCSI commands on a worker pool so disk I/O never blocks the network.
//
// Accepting: a connection beyond the per-portal or per-address cap is closed at once (logged,
// at most one line per 10 s per portal). When the process is out of descriptors or memory, a
// portal stops accepting for 100 ms and tries again; what waits meanwhile stays in the
// kernel's listen backlog.
//
// Lifetime: start() once, stop() once (also called by the destructor). The configuration and the
// LUNs it names must outlive the Server.
#pragma once

#include "util/asio.h"

#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "target/server_context.h"
#include "target/target_config.h"
#include "util/worker_pool.h"

namespace freevsa::target {

class Server {
 public:
  explicit Server(const TargetServerConfig& config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every portal and starts serving. Throws std::runtime_error naming the portal that
  // could not be bound (start-up edge).
  void start();
  // Stops accepting, asks logged-in initiators to log out, waits up to `grace` for them, closes
  // what is left, then waits for every command already handed to the disks.
  void stop(std::chrono::seconds grace = std::chrono::seconds(3));

  std::size_t connection_count();

 private:
  struct Listener;  // one portal's acceptor, its strand and retry timer (server.cpp)
  void accept(Listener& listener);
  void admit(Listener& listener, boost::asio::ip::tcp::socket socket);
  void back_off(Listener& listener, const boost::system::error_code& ec);

  const TargetServerConfig& config_;
  util::WorkerPool workers_;
  ServerContext context_;
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace freevsa::target
