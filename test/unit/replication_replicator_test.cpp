// Two replicas of one volume in one process, each with its own ReplicationManager, talking over
// real TCP on loopback: the handshake and its refusals, the initial full sync, protocol C, the
// resync after the peer was away or a sync was interrupted, online verify, role changes, and
// (through a relay that reads the frames) the epochs protocol A puts on its writes.
//
// Every wait polls status() against a deadline; nothing sleeps for a fixed time to "let
// things settle".
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "replication/memory_volume.h"
#include "replication/metadata_device.h"
#include "replication/metadata_store.h"
#include "replication/power_loss_volume.h"
#include "replication/replication_manager.h"
#include "replication/replicator.h"
#include "util/asio.h"
#include "util/crc32c.h"
#include "util/endian.h"

namespace freevsa::replication {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
constexpr std::uint64_t kDataSize = 8 * MiB;
constexpr std::uint32_t kBlockSize = 512;
constexpr const char* kVolume = "vol0";
const Uuid kVolumeUuid{0x6a, 0x1f, 0x00, 0x42, 0x9c, 0x11, 0x4e, 0x0b, 0x8a, 0x33, 0x5d, 0x27, 0x01, 0x90, 0xee, 0x07};

// Polls `condition` until it holds or `limit` passed; true if it held.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
}

// A port nobody listens on right now. Below the kernel's ephemeral range (32768 and up on Linux
// by default), so that no outgoing connection takes it later: a restarted node listens on the
// same port again, because its peer dials that one.
std::uint16_t free_port() {
  static std::mt19937 random(std::random_device{}());
  std::uniform_int_distribution<int> pick(20000, 32000);
  for (int attempt = 0; attempt < 100; ++attempt) {
    const auto port = static_cast<std::uint16_t>(pick(random));
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor probe(io);
    boost::system::error_code ec;
    probe.open(boost::asio::ip::tcp::v4(), ec);
    if (!ec) probe.bind({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
    if (!ec) return port;
  }
  throw std::runtime_error("no free TCP port on 127.0.0.1");
}

std::vector<std::uint8_t> pattern(std::size_t size, std::uint8_t seed) {
  std::vector<std::uint8_t> bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::uint8_t>(seed + i * 7 + (i >> 9));
  return bytes;
}

// Reads through the volume (under its lock) rather than raw(), which the worker threads write.
std::vector<std::uint8_t> contents(MemoryVolume& volume, std::uint64_t offset, std::uint64_t length) {
  std::vector<std::uint8_t> bytes(length);
  EXPECT_EQ(volume.read(offset, bytes), 0);
  return bytes;
}
std::vector<std::uint8_t> contents(MemoryVolume& volume) { return contents(volume, 0, volume.size_bytes()); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A TCP relay between the two nodes that decodes what the dialling node sends and records the
// Writes, so that a test can see what travels on the wire (epochs). As a man in the middle it
// can also alter the next Write's data (fixing both CRCs, as an attacker would) or put a forged
// frame before it, and it keeps the first connection's handshake frames for a replay.
class WriteTap {
 public:
  struct SeenWrite {
    std::uint64_t offset;
    std::uint64_t epoch;
  };
  enum class Tamper { None, AlterNextWrite, InjectBeforeNextWrite };

  explicit WriteTap(std::uint16_t target_port)
      : target_port_(target_port), acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~WriteTap() {
    boost::asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      for (auto& weak : sessions_)
        if (auto session = weak.lock()) session->close();
      io_.stop();
    });
    thread_.join();
  }

  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::vector<SeenWrite> writes() const {
    std::lock_guard lock(mutex_);
    return writes_;
  }
  void tamper(Tamper what) {
    std::lock_guard lock(mutex_);
    tamper_ = what;
  }
  bool tamper_done() const {
    std::lock_guard lock(mutex_);
    return tamper_ == Tamper::None;
  }
  // The dialler's AuthHello and AuthProof of the first connection, as they went over the wire.
  std::vector<std::uint8_t> first_handshake() const {
    std::lock_guard lock(mutex_);
    return handshake_;
  }

 private:
  using tcp = boost::asio::ip::tcp;
  struct Session {
    Session(tcp::socket accepted, boost::asio::io_context& io) : client(std::move(accepted)), server(io) {}
    void close() {
      boost::system::error_code ignored;
      client.close(ignored);
      server.close(ignored);
    }
    tcp::socket client;
    tcp::socket server;
    std::array<std::uint8_t, 64 * 1024> upstream{};
    std::array<std::uint8_t, 64 * 1024> downstream{};
    peer::FrameReader reader;
    bool first = false;  // the tap's first connection
  };

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket client) {
      if (ec) return;
      auto session = std::make_shared<Session>(std::move(client), io_);
      session->first = sessions_.empty();
      sessions_.push_back(session);
      session->server.async_connect({boost::asio::ip::make_address("127.0.0.1"), target_port_},
                                    [this, session](boost::system::error_code error) {
                                      if (error) {
                                        session->close();
                                        return;
                                      }
                                      pump(session, true);
                                      pump(session, false);
                                    });
      accept();
    });
  }

  void pump(const std::shared_ptr<Session>& session, bool up) {
    tcp::socket& from = up ? session->client : session->server;
    auto& buffer = up ? session->upstream : session->downstream;
    from.async_read_some(boost::asio::buffer(buffer), [this, session, up](boost::system::error_code ec,
                                                                          std::size_t n) {
      if (ec) {
        session->close();
        return;
      }
      auto& bytes = up ? session->upstream : session->downstream;
      auto out = std::make_shared<std::vector<std::uint8_t>>();
      if (up) {
        forward(*session, std::span<const std::uint8_t>(bytes.data(), n), *out);
      } else {
        out->assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      }
      tcp::socket& to = up ? session->server : session->client;
      boost::asio::async_write(to, boost::asio::buffer(*out),
                               [this, session, up, out](boost::system::error_code error, std::size_t) {
                                 if (error) {
                                   session->close();
                                   return;
                                 }
                                 pump(session, up);
                               });
    });
  }

  // Passes the upstream frames on one by one, recording and tampering on the way.
  void forward(Session& session, std::span<const std::uint8_t> bytes, std::vector<std::uint8_t>& out) {
    session.reader.append(bytes);
    for (;;) {
      const peer::FrameReader::Frame frame = session.reader.next();
      if (frame.status == peer::ScanResult::Status::Bad) session.close();
      if (frame.status != peer::ScanResult::Status::Complete) return;
      std::vector<std::uint8_t> raw(frame.raw_header.begin(), frame.raw_header.end());
      raw.insert(raw.end(), frame.payload.begin(), frame.payload.end());
      raw.insert(raw.end(), frame.mac.begin(), frame.mac.end());
      const auto message = peer::decode_message(frame.header, frame.payload);
      std::lock_guard lock(mutex_);
      if (message.ok() && session.first && (std::holds_alternative<peer::AuthHello>(message.value) ||
                                            std::holds_alternative<peer::AuthProof>(message.value))) {
        handshake_.insert(handshake_.end(), raw.begin(), raw.end());
      }
      if (const auto* write = message.ok() ? std::get_if<peer::Write>(&message.value) : nullptr) {
        writes_.push_back({write->offset, write->epoch});
        if (tamper_ == Tamper::AlterNextWrite) alter(raw);
        if (tamper_ == Tamper::InjectBeforeNextWrite) inject(out);
        tamper_ = Tamper::None;
      }
      out.insert(out.end(), raw.begin(), raw.end());
    }
  }

  // One bit of the data flipped, the payload and header CRCs made to match again.
  static void alter(std::vector<std::uint8_t>& raw) {
    const std::uint32_t payload_length = util::get_be32(&raw[16]);
    raw[peer::kFrameHeaderSize + payload_length - 1] ^= 0x01;
    util::put_be32(&raw[20], util::crc32c(std::span(raw).subspan(peer::kFrameHeaderSize, payload_length)));
    util::put_be32(&raw[28], util::crc32c_extend(0, raw.data(), 28));
  }

  // A WriteAck-shaped forgery with correct CRCs and no MAC.
  static void inject(std::vector<std::uint8_t>& out) {
    std::vector<std::uint8_t> forged(peer::kFrameHeaderSize + 16);
    const auto size = peer::encode_into(peer::Ping{1}, 0, forged);
    out.insert(out.end(), forged.begin(), forged.begin() + static_cast<std::ptrdiff_t>(size.value));
  }

  std::uint16_t target_port_;
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<std::weak_ptr<Session>> sessions_;  // io thread only
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<SeenWrite> writes_;
  Tamper tamper_ = Tamper::None;
  std::vector<std::uint8_t> handshake_;
};

