#include "target/server.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <iterator>
#include <stdexcept>
#include <thread>

#include "target/connection.h"
#include "util/log.h"
#include "util/log_throttle.h"

namespace freevsa::target {

namespace asio = boost::asio;

namespace {
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);
constexpr auto kLogInterval = std::chrono::seconds(10);

// Errors that say the process (or the system) is out of something that only time gives back:
// accepting again at once would fail again at once.
bool resource_shortage(const boost::system::error_code& ec) {
  static constexpr int kShortages[] = {EMFILE, ENFILE, ENOBUFS, ENOMEM};
  if (ec.category() != boost::system::system_category()) return false;
  return std::find(std::begin(kShortages), std::end(kShortages), ec.value()) != std::end(kShortages);
}
}  // namespace

struct Server::Listener {
  Listener(asio::io_context& io, std::size_t index, const Portal& portal)
      : strand(asio::make_strand(io)),
        acceptor(strand),
        retry(strand),
        portal_index(index),
        name(fmt::format("{}:{}", portal.address, portal.port)) {}

  asio::strand<asio::io_context::executor_type> strand;  // every member below is used on it
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer retry;
  std::size_t portal_index;
  std::string name;
  util::LogThrottle accept_error_log{kLogInterval};
  util::LogThrottle refusal_log{kLogInterval};
};

Server::Server(const TargetServerConfig& config)
    : config_(config), workers_(config.worker_threads), context_(config, workers_) {}

Server::~Server() { stop(std::chrono::seconds(0)); }

void Server::start() {
  for (std::size_t i = 0; i < config_.portals.size(); ++i) {
    const Portal& portal = config_.portals[i];
    boost::system::error_code ec;
    auto address = asio::ip::make_address(portal.address, ec);
    if (ec) throw std::runtime_error(fmt::format("portal {}:{}: not an IP address", portal.address, portal.port));
    asio::ip::tcp::endpoint endpoint(address, portal.port);
    auto listener = std::make_unique<Listener>(io_, i, portal);
    asio::ip::tcp::acceptor& acceptor = listener->acceptor;
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      throw std::runtime_error(
          fmt::format("portal {}:{}: cannot listen: {}", portal.address, portal.port, ec.message()));
    }
    util::log_info("listening on {}:{}", portal.address, portal.port);
    listeners_.push_back(std::move(listener));
  }
  for (auto& listener : listeners_) accept(*listener);
  work_.emplace(io_.get_executor());
  const unsigned threads = std::max(1u, config_.network_threads);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
}

void Server::accept(Listener& listener) {
  listener.acceptor.async_accept(
      asio::make_strand(io_),
      asio::bind_executor(listener.strand, [this, &listener](const boost::system::error_code& ec,
                                                             asio::ip::tcp::socket socket) {
        if (ec == asio::error::operation_aborted || !listener.acceptor.is_open()) return;
        if (resource_shortage(ec)) {
          back_off(listener, ec);
          return;
        }
        if (ec) {
          // The connection went away before it was accepted: nothing to retry for.
          if (auto suppressed = listener.accept_error_log.admit()) {
            util::log_warn("{}: accept failed: {}{}", listener.name, ec.message(),
                           util::LogThrottle::note(*suppressed));
          }
        } else {
          admit(listener, std::move(socket));
        }
        accept(listener);
      }));
}

void Server::back_off(Listener& listener, const boost::system::error_code& ec) {
  if (auto suppressed = listener.accept_error_log.admit()) {
    util::log_warn("{}: cannot accept connections: {} (out of file descriptors or memory); trying again every {} ms{}",
                   listener.name, ec.message(), kAcceptRetry.count(), util::LogThrottle::note(*suppressed));
  }
  listener.retry.expires_after(kAcceptRetry);
  listener.retry.async_wait([this, &listener](const boost::system::error_code& waited) {
    if (!waited && listener.acceptor.is_open()) accept(listener);
  });
}

void Server::admit(Listener& listener, asio::ip::tcp::socket socket) {
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (ec) return;  // gone already; the socket closes with it
  const std::string address = remote.address().to_string();
  auto admission = context_.limiter.admit(listener.portal_index, address);
  if (admission.verdict != ConnectionLimiter::Verdict::Admitted) {
    if (auto suppressed = listener.refusal_log.admit()) {
      const auto& limits = config_.resources;
      const std::string cause =
          admission.verdict == ConnectionLimiter::Verdict::PortalFull
              ? fmt::format("the portal is at its limit of {} connections", limits.connections_per_portal)
              : fmt::format("that address is at its limit of {} connections",
                            limits.connections_per_initiator_address);
      util::log_warn("{}: refusing a connection from {}: {}{}", listener.name, address, cause,
                     util::LogThrottle::note(*suppressed));
    }
    socket.close(ec);
    return;
  }
  auto connection = std::make_shared<Connection>(std::move(socket), context_, std::move(admission.ticket));
  util::log_debug("{}: connected", connection->peer());
  {
    std::lock_guard lock(context_.connections_mutex);
    context_.connections.insert(connection);
  }
  connection->start();
}

std::size_t Server::connection_count() {
  std::lock_guard lock(context_.connections_mutex);
  return context_.connections.size();
}

void Server::stop(std::chrono::seconds grace) {
  if (stopped_) return;
  stopped_ = true;
  for (auto& listener : listeners_) {
    asio::post(listener->strand, [&listener = *listener] {
      boost::system::error_code ignored;
      listener.acceptor.close(ignored);
      listener.retry.cancel();
    });
  }
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
