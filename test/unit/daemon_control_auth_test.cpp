// Who may do what on the control endpoint: the decision (control_auth.h), the token file
// (control_token.h), the commands' JSON bodies (json_object.h), and the server that applies them.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "daemon/control_auth.h"
#include "daemon/control_client.h"
#include "daemon/control_server.h"
#include "daemon/control_token.h"
#include "daemon/json_object.h"
#include "util/asio.h"

namespace freevsa::daemon {
namespace {

const std::string kToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const ControlPolicy kPolicy{"127.0.0.1:7799", kToken};

HttpRequest request(std::string method, std::map<std::string, std::string> headers) {
  HttpRequest r;
  r.method = std::move(method);
  r.path = "/v1/demote";
  r.headers = std::move(headers);
  r.body = R"({"volume": "vol0"})";
  return r;
}

// A POST as the command line sends it, with one header changed ("" removes it).
HttpRequest post_with(const std::string& name, const std::string& value) {
  std::map<std::string, std::string> headers = {
      {"host", "127.0.0.1:7799"}, {"authorization", "Bearer " + kToken}, {"content-type", "application/json"}};
  if (value.empty()) {
    headers.erase(name);
  } else {
    headers[name] = value;
  }
  return request("POST", headers);
}

int refused_with(const HttpRequest& r) {
  auto refusal = authorise(r, kPolicy);
  if (refusal) {
    EXPECT_EQ(refusal->reason.find(kToken), std::string::npos) << "the token in " << refusal->reason;
  }
  return refusal ? refusal->status : 0;
}

TEST(ControlAuthorisation, TheCommandLinesRequestIsAllowed) {
  EXPECT_EQ(refused_with(post_with("host", "127.0.0.1:7799")), 0);
  EXPECT_EQ(refused_with(post_with("authorization", "bearer " + kToken)), 0);  // the scheme's case does not matter
  EXPECT_EQ(refused_with(post_with("content-type", "application/json; charset=utf-8")), 0);
  EXPECT_EQ(refused_with(post_with("content-type", "Application/JSON")), 0);
}

TEST(ControlAuthorisation, AChangeWithoutTheRightTokenIsRefused) {
  EXPECT_EQ(refused_with(post_with("authorization", "")), 401);
  EXPECT_EQ(refused_with(post_with("authorization", "Basic " + kToken)), 401);
  EXPECT_EQ(refused_with(post_with("authorization", "Bearer ")), 401);
  EXPECT_EQ(refused_with(post_with("authorization", "Bearer " + kToken.substr(1))), 403);
  EXPECT_EQ(refused_with(post_with("authorization", "Bearer " + kToken + "0")), 403);
  std::string last_wrong = kToken;
  last_wrong.back() = 'e';
  EXPECT_EQ(refused_with(post_with("authorization", "Bearer " + last_wrong)), 403);
  EXPECT_EQ(authorise(post_with("authorization", "Bearer wrong"), kPolicy)->reason, "wrong control token");
}

TEST(ControlAuthorisation, ANodeWithoutATokenAllowsNoChange) {
  const ControlPolicy no_token{"127.0.0.1:7799", ""};
  HttpRequest r = post_with("authorization", "Bearer ");
  r.headers["authorization"] = "Bearer x";
  EXPECT_EQ(authorise(r, no_token)->status, 403);
}

// What a browser sends to another site without asking first: a form or plain text.
TEST(ControlAuthorisation, AChangeThatIsNotJsonIsRefusedEvenWithTheToken) {
  EXPECT_EQ(refused_with(post_with("content-type", "application/x-www-form-urlencoded")), 415);
  EXPECT_EQ(refused_with(post_with("content-type", "text/plain")), 415);
  EXPECT_EQ(refused_with(post_with("content-type", "multipart/form-data; boundary=x")), 415);
  EXPECT_EQ(refused_with(post_with("content-type", "application/jsonx")), 415);
  EXPECT_EQ(refused_with(post_with("content-type", "")), 415);
  EXPECT_EQ(authorise(post_with("content-type", "text/plain"), kPolicy)->reason,
            "the body must be JSON (Content-Type: application/json), not 'text/plain'");
}

// A page whose host name was made to resolve to 127.0.0.1 sends its own name as Host.
TEST(ControlAuthorisation, EveryRequestMustNameThisEndpointAsHost) {
  EXPECT_EQ(refused_with(post_with("host", "evil.example:7799")), 403);
  EXPECT_EQ(refused_with(post_with("host", "127.0.0.1:7798")), 403);
  EXPECT_EQ(refused_with(post_with("host", "127.0.0.1")), 403);
  EXPECT_EQ(refused_with(post_with("host", "")), 400);
  EXPECT_EQ(refused_with(request("GET", {{"host", "evil.example:7799"}})), 403);
  EXPECT_EQ(refused_with(request("GET", {})), 400);
  EXPECT_EQ(authorise(request("GET", {{"host", "evil.example:7799"}}), kPolicy)->reason,
            "Host 'evil.example:7799' is not this endpoint (127.0.0.1:7799)");
}

TEST(ControlAuthorisation, ReadingTheStatusNeedsNoToken) {
  EXPECT_EQ(refused_with(request("GET", {{"host", "127.0.0.1:7799"}})), 0);
  EXPECT_FALSE(changes_state(request("GET", {})));
  for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) EXPECT_TRUE(changes_state(request(method, {})));
  EXPECT_EQ(refused_with(request("PUT", {{"host", "127.0.0.1:7799"}})), 401);
}

TEST(ControlAuthorisation, HostHeaderOfAnAddress) {
  EXPECT_EQ(host_header_of("127.0.0.2", 4102), "127.0.0.2:4102");
  EXPECT_EQ(host_header_of("::1", 7799), "[::1]:7799");
}

// --- the commands' bodies ---

TEST(JsonObject, ParsesStringsAndBooleans) {
  JsonObjectParse p = parse_json_object(" {\"volume\" : \"vol0\", \"force\":true,\"x\":false}\n");
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(std::get<std::string>(p.values.at("volume")), "vol0");
  EXPECT_TRUE(std::get<bool>(p.values.at("force")));
  EXPECT_FALSE(std::get<bool>(p.values.at("x")));
  EXPECT_TRUE(parse_json_object("{}").values.empty());
  EXPECT_EQ(parse_json_object("{}").error, "");
  EXPECT_EQ(std::get<std::string>(parse_json_object(R"({"v":"a\"\\\/\n\u00e9\ud83d\ude00"})").values.at("v")),
            "a\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(JsonObject, RefusesWhatIsNotOneFlatObject) {
  for (const char* bad : {"", "volume=vol0", "[]", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1}", "{\"a\":null}",
                          "{\"a\":{}}", "{\"a\":\"x\",}", "{\"a\":\"x\"} {}", "{\"a\":\"x\" \"b\":\"y\"}",
                          "{a:\"x\"}", "{\"a\":\"x\n\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
                          "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800x\"}", "{\"a\":tru}", "{\"a\":\"x"}) {
    SCOPED_TRACE(bad);
    JsonObjectParse p = parse_json_object(bad);
    EXPECT_NE(p.error, "");
    EXPECT_TRUE(p.values.empty());
  }
  EXPECT_EQ(parse_json_object(R"({"a":"x","a":"y"})").error, "malformed JSON at byte 16: \"a\" is given twice");
}

// --- the token file ---

class ControlTokenFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("freevsa-token-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir);
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  std::string error_of(const std::string& path) {
    try {
      ensure_control_token(path);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  }

  std::filesystem::path dir;
};

TEST_F(ControlTokenFile, CreatedAtFirstStartOnlyReadableByItsOwner) {
  const std::string path = (dir / "data" / "a.control-token").string();
  const std::string token = ensure_control_token(path);
  EXPECT_EQ(token.size(), 64u);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(ensure_control_token(path), token);  // kept across restarts
  EXPECT_EQ(read_control_token(path).token, token);
  EXPECT_NE(generate_control_token(), generate_control_token());
}

TEST_F(ControlTokenFile, AFileOthersCanReadOrALinkIsRefused) {
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "t").string();
  std::ofstream(path) << kToken << "\n";
  ::chmod(path.c_str(), 0644);
  EXPECT_EQ(error_of(path), "control token " + path + ": mode 0644 lets other users read or change it (chmod 600 it)");
  ::chmod(path.c_str(), 0600);
  EXPECT_EQ(ensure_control_token(path), kToken);
  const std::string link = (dir / "link").string();
  std::filesystem::create_symlink(path, link);
  EXPECT_EQ(error_of(link), "control token " + link + ": it is a symbolic link; give the file itself");
  std::filesystem::create_directories(dir / "d");
  EXPECT_EQ(error_of((dir / "d").string()), "control token " + (dir / "d").string() + ": not a regular file");
}

TEST_F(ControlTokenFile, AShortOrMalformedTokenIsRefused) {
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "t").string();
  std::ofstream(path) << "short\n";
  ::chmod(path.c_str(), 0600);
  EXPECT_EQ(error_of(path), "control token " + path + ": the token must be 32 to 1024 characters, the file holds 5");
  EXPECT_EQ(read_control_token(path).error, "the token must be 32 to 1024 characters, the file holds 5");
  std::ofstream(path) << kToken.substr(0, 20) << " " << kToken << "\n";
  EXPECT_NE(error_of(path).find("spaces"), std::string::npos);
  EXPECT_EQ(read_control_token((dir / "missing").string()).error, "No such file or directory");
}

// --- the server applies the decision before any handler ---

class ControlServerAccess : public ::testing::Test {
 protected:
  void SetUp() override {
    server.handle("POST", "/v1/demote", [this](const HttpRequest&) {
      ++changes;
      return HttpResponse{200, "text/plain", "demoted\n"};
    });
    server.start("127.0.0.1", 0);
  }
  void TearDown() override { server.stop(); }