struct NodeOptions {
  std::uint64_t data_size = kDataSize;
  Uuid volume_uuid = kVolumeUuid;
  std::string secret = "one secret for both nodes";
  Protocol protocol = Protocol::C;
  std::uint64_t fixed_resync_rate = 0;  // bytes/s; 0: adaptive (the default)
  bool volatile_disk_cache = false;     // the replica's disk holds writes apart until a flush or FUA
  EpochPolicy epoch;                    // when the primary asks for a peer flush by itself
  ActivityLogGeometry activity_log;
};

// One node: its replica's data and metadata (which survive a restart of the node) and, while
// it runs, a ReplicationManager with the volume's Replicator, set up the way the daemon does it.
class Node {
 public:
  explicit Node(std::uint32_t id, NodeOptions options = {})
      : id_(id),
        options_(std::move(options)),
        port_(free_port()),
        data_(options_.data_size, kBlockSize),
        metadata_device_(1 * MiB, name() + ".md") {
    FormatOptions format;
    format.placement = MetadataPlacement::External;
    format.data_size = options_.data_size;
    format.block_size = kBlockSize;
    format.node_id = id_;
    format.volume_uuid = options_.volume_uuid;
    format.start_in_sync = false;
    format.bitmap_all_set = true;
    format.activity_log = options_.activity_log;
    MetadataStore::format(metadata_device_, format);
  }
  ~Node() { stop(); }

  std::string name() const { return "node" + std::to_string(id_); }
  std::uint16_t port() const { return port_; }
  bool running() const { return manager_ != nullptr; }

  // Opens the metadata, listens for the peer and starts connecting to it.
  void start(const Node& peer) { start(peer.id_, peer.port()); }
  // The same, reaching the peer at `peer_port` (a relay in front of it).
  void start(std::uint32_t peer_id, std::uint16_t peer_port) {
    OpenOptions open;
    open.placement = MetadataPlacement::External;
    open.data_device_size = options_.data_size;
    open.block_size = kBlockSize;
    const MetadataStatus opened = MetadataStore::open(metadata_device_, open, store_);
    ASSERT_TRUE(opened.ok()) << opened.message;

    ReplicaSettings s;
    s.cluster_name = "test-cluster";
    s.volume_name = kVolume;
    s.node_name = name();
    s.node_id = id_;
    s.peer_name = "node" + std::to_string(peer_id);
    s.peer_id = peer_id;
    s.peer_address = "127.0.0.1";
    s.peer_port = peer_port;
    s.secret = options_.secret;
    s.protocol = options_.protocol;
    if (options_.fixed_resync_rate != 0) {
      s.resync_adaptive = false;
      s.resync_rate = options_.fixed_resync_rate;
    }
    s.initial_primary = id_ == 1;
    s.epoch = options_.epoch;
    s.backing_path = name() + ".img";

    peer::LinkCredentials credentials{s.cluster_name, s.node_id, s.node_name, s.secret,
                                      {{s.peer_id, s.peer_name, s.peer_address}}};
    manager_ = std::make_unique<ReplicationManager>(2, KeepAlive{}, std::move(credentials));
    replicator_ = manager_->add(s, options_.volatile_disk_cache ? static_cast<Volume&>(disk_cache_) : data_, *store_);
    // A first start may move to another port if this one was taken meanwhile; a restart must
    // keep it, since the peer dials it.
    for (int attempt = 0;; ++attempt) {
      try {
        manager_->listen("127.0.0.1", port_);
        break;
      } catch (const std::runtime_error&) {
        if (started_before_ || attempt == 10) throw;
        port_ = free_port();
      }
    }
    started_before_ = true;
    const Superblock sb = store_->superblock();
    // As the daemon does: every start is as secondary; the primary role comes back (or, for a
    // new volume, comes to the initial primary) only once the peer was met as secondary.
    replicator_->set_initial_role(Role::Secondary, primary_when_peer_met(sb, s.initial_primary));
    manager_->start();
  }

  // A clean stop; the data and the metadata device stay for a later start().
  void stop() {
    if (!manager_) return;
    manager_->stop();
    replicator_.reset();
    manager_.reset();
    store_.reset();
  }

  // The node loses power: its disk forgets what it had not made durable, and its metadata
  // keeps nothing written after this instant. (The node's threads then end as in stop().)
  // Returns the bytes its disk lost.
  std::uint64_t power_loss() {
    const std::vector<std::uint8_t> metadata = metadata_device_.snapshot(0, metadata_device_.size_bytes());
    std::uint64_t lost = disk_cache_.power_loss();
    stop();
    lost += disk_cache_.power_loss();
    metadata_device_.poke(0, metadata);
    return lost;
  }

