#include "daemon/control_client.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <charconv>

#include "daemon/control_auth.h"
#include "util/asio.h"

namespace freevsa::daemon {

namespace asio = boost::asio;

ControlReply control_request(const std::string& address, std::uint16_t port, const std::string& method,
                             const std::string& path, const std::string& body, const std::string& token) {
  ControlReply reply;
  boost::system::error_code ec;
  asio::io_context io;
  auto ip = asio::ip::make_address(address, ec);
  if (ec) {
    reply.error = "not an IP address: " + address;
    return reply;
  }
  asio::ip::tcp::socket socket(io);
  socket.connect({ip, port}, ec);
  if (ec) {
    reply.error = ec.message() + " at " + address + ":" + std::to_string(port) + " (is the node running?)";
    return reply;
  }
  // A node that accepts but never answers must not hang the command line.
  timeval timeout{10, 0};
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: " + host_header_of(ip.to_string(), port) + "\r\n";
  if (!token.empty()) request += "Authorization: Bearer " + token + "\r\n";
  if (!body.empty()) request += "Content-Type: application/json\r\n";
  request += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  asio::write(socket, asio::buffer(request), ec);
  std::string response;
  std::array<char, 4096> chunk{};
  while (!ec) {
    std::size_t n = socket.read_some(asio::buffer(chunk), ec);
    response.append(chunk.data(), n);
  }
  if (ec != asio::error::eof) {
    reply.error = "reading the answer: " + ec.message();
    return reply;
  }
  // "HTTP/1.1 200 OK\r\n...\r\n\r\nbody"
  const std::size_t space = response.find(' ');
  const std::size_t header_end = response.find("\r\n\r\n");
  if (space == std::string::npos || header_end == std::string::npos) {
    reply.error = "malformed answer from the node";
    return reply;
  }
  std::from_chars(response.data() + space + 1, response.data() + response.size(), reply.status);
  reply.body = response.substr(header_end + 4);
  return reply;
}

}  // namespace freevsa::daemon
