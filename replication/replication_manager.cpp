#include "replication/replication_manager.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "util/log.h"

namespace freevsa::replication {

namespace asio = boost::asio;
using asio::ip::tcp;

ReplicationManager::ReplicationManager(std::size_t worker_threads, KeepAlive keepalive,
                                       peer::LinkCredentials credentials, std::shared_ptr<asio::ssl::context> tls)
    : work_(asio::make_work_guard(io_)),
      workers_(worker_threads),
      keepalive_(keepalive),
      credentials_(std::move(credentials)),
      tls_(std::move(tls)),
      accept_pause_(io_) {}

ReplicationManager::~ReplicationManager() { stop(); }

std::shared_ptr<Replicator> ReplicationManager::add(ReplicaSettings settings, Volume& data, MetadataStore& metadata) {
  const std::string name = settings.volume_name;
  auto replicator = std::make_shared<Replicator>(io_, workers_, std::move(settings), data, metadata);
  replicators_.emplace(name, replicator);
  return replicator;
}

void ReplicationManager::listen(const std::string& address, std::uint16_t port) {
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error(fmt::format("replication address {}: {}", address, ec.message()));
  auto acceptor = std::make_unique<tcp::acceptor>(io_);
  const tcp::endpoint endpoint(ip, port);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor->bind(endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(fmt::format("cannot listen for peers on {}:{}: {}", address, port, ec.message()));
  acceptor_ = std::move(acceptor);
  util::log_info("replication: listening for peers on {}:{}", address, port);
}

void ReplicationManager::start() {
  if (acceptor_) accept();
  for (auto& [name, replicator] : replicators_) replicator->start();
  thread_ = std::thread([this] { io_.run(); });
}

void ReplicationManager::accept() {
  acceptor_->async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_) return;
    if (ec == asio::error::no_descriptors || ec.value() == ENFILE || ec == asio::error::no_buffer_space ||
        ec == asio::error::no_memory) {
      // Accepting again at once would fail again at once: pause, and say so now and then.
      if (auto left_out = accept_log_.admit()) {
        util::log_warn("replication: cannot accept peer connections: {}; pausing 100 ms{}", ec.message(),
                       util::LogThrottle::note(*left_out));
      }
      accept_pause_.expires_after(std::chrono::milliseconds(100));
      accept_pause_.async_wait([this](boost::system::error_code wait_error) {
        if (!wait_error && acceptor_) accept();
      });
      return;
    }
    if (!ec) on_accepted(std::move(socket));
    accept();
  });
}

namespace {
// What the per-source cap counts by: the address, or an IPv6 address's /64 (one host has many).
std::string source_of(const asio::ip::address& address) {
  if (!address.is_v6() || address.to_v6().is_v4_mapped()) return address.to_string();
  auto bytes = address.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return asio::ip::address_v6(bytes).to_string() + "/64";
}
}  // namespace

bool ReplicationManager::is_configured_peer(const std::string& address) const {
  return std::any_of(credentials_.peers.begin(), credentials_.peers.end(),
                     [&](const peer::KnownNode& node) { return !node.address.empty() && node.address == address; });
}

void ReplicationManager::on_accepted(tcp::socket socket) {
  boost::system::error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  const std::string address = source_of(remote.address());
  // The configured peers' addresses have slots of their own: strangers filling the common
  // ones cannot keep a real peer from reconnecting.
  const bool peer_address = is_configured_peer(remote.address().to_string());
  {
    std::lock_guard lock(guard_mutex_);
    if ((!peer_address && unauthenticated_total_ >= kMaxUnauthenticated) ||
        unauthenticated_[address] >= kMaxUnauthenticatedPerAddress) {
      ++refused_;
      if (unauthenticated_[address] == 0) unauthenticated_.erase(address);
      note_refusal(address, "too many connections that have not authenticated");
      socket.close(ec);
      return;
    }
    ++unauthenticated_[address];
    ++unauthenticated_total_;
  }
  auto connection = std::make_shared<PeerConnection>(std::move(socket), keepalive_, tls_,
                                                     peer::LinkHandshake(credentials_, peer::LinkSide::Acceptor));
  std::weak_ptr<PeerConnection> weak = connection;
  auto counted = std::make_shared<bool>(true);  // still in unauthenticated_
  connection->start(
      [this, weak, address, counted](const peer::FrameHeader&, const peer::Message& message) {
        forget_unauthenticated(address, *counted);
        if (auto c = weak.lock()) on_first_frame(c, message);
      },
      [this, address, counted, weak](const std::string& reason) {
        forget_unauthenticated(address, *counted);
        auto closing = weak.lock();
        if (closing && closing->authenticated()) return;  // the peer's, ended before its Hello
        std::lock_guard lock(guard_mutex_);
        ++refused_;
        note_refusal(address, reason);
      });
}

