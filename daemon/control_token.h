// The node's control token: the secret a request that changes state (promote, demote, verify,
// reconnect) presents to the node's control endpoint (control_auth.h). It lives in a file that
// only the user the node runs as can read (mode 0600); the configuration names the file
// (nodes[].control_token), so the command line run by that user finds it the same way the node does.
//
// The node creates the file at its first start when it is missing. To change the token, delete
// the file and restart the node.
#pragma once

#include <string>

namespace freevsa::daemon {

// 32 random bytes as 64 hex digits.
std::string generate_control_token();

// For the node at start-up: creates the file with a new token when it does not exist (and its
// directory), then reads it. The file must be a regular file (not a link) owned by this process's
// user with no permissions for group or others; the token 32 to 1024 printable characters without
// spaces. Throws std::runtime_error naming the file and what is wrong (start-up edge).
std::string ensure_control_token(const std::string& path);

// For the command line: the token in the file, or the reason it cannot be had (errno's text for a
// file that cannot be opened, e.g. "Permission denied" for a user who is not the node's).
struct ControlTokenRead {
  std::string token;  // empty when error is set
  std::string error;
};
ControlTokenRead read_control_token(const std::string& path);

}  // namespace freevsa::daemon
