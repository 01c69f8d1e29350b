// The node's control endpoint: a small HTTP server on the node's control address that
// `freevsa status`, `freevsa promote` and friends talk to (and, later, Prometheus and a browser).
// One request per connection; handlers are looked up in a table by method and path.
//
// Threading: runs on its own thread; handlers are called there, one at a time, and must not
// block for long (they read state and post actions).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "daemon/http_request.h"
#include "util/asio.h"

namespace freevsa::daemon {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class ControlServer {
 public:
  ControlServer() = default;
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Register before start(). `method` is "GET" or "POST"; `path` is matched exactly.
  void handle(const std::string& method, const std::string& path, HttpHandler handler);

  // Listens on address:port (port 0: any free port). Throws std::runtime_error naming the
  // address when it cannot listen (start-up edge).
  void start(const std::string& address, std::uint16_t port);
  void stop();
  std::uint16_t port() const { return port_; }

  // What a request gets; public so that tests can call it without sockets.
  HttpResponse dispatch(const HttpRequest& request) const;

 private:
  void accept();

  std::map<std::pair<std::string, std::string>, HttpHandler> handlers_;
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

}  // namespace freevsa::daemon
