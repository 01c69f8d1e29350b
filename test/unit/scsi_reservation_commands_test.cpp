// PERSISTENT RESERVE IN/OUT and RESERVE/RELEASE through LunMap::execute, as the transport
// calls them, against a volume that keeps the reservation record.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "replication/memory_volume.h"
#include "scsi/lun_map.h"
#include "test/unit/scsi_task_support.h"
#include "util/endian.h"

namespace freevsa::scsi {
namespace {

// A volume whose reservation record can fail to store, or change as if the peer had sent one.
class RecordingVolume final : public replication::Volume {
 public:
  RecordingVolume() : inner_(64 * 512, 512) {}
  std::uint64_t size_bytes() const override { return inner_.size_bytes(); }
  std::uint32_t block_size() const override { return inner_.block_size(); }
  const std::string& name() const override { return inner_.name(); }
  int read(std::uint64_t o, std::span<std::uint8_t> d) override { return inner_.read(o, d); }
  int write(std::uint64_t o, std::span<const std::uint8_t> s, bool f) override { return inner_.write(o, s, f); }
  int flush() override { return 0; }
  int discard(std::uint64_t o, std::uint64_t l) override { return inner_.discard(o, l); }
  int store_reservations(std::span<const std::uint8_t> record) override {
    ++stores;
    if (fail_store != 0) return fail_store;
    return Volume::store_reservations(record);
  }
  std::uint64_t reservations_received() const override { return received.load(); }
  void receive_from_peer(const std::vector<std::uint8_t>& record) {
    Volume::store_reservations(record);
    ++received;
  }

  int fail_store = 0;
  int stores = 0;
  std::atomic<std::uint64_t> received{0};

 private:
  replication::MemoryVolume inner_;
};

const std::string kA = "iqn.a,i,0x000000000001";
const std::string kB = "iqn.b,i,0x000000000002";

class ReservationCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override { remake(); }
  void remake() {
    map_ = LunMap{};
    map_.add(0, std::make_shared<LogicalUnit>(volume_, LunIdentity::from_name("iqn.test:t/lun0")));
  }

  Task run(const std::vector<std::uint8_t>& cdb, const std::string& port, const std::vector<std::uint8_t>& out = {}) {
    Task t = make_task(cdb, out, 0, port);
    map_.execute(t);
    return t;
  }
  // Clears the power-on unit attention of a new nexus.
  void hello(const std::string& port) { run({0x00, 0, 0, 0, 0, 0}, port); }

  Task pr_out(const std::string& port, std::uint8_t action, std::uint8_t type, std::uint64_t key,
              std::uint64_t sa_key, std::uint8_t flags = 0, std::uint32_t length = 24) {
    std::vector<std::uint8_t> cdb(10, 0);
    cdb[0] = 0x5F;
    cdb[1] = action;
    cdb[2] = type;
    util::put_be32(&cdb[5], length);
    std::vector<std::uint8_t> params(length, 0);
    if (length >= 24) {
      util::put_be64(&params[0], key);
      util::put_be64(&params[8], sa_key);
      params[20] = flags;
    }
    return run(cdb, port, params);
  }
  Task pr_in(const std::string& port, std::uint8_t action) {
    return run({0x5E, action, 0, 0, 0, 0, 0, 0x10, 0x00, 0}, port);
  }
  Task write_block(const std::string& port) {
    std::vector<std::uint8_t> cdb{0x2A, 0, 0, 0, 0, 1, 0, 0, 1, 0};
    return run(cdb, port, std::vector<std::uint8_t>(512, 0x5A));
  }
  Task read_block(const std::string& port) { return run({0x28, 0, 0, 0, 0, 1, 0, 0, 1, 0}, port); }

  std::vector<std::uint64_t> read_keys(const std::string& port, std::uint32_t* generation = nullptr) {
    Task t = pr_in(port, 0x00);
    EXPECT_EQ(t.status, Status::Good);
    const std::uint8_t* d = t.data_in.data();
    if (generation) *generation = util::get_be32(d);
    std::vector<std::uint64_t> keys;
    for (std::uint32_t i = 0; i < util::get_be32(d + 4) / 8; ++i) keys.push_back(util::get_be64(d + 8 + 8 * i));
    return keys;
  }

