// The command-line side of the control endpoint: one HTTP request to a node, its answer.
#pragma once

#include <cstdint>
#include <string>

namespace freevsa::daemon {

struct ControlReply {
  int status = 0;      // HTTP status; 0 when the node could not be reached
  std::string body;
  std::string error;   // when status is 0: why ("connection refused: is the node running?")
};

// `body`, when there is one, is JSON; `token`, when given, goes in "Authorization: Bearer".
ControlReply control_request(const std::string& address, std::uint16_t port, const std::string& method,
                             const std::string& path, const std::string& body = {}, const std::string& token = {});

}  // namespace freevsa::daemon
