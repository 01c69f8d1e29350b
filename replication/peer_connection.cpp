#include "replication/peer_connection.h"

#include <fmt/format.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "replication/peer_tls.h"

namespace freevsa::replication {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr std::size_t kReadChunk = 256 * 1024;
// Until the peer authenticated, no frame may be larger than the handshake's (and a protocol 1
// Hello, to say why it is refused), and reads are small: an unauthenticated host gets a few
// kilobytes of this node's memory, not megabytes.
constexpr std::uint32_t kMaxPayloadBeforeAuthentication = 512;
constexpr std::size_t kReadChunkBeforeAuthentication = 4096;

std::uint64_t monotonic_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}
}  // namespace

namespace {
std::variant<tcp::socket, boost::asio::ssl::stream<tcp::socket>> make_stream(tcp::socket socket,
                                                                             boost::asio::ssl::context* tls) {
  if (tls == nullptr) return socket;
  return boost::asio::ssl::stream<tcp::socket>(std::move(socket), *tls);
}
}  // namespace

PeerConnection::PeerConnection(tcp::socket socket, KeepAlive keepalive, std::shared_ptr<boost::asio::ssl::context> tls,
                               peer::LinkHandshake handshake)
    : tls_context_(std::move(tls)),
      stream_(make_stream(std::move(socket), tls_context_.get())),
      handshake_(std::move(handshake)),
      keepalive_(keepalive),
      reader_(peer::DecodeOptions{kMaxPayloadBeforeAuthentication, false}),
      read_buffer_(kReadChunkBeforeAuthentication),
      ping_timer_(this->socket().get_executor()),
      watchdog_(this->socket().get_executor()) {
  boost::system::error_code ec;
  auto endpoint = this->socket().remote_endpoint(ec);
  remote_address_ = ec ? std::string("?") : endpoint.address().to_string();
  remote_ = ec ? std::string("?") : fmt::format("{}:{}", remote_address_, endpoint.port());
  this->socket().set_option(tcp::no_delay(true), ec);
}

tcp::socket& PeerConnection::socket() {
  if (auto* tls = std::get_if<TlsStream>(&stream_)) return tls->next_layer();
  return std::get<tcp::socket>(stream_);
}

std::string PeerConnection::tls_version() const {
  const auto* tls = std::get_if<TlsStream>(&stream_);
  if (tls == nullptr) return "";
  return SSL_get_version(const_cast<TlsStream*>(tls)->native_handle());
}

bool PeerConnection::peer_certificate_names(std::string_view name) const {
  const auto* tls = std::get_if<TlsStream>(&stream_);
  if (tls == nullptr) return false;
  X509* certificate = SSL_get1_peer_certificate(const_cast<TlsStream*>(tls)->native_handle());
  if (certificate == nullptr) return false;
  const bool names = X509_check_host(certificate, name.data(), name.size(), 0, nullptr) == 1;
  X509_free(certificate);
  return names;
}

PeerConnection::~PeerConnection() = default;

void PeerConnection::start(MessageHandler on_message, CloseHandler on_close) {
  set_handlers(std::move(on_message), std::move(on_close));
  last_received_ = std::chrono::steady_clock::now();
  // Until the peer is authenticated the watchdog enforces the authentication deadline.
  watchdog_.expires_after(kAuthDeadline);
  watchdog_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_ || self->authenticated()) return;
    self->fail(fmt::format("did not authenticate within {} s", kAuthDeadline.count()));
  });
  handshake_then_read();
}

void PeerConnection::handshake_then_read() {
  auto* tls = std::get_if<TlsStream>(&stream_);
  if (tls == nullptr) {
    ready_ = true;
    begin_authentication();
    return;
  }
  const auto type = handshake_.side() == peer::LinkSide::Dialler ? boost::asio::ssl::stream_base::client
                                                                  : boost::asio::ssl::stream_base::server;
  tls->async_handshake(type, [self = shared_from_this()](boost::system::error_code ec) {
    if (self->closed_) return;
    if (ec) {
      // The address without the (ephemeral) port: a repeated failure reads the same each time.
      self->fail(fmt::format("TLS handshake with {} failed: {}", self->remote_address_, ec.message()));
      return;
    }
    if (tls_psk_required_and_missing(std::get<TlsStream>(self->stream_).native_handle())) {
      self->fail(fmt::format("TLS handshake with {} did not use the cluster's pre-shared key", self->remote_address_));
      return;
    }
    self->last_received_ = std::chrono::steady_clock::now();
    self->ready_ = true;
    self->begin_authentication();
  });
}