  struct RawReply {
    int status = 0;
    std::string head;
    std::string body;
  };
  RawReply raw(const std::string& text) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), server.port()});
    boost::asio::write(socket, boost::asio::buffer(text));
    std::string response;
    boost::system::error_code ec;
    std::array<char, 4096> chunk{};
    while (!ec) response.append(chunk.data(), socket.read_some(boost::asio::buffer(chunk), ec));
    RawReply reply;
    reply.status = std::stoi(response.substr(9, 3));
    reply.head = response.substr(0, response.find("\r\n\r\n"));
    reply.body = response.substr(response.find("\r\n\r\n") + 4);
    return reply;
  }

  std::string host() const { return "127.0.0.1:" + std::to_string(server.port()); }

  ControlServer server{kToken};
  std::atomic<int> changes{0};
};

TEST_F(ControlServerAccess, RefusalsNeverReachTheHandler) {
  const std::string form = "volume=vol0";
  EXPECT_EQ(raw("POST /v1/demote HTTP/1.1\r\nHost: " + host() +
                "\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 11\r\n\r\n" + form)
                .status,
            401);
  RawReply wrong = raw("POST /v1/demote HTTP/1.1\r\nHost: " + host() +
                           "\r\nAuthorization: Bearer nope\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(wrong.status, 403);
  EXPECT_EQ(wrong.body, "wrong control token\n");
  RawReply none = raw("POST /v1/demote HTTP/1.1\r\nHost: " + host() + "\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.head.find("\r\nWWW-Authenticate: Bearer\r\n"), std::string::npos) << none.head;
  // Which Authorization counts must not be left to the order of the lines.
  EXPECT_EQ(raw("POST /v1/demote HTTP/1.1\r\nHost: " + host() + "\r\nAuthorization: Bearer " + kToken +
                "\r\nAuthorization: Bearer x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
                .status,
            400);
  EXPECT_EQ(changes, 0);
  EXPECT_EQ(control_request("127.0.0.1", server.port(), "POST", "/v1/demote", "{}", kToken).status, 200);
  EXPECT_EQ(changes, 1);
}

TEST_F(ControlServerAccess, RefusalIsLoggedWithTheSourceButNotTheToken) {
  ::testing::internal::CaptureStderr();
  control_request("127.0.0.1", server.port(), "POST", "/v1/demote", "{}", "guessed-token-guessed-token-guessed");
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find("control endpoint: refused POST /v1/demote from 127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("wrong control token (HTTP 403)"), std::string::npos) << log;
  EXPECT_EQ(log.find("guessed-token"), std::string::npos) << log;
}

// Clients that connect and send nothing hold a descriptor each for as long as the server waits
// for their request; beyond the limit the next connection waits in the queue instead.
TEST(ControlServerAccept, ConnectionsBeyondTheLimitWaitUntilOneEnds) {
  ControlServer server(kToken);
  server.handle("GET", "/v1/status", [](const HttpRequest&) { return HttpResponse{200, "text/plain", "ok\n"}; });
  server.start("127.0.0.1", 0);
  boost::asio::io_context io;
  const boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), server.port());
  std::vector<std::unique_ptr<boost::asio::ip::tcp::socket>> idle;
  for (std::size_t i = 0; i < kMaxControlSessions; ++i) {
    idle.push_back(std::make_unique<boost::asio::ip::tcp::socket>(io));
    idle.back()->connect(endpoint);
  }
  boost::asio::ip::tcp::socket asking(io);
  asking.connect(endpoint);  // the kernel completes the handshake; the server has not accepted it
  timeval short_wait{0, 500000};
  ::setsockopt(asking.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &short_wait, sizeof short_wait);
  const std::string get = "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n\r\n";
  boost::asio::write(asking, boost::asio::buffer(get));
  // recv itself: asio's read_some would wait on past the timeout.
  std::array<char, 4096> chunk{};
  const ssize_t early = ::recv(asking.native_handle(), chunk.data(), chunk.size(), 0);
  EXPECT_EQ(early, -1) << "answered while " << kMaxControlSessions << " connections were open: "
                       << std::string(chunk.data(), static_cast<std::size_t>(std::max<ssize_t>(early, 0)));
  idle.front()->close();
  timeval long_wait{5, 0};
  ::setsockopt(asking.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &long_wait, sizeof long_wait);
  std::string answer;
  for (ssize_t n; (n = ::recv(asking.native_handle(), chunk.data(), chunk.size(), 0)) > 0;) {
    answer.append(chunk.data(), static_cast<std::size_t>(n));
  }
  EXPECT_EQ(answer.substr(0, 15), "HTTP/1.1 200 OK") << answer;
  idle.clear();
  EXPECT_EQ(control_request("127.0.0.1", server.port(), "GET", "/v1/status").status, 200);
  server.stop();
}

// A process out of descriptors cannot take the pending connection off the queue: the next accept
// fails at once, again and again. The server must wait instead of spinning on the CPU.
TEST(ControlServerAccept, OutOfDescriptorsBacksOffInsteadOfSpinning) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(ready[0]);
    ControlServer server(kToken);
    server.start("127.0.0.1", 0);
    // Use up every descriptor this process may have; the server's own stay open.
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = 64;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    std::vector<int> hog;
    for (int fd; (fd = ::dup(0)) >= 0;) hog.push_back(fd);
    const std::uint16_t port = server.port();
    if (::write(ready[1], &port, sizeof port) != sizeof port) ::_exit(2);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    const long cpu_ms = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000 +
                        (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1000;
    // Exit status: the CPU time in tens of milliseconds (capped), for the parent to judge.
    ::_exit(static_cast<int>(std::min(cpu_ms / 10, 250L)));
  }
  ::close(ready[1]);
  std::uint16_t port = 0;
  ASSERT_EQ(::read(ready[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  ::close(ready[0]);
  // A connection waits in the child's queue; the child cannot accept it.
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket client(io);
  client.connect({boost::asio::ip::make_address("127.0.0.1"), port});
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  const int cpu_tens_of_ms = WEXITSTATUS(status);
  // Spinning costs most of a CPU for the 1.5 s; backing off 100 ms at a time costs next to nothing.
  EXPECT_LT(cpu_tens_of_ms * 10, 150) << "ms of CPU while out of descriptors for 1.5 s";
}

}  // namespace
}  // namespace freevsa::daemon
