#include "replication/peer_tls.h"

#include <array>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "replication/peer_auth.h"

namespace freevsa::replication {

namespace ssl = boost::asio::ssl;

namespace {
// OpenSSL's own reason ("no such file", "key values mismatch", ...) for the last failure.
std::string openssl_reason(const boost::system::system_error& e) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code != 0) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    return text;
  }
  return e.code().message();
}
}  // namespace

std::shared_ptr<ssl::context> make_peer_tls_context(const TlsFilePaths& files) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  const auto load = [&](const std::string& path, const char* what, const auto& step) {
    if (::access(path.c_str(), R_OK) != 0) {
      throw std::runtime_error(fmt::format("cluster.tls: cannot read {}, this node's {}: {}", path, what, std::strerror(errno)));
    }
    try {
      step();
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error(fmt::format("cluster.tls: cannot use {} as this node's {}: {}", path, what, openssl_reason(e)));
    }
  };
  load(files.cert, "certificate", [&] { context->use_certificate_chain_file(files.cert); });
  load(files.key, "private key", [&] { context->use_private_key_file(files.key, ssl::context::pem); });
  load(files.key, "private key (it does not belong to the certificate)", [&] {
    if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
      throw boost::system::system_error(boost::asio::error::invalid_argument);
    }
  });
  load(files.ca, "CA certificate", [&] { context->load_verify_file(files.ca); });
  context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  return context;
}

namespace {

// The key and identity one PSK context offers and accepts; owned with the context.
struct PskContext {
  boost::asio::ssl::context context{boost::asio::ssl::context::tls};
  std::array<std::uint8_t, 32> key{};
  std::string identity;
};

constexpr unsigned char kAes128GcmSha256[] = {0x13, 0x01};  // TLS_AES_128_GCM_SHA256

// The context's ex_data slot for its PskContext (not app_data: Boost.Asio keeps its verify
// callback there and deletes whatever it finds when the context goes).
int psk_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

PskContext* psk_of(const SSL* ssl) {
  return static_cast<PskContext*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), psk_index()));
}

// A session that carries the PSK, as OpenSSL wants external PSKs; null on failure.
SSL_SESSION* psk_session(SSL* ssl, const PskContext& psk) {
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, kAes128GcmSha256);
  if (cipher == nullptr) return nullptr;
  SSL_SESSION* session = SSL_SESSION_new();
  if (session == nullptr) return nullptr;
  if (SSL_SESSION_set1_master_key(session, psk.key.data(), psk.key.size()) != 1 ||
      SSL_SESSION_set_cipher(session, cipher) != 1 || SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION) != 1) {
    SSL_SESSION_free(session);
    return nullptr;
  }
  return session;
}

// Client: offer the PSK (for the hash it is bound to only).
int use_psk(SSL* ssl, const EVP_MD* md, const unsigned char** id, std::size_t* id_length, SSL_SESSION** session) {
  const PskContext* psk = psk_of(ssl);
  *session = nullptr;
  if (psk == nullptr) return 0;
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, kAes128GcmSha256);
  // By name: after a HelloRetryRequest OpenSSL 3 passes a fetched digest, never the legacy
  // object SSL_CIPHER_get_handshake_digest() returns.
  if (cipher == nullptr || (md != nullptr && !EVP_MD_is_a(md, "SHA256"))) return 1;
  *session = psk_session(ssl, *psk);
  if (*session == nullptr) return 0;
  *id = reinterpret_cast<const unsigned char*>(psk->identity.data());
  *id_length = psk->identity.size();
  return 1;
}

// Server: accept only our own identity; anything else continues without a PSK, and with no
// certificate to fall back on, the handshake fails.
int find_psk(SSL* ssl, const unsigned char* id, std::size_t id_length, SSL_SESSION** session) {
  const PskContext* psk = psk_of(ssl);
  *session = nullptr;
  if (psk == nullptr) return 0;
  if (std::string_view(reinterpret_cast<const char*>(id), id_length) != psk->identity) return 1;
  *session = psk_session(ssl, *psk);
  return *session == nullptr ? 0 : 1;
}

}  // namespace

std::shared_ptr<ssl::context> make_peer_tls_psk_context(std::string_view secret, std::string_view cluster_name) {
  auto holder = std::make_shared<PskContext>();
  holder->identity = fmt::format("freevsa peer link {}", cluster_name);
  const std::string salt = fmt::format("freevsa cluster {}", cluster_name);
  if (!peer::hkdf_sha256(secret, {reinterpret_cast<const std::uint8_t*>(salt.data()), salt.size()},
                         "freevsa peer link TLS pre-shared key", holder->key)) {
    throw std::runtime_error("cluster.tls: psk: HKDF-SHA256 is not available in this OpenSSL");
  }
  SSL_CTX* ctx = holder->context.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  holder->context.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0);  // TLS 1.3 tickets: nothing to resume, the PSK is always there
  if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1) {
    throw std::runtime_error("cluster.tls: psk: TLS_AES_128_GCM_SHA256 is not available in this OpenSSL");
  }
  if (psk_index() < 0 || SSL_CTX_set_ex_data(ctx, psk_index(), holder.get()) != 1) {
    throw std::runtime_error("cluster.tls: psk: OpenSSL has no room for the key");
  }
  SSL_CTX_set_psk_use_session_callback(ctx, use_psk);
  SSL_CTX_set_psk_find_session_callback(ctx, find_psk);
  holder->context.set_verify_mode(ssl::verify_none);  // no certificates: the PSK authenticates
  return std::shared_ptr<ssl::context>(holder, &holder->context);
}

bool tls_psk_required_and_missing(SSL* ssl) {
  // A PSK client accepts any server otherwise: without a certificate to verify, only the use
  // of the PSK (a "resumed" session, in OpenSSL's terms) proves the server knew it.
  return psk_of(ssl) != nullptr && SSL_session_reused(ssl) != 1;
}

}  // namespace freevsa::replication
