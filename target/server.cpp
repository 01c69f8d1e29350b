#include "target/server.h"

#include <fmt/format.h>

#include <stdexcept>
#include <thread>

#include "target/connection.h"
#include "util/log.h"

namespace freevsa::target {

namespace asio = boost::asio;

Server::Server(const TargetServerConfig& config)
    : config_(config), workers_(config.worker_threads), context_(config, workers_) {}

Server::~Server() { stop(std::chrono::seconds(0)); }

void Server::start() {
  for (const Portal& portal : config_.portals) {
    boost::system::error_code ec;
    auto address = asio::ip::make_address(portal.address, ec);
    if (ec) throw std::runtime_error(fmt::format("portal {}:{}: not an IP address", portal.address, portal.port));
    asio::ip::tcp::endpoint endpoint(address, portal.port);
    auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(io_);
    acceptor->open(endpoint.protocol(), ec);
    if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor->bind(endpoint, ec);
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      throw std::runtime_error(
          fmt::format("portal {}:{}: cannot listen: {}", portal.address, portal.port, ec.message()));
    }
    util::log_info("listening on {}:{}", portal.address, portal.port);
    acceptors_.push_back(std::move(acceptor));
  }
  for (auto& acceptor : acceptors_) accept(*acceptor);
  work_.emplace(io_.get_executor());
  const unsigned threads = std::max(1u, config_.network_threads);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
}

void Server::accept(asio::ip::tcp::acceptor& acceptor) {
  acceptor.async_accept(asio::make_strand(io_), [this, &acceptor](const boost::system::error_code& ec,
                                                                  asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
    if (!ec) {
      auto connection = std::make_shared<Connection>(std::move(socket), context_);
      util::log_debug("{}: connected", connection->peer());
      {
        std::lock_guard lock(context_.connections_mutex);
        context_.connections.insert(connection);
      }
      connection->start();
    } else {
      util::log_warn("accept failed: {}", ec.message());
    }
    accept(acceptor);
  });
}

std::size_t Server::connection_count() {
  std::lock_guard lock(context_.connections_mutex);
  return context_.connections.size();
}

void Server::stop(std::chrono::seconds grace) {
  if (stopped_) return;
  stopped_ = true;
  asio::post(io_, [this] {
    for (auto& acceptor : acceptors_) {
      boost::system::error_code ignored;
      acceptor->close(ignored);
    }
  });
  auto live = [this] {
    std::vector<std::shared_ptr<Connection>> out;
    std::lock_guard lock(context_.connections_mutex);
    for (auto& weak : context_.connections)
      if (auto c = weak.lock()) out.push_back(std::move(c));
    return out;
  };
  if (grace.count() > 0 && !threads_.empty()) {
    for (auto& connection : live()) connection->request_logout(grace);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (connection_count() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& connection : live()) connection->close("target shutting down");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!threads_.empty() && connection_count() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // Commands already on the disks finish before the workers stop; their answers go nowhere.
  workers_.shutdown();
  work_.reset();
  io_.stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace freevsa::target
