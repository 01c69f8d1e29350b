// TLS 1.3 with a pre-shared key from the cluster secret (peer_tls.h): a client and a server
// that share it connect and use it; one with another secret does not; the context is destroyed
// cleanly (it shares the SSL_CTX with Boost.Asio's own bookkeeping).
#include <gtest/gtest.h>

#include <openssl/ssl.h>

#include <thread>

#include "replication/peer_tls.h"

namespace freevsa::replication {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

struct Outcome {
  boost::system::error_code client, server;
  bool client_used_psk = false;
};

// One TLS handshake over loopback between a client with `client_ctx` and a server with `server_ctx`.
Outcome handshake(const std::shared_ptr<asio::ssl::context>& client_ctx,
                  const std::shared_ptr<asio::ssl::context>& server_ctx) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ssl::stream<tcp::socket> client(io, *client_ctx), server(io, *server_ctx);
  Outcome out;
  acceptor.async_accept(server.next_layer(), [&](boost::system::error_code ec) {
    if (ec) {
      out.server = ec;
      return;
    }
    server.async_handshake(asio::ssl::stream_base::server, [&](boost::system::error_code e) { out.server = e; });
  });
  client.next_layer().async_connect(acceptor.local_endpoint(), [&](boost::system::error_code ec) {
    if (ec) {
      out.client = ec;
      return;
    }
    client.async_handshake(asio::ssl::stream_base::client, [&](boost::system::error_code e) {
      out.client = e;
      if (!e) out.client_used_psk = !tls_psk_required_and_missing(client.native_handle());
    });
  });
  io.run_for(std::chrono::seconds(10));
  return out;
}

TEST(PeerTlsPsk, NodesWithTheSecretConnectOverTls13WithThePsk) {
  auto a = make_peer_tls_psk_context("one secret for the cluster", "lab");
  auto b = make_peer_tls_psk_context("one secret for the cluster", "lab");
  const Outcome out = handshake(a, b);
  EXPECT_FALSE(out.client) << out.client.message();
  EXPECT_FALSE(out.server) << out.server.message();
  EXPECT_TRUE(out.client_used_psk);
}

TEST(PeerTlsPsk, AnotherSecretOrClusterFailsTheHandshake) {
  auto a = make_peer_tls_psk_context("one secret for the cluster", "lab");
  EXPECT_TRUE(handshake(a, make_peer_tls_psk_context("another secret entirely", "lab")).client);
  EXPECT_TRUE(handshake(a, make_peer_tls_psk_context("one secret for the cluster", "other")).client);
}

TEST(PeerTlsPsk, TheContextIsDestroyedCleanly) {
  for (int i = 0; i < 3; ++i) {
    auto context = make_peer_tls_psk_context("one secret for the cluster", "lab");
    EXPECT_NE(context->native_handle(), nullptr);
  }  // before the key moved out of the context's app data, this crashed in Boost.Asio's destructor
}

}  // namespace
}  // namespace freevsa::replication
