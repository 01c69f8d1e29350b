#include "daemon/control_server.h"

#include <fmt/format.h>

#include <functional>
#include <optional>
#include <stdexcept>

#include "util/log.h"

namespace freevsa::daemon {

namespace asio = boost::asio;

struct ControlSessionCount {
  std::size_t live = 0;
  bool accept_paused = false;  // at kMaxControlSessions
  bool stopped = false;        // the server is gone or going: nothing to resume
  std::function<void()> resume_accepting;
};

namespace {

// Out of descriptors or memory: the pending connection stays queued and accepting again at once
// would fail again at once, so the next try waits this long.
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);
// At most this many refusals are logged per window; the rest are counted.
constexpr unsigned kRefusalsLoggedPerWindow = 20;
constexpr auto kRefusalWindow = std::chrono::seconds(60);

bool out_of_resources(const boost::system::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system ||
         ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
}

// What a client sent, fit for one log line: no line breaks or terminal controls of its making.
std::string printable(std::string_view text) {
  constexpr std::size_t kMax = 200;
  std::string out;
  for (unsigned char c : text.substr(0, kMax)) out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  if (text.size() > kMax) out += "...";
  return out;
}

std::string source_of(const asio::ip::tcp::socket& socket) {
  boost::system::error_code ec;
  const asio::ip::tcp::endpoint remote = socket.remote_endpoint(ec);
  if (ec) return "an unknown address";
  return host_header_of(remote.address().to_string(), remote.port());
}

// Reads one request, answers it, closes. Lives as long as its pending operation.
class ControlSession : public std::enable_shared_from_this<ControlSession> {
 public:
  ControlSession(asio::ip::tcp::socket socket, ControlServer& server, std::shared_ptr<ControlSessionCount> count)
      : socket_(std::move(socket)),
        server_(server),
        timer_(socket_.get_executor()),
        source_(source_of(socket_)),
        count_(std::move(count)) {
    ++count_->live;
  }
  ~ControlSession() {
    --count_->live;
    if (count_->accept_paused && !count_->stopped) {
      count_->accept_paused = false;
      count_->resume_accepting();
    }
  }
  ControlSession(const ControlSession&) = delete;
  ControlSession& operator=(const ControlSession&) = delete;

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
        response = self->server_.serve(parsed.request, self->source_);
      }
      self->reply(response);
    });
  }

  void reply(const HttpResponse& response) {
    output_ = format_http_response(response.status, response.content_type, response.body, response.headers);
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(output_), [self](const boost::system::error_code&, std::size_t) {
      boost::system::error_code ignored;
      self->socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      self->timer_.cancel();
    });
  }

  asio::ip::tcp::socket socket_;
  ControlServer& server_;
  asio::steady_timer timer_;
  std::string source_;
  std::shared_ptr<ControlSessionCount> count_;
  std::array<char, 4096> chunk_{};
  std::string input_;
  std::string output_;
};
}  // namespace

ControlServer::ControlServer(std::string token) : sessions_(std::make_shared<ControlSessionCount>()) {
  policy_.token = std::move(token);
  sessions_->resume_accepting = [this] { accept(); };
}

ControlServer::~ControlServer() { stop(); }

void ControlServer::handle(const std::string& method, const std::string& path, HttpHandler handler) {
  handlers_[{method, path}] = std::move(handler);
}

HttpResponse ControlServer::serve(const HttpRequest& request, std::string_view source) {
  if (std::optional<AccessRefusal> refusal = authorise(request, policy_)) {
    log_refusal(request, source, *refusal);
    HttpResponse response{refusal->status, "text/plain; charset=utf-8", refusal->reason + "\n"};
    if (refusal->status == 401) response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return response;
  }
  return dispatch(request);
}

void ControlServer::log_refusal(const HttpRequest& request, std::string_view source, const AccessRefusal& refusal) {
  const auto now = std::chrono::steady_clock::now();
  if (now - refusal_window_ >= kRefusalWindow) {
    if (refusals_unlogged_ > 0) {
      util::log_warn("control endpoint: {} more refused request(s) were not logged", refusals_unlogged_);
    }
    refusal_window_ = now;
    refusals_logged_ = 0;
    refusals_unlogged_ = 0;
  }
  if (refusals_logged_ == kRefusalsLoggedPerWindow) {
    ++refusals_unlogged_;
    return;
  }
  ++refusals_logged_;
  util::log_warn("control endpoint: refused {} {} from {}: {} (HTTP {}){}", printable(request.method),
                 printable(request.path), source, printable(refusal.reason), refusal.status,
                 refusals_logged_ == kRefusalsLoggedPerWindow ? "; further refusals this minute are only counted" : "");
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
  policy_.host = host_header_of(ip.to_string(), port_);
  accept();
  thread_ = std::thread([this] { io_.run(); });
}

void ControlServer::accept() {
  acceptor_->async_accept([this](const boost::system::error_code& ec, asio::ip::tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_->is_open()) return;
    if (out_of_resources(ec)) {
      if (!accept_failing_) {
        util::log_warn("control endpoint: cannot accept a connection: {}; retrying every {} ms", ec.message(),
                       kAcceptRetry.count());
      }
      accept_failing_ = true;
      accept_retry_.expires_after(kAcceptRetry);
      accept_retry_.async_wait([this](const boost::system::error_code& timer_ec) {
        if (!timer_ec) accept();
      });
      return;
    }
    if (!ec) {
      if (accept_failing_) util::log_info("control endpoint: accepting connections again");
      accept_failing_ = false;
      std::make_shared<ControlSession>(std::move(socket), *this, sessions_)->start();
      if (sessions_->live >= kMaxControlSessions) {
        sessions_->accept_paused = true;  // the session that ends next resumes
        return;
      }
    }
    accept();
  });
}

void ControlServer::stop() {
  if (!thread_.joinable()) return;
  asio::post(io_, [this] {
    sessions_->stopped = true;
    boost::system::error_code ignored;
    acceptor_->close(ignored);
  });
  io_.stop();
  thread_.join();
  // Sessions still pending end when io_ is destroyed, after this object's other members.
  sessions_->stopped = true;
  // The posted close may not have run before the loop stopped; nothing else touches it now.
  boost::system::error_code ignored;
  acceptor_->close(ignored);
}

}  // namespace freevsa::daemon
