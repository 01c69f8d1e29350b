// Every replicated volume of this node, the thread their links run on, and the listener the
// peers connect to. The peer with the lower node id dials; the other accepts here,
// authenticates the connection (peer_auth.h) and only then hands it to the volume its first
// Hello names.
//
// Connections that have not authenticated are held to bounds: at most
// kMaxUnauthenticatedPerAddress from one source address (an IPv6 /64) and kMaxUnauthenticated
// from all addresses that are not a configured peer's (more are closed at once; a configured
// peer's address keeps its own slots), each closed after PeerConnection::kAuthDeadline. They get no state and
// no answers; status counts them (PeerStatus::unauthenticated_connections, refused_connections).
// When accept() fails for want of file descriptors, the listener pauses instead of spinning.
//
// Threading: add() and listen() before start(); the rest is thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <memory>
#include <string>
#include <thread>

#include "replication/replication_status.h"
#include "replication/replicator.h"
#include "util/asio.h"
#include "util/log_throttle.h"
#include "util/worker_pool.h"

namespace freevsa::replication {

class ReplicationManager final : public ReplicationControl {
 public:
  // `tls`: the context accepted connections use (null: plain TCP); replicas dial with their
  // settings' context, normally the same.
  static constexpr std::size_t kMaxUnauthenticated = 64;
  static constexpr std::size_t kMaxUnauthenticatedPerAddress = 8;

  ReplicationManager(std::size_t worker_threads, KeepAlive keepalive, peer::LinkCredentials credentials,
                     std::shared_ptr<boost::asio::ssl::context> tls = nullptr);
  ~ReplicationManager() override;

  std::shared_ptr<Replicator> add(ReplicaSettings settings, Volume& data, MetadataStore& metadata);
  // Throws std::runtime_error naming the address when it cannot listen (start-up edge).
  void listen(const std::string& address, std::uint16_t port);
  void start();
  // Tells the peers, closes the links, leaves the metadata clean. Call after initiators stopped.
  void stop();

  std::vector<VolumeStatus> status() const override;
  CommandResult promote(const std::string& volume, bool force) override;
  CommandResult demote(const std::string& volume) override;
  CommandResult verify(const std::string& volume) override;
  CommandResult reconnect(const std::string& volume) override;

 private:
  void accept();
  void on_accepted(boost::asio::ip::tcp::socket socket);
  // Once per connection (`counted` turns false): its first frame after authentication came,
  // or it closed.
  void forget_unauthenticated(const std::string& address, bool& counted);
  bool is_configured_peer(const std::string& address) const;
  // Records and logs (one line a second, then a count) a connection refused before it
  // authenticated. Under guard_mutex_.
  void note_refusal(const std::string& address, const std::string& reason);
  void on_first_frame(const std::shared_ptr<PeerConnection>& connection, const peer::Message& message);
  std::shared_ptr<Replicator> find(const std::string& volume) const;

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  util::WorkerPool workers_;
  KeepAlive keepalive_;
  peer::LinkCredentials credentials_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  boost::asio::steady_timer accept_pause_;
  // Io thread only, but read by status() under the mutex.
  mutable std::mutex guard_mutex_;
  std::map<std::string, std::size_t> unauthenticated_;  // source address -> open connections
  std::size_t unauthenticated_total_ = 0;
  std::uint64_t refused_ = 0;
  std::string last_refused_;
  util::LogThrottle refusal_log_{std::chrono::seconds(1)};  // under guard_mutex_
  util::LogThrottle accept_log_{std::chrono::seconds(10)};  // io thread
  std::set<std::string> warned_addresses_;  // "node@address" of peers seen from an unexpected source
  std::map<std::string, std::shared_ptr<Replicator>> replicators_;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace freevsa::replication