void ReplicationManager::note_refusal(const std::string& address, const std::string& reason) {
  last_refused_ = fmt::format("from {}: {}", address, reason);
  // A flood of connections must not become a flood of log lines.
  if (auto left_out = refusal_log_.admit()) {
    util::log_warn("replication: refusing a connection from {}: {}{}", address, reason,
                   util::LogThrottle::note(*left_out));
  }
}

void ReplicationManager::forget_unauthenticated(const std::string& address, bool& counted) {
  if (!counted) return;
  counted = false;
  std::lock_guard lock(guard_mutex_);
  auto it = unauthenticated_.find(address);
  if (it == unauthenticated_.end()) return;
  if (--it->second == 0) unauthenticated_.erase(it);
  --unauthenticated_total_;
}

void ReplicationManager::on_first_frame(const std::shared_ptr<PeerConnection>& connection,
                                        const peer::Message& message) {
  // Only an authenticated peer's frames arrive here (PeerConnection holds them back until then).
  const peer::KnownNode& node = connection->peer();  // it proved the secret as this node
  if (!node.address.empty() && node.address != connection->remote_address() &&
      warned_addresses_.insert(node.name + "@" + connection->remote_address()).second) {
    // Not refused: behind NAT a peer's source address is not the one it is reached at.
    util::log_warn("replication: {} authenticated from {}, not from its configured address {}", node.name,
                   connection->remote_address(), node.address);
  }
  const auto* hello = std::get_if<peer::Hello>(&message);
  if (hello == nullptr) {
    connection->close("the first frame from a peer after authentication must be a Hello");
    return;
  }
  std::shared_ptr<Replicator> replicator = find(hello->volume_name);
  if (!replicator) {
    const std::string reason = fmt::format("no volume named '{}' on this node", hello->volume_name);
    util::log_warn("replication: refusing {} from {}: {}", hello->node_name, connection->remote(), reason);
    connection->send(peer::Disconnect{peer::DisconnectCode::ConfigMismatch, reason});
    connection->close(reason, true);
    return;
  }
  if (replicator->settings().peer_id != node.id) {
    // Another node of the cluster (it holds the secret) must not replace the link of a volume
    // it does not replicate with this node.
    const std::string reason = fmt::format("volume '{}' is not replicated with node '{}'", hello->volume_name, node.name);
    util::log_warn("replication: refusing {} from {}: {}", node.name, connection->remote(), reason);
    connection->send(peer::Disconnect{peer::DisconnectCode::ConfigMismatch, reason});
    connection->close(reason, true);
    return;
  }
  replicator->adopt(connection, *hello);
}

void ReplicationManager::stop() {
  if (stopped_ || !thread_.joinable()) return;
  stopped_ = true;
  asio::post(io_, [this] {
    accept_pause_.cancel();
    if (acceptor_) {
      boost::system::error_code ignored;
      acceptor_->close(ignored);
    }
  });
  for (auto& [name, replicator] : replicators_) replicator->stop();
  // Let the Disconnect frames go out (bounded by the connections' own flush limit).
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  work_.reset();
  io_.stop();
  thread_.join();
  workers_.shutdown();
}

std::shared_ptr<Replicator> ReplicationManager::find(const std::string& volume) const {
  auto it = replicators_.find(volume);
  return it == replicators_.end() ? nullptr : it->second;
}

std::vector<VolumeStatus> ReplicationManager::status() const {
  std::vector<VolumeStatus> out;
  for (const auto& [name, replicator] : replicators_) out.push_back(replicator->status());
  std::lock_guard lock(guard_mutex_);
  for (VolumeStatus& volume : out) {
    for (PeerStatus& peer : volume.peers) {
      peer.unauthenticated_connections = unauthenticated_total_;
      peer.refused_connections = refused_;
      peer.last_refused_connection = last_refused_;
    }
  }
  return out;
}

namespace {
CommandResult no_such_volume(const std::string& volume) {
  return {false, 404, fmt::format("no replicated volume named '{}' on this node", volume), ""};
}
}  // namespace

CommandResult ReplicationManager::promote(const std::string& volume, bool force) {
  auto replicator = find(volume);
  return replicator ? replicator->promote(force) : no_such_volume(volume);
}

CommandResult ReplicationManager::demote(const std::string& volume) {
  auto replicator = find(volume);
  return replicator ? replicator->demote() : no_such_volume(volume);
}

CommandResult ReplicationManager::verify(const std::string& volume) {
  auto replicator = find(volume);
  return replicator ? replicator->verify() : no_such_volume(volume);
}

CommandResult ReplicationManager::reconnect(const std::string& volume) {
  auto replicator = find(volume);
  return replicator ? replicator->reconnect() : no_such_volume(volume);
}

}  // namespace freevsa::replication