  VolumeStatus status() const {
    const std::vector<VolumeStatus> all = manager_->status();
    return all.empty() ? VolumeStatus{} : all.front();
  }
  PeerStatus peer_status() const {
    const VolumeStatus st = status();
    return st.peers.empty() ? PeerStatus{} : st.peers.front();
  }
  ReplicationManager& manager() { return *manager_; }
  Replicator& replicator() { return *replicator_; }
  ReplicatedVolume& volume() { return replicator_->volume(); }
  MemoryVolume& data() { return data_; }
  PowerLossVolume& disk_cache() { return disk_cache_; }

 private:
  std::uint32_t id_;
  NodeOptions options_;
  std::uint16_t port_;
  bool started_before_ = false;
  MemoryVolume data_;
  PowerLossVolume disk_cache_{data_};  // in front of data_ with volatile_disk_cache
  MemoryMetadataDevice metadata_device_;
  std::unique_ptr<MetadataStore> store_;
  std::unique_ptr<ReplicationManager> manager_;
  std::shared_ptr<Replicator> replicator_;
};

std::string describe(const Node& node) {
  if (!node.running()) return node.name() + ": stopped";
  const VolumeStatus st = node.status();
  const PeerStatus peer = st.peers.empty() ? PeerStatus{} : st.peers.front();
  std::ostringstream out;
  out << node.name() << ": " << st.role << ", disk " << st.disk_state << ", " << to_string(peer.connection)
      << ", peer " << peer.role << "/" << peer.disk_state << ", out of sync " << st.out_of_sync_bytes
      << ", resynced " << st.bytes_resynced << ", last error '" << peer.last_error << "'";
  return out.str();
}
std::string describe(const Node& a, const Node& b) { return describe(a) + "\n" + describe(b); }

bool connected_and_idle(const Node& node) {
  const VolumeStatus st = node.status();
  return !st.peers.empty() && st.peers.front().connection == ConnectionState::Connected &&
         st.disk_state == "UpToDate" && st.out_of_sync_bytes == 0;
}

// `primary` serves, `secondary` follows, both hold the same data and nothing is left to copy.
bool settled(const Node& primary, const Node& secondary) {
  return primary.status().role == "primary" && secondary.status().role == "secondary" &&
         connected_and_idle(primary) && connected_and_idle(secondary);
}

bool is_linked(ConnectionState state) {
  return state != ConnectionState::Connecting && state != ConnectionState::StandAlone;
}

// Starts both nodes (the accepting one first) and waits until node 1 is primary over a synced pair.
void start_and_sync(Node& one, Node& two) {
  two.start(one);
  one.start(two);
  ASSERT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);
}

// Starts both and watches them for the refusal: each side's last error must satisfy
// `explains`, and neither may ever show a link that is up.
void expect_refused(Node& one, Node& two, const std::function<bool(const std::string&)>& explains) {
  two.start(one);
  one.start(two);
  bool ever_linked = false;
  const bool both_explained = eventually([&] {
    const PeerStatus p1 = one.peer_status(), p2 = two.peer_status();
    ever_linked = ever_linked || is_linked(p1.connection) || is_linked(p2.connection);
    // A refusal before authentication is the listener's (last_refused_connection), not the volume's.
    return explains(p1.last_error + " " + p1.last_refused_connection) &&
           explains(p2.last_error + " " + p2.last_refused_connection);
  });
  EXPECT_TRUE(both_explained) << describe(one, two);
  // A few more reconnect attempts (the dialler retries after 200 ms, 400 ms, ...) must fail too.
  eventually(
      [&] {
        ever_linked = ever_linked || is_linked(one.peer_status().connection) || is_linked(two.peer_status().connection);
        return false;
      },
      700ms);
  EXPECT_FALSE(ever_linked) << "the link came up although the nodes must refuse each other";
  EXPECT_EQ(two.status().disk_state, "Inconsistent") << "the refused peer's data was taken anyway";
  EXPECT_NE(one.status().role, "primary") << "primary without ever meeting its peer";
}

// ---- connecting

TEST(Replicator, FreshReplicasFullSyncAndTheInitialPrimaryBecomesPrimary) {
  Node one(1), two(2);
  const std::vector<std::uint8_t> existing = pattern(kDataSize, 3);
  one.data().raw() = existing;  // what the initial primary holds decides the volume's content
  two.data().raw() = pattern(kDataSize, 99);
  start_and_sync(one, two);

  const VolumeStatus s1 = one.status(), s2 = two.status();
  EXPECT_EQ(s1.role, "primary");
  EXPECT_EQ(s2.role, "secondary");
  EXPECT_EQ(s1.disk_state, "UpToDate");
  EXPECT_EQ(s2.disk_state, "UpToDate");
  EXPECT_EQ(s1.peers.front().connection, ConnectionState::Connected);
  EXPECT_EQ(s2.peers.front().connection, ConnectionState::Connected);
  EXPECT_EQ(s1.peers.front().role, "secondary");
  EXPECT_EQ(s2.peers.front().role, "primary");
  EXPECT_EQ(s2.peers.front().disk_state, "UpToDate");
  EXPECT_TRUE(s1.peers.front().last_error.empty()) << s1.peers.front().last_error;
  EXPECT_EQ(s1.generation, s2.generation) << "after the sync both must share one generation";
  EXPECT_EQ(s2.bytes_resynced, kDataSize) << "a full sync copies the whole volume";
  EXPECT_TRUE(contents(two.data()) == existing) << "the secondary does not hold the initial primary's data";
}

TEST(Replicator, SecondaryStaysSecondaryAfterTheInitialSync) {
  Node one(1), two(2);
  start_and_sync(one, two);
  EXPECT_EQ(two.volume().access(), Access::Standby);
  EXPECT_EQ(one.volume().access(), Access::Active);
  std::vector<std::uint8_t> block(kBlockSize);
  EXPECT_EQ(two.volume().write(0, block, false), EROFS);
}

// ---- protocol C

TEST(Replicator, ProtocolCWriteIsOnThePeersDiskWhenItReturns) {
  Node one(1), two(2);
  start_and_sync(one, two);
  const std::vector<std::uint8_t> bytes = pattern(64 * KiB, 17);
  ASSERT_EQ(one.volume().write(1 * MiB + 4 * KiB, bytes, false), 0);
  // No waiting: protocol C completes only after the peer acknowledged its disk write.
  EXPECT_TRUE(contents(two.data(), 1 * MiB + 4 * KiB, bytes.size()) == bytes);
  EXPECT_TRUE(contents(one.data(), 1 * MiB + 4 * KiB, bytes.size()) == bytes);
  EXPECT_EQ(one.status().writes_replicated, 1u);
  EXPECT_EQ(one.status().out_of_sync_bytes, 0u) << "an acknowledged write left a mark in the bitmap";
}

