#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/control_api.h"
#include "daemon/control_server.h"
#include "daemon/status_render.h"
#include "replication/replication_status.h"

namespace freevsa::daemon {
namespace {

using replication::CommandResult;
using replication::ConnectionState;
using replication::PeerStatus;
using replication::SyncProgress;
using replication::VolumeStatus;

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kGiB = 1ull << 30;

// vol0 resyncing to b, 431 MiB of 1 GiB done.
VolumeStatus syncing_volume() {
  VolumeStatus v;
  v.name = "vol0";
  v.role = "primary";
  v.disk_state = "UpToDate";
  v.protocol = 'C';
  v.protocol_meaning = "C: a write completes when both disks have it";
  v.size_bytes = kGiB;
  v.out_of_sync_bytes = kGiB - 431 * kMiB;
  v.volume_uuid = "0f5c2a6e-3d1b-4c8e-9a47-6b2d1e0c7f93";
  v.generation = "00000000000000a1";
  PeerStatus b;
  b.node = "b";
  b.address = "127.0.0.2:7788";
  b.role = "secondary";
  b.disk_state = "Inconsistent";
  b.connection = ConnectionState::SyncSource;
  b.round_trip_ms = 0.42;
  v.peers.push_back(b);
  SyncProgress sync;
  sync.total_bytes = kGiB;
  sync.done_bytes = 431 * kMiB;
  sync.bytes_per_second = 85.3 * static_cast<double>(kMiB);
  sync.eta_seconds = 7.2;
  v.sync = sync;
  v.backing = "data/a/vol0.img";
  v.writes_replicated = 1234;
  v.bytes_resynced = 431 * kMiB;
  return v;
}

// vol1: the peer is gone, a verify finished earlier.
VolumeStatus disconnected_volume() {
  VolumeStatus v;
  v.name = "vol1";
  v.role = "primary";
  v.disk_state = "UpToDate";
  v.protocol = 'A';
  v.protocol_meaning = "A: a write completes when it is on the local disk and sent to the peer";
  v.size_bytes = 10 * kGiB;
  v.out_of_sync_bytes = 3 * kMiB / 2;
  PeerStatus b;
  b.node = "b";
  b.address = "127.0.0.2:7788";
  b.role = "unknown";
  b.disk_state = "unknown";
  b.connection = ConnectionState::Connecting;
  b.last_error = "connection refused";
  v.peers.push_back(b);
  v.verify.finished_at = "2026-03-01T10:00:00Z";
  return v;
}

class FakeControl : public replication::ReplicationControl {
 public:
  std::vector<VolumeStatus> volumes;
  CommandResult answer{true, 200, "done", ""};
  bool fail = false;
  std::vector<std::string> calls;

  std::vector<VolumeStatus> status() const override {
    if (fail) throw std::runtime_error("metadata unreadable");
    return volumes;
  }
  CommandResult promote(const std::string& volume, bool force) override {
    return record("promote " + volume + (force ? " force" : ""));
  }
  CommandResult demote(const std::string& volume) override { return record("demote " + volume); }
  CommandResult verify(const std::string& volume) override { return record("verify " + volume); }
  CommandResult reconnect(const std::string& volume) override { return record("reconnect " + volume); }

 private:
  CommandResult record(std::string call) {
    if (fail) throw std::runtime_error("metadata write failed");
    calls.push_back(std::move(call));
    return answer;
  }
};

class ControlApi : public ::testing::Test {
 protected:
  ControlApi() {
    control.volumes = {syncing_volume(), disconnected_volume()};
    register_control_api(server, control, "a");
  }

  HttpResponse get(const std::string& path, const std::string& query = "") {
    HttpRequest request;
    request.method = "GET";
    request.path = path;
    request.query = query;
    return server.dispatch(request);
  }

  HttpResponse post(const std::string& path, const std::string& body) {
    HttpRequest request;
    request.method = "POST";
    request.path = path;
    request.body = body;
    return server.dispatch(request);
  }

