// The small HTTP/1.1 subset the control endpoint speaks: one request per connection, a request
// line, headers, and a body of Content-Length bytes. Parsing is separate from serving so it can
// be fuzzed on its own.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace freevsa::daemon {

struct HttpRequest {
  std::string method;                       // "GET", "POST"
  std::string path;                         // "/status" (query string split off)
  std::string query;                        // "json=1", without '?'
  std::map<std::string, std::string> headers;  // names lower-cased; each name once
  std::string body;
};

struct HttpParse {
  enum class State { NeedMore, Complete, Bad } state = State::NeedMore;
  HttpRequest request;
  std::string error;         // when Bad: what was wrong
  std::size_t consumed = 0;  // when Complete: bytes of input the request used
};

constexpr std::size_t kMaxHttpHeaderBytes = 16 * 1024;
constexpr std::size_t kMaxHttpBodyBytes = 64 * 1024;

// Parses what arrived so far. Never reads past `input`; bounded in header and body size.
HttpParse parse_http_request(std::string_view input);

// Header lines of a response beyond Content-Type, Content-Length and Connection, in order.
using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

// "HTTP/1.1 200 OK" response with `headers`, Content-Length and Connection: close.
std::string format_http_response(int status, std::string_view content_type, std::string_view body,
                                 const HttpHeaders& headers = {});

}  // namespace freevsa::daemon
