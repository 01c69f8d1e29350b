#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "daemon/control_cli.h"
#include "daemon/control_server.h"

namespace freevsa::daemon {
namespace {

ControlCommand parsed(const std::vector<std::string>& args) {
  ControlArguments result = parse_control_arguments(args);
  EXPECT_TRUE(result.command) << result.error;
  return result.command.value_or(ControlCommand{});
}

std::string error_of(const std::vector<std::string>& args) {
  ControlArguments result = parse_control_arguments(args);
  EXPECT_FALSE(result.command);
  return result.error;
}

TEST(ControlCli, KnowsItsCommands) {
  for (const char* name : {"status", "promote", "demote", "verify", "reconnect"}) EXPECT_TRUE(is_control_command(name));
  EXPECT_FALSE(is_control_command("serve"));
  EXPECT_FALSE(is_control_command("check-config"));
}

TEST(ControlCli, ParsesTheDocumentedForms) {
  ControlCommand status = parsed({"status", "--config", "etc/cluster-demo.yaml", "--node", "a"});
  EXPECT_EQ(status.command, "status");
  EXPECT_EQ(status.config_path, "etc/cluster-demo.yaml");
  EXPECT_EQ(status.node, "a");
  EXPECT_EQ(status.volume, "");
  EXPECT_FALSE(status.json);

  ControlCommand json = parsed({"status", "--config", "c.yaml", "--node", "a", "--json", "vol0"});
  EXPECT_TRUE(json.json);
  EXPECT_EQ(json.volume, "vol0");

  ControlCommand promote = parsed({"promote", "vol0", "--config", "c.yaml", "--node", "b", "--force"});
  EXPECT_EQ(promote.command, "promote");
  EXPECT_EQ(promote.volume, "vol0");
  EXPECT_EQ(promote.node, "b");
  EXPECT_TRUE(promote.force);

  ControlCommand demote = parsed({"demote", "--config=c.yaml", "--node=a", "vol0"});
  EXPECT_EQ(demote.config_path, "c.yaml");
  EXPECT_EQ(demote.node, "a");
  EXPECT_EQ(demote.volume, "vol0");
  EXPECT_FALSE(demote.force);

  EXPECT_EQ(parsed({"verify", "-c", "c.yaml", "vol0"}).config_path, "c.yaml");
  EXPECT_EQ(parsed({"reconnect", "vol0", "--config", "c.yaml"}).node, "");
}

TEST(ControlCli, RefusesBadUsageWithAReason) {
  EXPECT_EQ(error_of({}), "no command given");
  EXPECT_EQ(error_of({"stauts", "--config", "c.yaml"}), "unknown command 'stauts'");
  EXPECT_EQ(error_of({"status"}), "status needs --config FILE");
  EXPECT_EQ(error_of({"status", "--config"}), "--config needs a value");
  EXPECT_EQ(error_of({"status", "--config="}), "--config needs a value");
  EXPECT_EQ(error_of({"status", "--config", "a.yaml", "--config", "b.yaml"}), "--config is given twice");
  EXPECT_EQ(error_of({"status", "--config", "c.yaml", "--node"}), "--node needs a value");
  EXPECT_EQ(error_of({"promote", "--config", "c.yaml", "--node", "a"}),
            "promote needs the volume: freevsa promote VOLUME --config FILE --node NAME");
  EXPECT_EQ(error_of({"demote", "vol0", "--config", "c.yaml", "--force"}), "--force applies to promote only");
  EXPECT_EQ(error_of({"promote", "vol0", "--config", "c.yaml", "--json"}), "--json applies to status only");
  EXPECT_EQ(error_of({"status", "--config", "c.yaml", "--verbose"}), "unknown option '--verbose'");
  EXPECT_EQ(error_of({"demote", "vol0", "vol1", "--config", "c.yaml"}), "one volume at a time: 'vol0' and 'vol1'");
}

TEST(ControlCli, EachCommandIsOneRequest) {
  auto call = [](const std::vector<std::string>& args) { return control_call(parsed(args)); };
  ControlCall status = call({"status", "--config", "c.yaml"});
  EXPECT_EQ(status.method, "GET");
  EXPECT_EQ(status.path, "/v1/status.txt");
  EXPECT_EQ(status.body, "");
  EXPECT_EQ(call({"status", "--config", "c.yaml", "--json"}).path, "/v1/status");
  EXPECT_EQ(call({"status", "--config", "c.yaml", "vol0"}).path, "/v1/status.txt?volume=vol0");
  EXPECT_EQ(call({"status", "--config", "c.yaml", "--json", "a b&c"}).path, "/v1/status?volume=a%20b%26c");

  ControlCall promote = call({"promote", "vol0", "--config", "c.yaml", "--force"});
  EXPECT_EQ(promote.method, "POST");
  EXPECT_EQ(promote.path, "/v1/promote");
  EXPECT_EQ(promote.body, R"({"volume": "vol0", "force": true})");
  EXPECT_EQ(call({"promote", "vol0", "--config", "c.yaml"}).body, R"({"volume": "vol0"})");
  EXPECT_EQ(call({"demote", "vol0", "--config", "c.yaml"}).path, "/v1/demote");
  EXPECT_EQ(call({"verify", "vol.1", "--config", "c.yaml"}).body, R"({"volume": "vol.1"})");
  EXPECT_EQ(call({"verify", "a\"b", "--config", "c.yaml"}).body, R"({"volume": "a\"b"})");
  EXPECT_EQ(call({"reconnect", "vol0", "--config", "c.yaml"}).path, "/v1/reconnect");
}


// --- against a real control server, through the configuration file ---

class ControlCliRun : public ::testing::Test {
 protected:
  void SetUp() override {
    server.handle("GET", "/v1/status.txt", [](const HttpRequest& request) {
      return HttpResponse{200, "text/plain", "status of " + (request.query.empty() ? "all" : request.query) + "\n"};
    });
    server.handle("POST", "/v1/promote", [](const HttpRequest& request) {
      if (request.body == R"({"volume": "vol0"})") return HttpResponse{409, "text/plain", "b is primary\n"};
      return HttpResponse{200, "text/plain", "promoted (" + request.body + ")\n"};
    });
    server.start("127.0.0.1", 0);
    dir = std::filesystem::temp_directory_path() /
          ("freevsa-control-cli-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir);
    token_file = (dir / "a.token").string();
    std::ofstream(token_file) << kToken << "\n";
    std::filesystem::permissions(token_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    config = (dir / "cluster.yaml").string();
    std::ofstream(config) << "cluster: {name: t, secret: 0123456789abcdef, initial_primary: a}\n"
                             "nodes:\n"
                             "  - {name: a, replication: 127.0.0.1:7788, portals: [127.0.0.1:3260],\n"
                             "     control: 127.0.0.1:"
                          << server.port() << ", control_token: " << token_file
                          << "}\n"
                             "  - {name: b, replication: 127.0.0.2:7788, portals: [127.0.0.2:3260]}\n"
                             "volumes:\n"
                             "  - {name: vol0, size: 1G, target: iqn.2026-01.org.freevsa:vol0,\n"
                             "     backing: {a: a.img, b: b.img}}\n";
  }
  void TearDown() override {
    server.stop();
    std::filesystem::remove_all(dir);
  }

  // Runs the command; what it printed goes to out and err.
  int run(const std::vector<std::string>& args) {
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    int status = run_control_cli(args);
    out = ::testing::internal::GetCapturedStdout();
    err = ::testing::internal::GetCapturedStderr();
    return status;
  }

  static constexpr const char* kToken = "cli-token-cli-token-cli-token-cli-token";
  ControlServer server{kToken};
  std::filesystem::path dir;
  std::string token_file;
  std::string config;
  std::string out;
  std::string err;
};

TEST_F(ControlCliRun, PrintsTheAnswerAndExitsZero) {
  EXPECT_EQ(run({"status", "--config", config, "--node", "a"}), 0);
  EXPECT_EQ(out, "status of all\n");
  EXPECT_EQ(err, "");
  EXPECT_EQ(run({"status", "--config", config, "--node", "a", "vol0"}), 0);
  EXPECT_EQ(out, "status of volume=vol0\n");
  EXPECT_EQ(run({"promote", "vol1", "--config", config, "--node", "a", "--force"}), 0);
  EXPECT_EQ(out, "promoted ({\"volume\": \"vol1\", \"force\": true})\n");
}

TEST_F(ControlCliRun, ACommandThatChangesStateNeedsTheToken) {
  std::filesystem::remove(token_file);
  EXPECT_EQ(run({"promote", "vol1", "--config", config, "--node", "a"}), 1);
  EXPECT_EQ(out, "");
  EXPECT_EQ(err, "freevsa: cannot read the control token of node 'a' in " + token_file +
                     ": No such file or directory; 'promote' changes state and needs it (run it as the user the "
                     "node runs as; the node creates the file when it first starts)\n");
  // The status is open to whoever reaches the endpoint.
  EXPECT_EQ(run({"status", "--config", config, "--node", "a"}), 0);
  EXPECT_EQ(out, "status of all\n");
  // A token that is not the node's is the node's to refuse.
  std::ofstream(token_file) << "another-token-another-token-another-token\n";
  EXPECT_EQ(run({"promote", "vol1", "--config", config, "--node", "a"}), 1);
  // (The server runs in this process: its log line comes first.)
  EXPECT_TRUE(err.ends_with("\nwrong control token\n")) << err;
}

TEST_F(ControlCliRun, RefusalGoesToStderrAndExitsOne) {
  EXPECT_EQ(run({"promote", "vol0", "--config", config, "--node", "a"}), 1);
  EXPECT_EQ(out, "");
  EXPECT_EQ(err, "b is primary\n");
}

TEST_F(ControlCliRun, UnreachableNodeExitsThreeAndSaysHowToStartIt) {
  const std::uint16_t port = server.port();
  server.stop();
  EXPECT_EQ(run({"status", "--config", config, "--node", "a"}), 3);
  EXPECT_EQ(err.find("freevsa: node 'a' is not reachable at 127.0.0.1:" + std::to_string(port) +
                     " (is 'freevsa serve --config " + config + " --node a' running?): "),
            0u)
      << err;
  EXPECT_EQ(err.find("is the node running"), std::string::npos) << err;  // said once, not twice
}

TEST_F(ControlCliRun, ConfigurationProblemsAndBadUsage) {
  EXPECT_EQ(run({"status", "--config", (dir / "missing.yaml").string(), "--node", "a"}), 1);
  EXPECT_EQ(err.find("freevsa: configuration error: "), 0u) << err;
  EXPECT_EQ(run({"status", "--config", config, "--node", "c"}), 1);
  EXPECT_NE(err.find("--node c: no such node"), std::string::npos) << err;
  EXPECT_EQ(run({"status", "--config", config}), 2);
  EXPECT_EQ(err, "freevsa: " + config +
                     " describes the cluster 't' of nodes a, b: name the node to ask with --node NAME\n");
  const std::string single = (dir / "single.yaml").string();
  std::ofstream(single) << "portals: [127.0.0.1]\n"
                           "targets: [{iqn: iqn.2026-01.org.freevsa:disk0, luns: [{lun: 0, path: d.img, size: 1M}]}]\n";
  EXPECT_EQ(run({"status", "--config", single}), 2);
  EXPECT_EQ(err, "freevsa: " + single + " describes a single node without replication: it has no replicated volumes\n");
  EXPECT_EQ(run({"demote", "--config", config, "--node", "a"}), 2);
  EXPECT_EQ(err.find("freevsa: demote needs the volume"), 0u) << err;
  EXPECT_NE(err.find("usage:\n  freevsa status"), std::string::npos) << err;
}

}  // namespace
}  // namespace freevsa::daemon
