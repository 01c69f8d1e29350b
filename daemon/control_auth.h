// Who may do what on the control endpoint. The decision is separate from the server so that it
// can be tested without sockets.
//
// Every request must name the endpoint itself in Host (the configured control address and port,
// as the command line sends it): a web page that got a host name of its own resolved to the
// loopback address (DNS rebinding) names that host name instead and is refused.
//
// GET reads the status and needs nothing more. Every other method changes state and must carry
//   Authorization: Bearer TOKEN          the node's control token (control_token.h)
//   Content-Type: application/json       a body a browser cannot send to another site without
//                                        asking first (a CORS preflight, never answered here)
// A cross-site form or text/plain POST from a browser has neither.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "daemon/http_request.h"

namespace freevsa::daemon {

struct ControlPolicy {
  std::string host;   // what Host must say: host_header_of(address, port)
  std::string token;  // empty: nothing that changes state is allowed
};

struct AccessRefusal {
  int status = 403;     // 400 no Host, 401 no token, 403 wrong Host or token, 415 not JSON
  std::string reason;   // one line for the client and the log; never contains the token
};

// nullopt: the request may go to its handler.
std::optional<AccessRefusal> authorise(const HttpRequest& request, const ControlPolicy& policy);

// GET only reads; anything else is treated as a change.
bool changes_state(const HttpRequest& request);

// "127.0.0.1:7799", "[::1]:7799": the Host header of a request to address:port.
std::string host_header_of(const std::string& address, std::uint16_t port);

}  // namespace freevsa::daemon