TEST(Replicator, WriteLongerThanOneFrameIsOnThePeersDiskWhole) {
  Node one(1), two(2);
  start_and_sync(one, two);
  // Longer than peer::kMaxDataLength: it travels in pieces, answered together.
  const std::vector<std::uint8_t> bytes = pattern(peer::kMaxDataLength + 256 * KiB + kBlockSize, 41);
  ASSERT_EQ(one.volume().write(3 * MiB, bytes, true), 0);
  EXPECT_TRUE(contents(two.data(), 3 * MiB, bytes.size()) == bytes);
  EXPECT_EQ(one.status().out_of_sync_bytes, 0u);
}

TEST(Replicator, SuccessiveOverlappingWritesLeaveTheLastOnBothDisks) {
  Node one(1), two(2);
  start_and_sync(one, two);
  for (std::uint8_t seed = 1; seed <= 20; ++seed) {
    ASSERT_EQ(one.volume().write(2 * MiB + seed * kBlockSize, pattern(16 * KiB, seed), false), 0);
  }
  EXPECT_TRUE(contents(two.data(), 2 * MiB, 64 * KiB) == contents(one.data(), 2 * MiB, 64 * KiB));
}

// ---- refusals

TEST(Replicator, WrongSecretNeverConnectsAndBothSidesSayTheSecretDiffers) {
  Node one(1), two(2, NodeOptions{.secret = "not the same secret"});
  expect_refused(one, two, [](const std::string& error) {
    return contains(error, "secret") && contains(error, "differ");
  });
}

TEST(Replicator, WrongSecretIsReportedEvenWhenThePeerWasUnreachableBefore) {
  Node one(1), two(2, NodeOptions{.secret = "not the same secret"});
  one.start(two);  // nobody listens on two's port yet
  ASSERT_TRUE(eventually([&] { return contains(one.peer_status().last_error, "cannot connect"); }))
      << describe(one);
  two.start(one);
  ASSERT_TRUE(eventually([&] { return contains(two.peer_status().last_refused_connection, "secret"); }))
      << describe(one, two);
  // one went through the same failed handshake: its status must name the real cause now, not
  // the stale "cannot connect".
  EXPECT_TRUE(eventually([&] { return contains(one.peer_status().last_error, "secret"); }, 2s))
      << one.peer_status().last_error;
}

TEST(Replicator, SizeMismatchIsRefusedWithBothSizesNamed) {
  Node one(1), two(2, NodeOptions{.data_size = 4 * MiB});
  expect_refused(one, two, [](const std::string& error) { return contains(error, "size mismatch"); });
  const std::string error = one.peer_status().last_error;
  EXPECT_TRUE(contains(error, std::to_string(kDataSize)) && contains(error, std::to_string(4 * MiB))) << error;
}

TEST(Replicator, VolumeUuidMismatchIsRefused) {
  Uuid other = kVolumeUuid;
  other[15] ^= 0xff;
  Node one(1), two(2, NodeOptions{.volume_uuid = other});
  expect_refused(one, two, [](const std::string& error) { return contains(error, "UUID mismatch"); });
  EXPECT_TRUE(contains(one.peer_status().last_error, to_string(other))) << one.peer_status().last_error;
}

// ---- peer away

TEST(Replicator, WritesWhileThePeerIsAwayAreResyncedExactlyWhenItReturns) {
  Node one(1), two(2);
  start_and_sync(one, two);
  const std::uint64_t resynced_before = one.status().bytes_resynced;

  two.stop();
  ASSERT_TRUE(eventually([&] { return one.peer_status().connection == ConnectionState::Connecting; }))
      << describe(one);

  // 4 KiB aligned, two granules, one 512-byte block (a whole granule), and a second write into
  // a granule already marked: 4 granules in all.
  ASSERT_EQ(one.volume().write(0, pattern(4 * KiB, 1), false), 0);
  ASSERT_EQ(one.volume().write(5 * MiB, pattern(8 * KiB, 2), false), 0);
  ASSERT_EQ(one.volume().write(1 * MiB + kBlockSize, pattern(kBlockSize, 3), false), 0);
  ASSERT_EQ(one.volume().write(1 * MiB + 3 * kBlockSize, pattern(kBlockSize, 4), false), 0);
  constexpr std::uint64_t kExpected = 4 * 4 * KiB;
  EXPECT_EQ(one.status().out_of_sync_bytes, kExpected) << describe(one);
  EXPECT_EQ(one.peer_status().disk_state, "Outdated");

  two.start(one);  // reopens its metadata from the same device
  ASSERT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);
  EXPECT_EQ(two.status().bytes_resynced, kExpected) << "the resync copied more or less than the bitmap named";
  EXPECT_EQ(one.status().bytes_resynced - resynced_before, kExpected);
  EXPECT_EQ(one.status().generation, two.status().generation);
  EXPECT_TRUE(contents(two.data()) == contents(one.data())) << "the replicas differ after the resync";
}

TEST(Replicator, WriteWhileThePeerIsAwayStillSucceedsLocally) {
  Node one(1), two(2);
  start_and_sync(one, two);
  two.stop();
  ASSERT_TRUE(eventually([&] { return one.peer_status().connection == ConnectionState::Connecting; }));
  const std::vector<std::uint8_t> bytes = pattern(8 * KiB, 5);
  EXPECT_EQ(one.volume().write(64 * KiB, bytes, true), 0);
  EXPECT_TRUE(contents(one.data(), 64 * KiB, bytes.size()) == bytes);
  EXPECT_TRUE(contents(two.data(), 64 * KiB, bytes.size()) != bytes);
}

// ---- persistent reservations

TEST(Replicator, ReservationRecordIsOnThePeerWhenTheStoreReturns) {
  Node one(1), two(2);
  start_and_sync(one, two);
  const std::uint64_t received = two.volume().reservations_received();
  const std::vector<std::uint8_t> record = pattern(300, 9);
  ASSERT_EQ(one.volume().store_reservations(record), 0);
  EXPECT_EQ(two.volume().stored_reservations(), record);
  EXPECT_GT(two.volume().reservations_received(), received) << "the secondary's SCSI layer would not adopt it";
}

TEST(Replicator, APeerThatWasAwayGetsTheReservationRecordWhenItReturns) {
  Node one(1), two(2);
  start_and_sync(one, two);
  two.stop();
  ASSERT_TRUE(eventually([&] { return one.peer_status().connection == ConnectionState::Connecting; }));
  const std::vector<std::uint8_t> record = pattern(120, 4);
  ASSERT_EQ(one.volume().store_reservations(record), 0);
  two.start(one);
  ASSERT_TRUE(eventually([&] { return settled(one, two) && two.volume().stored_reservations() == record; }))
      << describe(one, two);
  // Kept in the secondary's metadata: it is there after its restart, before it meets the peer.
  two.stop();
  one.stop();
  two.start(one);
  EXPECT_EQ(two.volume().stored_reservations(), record);
}

