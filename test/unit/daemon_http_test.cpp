#include <gtest/gtest.h>

#include "daemon/control_client.h"
#include "daemon/control_server.h"
#include "daemon/http_request.h"

namespace freevsa::daemon {
namespace {

TEST(HttpRequest, ParsesRequestLineHeadersAndBody) {
  auto p = parse_http_request("POST /promote?force=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nvol0");
  ASSERT_EQ(p.state, HttpParse::State::Complete);
  EXPECT_EQ(p.request.method, "POST");
  EXPECT_EQ(p.request.path, "/promote");
  EXPECT_EQ(p.request.query, "force=1");
  EXPECT_EQ(p.request.headers.at("host"), "x");
  EXPECT_EQ(p.request.body, "vol0");
}

TEST(HttpRequest, WaitsForTheWholeBody) {
  EXPECT_EQ(parse_http_request("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc").state, HttpParse::State::NeedMore);
  EXPECT_EQ(parse_http_request("GET /status HTTP/1.1\r\nHost: x\r\n").state, HttpParse::State::NeedMore);
}

TEST(HttpRequest, RefusesMalformedAndOversizedRequests) {
  EXPECT_EQ(parse_http_request("garbage\r\n\r\n").state, HttpParse::State::Bad);
  EXPECT_EQ(parse_http_request("GET status HTTP/1.1\r\n\r\n").state, HttpParse::State::Bad);
  EXPECT_EQ(parse_http_request("GET / HTTP/2\r\n\r\n").state, HttpParse::State::Bad);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n").state, HttpParse::State::Bad);
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n").state, HttpParse::State::Bad);
  EXPECT_EQ(parse_http_request(std::string(kMaxHttpHeaderBytes + 1, 'a')).state, HttpParse::State::Bad);
}

TEST(HttpRequest, RefusesARepeatedHeader) {
  HttpParse p = parse_http_request("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n");
  EXPECT_EQ(p.state, HttpParse::State::Bad);
  EXPECT_EQ(p.error, "header host is given twice");
}

TEST(HttpResponse, CarriesExtraHeaders) {
  EXPECT_EQ(format_http_response(401, "text/plain", "no\n", {{"WWW-Authenticate", "Bearer"}}),
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Type: text/plain\r\n"
            "Content-Length: 3\r\nConnection: close\r\n\r\nno\n");
}

TEST(ControlServer, AnswersRegisteredHandlersAndNamesWhatIsMissing) {
  const std::string token(32, 't');
  ControlServer server(token);
  server.handle("GET", "/status", [](const HttpRequest&) { return HttpResponse{200, "application/json", "{}"}; });
  server.start("127.0.0.1", 0);
  auto ok = control_request("127.0.0.1", server.port(), "GET", "/status");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "{}");
  EXPECT_EQ(control_request("127.0.0.1", server.port(), "POST", "/status", "{}", token).status, 405);
  EXPECT_EQ(control_request("127.0.0.1", server.port(), "GET", "/nothing").status, 404);
  server.stop();
}

TEST(ControlClient, SaysWhenTheNodeIsNotRunning) {
  ControlServer server("");
  server.start("127.0.0.1", 0);
  const auto port = server.port();
  server.stop();
  auto reply = control_request("127.0.0.1", port, "GET", "/status");
  EXPECT_EQ(reply.status, 0);
  EXPECT_NE(reply.error.find("is the node running"), std::string::npos);
}

}  // namespace
}  // namespace freevsa::daemon