void PeerConnection::begin_authentication() {
  std::optional<peer::AuthHello> hello = handshake_.start();
  if (handshake_.failed()) {
    fail(handshake_.failure());
    return;
  }
  if (hello) enqueue(*hello, 0, false);
  read_more();
}

// A frame before the peer proved itself. False: the connection was closed.
bool PeerConnection::on_handshake_frame(const peer::Message& message) {
  if (std::holds_alternative<peer::Disconnect>(message)) {
    fail(fmt::format("{} refused this node's authentication (its log says why: cluster.secret, the cluster name, the "
                     "list of nodes or the protocol versions differ)",
                     remote_address_));
    return false;
  }
  peer::HandshakeStep step = handshake_.on_message(message);  // a Ping too: a real peer never sends one yet
  if (!step.failure.empty()) {
    // The other end learns that it failed, not why: the reason names this node, its id and its
    // cluster, which a host without the secret is not to learn. It stays in this node's log.
    enqueue(peer::Disconnect{peer::DisconnectCode::AuthFailed, "authentication failed"}, 0, false);
    close("failed authentication: " + step.failure, true);
    return false;
  }
  if (step.reply) enqueue(*step.reply, 0, false);
  if (step.authenticated) on_authenticated();
  return true;
}

void PeerConnection::on_authenticated() {
  reader_.set_options(peer::DecodeOptions{});
  read_buffer_.resize(kReadChunk);  // no read is pending: this runs inside the read's handler
  if (!tls()) {
    sealer_ = std::make_unique<peer::FrameSealer>(handshake_.send_key());
    opener_ = std::make_unique<peer::FrameOpener>(handshake_.receive_key());
  }
  watchdog_.cancel();
  arm_watchdog();
  arm_ping();
  for (Outgoing& out : until_authenticated_) {
    if (sealer_ && !sealer_->seal(out.frame)) {
      fail("HMAC-SHA256 unavailable for the frame MAC");
      return;
    }
    queue_.push_back(std::move(out));
  }
  until_authenticated_.clear();
  if (!queue_.empty() && !writing_ && ready_) write_next();
}

void PeerConnection::set_handlers(MessageHandler on_message, CloseHandler on_close) {
  on_message_ = std::move(on_message);
  on_close_ = std::move(on_close);
}

void PeerConnection::read_more() {
  if (closed_) return;
  std::visit(
      [&](auto& stream) {
        stream.async_read_some(asio::buffer(read_buffer_),
                               [self = shared_from_this()](boost::system::error_code ec, std::size_t bytes) {
                                 if (self->closed_) return;
                                 if (ec) {
                                   const bool eof = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
                                   self->fail(eof ? "the peer closed the connection" : ec.message());
                                   return;
                                 }
                                 self->on_read(bytes);
                               });
      },
      stream_);
}

void PeerConnection::on_read(std::size_t bytes) {
  last_received_ = std::chrono::steady_clock::now();
  reader_.append({read_buffer_.data(), bytes});
  auto self = shared_from_this();  // a handler may close (and drop) the connection
  while (!closed_ && !closing_after_flush_) {
    peer::FrameReader::Frame frame = reader_.next();
    if (frame.status == peer::ScanResult::Status::NeedMore) break;
    if (frame.status == peer::ScanResult::Status::Bad) {
      fail(fmt::format("malformed frame from the peer: {}", peer::to_string(frame.error)));
      return;
    }
    if (opener_ && !opener_->open(frame.raw_header, frame.payload, frame.mac)) {
      fail(fmt::format("a frame from {} failed its MAC check: altered, injected or replayed on the way",
                       remote_address_));
      return;
    }
    peer::Result<peer::Message> message = peer::decode_message(frame.header, frame.payload);
    if (!message.ok()) {
      fail(fmt::format("malformed {} message from the peer: {}",
                       peer::to_string(static_cast<peer::MessageType>(frame.header.type)),
                       peer::to_string(message.error)));
      return;
    }
    if (!authenticated()) {
      if (!on_handshake_frame(message.value)) return;
      continue;
    }
    // Keep-alive is answered here; everything else goes to the owner.
    if (const auto* ping = std::get_if<peer::Ping>(&message.value)) {
      send(peer::PingAck{ping->timestamp_ns}, frame.header.request_id);
      continue;
    }
    if (const auto* ack = std::get_if<peer::PingAck>(&message.value)) {
      round_trip_ms_ = static_cast<double>(monotonic_ns() - ack->timestamp_ns) / 1e6;
      continue;
    }
    if (std::holds_alternative<peer::Ignored>(message.value)) continue;
    if (on_message_) on_message_(frame.header, message.value);
  }
  if (!closing_after_flush_) read_more();
}

void PeerConnection::send(const peer::Message& message, std::uint64_t request_id) { enqueue(message, request_id, true); }