TEST(Replicator, ASecondaryHasThePrimaryRunItsReservationCommands) {
  Node one(1), two(2);
  start_and_sync(one, two);
  std::vector<std::uint8_t> answer;
  const std::vector<std::uint8_t> request{1, 2, 3};
  // Nobody runs them on the primary yet: not served.
  EXPECT_EQ(two.volume().forward_reservation_command(request, answer), ENOTCONN);
  one.volume().set_reservation_command_runner([](std::span<const std::uint8_t> r) {
    return std::vector<std::uint8_t>(r.rbegin(), r.rend());
  });
  ASSERT_EQ(two.volume().forward_reservation_command(request, answer), 0);
  EXPECT_EQ(answer, (std::vector<std::uint8_t>{3, 2, 1}));
  // The primary does not forward: it serves.
  EXPECT_EQ(one.volume().forward_reservation_command(request, answer), ENOTCONN);
  one.volume().set_reservation_command_runner(nullptr);
}

// ---- online verify

TEST(Replicator, OnlineVerifyFindsACorruptBlockAndTheResyncRepairsIt) {
  Node one(1), two(2);
  one.data().raw() = pattern(kDataSize, 11);
  start_and_sync(one, two);
  // Silent corruption on the secondary's disk, behind the replication's back.
  two.data().raw()[3 * MiB + 100] ^= 0xff;
  ASSERT_TRUE(contents(two.data()) != contents(one.data()));

  const CommandResult started = one.manager().verify(kVolume);
  ASSERT_TRUE(started.ok) << started.message;
  ASSERT_TRUE(eventually([&] {
    const VerifyProgress v = one.status().verify;
    return !v.running && !v.finished_at.empty();
  })) << describe(one, two);
  const VerifyProgress verify = one.status().verify;
  EXPECT_EQ(verify.checked_bytes, kDataSize);
  EXPECT_GT(verify.out_of_sync_bytes, 0u);
  EXPECT_LT(verify.out_of_sync_bytes, kDataSize) << "one bad byte must not mark the whole volume";

  ASSERT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);
  EXPECT_TRUE(contents(two.data()) == contents(one.data())) << "the resync after verify did not repair the block";
}

TEST(Replicator, OnlineVerifyOfIdenticalReplicasFindsNothing) {
  Node one(1), two(2);
  start_and_sync(one, two);
  ASSERT_TRUE(one.manager().verify(kVolume).ok);
  ASSERT_TRUE(eventually([&] { return !one.status().verify.finished_at.empty(); })) << describe(one, two);
  EXPECT_EQ(one.status().verify.out_of_sync_bytes, 0u);
  EXPECT_EQ(one.status().verify.checked_bytes, kDataSize);
  EXPECT_TRUE(connected_and_idle(one)) << describe(one);
}

TEST(Replicator, VerifyIsRefusedWhileThePeerIsAway) {
  Node one(1), two(2);
  start_and_sync(one, two);
  two.stop();
  ASSERT_TRUE(eventually([&] { return one.peer_status().connection == ConnectionState::Connecting; }));
  const CommandResult result = one.manager().verify(kVolume);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.http_status, 409);
}

TEST(Replicator, InterruptedFullSyncResumesFromTheBitmapInsteadOfStartingOver) {
  Node one(1), two(2, NodeOptions{.fixed_resync_rate = 8 * MiB});  // the target paces the pull: ~1 s
  one.data().raw() = pattern(kDataSize, 29);
  two.start(one);
  one.start(two);
  ASSERT_TRUE(eventually([&] { return two.status().bytes_resynced >= 3 * MiB; })) << describe(one, two);
  const std::uint64_t first_run = two.status().bytes_resynced;
  ASSERT_LT(first_run, kDataSize) << "the sync finished before it could be interrupted";
  two.stop();
  two.start(one);
  ASSERT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);
  const std::uint64_t second_run = two.status().bytes_resynced;
  // What was in flight at the stop may come again (the source clears its bits on the
  // acknowledgement); everything applied before it must not.
  EXPECT_LE(second_run, kDataSize - first_run + 2 * MiB);
  EXPECT_LT(second_run, kDataSize) << "the full sync started over";
  EXPECT_TRUE(contents(two.data()) == contents(one.data()));
}

TEST(Replicator, PrimaryRestartedCleanlyTakesThePrimaryRoleBackWhenItMeetsItsPeer) {
  Node one(1), two(2);
  start_and_sync(one, two);
  const std::uint64_t resynced_before = two.status().bytes_resynced;
  one.stop();
  ASSERT_TRUE(eventually([&] { return two.peer_status().connection == ConnectionState::Connecting; }))
      << describe(two);
  EXPECT_EQ(two.status().role, "secondary") << "the secondary must not promote itself";
  one.start(two);
  ASSERT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);
  EXPECT_EQ(two.status().bytes_resynced, resynced_before) << "nothing changed, yet something was copied";
}

TEST(Replicator, WhenBothWouldBecomePrimaryOnMeetingOnlyTheLowerNodeIdDoes) {
  // one stops as primary; two is promoted alone, writes nothing, and stops as primary too:
  // both come back meaning to take the role.
  Node one(1), two(2);
  start_and_sync(one, two);
  one.stop();
  ASSERT_TRUE(eventually([&] { return two.peer_status().connection == ConnectionState::Connecting; }));
  ASSERT_TRUE(two.manager().promote(kVolume, false).ok);
  two.stop();
  two.start(one);
  one.start(two);
  bool both_primary = false;
  const bool done = eventually([&] {
    both_primary = both_primary || (one.status().role == "primary" && two.status().role == "primary");
    return settled(one, two);
  });
  EXPECT_TRUE(done) << describe(one, two);
  EXPECT_FALSE(both_primary);
  EXPECT_EQ(two.status().role, "secondary");
}

TEST(Replicator, ReconnectCommandDropsTheLinkAndItComesBack) {
  Node one(1), two(2);
  start_and_sync(one, two);
  const CommandResult result = two.manager().reconnect(kVolume);
  ASSERT_TRUE(result.ok) << result.message;
  ASSERT_TRUE(eventually([&] { return contains(one.peer_status().last_error, "reconnect"); }, 5s))
      << describe(one, two);
  ASSERT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);
  const std::vector<std::uint8_t> bytes = pattern(4 * KiB, 31);
  EXPECT_EQ(one.volume().write(7 * MiB, bytes, false), 0);
  EXPECT_TRUE(contents(two.data(), 7 * MiB, bytes.size()) == bytes);
}

