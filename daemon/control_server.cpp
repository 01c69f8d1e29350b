#include "daemon/control_server.h"

#include <fmt/format.h>

#include <stdexcept>

#include "util/log.h"

namespace freevsa::daemon {

namespace asio = boost::asio;

namespace {
// Reads one request, answers it, closes. Lives as long as its pending operation.
class ControlSession : public std::enable_shared_from_this<ControlSession> {
 public:
  ControlSession(asio::ip::tcp::socket socket, const ControlServer& server)
      : socket_(std::move(socket)), server_(server), timer_(socket_.get_executor()) {}

  void start() {
    // A client that never finishes its request is cut off rather than holding the socket.
    auto self = shared_from_this();
    timer_.expires_after(std::chrono::seconds(10));
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->socket_.close();
    });
    read();
  }

 private:
  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(chunk_), [self](const boost::system::error_code& ec, std::size_t n) {
      if (ec) {
        self->timer_.cancel();
        return;
      }
      self->input_.append(self->chunk_.data(), n);
      HttpParse parsed = parse_http_request(self->input_);
      if (parsed.state == HttpParse::State::NeedMore) {
        self->read();
        return;
      }
      HttpResponse response;
      if (parsed.state == HttpParse::State::Bad) {
        response = {400, "text/plain", parsed.error + "\n"};
      } else {
        response = self->server_.dispatch(parsed.request);
      }
      self->reply(response);
    });
  }

  void reply(const HttpResponse& response) {
    output_ = format_http_response(response.status, response.content_type, response.body);
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(output_), [self](const boost::system::error_code&, std::size_t) {
      boost::system::error_code ignored;
      self->socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      self->timer_.cancel();
    });
  }

  asio::ip::tcp::socket socket_;
  const ControlServer& server_;
  asio::steady_timer timer_;
  std::array<char, 4096> chunk_{};
  std::string input_;
  std::string output_;
};
}  // namespace

ControlServer::~ControlServer() { stop(); }

void ControlServer::handle(const std::string& method, const std::string& path, HttpHandler handler) {
  handlers_[{method, path}] = std::move(handler);
}

HttpResponse ControlServer::dispatch(const HttpRequest& request) const {
  auto it = handlers_.find({request.method, request.path});
  if (it != handlers_.end()) return it->second(request);
  for (const auto& [key, handler] : handlers_) {
    if (key.second == request.path) return {405, "text/plain", "method not allowed\n"};
  }
  return {404, "text/plain", "no such resource: " + request.path + "\n"};
}

void ControlServer::start(const std::string& address, std::uint16_t port) {
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(address, ec);
  if (ec) throw std::runtime_error(fmt::format("control address {}: not an IP address", address));
  acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(io_);
  asio::ip::tcp::endpoint endpoint(ip, port);
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error(fmt::format("control address {}:{}: cannot listen: {}", address, port, ec.message()));
  port_ = acceptor_->local_endpoint().port();
  accept();
  thread_ = std::thread([this] { io_.run(); });
}

void ControlServer::accept() {
  acceptor_->async_accept([this](const boost::system::error_code& ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
    if (!ec) std::make_shared<ControlSession>(std::move(socket), *this)->start();
    accept();
  });
}

void ControlServer::stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    boost::system::error_code ignored;
    acceptor_->close(ignored);
  });
  io_.stop();
  thread_.join();
  // The posted close may not have run before the loop stopped; nothing else touches it now.
  boost::system::error_code ignored;
  acceptor_->close(ignored);
}

}  // namespace freevsa::daemon
