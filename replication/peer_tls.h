// TLS for the peer link (cluster.tls in the configuration): one context per node, built from
// this node's certificate and key and the CA that signed every node's certificate. Both ends
// present a certificate and verify the other's (mutual TLS, TLS 1.2 or newer); the link then
// checks that the peer's certificate names the node its Hello claims to be
// (PeerConnection::peer_certificate_names). The shared-secret authentication runs inside TLS
// as without it.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ssl.hpp>

#include "util/asio.h"

namespace freevsa::replication {

struct TlsFilePaths {
  std::string cert;  // PEM, this node's certificate (chain)
  std::string key;   // PEM, its private key
  std::string ca;    // PEM, the CA certificate(s) that verify the peers'
};

// Throws std::runtime_error naming the file and what is wrong with it (start-up edge).
std::shared_ptr<boost::asio::ssl::context> make_peer_tls_context(const TlsFilePaths& files);

}  // namespace freevsa::replication