TEST(Replicator, OnlineVerifyRunFromTheSecondaryRepairsFromThePrimary) {
  Node one(1), two(2);
  one.data().raw() = pattern(kDataSize, 13);
  start_and_sync(one, two);
  two.data().raw()[5 * MiB + 7] ^= 0x5a;
  ASSERT_TRUE(two.manager().verify(kVolume).ok);
  ASSERT_TRUE(eventually([&] { return !two.status().verify.finished_at.empty(); })) << describe(one, two);
  EXPECT_GT(two.status().verify.out_of_sync_bytes, 0u);
  ASSERT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);
  EXPECT_TRUE(contents(two.data()) == contents(one.data()));
  EXPECT_EQ(one.status().role, "primary");
}

// ---- ordering (protocols A and B)

TEST(Replicator, ProtocolAWriteIssuedAfterAnotherCompletedCarriesALaterEpoch) {
  Node one(1, NodeOptions{.protocol = Protocol::A}), two(2, NodeOptions{.protocol = Protocol::A});
  two.start(one);
  WriteTap tap(two.port());
  one.start(2, tap.port());
  ASSERT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);

  // Hold one's io thread (a flush's completion runs there) so that both writes are queued to
  // the link before it sends either; a loaded io thread does the same.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  auto holding = std::make_shared<std::atomic<bool>>(false);  // outlives the test body if the flush never ends
  one.replicator().send_flush([holding, released](int) {
    *holding = true;
    released.wait();
  });
  ASSERT_TRUE(eventually([&] { return holding->load(); }, 5s));
  // Protocol A: each write returns once local; the second is issued after the first completed.
  const bool first_ok = one.volume().write(0, pattern(4 * KiB, 1), false) == 0;
  const bool second_ok = one.volume().write(1 * MiB, pattern(4 * KiB, 2), false) == 0;
  release.set_value();
  ASSERT_TRUE(first_ok && second_ok);

  ASSERT_TRUE(eventually([&] { return tap.writes().size() >= 2; }, 5s));
  const std::vector<WriteTap::SeenWrite> seen = tap.writes();
  ASSERT_EQ(seen[0].offset, 0u);
  ASSERT_EQ(seen[1].offset, 1 * MiB);
  // Otherwise the secondary may apply the second before the first.
  EXPECT_GT(seen[1].epoch, seen[0].epoch);
}

// ---- a man in the middle (peer_auth.h: every frame after the handshake carries a MAC)

// Reads until the peer closes the connection, for at most `limit`.
bool closed_within(boost::asio::ip::tcp::socket& socket, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::array<std::uint8_t, 4096> buffer{};
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{socket.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    if (::recv(socket.native_handle(), buffer.data(), buffer.size(), 0) <= 0) return true;
  }
  return false;
}

// A man in the middle does `what` to the next Write: the secondary refuses the frame (its MAC
// does not verify), the link comes back by itself, and the resync leaves identical replicas
// with the real data.
void expect_tampering_refused(WriteTap::Tamper what) {
  Node one(1), two(2);
  two.start(one);
  WriteTap tap(two.port());
  one.start(2, tap.port());
  ASSERT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);
  tap.tamper(what);
  const auto data = pattern(4 * KiB, 7);
  EXPECT_EQ(one.volume().write(0, data, false), 0) << "the primary keeps serving, the peer marked out of sync";
  ASSERT_TRUE(eventually([&] { return tap.tamper_done(); }, 5s));
  EXPECT_TRUE(eventually([&] { return contains(two.peer_status().last_error, "failed its MAC check"); }))
      << describe(one, two);
  ASSERT_TRUE(eventually([&] { return settled(one, two); }, 20s)) << describe(one, two);
  EXPECT_EQ(contents(two.data(), 0, 4 * KiB), data) << "the resync brought the real data, not the altered";
  EXPECT_EQ(contents(one.data()), contents(two.data()));
}

TEST(Replicator, AWriteAlteredOnTheWireIsRefusedAndTheLinkComesBack) {
  expect_tampering_refused(WriteTap::Tamper::AlterNextWrite);
}

TEST(Replicator, AFrameInjectedOnTheWireIsRefusedAndTheLinkComesBack) {
  expect_tampering_refused(WriteTap::Tamper::InjectBeforeNextWrite);
}

// A connection from `source` (a loopback address) to `port`.
std::unique_ptr<boost::asio::ip::tcp::socket> connect_from(boost::asio::io_context& io, const char* source,
                                                           std::uint16_t port) {
  auto socket = std::make_unique<boost::asio::ip::tcp::socket>(io);
  socket->open(boost::asio::ip::tcp::v4());
  socket->bind({boost::asio::ip::make_address(source), 0});
  socket->connect({boost::asio::ip::make_address("127.0.0.1"), port});
  return socket;
}

TEST(Replicator, BeforeAuthenticationALargeFrameOrAPingEndsTheConnectionAtOnce) {
  Node one(1), two(2);
  start_and_sync(one, two);
  boost::asio::io_context io;
  // A Write header announcing 1 MiB: refused from the header, nothing buffered.
  auto large = connect_from(io, "127.0.0.7", two.port());
  std::vector<std::uint8_t> data(1 << 20, 0x5a);
  std::vector<std::uint8_t> frame(peer::kFrameHeaderSize + 64);
  peer::Result<peer::OutgoingFrame> write = peer::encode(peer::Write{0, 0, 1, data}, 1);
  ASSERT_TRUE(write.ok());
  boost::asio::write(*large, boost::asio::buffer(write.value.head().data(), write.value.head().size()));
  EXPECT_TRUE(closed_within(*large, 2s)) << "closed at the header, long before the 5 s deadline";
  // A Ping: a real peer never sends one before authenticating.
  auto ping = connect_from(io, "127.0.0.7", two.port());
  std::vector<std::uint8_t> bytes(peer::kFrameHeaderSize + 8);
  ASSERT_TRUE(peer::encode_into(peer::Ping{1}, 0, bytes).ok());
  boost::asio::write(*ping, boost::asio::buffer(bytes));
  EXPECT_TRUE(closed_within(*ping, 2s));
  EXPECT_TRUE(eventually([&] { return contains(two.peer_status().last_refused_connection, "Ping"); }))
      << two.peer_status().last_refused_connection;
  EXPECT_TRUE(settled(one, two)) << describe(one, two);
}

