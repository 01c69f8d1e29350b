#include "replication/peer_tls.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

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

}  // namespace freevsa::replication
