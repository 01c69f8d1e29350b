// TLS for the peer link (cluster.tls in the configuration), in one of two modes:
//  - certificates: one context per node, built from this node's certificate and key and the CA
//    that signed every node's certificate. Both ends present a certificate and verify the
//    other's (mutual TLS, TLS 1.2 or newer); the link then checks that the peer's certificate
//    names the node its Hello claims to be (PeerConnection::peer_certificate_names).
//  - psk: TLS 1.3 with an external pre-shared key derived from the cluster secret (HKDF-SHA256,
//    bound to the cluster name), key exchange psk_dhe_ke (ECDHE, so forward secrecy), no
//    certificates at all. A peer without the secret fails the TLS handshake.
// The shared-secret authentication (peer_auth.h) runs inside TLS in both modes, as without it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

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

// TLS 1.3 with a pre-shared key from `secret` for cluster `cluster_name`. Throws
// std::runtime_error when OpenSSL cannot set it up (start-up edge).
std::shared_ptr<boost::asio::ssl::context> make_peer_tls_psk_context(std::string_view secret,
                                                                     std::string_view cluster_name);

// After a TLS handshake: true when the connection's context is a PSK context and the handshake
// did not use the PSK (a server that offered a certificate instead): the connection must close.
bool tls_psk_required_and_missing(SSL* ssl);

}  // namespace freevsa::replication
