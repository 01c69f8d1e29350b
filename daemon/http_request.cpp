#include "daemon/http_request.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace freevsa::daemon {

namespace {
HttpParse bad(std::string error) {
  HttpParse p;
  p.state = HttpParse::State::Bad;
  p.error = std::move(error);
  return p;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isupper(c) != 0; });
}

struct StatusReason {
  int status;
  const char* reason;
};
constexpr StatusReason kReasons[] = {
    {200, "OK"},           {400, "Bad Request"},           {401, "Unauthorized"},
    {403, "Forbidden"},    {404, "Not Found"},             {405, "Method Not Allowed"},
    {409, "Conflict"},     {413, "Payload Too Large"},     {415, "Unsupported Media Type"},
    {500, "Internal Server Error"}, {503, "Service Unavailable"},
};

const char* reason(int status) {
  for (const StatusReason& r : kReasons) {
    if (r.status == status) return r.reason;
  }
  return "Status";
}
}  // namespace

HttpParse parse_http_request(std::string_view input) {
  const std::size_t header_end = input.find("\r\n\r\n");
  if (header_end == std::string_view::npos) {
    if (input.size() > kMaxHttpHeaderBytes) return bad("request header too long");
    return {};
  }
  if (header_end > kMaxHttpHeaderBytes) return bad("request header too long");
  std::string_view head = input.substr(0, header_end);

  const std::size_t line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  const std::size_t sp1 = request_line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return bad("malformed request line");
  HttpParse result;
  HttpRequest& r = result.request;
  r.method = std::string(request_line.substr(0, sp1));
  std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = request_line.substr(sp2 + 1);
  if (!is_token(r.method)) return bad("malformed method");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return bad("unsupported HTTP version");
  if (target.empty() || target.front() != '/') return bad("request target must be an absolute path");
  const std::size_t q = target.find('?');
  r.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));

  std::string_view rest = line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
  while (!rest.empty()) {
    const std::size_t end = rest.find("\r\n");
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 2);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return bad("malformed header line");
    // A second Host, Authorization or Content-Length would leave open which one counts.
    std::string name = lower(trim(line.substr(0, colon)));
    if (!r.headers.emplace(name, std::string(trim(line.substr(colon + 1)))).second) {
      return bad("header " + name + " is given twice");
    }
  }

  std::size_t body_length = 0;
  if (auto it = r.headers.find("content-length"); it != r.headers.end()) {
    const std::string& v = it->second;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), body_length);
    if (ec != std::errc() || ptr != v.data() + v.size()) return bad("malformed Content-Length");
    if (body_length > kMaxHttpBodyBytes) return bad("request body too long");
  }
  if (r.headers.count("transfer-encoding") != 0) return bad("chunked requests are not supported");
  const std::size_t body_start = header_end + 4;
  if (input.size() - body_start < body_length) return {};
  r.body = std::string(input.substr(body_start, body_length));
  result.state = HttpParse::State::Complete;
  result.consumed = body_start + body_length;
  return result;
}

std::string format_http_response(int status, std::string_view content_type, std::string_view body,
                                 const HttpHeaders& headers) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
  for (const auto& [name, value] : headers) out += name + ": " + value + "\r\n";
  out += "Content-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  out += body;
  return out;
}

}  // namespace freevsa::daemon