  FakeControl control;
  ControlServer server{""};
};

// --- rendering ---

TEST(StatusRender, JsonQuoteEscapesWhatJsonRequires) {
  EXPECT_EQ(json_quote("plain"), "\"plain\"");
  EXPECT_EQ(json_quote("a\"b\\c/d"), "\"a\\\"b\\\\c/d\"");
  EXPECT_EQ(json_quote("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
  EXPECT_EQ(json_quote(std::string("\x01\x1f\x00", 3)), "\"\\u0001\\u001f\\u0000\"");
  EXPECT_EQ(json_quote("\x7f"), "\"\x7f\"");  // DEL is allowed unescaped
}

TEST(StatusRender, JsonQuoteKeepsUtf8AndReplacesInvalidBytes) {
  EXPECT_EQ(json_quote("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xbe"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xbe\"");
  EXPECT_EQ(json_quote("a\xffz"), "\"a\\ufffdz\"");                 // never valid
  EXPECT_EQ(json_quote("\xc3"), "\"\\ufffd\"");                     // truncated
  EXPECT_EQ(json_quote("\xc0\xaf"), "\"\\ufffd\\ufffd\"");          // overlong '/'
  EXPECT_EQ(json_quote("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
  EXPECT_EQ(json_quote("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // above U+10FFFF
}

TEST(StatusRender, HumanDurations) {
  EXPECT_EQ(human_duration(7.4), "0:07");
  EXPECT_EQ(human_duration(59.6), "1:00");
  EXPECT_EQ(human_duration(3723), "1:02:03");
  EXPECT_EQ(human_duration(-1), "?");
  EXPECT_EQ(human_duration(NAN), "?");
}

TEST(StatusRender, JsonHasEveryFieldAndNullForWhatIsUnknown) {
  VolumeStatus v = disconnected_volume();
  v.backing = "data/\"odd\"\n.img";
  v.verify.eta_seconds = std::nullopt;
  v.volume_uuid = "u";
  v.generation = "g";
  EXPECT_EQ(status_json("a", {v}),
            R"({
  "node": "a",
  "volumes": [
    {
      "name": "vol1",
      "role": "primary",
      "primary_when_peer_met": false,
      "disk_state": "UpToDate",
      "protocol": "A",
      "protocol_meaning": "A: a write completes when it is on the local disk and sent to the peer",
      "size_bytes": 10737418240,
      "out_of_sync_bytes": 1572864,
      "volume_uuid": "u",
      "generation": "g",
      "peers": [
        {
          "node": "b",
          "address": "127.0.0.2:7788",
          "role": "unknown",
          "disk_state": "unknown",
          "connection": "Connecting",
          "last_error": "connection refused",
          "round_trip_ms": null,
          "unauthenticated_connections": 0,
          "refused_connections": 0,
          "last_refused_connection": ""
        }
      ],
      "sync": null,
      "verify": {
        "running": false,
        "total_bytes": 0,
        "checked_bytes": 0,
        "out_of_sync_bytes": 0,
        "bytes_per_second": 0,
        "eta_seconds": null,
        "finished_at": "2026-03-01T10:00:00Z"
      },
      "backing": "data/\"odd\"\n.img",
      "writes_replicated": 0,
      "bytes_resynced": 0
    }
  ]
}
)");
}

TEST(StatusRender, JsonOfASyncAndOfNothing) {
  const std::string json = status_json("a", {syncing_volume()});
  EXPECT_NE(json.find(R"("round_trip_ms": 0.42)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("connection": "SyncSource")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("sync": {
        "full": false,
        "total_bytes": 1073741824,
        "done_bytes": 451936256,
        "skipped_bytes": 0,
        "bytes_per_second": 89443532.8,
        "eta_seconds": 7.2,
        "percent": 42.08984375
      },)"),
            std::string::npos)
      << json;
  EXPECT_EQ(status_json("b", {}), "{\n  \"node\": \"b\",\n  \"volumes\": []\n}\n");
  VolumeStatus odd = syncing_volume();
  odd.sync->bytes_per_second = NAN;
  odd.sync->eta_seconds = INFINITY;
  const std::string odd_json = status_json("a", {odd});
  EXPECT_NE(odd_json.find(R"("bytes_per_second": null,
        "eta_seconds": null,)"),
            std::string::npos)
      << odd_json;
}

// The node table's columns line up across volumes, so that a state can be read down a column.
TEST(StatusRender, TextShowsEachVolumeInAlignedColumns) {
  EXPECT_EQ(status_text("a", {syncing_volume(), disconnected_volume()}),
            "node a\n"
            "vol0  1.0 GiB  protocol C: a write completes when both disks have it\n"
            "  a  (this node)                 primary    UpToDate      out of sync 593.0 MiB\n"
            "  b  127.0.0.2:7788  SyncSource  secondary  Inconsistent  round trip 0.42 ms\n"
            "  sync: 42.1% (431.0 MiB of 1.0 GiB), 85.3 MiB/s, ETA 0:07\n"
            "vol1  10.0 GiB  protocol A: a write completes when it is on the local disk and sent to the peer\n"
            "  a  (this node)                 primary    UpToDate      out of sync 1.5 MiB\n"
            "  b  127.0.0.2:7788  Connecting  unknown    unknown\n"
            "  verify: last completed 2026-03-01T10:00:00Z, 0 B out of sync\n"
            "  last error from b: connection refused\n");
}

TEST(StatusRender, TextOfAFullChecksumSyncAndARunningVerify) {
  VolumeStatus v = syncing_volume();
  v.protocol_meaning = "";
  v.sync->full = true;
  v.sync->skipped_bytes = 12 * kMiB;
  v.sync->eta_seconds.reset();
  v.verify.running = true;
  v.verify.total_bytes = kGiB;
  v.verify.checked_bytes = kGiB / 10;
  v.verify.out_of_sync_bytes = 4096;
  v.verify.bytes_per_second = 100.0 * static_cast<double>(kMiB);
  v.verify.eta_seconds = 9.2;
  const std::string text = status_text("a", {v});
  EXPECT_NE(text.find("vol0  1.0 GiB  protocol C\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  sync (full): 42.1% (431.0 MiB of 1.0 GiB), 85.3 MiB/s, ETA unknown, 12.0 MiB identical "
                      "(not sent)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  verify: 10.0% (102.4 MiB of 1.0 GiB), 100.0 MiB/s, ETA 0:09, 4.0 KiB out of sync\n"),
            std::string::npos)
      << text;
}

TEST(StatusRender, TextSaysWhenASecondaryBecomesPrimaryOnMeetingItsPeer) {
  VolumeStatus v = disconnected_volume();
  v.role = "secondary";
  v.primary_when_peer_met = true;
  const std::string text = status_text("a", {v});
  EXPECT_NE(text.find("  becomes primary once it has met its peer as secondary\n"), std::string::npos) << text;
  EXPECT_NE(status_json("a", {v}).find("\"primary_when_peer_met\": true"), std::string::npos);
}

TEST(StatusRender, TextKeepsControlCharactersOffTheTerminal) {
  VolumeStatus v = disconnected_volume();
  v.peers[0].last_error = "bad\x1b[2Jthing\nmore";
  const std::string text = status_text("a", {v});
  EXPECT_NE(text.find("  last error from b: bad?[2Jthing?more\n"), std::string::npos) << text;
  EXPECT_EQ(status_text("a", {}), "node a: no replicated volumes\n");
}

// --- the API ---

TEST_F(ControlApi, StatusIsJsonOfEveryVolume) {
  HttpResponse r = get("/v1/status");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, status_json("a", control.volumes));
}

TEST_F(ControlApi, StatusTextIsWhatTheCommandPrints) {
  HttpResponse r = get("/v1/status.txt");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, status_text("a", control.volumes));
}

TEST_F(ControlApi, StatusOfOneVolume) {
  EXPECT_EQ(get("/v1/status.txt", "volume=vol1").body, status_text("a", {disconnected_volume()}));
  EXPECT_EQ(get("/v1/status", "volume=vol%30").body, status_json("a", {syncing_volume()}));
  HttpResponse missing = get("/v1/status.txt", "volume=vol9");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, "no such volume: 'vol9' (this node has: vol0, vol1)\n");
}

TEST_F(ControlApi, StatusRefusesUnknownParameters) {
  HttpResponse r = get("/v1/status", "vol=vol0");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "unknown parameter 'vol' (this request takes: volume)\n");
  EXPECT_EQ(get("/v1/status.txt", "volume=vol0&volume=vol1").status, 400);
}

TEST_F(ControlApi, StatusFailureIsAnAnswerNotACrash) {
  control.fail = true;
  HttpResponse r = get("/v1/status");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "internal error: metadata unreadable\n");
}

TEST_F(ControlApi, CommandsReachTheReplicationLayer) {
  EXPECT_EQ(post("/v1/promote", R"({"volume": "vol0"})").status, 200);
  EXPECT_EQ(post("/v1/promote", R"({"volume": "vol0", "force": true})").status, 200);
  EXPECT_EQ(post("/v1/promote", R"({"force": false, "volume": "vol0"})").status, 200);
  EXPECT_EQ(post("/v1/demote", R"({"volume": "vol0"})").status, 200);
  EXPECT_EQ(post("/v1/verify", R"({"volume": "vol\u0031"})").status, 200);
  EXPECT_EQ(post("/v1/reconnect", R"({"volume":"vol1"})").status, 200);
  EXPECT_EQ(control.calls, (std::vector<std::string>{"promote vol0", "promote vol0 force", "promote vol0",
                                                     "demote vol0", "verify vol1", "reconnect vol1"}));
}

TEST_F(ControlApi, CommandAnswerCarriesStatusMessageAndWarning) {
  control.answer = {true, 200, "vol0 is primary on a", "b may hold writes a never saw; they are discarded"};
  HttpResponse r = post("/v1/promote", R"({"volume": "vol0", "force": true})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "vol0 is primary on a\nwarning: b may hold writes a never saw; they are discarded\n");
  control.answer = {false, 409, "b is primary: demote it first", ""};
  r = post("/v1/promote", R"({"volume": "vol0"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body, "b is primary: demote it first\n");
  control.answer = {false, 404, "no such volume: vol7", ""};
  EXPECT_EQ(post("/v1/demote", R"({"volume": "vol7"})").status, 404);
}

TEST_F(ControlApi, CommandsRefuseMalformedParameters) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"/v1/promote", ""},
      {"/v1/promote", "{}"},
      {"/v1/promote", R"({"volume": ""})"},
      {"/v1/promote", R"({"volume": true})"},
      {"/v1/promote", R"({"force": true})"},
      {"/v1/promote", R"({"volume": "vol0", "force": "yes"})"},
      {"/v1/promote", R"({"volume": "vol0", "force": 1})"},
      {"/v1/promote", R"({"volume": "vol0",})"},
      {"/v1/promote", R"({"volume": "vol0", "volume": "vol1"})"},
      {"/v1/promote", "volume=vol0"},
      {"/v1/demote", R"({"volume": "vol0", "force": true})"},
      {"/v1/verify", R"({"volume": "vol0", "extra": "1"})"},
      {"/v1/reconnect", R"({"name": "vol0"})"},
  };
  for (const auto& [path, body] : bad) {
    SCOPED_TRACE(path + " " + body);
    HttpResponse r = post(path, body);
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.content_type, "text/plain; charset=utf-8");
  }
  EXPECT_TRUE(control.calls.empty());
  EXPECT_EQ(post("/v1/promote", "{}").body,
            "missing parameter 'volume': the request body names the volume, {\"volume\": \"NAME\"}\n");
  EXPECT_EQ(post("/v1/demote", R"({"volume": "vol0", "force": true})").body,
            "unknown parameter 'force' (this request takes: volume)\n");
  EXPECT_EQ(post("/v1/promote", R"({"volume": "vol0", "force": "yes"})").body,
            "force must be true or false, got a string\n");
  EXPECT_EQ(post("/v1/promote", "volume=vol0").body,
            "malformed JSON at byte 0: expected a JSON object {...} (the body is a JSON object such as "
            "{\"volume\": \"vol0\"})\n");
  HttpRequest in_url;
  in_url.method = "POST";
  in_url.path = "/v1/demote";
  in_url.query = "volume=vol0";
  EXPECT_EQ(server.dispatch(in_url).status, 400);
}

TEST_F(ControlApi, CommandFailureIsAnAnswerNotACrash) {
  control.fail = true;
  HttpResponse r = post("/v1/demote", R"({"volume": "vol0"})");
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "internal error: metadata write failed\n");
  control.fail = false;
  control.answer = {false, 0, "confused", ""};
  EXPECT_EQ(post("/v1/demote", R"({"volume": "vol0"})").status, 500);
}

TEST_F(ControlApi, WrongMethodAndUnknownPath) {
  EXPECT_EQ(get("/v1/promote").status, 405);
  EXPECT_EQ(post("/v1/status", "").status, 405);
  EXPECT_EQ(get("/v1/nothing").status, 404);
}

}  // namespace
}  // namespace freevsa::daemon