// `from_owner`: a frame of the owner's, which waits for authentication and then carries a MAC
// (without TLS); otherwise a handshake frame, sent at once and never with a MAC.
void PeerConnection::enqueue(const peer::Message& message, std::uint64_t request_id, bool from_owner) {
  if (closed_ || closing_after_flush_) return;
  peer::EncodeOptions options;
  options.payload_crc = payload_crc_ || !from_owner;
  options.mac = from_owner && !tls();
  peer::Result<peer::OutgoingFrame> frame = peer::encode(message, request_id, options);
  if (!frame.ok()) {
    // Only a bug on our side produces an unencodable message; the link cannot carry on.
    fail(fmt::format("cannot encode {}: {}", peer::to_string(peer::type_of(message)), peer::to_string(frame.error)));
    return;
  }
  if (from_owner && !authenticated()) {
    until_authenticated_.push_back(Outgoing{frame.value, nullptr});
    return;
  }
  if (sealer_ && from_owner && !sealer_->seal(frame.value)) {
    fail("HMAC-SHA256 unavailable for the frame MAC");
    return;
  }
  queue_.push_back(Outgoing{frame.value, nullptr});
  if (!writing_ && ready_) write_next();
}

void PeerConnection::hold_until_sent(std::shared_ptr<const void> owner) {
  std::deque<Outgoing>& last = authenticated() ? queue_ : until_authenticated_;
  if (!last.empty()) last.back().owner = std::move(owner);
}

void PeerConnection::write_next() {
  if (closed_) return;
  if (queue_.empty()) {
    writing_ = false;
    if (closing_after_flush_) fail("closed");
    return;
  }
  writing_ = true;
  // Every queued frame (up to a bound) goes out in one gathered write: under load, acks and
  // small writes cost one system call per batch instead of one each. Deque elements stay where
  // they are while more frames are queued behind them.
  gather_.clear();
  std::size_t frames = 0;
  std::size_t bytes = 0;
  for (const Outgoing& out : queue_) {
    if (frames == kMaxGatherFrames || (frames > 0 && bytes >= kMaxGatherBytes)) break;
    gather_.push_back(asio::buffer(out.frame.head().data(), out.frame.head().size()));
    if (!out.frame.tail.empty()) gather_.push_back(asio::buffer(out.frame.tail.data(), out.frame.tail.size()));
    if (out.frame.has_mac) gather_.push_back(asio::buffer(out.frame.mac.data(), out.frame.mac.size()));
    bytes += out.frame.size();
    ++frames;
  }
  std::visit(
      [&](auto& stream) {
        asio::async_write(stream, gather_,
                          [self = shared_from_this(), frames](boost::system::error_code ec, std::size_t written) {
                            if (self->closed_) return;
                            if (ec) {
                              self->fail(ec.message());
                              return;
                            }
                            self->bytes_sent_ += written;
                            for (std::size_t i = 0; i < frames; ++i) self->queue_.pop_front();
                            self->write_next();
                          });
      },
      stream_);
}

void PeerConnection::arm_ping() {
  ping_timer_.expires_after(keepalive_.ping_interval);
  ping_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_) return;
    self->send(peer::Ping{monotonic_ns()});
    self->arm_ping();
  });
}

void PeerConnection::arm_watchdog() {
  watchdog_.expires_after(keepalive_.timeout / 4);
  watchdog_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_) return;
    auto silent = std::chrono::steady_clock::now() - self->last_received_;
    if (silent >= self->keepalive_.timeout) {
      self->fail(fmt::format("the peer sent nothing for {} ms (keep-alive timeout)",
                             std::chrono::duration_cast<std::chrono::milliseconds>(silent).count()));
      return;
    }
    self->arm_watchdog();
  });
}

void PeerConnection::close(const std::string& reason, bool flush) {
  if (closed_ || closing_after_flush_) return;
  if (flush && writing_) {
    closing_after_flush_ = true;
    close_reason_ = reason;
    // Bounded: a peer that does not read gets closed anyway.
    watchdog_.expires_after(std::chrono::seconds(1));
    watchdog_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->fail(self->close_reason_);
    });
    return;
  }
  close_reason_ = reason;
  fail(reason);
}

void PeerConnection::fail(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  socket().shutdown(tcp::socket::shutdown_both, ignored);
  socket().close(ignored);
  ping_timer_.cancel();
  watchdog_.cancel();
  queue_.clear();
  until_authenticated_.clear();
  CloseHandler handler = std::move(on_close_);
  on_message_ = nullptr;
  on_close_ = nullptr;
  if (handler) handler(closing_after_flush_ ? close_reason_ : reason);
}

}  // namespace freevsa::replication