TEST(Replicator, StrangersFillingTheUnauthenticatedSlotsDoNotKeepThePeerOut) {
  Node one(1), two(2);
  start_and_sync(one, two);
  boost::asio::io_context io;
  std::vector<std::unique_ptr<boost::asio::ip::tcp::socket>> idle;
  const char* sources[] = {"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5",
                           "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"};
  for (const char* source : sources) {
    for (std::size_t i = 0; i < ReplicationManager::kMaxUnauthenticatedPerAddress; ++i) {
      idle.push_back(connect_from(io, source, two.port()));
    }
  }
  // The 65th stranger is closed at once.
  auto extra = connect_from(io, "127.0.0.10", two.port());
  EXPECT_TRUE(closed_within(*extra, 2s));
  ASSERT_TRUE(eventually([&] { return two.peer_status().unauthenticated_connections >= 64; }, 2s))
      << two.peer_status().unauthenticated_connections;
  // The real peer (127.0.0.1, its configured address) reconnects while every slot is taken.
  ASSERT_TRUE(one.manager().reconnect(kVolume).ok);
  EXPECT_TRUE(eventually([&] { return settled(one, two); }, 3s)) << describe(one, two);
  EXPECT_GE(two.peer_status().unauthenticated_connections, 64u) << "the strangers were still there";
}

TEST(Replicator, AReplayedHandshakeIsRefusedAndTheLiveLinkStays) {
  Node one(1), two(2);
  two.start(one);
  WriteTap tap(two.port());
  one.start(2, tap.port());
  ASSERT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);
  const std::vector<std::uint8_t> recorded = tap.first_handshake();
  ASSERT_GT(recorded.size(), 2 * peer::kFrameHeaderSize) << "the dialler's AuthHello and AuthProof";

  boost::asio::io_context io;
  boost::asio::ip::tcp::socket replay(io);
  replay.connect({boost::asio::ip::make_address("127.0.0.1"), two.port()});
  boost::asio::write(replay, boost::asio::buffer(recorded));
  EXPECT_TRUE(closed_within(replay, 7s));
  EXPECT_TRUE(eventually([&] { return contains(two.peer_status().last_refused_connection, "does not match"); }))
      << two.peer_status().last_refused_connection;
  EXPECT_GE(two.peer_status().refused_connections, 1u);
  EXPECT_TRUE(settled(one, two)) << "the replay must not disturb the live link: " << describe(one, two);
}

// ---- roles

// Control calls from several threads at once while the io thread runs the link: demote and
// promote wait for the io thread and the peer (the sanitizer builds check the waits), status
// reads alongside.
TEST(Replicator, RoleChangesAndStatusFromSeveralThreadsAtOnce) {
  Node one(1), two(2);
  start_and_sync(one, two);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    while (!done) {
      (void)one.status();
      (void)two.status();
    }
  });
  for (int round = 0; round < 10; ++round) {
    EXPECT_TRUE(one.manager().demote(kVolume).ok);
    EXPECT_TRUE(eventually([&] { return two.manager().promote(kVolume, false).ok; }, 5s)) << describe(one, two);
    EXPECT_TRUE(two.manager().demote(kVolume).ok);
    EXPECT_TRUE(eventually([&] { return one.manager().promote(kVolume, false).ok; }, 5s)) << describe(one, two);
  }
  done = true;
  reader.join();
  EXPECT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);
}

TEST(Replicator, PromoteIsRefusedWhileTheConnectedPeerIsPrimary) {
  Node one(1), two(2);
  start_and_sync(one, two);
  const CommandResult result = two.manager().promote(kVolume, false);
  EXPECT_FALSE(result.ok);
  EXPECT_EQ(result.http_status, 409);
  EXPECT_TRUE(contains(result.message, "demote")) << result.message;
  EXPECT_EQ(two.status().role, "secondary");
  EXPECT_EQ(one.status().role, "primary");
}

TEST(Replicator, ForcedPromoteIsRefusedWhileTheConnectedPeerIsPrimary) {
  Node one(1), two(2);
  start_and_sync(one, two);
  const CommandResult result = two.manager().promote(kVolume, true);
  EXPECT_FALSE(result.ok) << "force may override a stale disk, never a live primary";
  EXPECT_EQ(two.status().role, "secondary");
}

TEST(Replicator, DemoteThenPromoteOnTheOtherNodeMovesThePrimary) {
  Node one(1), two(2);
  start_and_sync(one, two);
  const CommandResult demoted = one.manager().demote(kVolume);
  ASSERT_TRUE(demoted.ok) << demoted.message;
  EXPECT_EQ(one.status().role, "secondary");
  ASSERT_TRUE(eventually([&] { return two.peer_status().role == "secondary"; })) << describe(one, two);

  const CommandResult promoted = two.manager().promote(kVolume, false);
  ASSERT_TRUE(promoted.ok) << promoted.message;
  EXPECT_TRUE(promoted.warning.empty()) << promoted.warning;
  EXPECT_EQ(two.status().role, "primary");
  ASSERT_TRUE(eventually([&] { return one.peer_status().role == "primary"; })) << describe(one, two);

  // The new primary's writes reach the old one, which takes none of its own.
  const std::vector<std::uint8_t> bytes = pattern(32 * KiB, 23);
  EXPECT_EQ(two.volume().write(6 * MiB, bytes, false), 0);
  EXPECT_TRUE(contents(one.data(), 6 * MiB, bytes.size()) == bytes);
  EXPECT_EQ(one.volume().write(0, bytes, false), EROFS);
  EXPECT_TRUE(settled(two, one)) << describe(two, one);
}

// ---- durability: what the peer acknowledged is not on its stable storage until it flushed

// Writes `count` 4 KiB blocks through the primary, spread over the volume (several activity-log
// extents); returns what each offset must hold.
std::map<std::uint64_t, std::vector<std::uint8_t>> write_spread(Node& primary, int count, std::uint8_t seed) {
  std::map<std::uint64_t, std::vector<std::uint8_t>> written;
  for (int i = 0; i < count; ++i) {
    const std::uint64_t offset = (static_cast<std::uint64_t>(i) * 259 * 4 * KiB) % kDataSize;
    written[offset] = pattern(4 * KiB, static_cast<std::uint8_t>(seed + i));
    EXPECT_EQ(primary.volume().write(offset, written[offset], false), 0);
  }
  return written;
}

// The primary asks for no peer flush by itself: only SYNCHRONIZE CACHE, the link's end or a
// failure settles what the peer acknowledged.
constexpr EpochPolicy kNoUnaskedFlush{1u << 20, 1ull << 40, std::chrono::hours(1)};

TEST(Replicator, StandbyPowerLossAfterWriteAcksLosesNoAcknowledgedWrite) {
  Node one(1, NodeOptions{.epoch = kNoUnaskedFlush}), two(2, NodeOptions{.volatile_disk_cache = true});
  start_and_sync(one, two);
  ASSERT_EQ(one.volume().flush(), 0);  // the initial sync is durable on both

  const auto written = write_spread(one, 64, 50);
  const std::uint64_t lost = two.power_loss();
  ASSERT_GT(lost, 0u) << "nothing was at risk: the test proves nothing";
  ASSERT_TRUE(eventually([&] { return one.peer_status().connection == ConnectionState::Connecting; }))
      << describe(one);

  two.start(one);
  ASSERT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);
  for (const auto& [offset, bytes] : written) {
    EXPECT_TRUE(contents(two.data(), offset, bytes.size()) == bytes) << "acknowledged write at " << offset << " lost";
  }
  EXPECT_TRUE(contents(two.data()) == contents(one.data())) << "the replicas differ after the resync";
}

