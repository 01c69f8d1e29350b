// Feeds arbitrary bytes to a live target over a loopback socket: before login (the login PDU
// parser and negotiator), and after a valid login (every full-feature PDU handler, Data-Out
// bookkeeping, task management). The target must answer or close, never crash, hang or leak.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "replication/memory_volume.h"
#include "scsi/logical_unit.h"
#include "scsi/lun_map.h"
#include "target/server.h"
#include "util/log.h"

namespace {

using namespace freevsa;

constexpr std::uint16_t kPort = 3399;
const char* kIqn = "iqn.2026-01.org.freevsa:fuzz";

struct Fixture {
  replication::MemoryVolume volume{8 << 20, 512};
  target::TargetServerConfig config;
  std::unique_ptr<target::Server> server;

  Fixture() {
    util::set_log_level(util::LogLevel::Error);
    config.portals = {target::Portal{"127.0.0.1", kPort}};
    config.worker_threads = 2;
    config.network_threads = 1;
    target::TargetDefinition definition;
    definition.iqn = kIqn;
    definition.luns = std::make_shared<scsi::LunMap>();
    definition.luns->add(0, std::make_shared<scsi::LogicalUnit>(volume, scsi::LunIdentity::from_name("fuzz")));
    config.targets.push_back(definition);
    server = std::make_unique<target::Server>(config);
    server->start();
  }
};

std::vector<std::uint8_t> login_pdu() {
  std::string keys = std::string("InitiatorName=iqn.2026-01.org.freevsa:fuzzer") + '\0' + "TargetName=" + kIqn + '\0' +
                     "SessionType=Normal" + '\0' + "HeaderDigest=None" + '\0' + "DataDigest=None" + '\0';
  std::vector<std::uint8_t> pdu(48 + ((keys.size() + 3) & ~std::size_t{3}), 0);
  pdu[0] = 0x43;              // immediate Login Request
  pdu[1] = 0x80 | (1 << 2) | 3;  // T, CSG operational, NSG full feature
  pdu[5] = static_cast<std::uint8_t>(keys.size() >> 16);
  pdu[6] = static_cast<std::uint8_t>(keys.size() >> 8);
  pdu[7] = static_cast<std::uint8_t>(keys.size());
  pdu[8] = 0x80;              // ISID: random qualifier format
  pdu[13] = 0x01;
  std::memcpy(pdu.data() + 48, keys.data(), keys.size());
  return pdu;
}

void send_all(int fd, const std::uint8_t* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

// Reads until the target closes or stays quiet for a moment.
void drain(int fd) {
  char buffer[65536];
  for (int rounds = 0; rounds < 200; ++rounds) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 20) <= 0) return;
    if (recv(fd, buffer, sizeof buffer, 0) <= 0) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Fixture fixture;
  if (size == 0) return 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(kPort);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    return 0;
  }
  // The first byte chooses: raw bytes before login, or the same after a valid login.
  if ((data[0] & 1) != 0) {
    auto login = login_pdu();
    send_all(fd, login.data(), login.size());
  }
  send_all(fd, data + 1, size - 1);
  shutdown(fd, SHUT_WR);
  drain(fd);
  close(fd);
  return 0;
}