  RecordingVolume volume_;
  LunMap map_;
};

TEST_F(ReservationCommandsTest, RegisterShowsInReadKeysWithGeneration) {
  hello(kA);
  ASSERT_EQ(pr_out(kA, 0x00, 0, 0, 0x1234).status, Status::Good);
  std::uint32_t generation = 0;
  EXPECT_EQ(read_keys(kA, &generation), std::vector<std::uint64_t>{0x1234});
  EXPECT_EQ(generation, 1u);
}

TEST_F(ReservationCommandsTest, WriteExclusiveLetsOthersReadButNotWrite) {
  hello(kA);
  hello(kB);
  ASSERT_EQ(pr_out(kA, 0x00, 0, 0, 0xA).status, Status::Good);
  ASSERT_EQ(pr_out(kA, 0x01, 0x01, 0xA, 0).status, Status::Good);
  EXPECT_EQ(write_block(kA).status, Status::Good);
  EXPECT_EQ(read_block(kB).status, Status::Good);
  const Task refused = write_block(kB);
  EXPECT_EQ(refused.status, Status::ReservationConflict);
  EXPECT_TRUE(refused.sense.empty());
  // INQUIRY and READ CAPACITY never conflict.
  EXPECT_EQ(run({0x12, 0, 0, 0, 96, 0}, kB).status, Status::Good);
  EXPECT_EQ(run({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}, kB).status, Status::Good);

  Task reservation = pr_in(kB, 0x01);
  ASSERT_EQ(reservation.status, Status::Good);
  EXPECT_EQ(util::get_be32(reservation.data_in.data() + 4), 16u);
  EXPECT_EQ(util::get_be64(reservation.data_in.data() + 8), 0xAu);
  EXPECT_EQ(reservation.data_in.data()[21], 0x01);
}

TEST_F(ReservationCommandsTest, ParameterListMustBe24Bytes) {
  hello(kA);
  const Task t = pr_out(kA, 0x00, 0, 0, 0xA, 0, 20);
  ASSERT_EQ(t.status, Status::CheckCondition);
  EXPECT_EQ(t.sense[12], 0x1A);
}

TEST_F(ReservationCommandsTest, ReserveWithUnknownTypeIsInvalidField) {
  hello(kA);
  ASSERT_EQ(pr_out(kA, 0x00, 0, 0, 0xA).status, Status::Good);
  const Task t = pr_out(kA, 0x01, 0x02, 0xA, 0);
  ASSERT_EQ(t.status, Status::CheckCondition);
  EXPECT_EQ(t.sense[12], 0x24);
}

TEST_F(ReservationCommandsTest, ReportCapabilitiesAdvertisesEveryType) {
  hello(kA);
  const Task t = pr_in(kA, 0x02);
  ASSERT_EQ(t.status, Status::Good);
  ASSERT_EQ(t.data_in_length, 8u);
  EXPECT_EQ(util::get_be16(t.data_in.data()), 8u);
  EXPECT_EQ(t.data_in.data()[4], 0xEA);
  EXPECT_EQ(t.data_in.data()[5], 0x01);
}

TEST_F(ReservationCommandsTest, PreemptTellsThePreemptedNexus) {
  hello(kA);
  hello(kB);
  ASSERT_EQ(pr_out(kA, 0x00, 0, 0, 0xA).status, Status::Good);
  ASSERT_EQ(pr_out(kB, 0x00, 0, 0, 0xB).status, Status::Good);
  ASSERT_EQ(pr_out(kB, 0x04, 0x03, 0xB, 0xA).status, Status::Good);
  const Task ua = run({0x00, 0, 0, 0, 0, 0}, kA);
  ASSERT_EQ(ua.status, Status::CheckCondition);
  EXPECT_EQ(ua.sense[2] & 0x0F, 0x06);
  EXPECT_EQ(ua.sense[12], 0x2A);
  EXPECT_EQ(ua.sense[13], 0x05);
}

TEST_F(ReservationCommandsTest, ReadFullStatusNamesTheInitiatorPort) {
  hello(kA);
  ASSERT_EQ(pr_out(kA, 0x00, 0, 0, 0xA).status, Status::Good);
  ASSERT_EQ(pr_out(kA, 0x01, 0x03, 0xA, 0).status, Status::Good);
  const Task t = pr_in(kA, 0x03);
  ASSERT_EQ(t.status, Status::Good);
  const std::uint8_t* d = t.data_in.data();
  EXPECT_EQ(util::get_be64(d + 8), 0xAu);
  EXPECT_EQ(d[8 + 12], 0x01);  // R_HOLDER
  EXPECT_EQ(d[8 + 13], 0x03);
  EXPECT_EQ(util::get_be16(d + 8 + 18), 1u);
  const std::uint32_t id_length = util::get_be32(d + 8 + 20);
  EXPECT_EQ(id_length % 4, 0u);
  EXPECT_EQ(d[8 + 24], 0x45);  // initiator port format, iSCSI
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(d + 8 + 28)), kA);
}

