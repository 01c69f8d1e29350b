// One TCP connection of the peer link: authentication, frames in, frames out, keep-alive. It
// knows nothing about volumes or roles; the replicator that owns it gives meaning to the
// messages.
//
// Authentication (peer_auth.h) comes first, after TLS if any: until the peer has proved the
// shared secret the connection delivers nothing to its owner, sends nothing but handshake
// frames (what the owner sends meanwhile waits), answers no Ping, and is closed when the
// handshake has not finished within kAuthDeadline. After it, without TLS, every frame in both
// directions carries a MAC, and a frame whose MAC does not verify closes the connection.
//
// Receiving: frames are decoded as they arrive and handed to the message handler, which must
// copy whatever it keeps from spans in the message (they point into the receive buffer).
// Sending: send() queues a frame; frames leave in the order they were queued. A Write's data
// is borrowed until the frame was written, so the caller keeps it alive until its
// acknowledgement (or the close) - the replication write path does.
// Keep-alive: a Ping goes out every ping_interval once authenticated; a connection on
// which nothing arrived for `timeout` is closed ("peer silent"), which catches a peer that
// stopped answering while TCP still looks fine.
// TLS (optional, peer_tls.h): the TLS handshake runs first, as the client on the dialling side;
// frames queued meanwhile leave once it is done. The watchdog covers a stalled handshake.
//
// Threading: everything runs on the io_context's single thread, including the handlers. send()
// and close() must be called on that thread too (post to it from elsewhere).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <boost/asio/ssl.hpp>

#include "replication/peer_auth.h"
#include "replication/peer_protocol.h"
#include "util/asio.h"

namespace freevsa::replication {

struct KeepAlive {
  std::chrono::milliseconds ping_interval{500};
  std::chrono::milliseconds timeout{2000};
};

class PeerConnection : public std::enable_shared_from_this<PeerConnection> {
 public:
  using MessageHandler = std::function<void(const peer::FrameHeader&, const peer::Message&)>;
  using CloseHandler = std::function<void(const std::string& reason)>;

  // How long a connection may take from TCP accept (or connect) to a verified peer.
  static constexpr std::chrono::seconds kAuthDeadline{5};

  // `tls`: null for plain TCP. `handshake` says which side of the connection this is and whom
  // it accepts.
  PeerConnection(boost::asio::ip::tcp::socket socket, KeepAlive keepalive, std::shared_ptr<boost::asio::ssl::context> tls,
                 peer::LinkHandshake handshake);
  ~PeerConnection();

  // Starts TLS (if any) and the authentication, then reading and pinging. `on_message` sees
  // only what the authenticated peer sent. Handlers may be replaced later (a listener hands
  // the connection to the volume its Hello names).
  void start(MessageHandler on_message, CloseHandler on_close);
  void set_handlers(MessageHandler on_message, CloseHandler on_close);

  // Queues a frame; it leaves once the peer is authenticated. Frames after the handshake carry
  // payload CRCs only if both sides asked.
  void send(const peer::Message& message, std::uint64_t request_id = 0);
  // Keeps `owner` alive until the frame queued last has been written (a Write's data).
  void hold_until_sent(std::shared_ptr<const void> owner);
  void set_payload_crc(bool on) { payload_crc_ = on; }

  // Closes once; the close handler runs (on the io thread) with `reason`. With `flush`, the
  // frames queued so far (a Disconnect saying why) are written first, for at most a second.
  void close(const std::string& reason, bool flush = false);
  bool closed() const { return closed_; }

  std::string remote() const { return remote_; }
  std::string remote_address() const { return remote_address_; }
  // The node that proved the secret on this connection; valid once authenticated().
  bool authenticated() const { return handshake_.authenticated(); }
  const peer::KnownNode& peer() const { return handshake_.peer(); }
  bool tls() const { return std::holds_alternative<TlsStream>(stream_); }
  // "TLSv1.3" once the handshake is done; "" for plain TCP.
  std::string tls_version() const;
  // Whether the peer's (verified) certificate is issued to `name` (subjectAltName DNS, or the
  // common name when there is none). False for plain TCP.
  bool peer_certificate_names(std::string_view name) const;
  // The round trip of the last answered ping; negative until one was answered.
  double round_trip_ms() const { return round_trip_ms_; }
  std::uint64_t bytes_sent() const { return bytes_sent_; }

 private:
  using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;
  struct Outgoing {
    peer::OutgoingFrame frame;
    std::shared_ptr<const void> owner;
  };
  boost::asio::ip::tcp::socket& socket();
  void handshake_then_read();
  void begin_authentication();
  bool on_handshake_frame(const peer::Message& message);
  void on_authenticated();
  void enqueue(const peer::Message& message, std::uint64_t request_id, bool mac);
  void read_more();
  void on_read(std::size_t bytes);
  void write_next();
  void arm_ping();
  void arm_watchdog();
  void fail(const std::string& reason);

  std::shared_ptr<boost::asio::ssl::context> tls_context_;  // declared first: outlives the stream
  std::variant<boost::asio::ip::tcp::socket, TlsStream> stream_;
  peer::LinkHandshake handshake_;
  std::unique_ptr<peer::FrameSealer> sealer_;  // set when authenticated, without TLS
  std::unique_ptr<peer::FrameOpener> opener_;
  bool ready_ = false;  // TLS handshake done (plain TCP: at once); frames may be written
  std::deque<Outgoing> until_authenticated_;  // what the owner sent before the peer proved itself
  KeepAlive keepalive_;
  std::string remote_;          // address:port
  std::string remote_address_;
  MessageHandler on_message_;
  CloseHandler on_close_;
  peer::FrameReader reader_;
  std::vector<std::uint8_t> read_buffer_;
  std::deque<Outgoing> queue_;
  static constexpr std::size_t kMaxGatherFrames = 64;
  static constexpr std::size_t kMaxGatherBytes = 4u << 20;
  std::vector<boost::asio::const_buffer> gather_;  // the frames being written
  bool writing_ = false;
  bool closed_ = false;
  bool closing_after_flush_ = false;
  std::string close_reason_;
  bool payload_crc_ = true;
  boost::asio::steady_timer ping_timer_;
  boost::asio::steady_timer watchdog_;
  std::chrono::steady_clock::time_point last_received_;
  double round_trip_ms_ = -1;
  std::uint64_t bytes_sent_ = 0;
};

}  // namespace freevsa::replication