// Only the primary knows which of its acknowledged writes a crashed standby lost: alone, the
// standby must not pass for complete.
TEST(Replicator, AStandbyThatCrashedIsOutdatedUntilItsPeerResyncedIt) {
  Node one(1, NodeOptions{.epoch = kNoUnaskedFlush}), two(2, NodeOptions{.volatile_disk_cache = true});
  start_and_sync(one, two);
  ASSERT_EQ(one.volume().flush(), 0);
  const auto written = write_spread(one, 32, 60);
  ASSERT_GT(two.power_loss(), 0u) << "nothing was at risk: the test proves nothing";
  one.stop();  // the primary is down too

  two.start(one);
  ASSERT_TRUE(eventually([&] { return two.status().disk_state == "Outdated"; }, 2s)) << describe(two);
  const CommandResult plain = two.manager().promote(kVolume, false);
  EXPECT_FALSE(plain.ok) << "promoted a replica that may lack acknowledged writes: " << plain.message;
  EXPECT_EQ(two.status().role, "secondary");

  // Back with its primary, it is resynced and UpToDate again.
  one.start(two);
  ASSERT_TRUE(eventually([&] { return settled(one, two); }, 20s)) << describe(one, two);
  EXPECT_EQ(two.status().disk_state, "UpToDate");
  for (const auto& [offset, bytes] : written) {
    EXPECT_TRUE(contents(two.data(), offset, bytes.size()) == bytes) << "acknowledged write at " << offset << " lost";
  }
}

TEST(Replicator, SynchronizeCacheIsGoodAfterAFailedPeerFlushOnlyWithTheWritesMarkedOutOfSync) {
  Node one(1, NodeOptions{.epoch = kNoUnaskedFlush}), two(2, NodeOptions{.volatile_disk_cache = true});
  start_and_sync(one, two);
  ASSERT_EQ(one.volume().flush(), 0);

  const auto written = write_spread(one, 16, 90);
  two.disk_cache().fail_flushes_with(EIO);
  // GOOD is right only because the peer is marked out of sync for every write it may have lost.
  ASSERT_EQ(one.volume().flush(), 0);
  EXPECT_GE(one.status().out_of_sync_bytes, written.size() * 4 * KiB)
      << "SYNCHRONIZE CACHE was GOOD, yet the peer's flush failed and nothing marks what it may lack";
}

TEST(Replicator, ThePrimaryHasThePeerFlushWhatItAcknowledgedWithinTheEpochAge) {
  Node one(1, NodeOptions{.epoch = EpochPolicy{.max_age = 50ms}}), two(2, NodeOptions{.volatile_disk_cache = true});
  start_and_sync(one, two);
  ASSERT_EQ(one.volume().flush(), 0);
  ASSERT_EQ(one.volume().write(2 * MiB, pattern(4 * KiB, 7), false), 0);
  EXPECT_TRUE(eventually([&] { return two.disk_cache().unflushed_bytes() == 0; }, 2s))
      << "nobody asked " << two.name() << " to make the acknowledged write durable";
}

TEST(Replicator, AnEpochThePeerCannotFlushIsMarkedOutOfSync) {
  Node one(1, NodeOptions{.epoch = EpochPolicy{.max_age = 20ms}}), two(2, NodeOptions{.volatile_disk_cache = true});
  start_and_sync(one, two);
  ASSERT_EQ(one.volume().flush(), 0);
  two.disk_cache().fail_flushes_with(EIO);
  ASSERT_EQ(one.volume().write(2 * MiB, pattern(4 * KiB, 8), false), 0);
  EXPECT_TRUE(eventually([&] { return one.status().out_of_sync_bytes >= 4 * KiB; }, 3s))
      << "the peer never made the write durable, and nothing records that it may lack it\n" << describe(one, two);
}

TEST(Replicator, WritesWaitingForAnActivityLogSlotHeldForThePeerMakeThePrimaryAskForAFlush) {
  // Four slots of 64 KiB, and writes to many more extents, with no flush asked for by age or
  // count: the extents stay held for the peer until a writer waiting for a slot has the
  // primary ask for a flush (else the writes would wait forever).
  const ActivityLogGeometry small_log{64 * KiB, 4, 8};
  Node one(1, NodeOptions{.epoch = kNoUnaskedFlush, .activity_log = small_log}),
      two(2, NodeOptions{.volatile_disk_cache = true});
  start_and_sync(one, two);
  auto writer = std::async(std::launch::async, [&] { return write_spread(one, 64, 1).size(); });
  ASSERT_EQ(writer.wait_for(20s), std::future_status::ready) << "writes stalled on the activity log";
  EXPECT_EQ(writer.get(), 64u);
  EXPECT_LT(two.disk_cache().unflushed_bytes(), 64 * 4 * KiB) << "no flush reached the peer";
}

TEST(Replicator, BothNodesLosingPowerLeaveIdenticalReplicasAfterTheirResync) {
  // A small activity log, so that extents leave it (on disk) while the test writes: a write
  // the peer made durable must not leave it before the primary's own disk flushed it too.
  const ActivityLogGeometry small_log{64 * KiB, 4, 8};
  Node one(1, NodeOptions{.volatile_disk_cache = true, .epoch = EpochPolicy{.max_age = 20ms}, .activity_log = small_log}),
      two(2, NodeOptions{.volatile_disk_cache = true});
  start_and_sync(one, two);
  ASSERT_EQ(one.volume().flush(), 0);
  for (int i = 0; i < 12; ++i) {
    ASSERT_EQ(one.volume().write(static_cast<std::uint64_t>(i) * 256 * KiB, pattern(4 * KiB, static_cast<std::uint8_t>(i)), false), 0);
    // Each epoch flushed on the peer before the next write, which evicts an older extent.
    ASSERT_TRUE(eventually([&] { return two.disk_cache().unflushed_bytes() == 0; }, 2s));
  }
  two.power_loss();
  one.power_loss();
  two.start(one);
  one.start(two);
  ASSERT_TRUE(eventually([&] { return settled(one, two); })) << describe(one, two);
  EXPECT_TRUE(contents(two.data()) == contents(one.data())) << "the replicas differ after both lost power";
}

}  // namespace
}  // namespace freevsa::replication