TEST_F(ReservationCommandsTest, AptplRegistrationsSurviveARestartOthersDoNot) {
  hello(kA);
  ASSERT_EQ(pr_out(kA, 0x00, 0, 0, 0xA).status, Status::Good);
  remake();
  EXPECT_TRUE(read_keys(kA).empty());
  ASSERT_EQ(pr_out(kA, 0x00, 0, 0, 0xA, /*APTPL*/ 0x01).status, Status::Good);
  ASSERT_EQ(pr_out(kA, 0x01, 0x01, 0xA, 0).status, Status::Good);
  remake();
  EXPECT_EQ(read_keys(kA), std::vector<std::uint64_t>{0xA});
  EXPECT_EQ(write_block(kB).status, Status::ReservationConflict);
}

TEST_F(ReservationCommandsTest, ARecordFromThePeerIsAdopted) {
  hello(kA);
  hello(kB);
  // What the peer's primary would send: kA registered and holding Exclusive Access.
  LunMap other;
  RecordingVolume other_volume;
  other.add(0, std::make_shared<LogicalUnit>(other_volume, LunIdentity::from_name("iqn.test:t/lun0")));
  std::swap(map_, other);
  hello(kA);
  ASSERT_EQ(pr_out(kA, 0x00, 0, 0, 0xA).status, Status::Good);
  ASSERT_EQ(pr_out(kA, 0x01, 0x03, 0xA, 0).status, Status::Good);
  std::swap(map_, other);

  EXPECT_EQ(read_block(kB).status, Status::Good);
  volume_.receive_from_peer(other_volume.stored_reservations());
  EXPECT_EQ(read_block(kB).status, Status::ReservationConflict);
  EXPECT_EQ(read_keys(kA), std::vector<std::uint64_t>{0xA});
}

TEST_F(ReservationCommandsTest, AFailedStoreChangesNothing) {
  hello(kA);
  volume_.fail_store = EIO;
  const Task t = pr_out(kA, 0x00, 0, 0, 0xA);
  ASSERT_EQ(t.status, Status::CheckCondition);
  EXPECT_EQ(t.sense[2] & 0x0F, 0x04);
  volume_.fail_store = 0;
  EXPECT_TRUE(read_keys(kA).empty());
}

TEST_F(ReservationCommandsTest, ReserveSixIsExclusiveUntilReleaseResetOrNexusLoss) {
  hello(kA);
  hello(kB);
  ASSERT_EQ(run({0x16, 0, 0, 0, 0, 0}, kA).status, Status::Good);
  EXPECT_EQ(read_block(kB).status, Status::ReservationConflict);
  EXPECT_EQ(run({0x16, 0, 0, 0, 0, 0}, kB).status, Status::ReservationConflict);
  EXPECT_EQ(run({0x12, 0, 0, 0, 96, 0}, kB).status, Status::Good);
  // RELEASE from a nexus that holds nothing: GOOD, nothing changes.
  EXPECT_EQ(run({0x17, 0, 0, 0, 0, 0}, kB).status, Status::Good);
  EXPECT_EQ(read_block(kB).status, Status::ReservationConflict);
  map_.nexus_lost(kA);
  EXPECT_EQ(read_block(kB).status, Status::Good);

  ASSERT_EQ(run({0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0}, kA).status, Status::Good);  // RESERVE(10)
  map_.lun_reset(0, kB);
  run({0x00, 0, 0, 0, 0, 0}, kB);  // the reset's unit attention
  EXPECT_EQ(read_block(kB).status, Status::Good);
}

