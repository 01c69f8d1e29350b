// The node's control endpoint: a small HTTP server on the node's control address that
// `freevsa status`, `freevsa promote` and friends talk to (and, later, Prometheus and a browser).
// One request per connection; handlers are looked up in a table by method and path.
//
// Every request is authorised (control_auth.h) before its handler is looked up: a GET needs the
// right Host, anything else also the control token and a JSON body. A refusal changes nothing
// and is logged with the client's address, never with what it presented as token.
//
// Threading: runs on its own thread; handlers are called there, one at a time, and must not
// block for long (they read state and post actions).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "daemon/control_auth.h"
#include "daemon/http_request.h"
#include "util/asio.h"

namespace freevsa::daemon {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  HttpHeaders headers = {};
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Connections served at once. Beyond it, new ones wait in the kernel's queue, costing the
// process no descriptor, until one ends: clients that connect and hold on cannot use up the
// descriptors the node's iSCSI and replication connections need.
constexpr std::size_t kMaxControlSessions = 32;

struct ControlSessionCount;  // shared with the connections, which may end after the server

class ControlServer {
 public:
  // `token` is what requests that change state must present (empty: none is allowed).
  explicit ControlServer(std::string token);
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Register before start(). `method` is "GET" or "POST"; `path` is matched exactly.
  void handle(const std::string& method, const std::string& path, HttpHandler handler);

  // Listens on address:port (port 0: any free port); requests must then name address:port as
  // Host. Throws std::runtime_error naming the address when it cannot listen (start-up edge).
  void start(const std::string& address, std::uint16_t port);
  void stop();
  std::uint16_t port() const { return port_; }

  // What a request from `source` ("address:port" of the client) gets: authorised, then
  // dispatched. Called on the server's thread.
  HttpResponse serve(const HttpRequest& request, std::string_view source);
  // The handler's answer without authorisation; public so that tests of the handlers can call it
  // without sockets.
  HttpResponse dispatch(const HttpRequest& request) const;

 private:
  void accept();
  void log_refusal(const HttpRequest& request, std::string_view source, const AccessRefusal& refusal);

  std::map<std::pair<std::string, std::string>, HttpHandler> handlers_;
  ControlPolicy policy_;
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  boost::asio::steady_timer accept_retry_{io_};
  bool accept_failing_ = false;  // out of descriptors: said once, retried on a timer
  std::shared_ptr<ControlSessionCount> sessions_;
  // Refusals are logged, but a client hammering the endpoint cannot flood the log.
  std::chrono::steady_clock::time_point refusal_window_{};
  unsigned refusals_logged_ = 0;
  unsigned refusals_unlogged_ = 0;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

}  // namespace freevsa::daemon