TEST_F(ReservationCommandsTest, ReserveSixConflictsWithPersistentRegistrations) {
  hello(kA);
  hello(kB);
  ASSERT_EQ(pr_out(kA, 0x00, 0, 0, 0xA).status, Status::Good);
  EXPECT_EQ(run({0x16, 0, 0, 0, 0, 0}, kB).status, Status::ReservationConflict);
}

// ---------------------------------------------------------------- state of ended I_T nexuses

std::string churn_port(int i) { return "iqn.churn,i,0x" + std::to_string(100000 + i); }

TEST_F(ReservationCommandsTest, AnEndedNexusLeavesNoUnitAttentionState) {
  for (int i = 0; i < 1000; ++i) {
    map_.nexus_created(churn_port(i));
    hello(churn_port(i));
    map_.nexus_lost(churn_port(i));
  }
  EXPECT_EQ(map_.initiator_ports_with_state(), 0u);
}

TEST_F(ReservationCommandsTest, EndingOneNexusLeavesTheOthersAttentions) {
  map_.nexus_created(kA);
  map_.nexus_created(kB);
  hello(kA);
  hello(kB);
  map_.lun_reset(0, kB);
  map_.nexus_lost(kB);
  expect_sense(run({0x00, 0, 0, 0, 0, 0}, kA), 0x06, 0x29, 0x03);
  EXPECT_EQ(map_.initiator_ports_with_state(), 1u);
}

TEST_F(ReservationCommandsTest, ARegistrationOutlivesItsNexus) {
  map_.nexus_created(kA);
  hello(kA);
  ASSERT_EQ(pr_out(kA, 0x00, 0, 0, 0xA).status, Status::Good);
  map_.nexus_lost(kA);
  for (int i = 0; i < 100; ++i) {
    map_.nexus_created(churn_port(i));
    hello(churn_port(i));
    map_.nexus_lost(churn_port(i));
  }
  map_.nexus_created(kB);
  hello(kB);
  EXPECT_EQ(read_keys(kB), std::vector<std::uint64_t>{0xA});
  // The port logs in again and is still the registrant: its key reserves.
  map_.nexus_created(kA);
  hello(kA);
  EXPECT_EQ(pr_out(kA, 0x01, 0x01, 0xA, 0).status, Status::Good);
  EXPECT_EQ(write_block(kB).status, Status::ReservationConflict);
}

TEST_F(ReservationCommandsTest, PreemptingRegistrantsWithoutANexusAddsNoState) {
  map_.nexus_created(kA);
  hello(kA);
  ASSERT_EQ(pr_out(kA, 0x00, 0, 0, 0xA).status, Status::Good);
  for (int i = 0; i < 200; ++i) {
    const std::string port = churn_port(i);
    map_.nexus_created(port);
    hello(port);
    ASSERT_EQ(pr_out(port, 0x00, 0, 0, 0x100 + i).status, Status::Good);
    map_.nexus_lost(port);
    // REGISTRATIONS PREEMPTED is for a nexus that no longer exists: nothing to keep it for.
    ASSERT_EQ(pr_out(kA, 0x04, 0x01, 0xA, 0x100 + i).status, Status::Good);
  }
  EXPECT_EQ(read_keys(kA), std::vector<std::uint64_t>{0xA});
  EXPECT_EQ(map_.initiator_ports_with_state(), 1u);
}

}  // namespace
}  // namespace freevsa::scsi
