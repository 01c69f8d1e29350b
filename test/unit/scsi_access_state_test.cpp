// A volume that is not active on this node (the standby of a replicated pair) refuses every
// command that touches its data with the ALUA sense codes, and still answers the commands a
// multipath initiator uses to find out what the path is.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "replication/memory_volume.h"
#include "scsi/lun_map.h"

namespace freevsa::scsi {
namespace {

using replication::Access;
using replication::MemoryVolume;

class ScsiAccessState : public ::testing::Test {
 protected:
  void SetUp() override {
    map_.add(0, std::make_shared<LogicalUnit>(volume_, LunIdentity::from_name("iqn.test:t/lun0")));
    run({0x00});  // consume the power-on unit attention of the new nexus
  }

  Task run(std::vector<std::uint8_t> cdb, std::vector<std::uint8_t> out = {}) {
    Task t;
    std::copy(cdb.begin(), cdb.end(), t.cdb.begin());
    t.cdb_length = static_cast<std::uint8_t>(cdb.size());
    t.initiator_port = "iqn.init,i,0x1";
    t.data_out = util::AlignedBuffer(out.size());
    if (!out.empty()) std::memcpy(t.data_out.data(), out.data(), out.size());
    t.data_out_length = static_cast<std::uint32_t>(out.size());
    t.expected_data_in_length = 4096;
    map_.execute(t);
    return t;
  }

  // Changes the volume's state as a role change would; the next command reports the change
  // as 06/2A/06, and consumes it.
  void switch_to(Access access) {
    volume_.set_access(access);
    const Task t = run({0x00, 0, 0, 0, 0, 0});
    ASSERT_EQ(t.status, Status::CheckCondition);
    ASSERT_GE(t.sense.size(), 14u);
    ASSERT_EQ(t.sense[2] & 0x0F, 0x06);
    ASSERT_EQ(t.sense[12], 0x2A);
    ASSERT_EQ(t.sense[13], 0x06);
  }

  static void expect_not_ready(const Task& t, std::uint8_t ascq) {
    ASSERT_EQ(t.status, Status::CheckCondition);
    ASSERT_GE(t.sense.size(), 14u);
    EXPECT_EQ(t.sense[2] & 0x0F, 0x02);
    EXPECT_EQ(t.sense[12], 0x04);
    EXPECT_EQ(t.sense[13], ascq);
  }

  MemoryVolume volume_{1 << 20, 512};
  LunMap map_;
};

const std::vector<std::uint8_t> kRead10 = {0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0};
const std::vector<std::uint8_t> kWrite10 = {0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0};

TEST_F(ScsiAccessState, ActiveVolumeServesReadsAndWrites) {
  EXPECT_EQ(run(kWrite10, std::vector<std::uint8_t>(512, 0xAB)).status, Status::Good);
  EXPECT_EQ(run(kRead10).status, Status::Good);
}

TEST_F(ScsiAccessState, StandbyRefusesReadsWritesAndTestUnitReadyWithTargetPortInStandby) {
  switch_to(Access::Standby);
  expect_not_ready(run(kRead10), 0x0B);
  expect_not_ready(run(kWrite10, std::vector<std::uint8_t>(512, 0xAB)), 0x0B);
  expect_not_ready(run({0x00, 0, 0, 0, 0, 0}), 0x0B);
  expect_not_ready(run({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}), 0x0B);
}

TEST_F(ScsiAccessState, StandbyWritesNothing) {
  switch_to(Access::Standby);
  run(kWrite10, std::vector<std::uint8_t>(512, 0xAB));
  EXPECT_EQ(volume_.raw()[0], 0);
}

TEST_F(ScsiAccessState, StandbyStillAnswersInquiryReportLunsAndModeSense) {
  switch_to(Access::Standby);
  EXPECT_EQ(run({0x12, 0, 0, 0, 96, 0}).status, Status::Good);
  EXPECT_EQ(run({0x12, 1, 0x83, 0, 255, 0}).status, Status::Good);
  EXPECT_EQ(run({0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}).status, Status::Good);
  EXPECT_EQ(run({0x1A, 0, 0x3F, 0, 255, 0}).status, Status::Good);
}

TEST_F(ScsiAccessState, TransitioningAnswersAsymmetricAccessStateTransition) {
  switch_to(Access::Transitioning);
  expect_not_ready(run(kRead10), 0x0A);
}

const std::vector<std::uint8_t> kReportTargetPortGroups = {0xA3, 0x0A, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};

TEST_F(ScsiAccessState, UnavailableAnswersTargetPortInUnavailableState) {
  switch_to(Access::Unavailable);
  expect_not_ready(run(kRead10), 0x0C);
  const Task t = run(kReportTargetPortGroups);
  ASSERT_EQ(t.status, Status::Good);
  EXPECT_EQ(t.data_in.data()[4] & 0x0F, 0x3);
}

TEST_F(ScsiAccessState, StandbyIsNeverReportedAsALostDevice) {
  switch_to(Access::Standby);
  const Task t = run(kRead10);
  ASSERT_GE(t.sense.size(), 14u);
  // 05/25/00 LOGICAL UNIT NOT SUPPORTED makes ESXi declare the device permanently lost.
  EXPECT_FALSE(t.sense[2] == 0x05 && t.sense[12] == 0x25);
}

TEST_F(ScsiAccessState, AStateChangeIsAnnouncedOnceToEveryInitiatorPort) {
  auto run_as = [&](const std::string& port) {
    Task t;
    t.cdb[0] = 0x00;
    t.cdb_length = 6;
    t.initiator_port = port;
    map_.execute(t);
    return t;
  };
  run_as("iqn.other,i,0x2");  // the second port's power-on attention
  run_as("iqn.other,i,0x2");
  volume_.set_access(Access::Standby);
  for (const std::string port : {"iqn.init,i,0x1", "iqn.other,i,0x2"}) {
    const Task t = run_as(port);
    ASSERT_EQ(t.status, Status::CheckCondition) << port;
    EXPECT_EQ(t.sense[2] & 0x0F, 0x06);
    EXPECT_EQ(t.sense[12], 0x2A);
    EXPECT_EQ(t.sense[13], 0x06);
    expect_not_ready(run_as(port), 0x0B);  // once: then the standby answer
  }
}

// REPORT TARGET PORT GROUPS: (group id, state, preferred) of each descriptor.
std::vector<std::tuple<std::uint16_t, std::uint8_t, bool>> port_groups(const Task& t) {
  std::vector<std::tuple<std::uint16_t, std::uint8_t, bool>> out;
  const std::uint8_t* d = t.data_in.data();
  const std::uint32_t length = (std::uint32_t{d[0]} << 24) | (d[1] << 16) | (d[2] << 8) | d[3];
  for (std::size_t at = 4; at + 12 <= 4 + length; at += 8 + 4 * d[at + 7]) {
    out.emplace_back(static_cast<std::uint16_t>(d[at + 2] << 8 | d[at + 3]), d[at] & 0x0F, (d[at] & 0x80) != 0);
  }
  return out;
}

TEST_F(ScsiAccessState, ReportTargetPortGroupsGivesTheStateOfThisNodesGroup) {
  Task t = run(kReportTargetPortGroups);
  ASSERT_EQ(t.status, Status::Good);
  EXPECT_EQ(port_groups(t), (std::vector<std::tuple<std::uint16_t, std::uint8_t, bool>>{{1, 0x0, true}}));
  EXPECT_EQ(t.data_in.data()[5], 0x8D);  // transitioning, unavailable, standby, active/optimized supported
  switch_to(Access::Standby);
  t = run(kReportTargetPortGroups);  // answered on a standby path
  ASSERT_EQ(t.status, Status::Good);
  EXPECT_EQ(port_groups(t), (std::vector<std::tuple<std::uint16_t, std::uint8_t, bool>>{{1, 0x2, false}}));
  switch_to(Access::Transitioning);
  EXPECT_EQ(port_groups(run(kReportTargetPortGroups)),
            (std::vector<std::tuple<std::uint16_t, std::uint8_t, bool>>{{1, 0xF, false}}));
}

TEST_F(ScsiAccessState, ReportTargetPortGroupsExtendedHeader) {
  const Task t = run({0xA3, 0x2A, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0});
  ASSERT_EQ(t.status, Status::Good);
  ASSERT_GE(t.data_in_length, 20u);
  EXPECT_EQ(t.data_in.data()[4], 0x10);  // format type 001b
  EXPECT_EQ(t.data_in.data()[8 + 3], 1);  // the group id after the 8-byte header
}

TEST_F(ScsiAccessState, InquiryReportsImplicitAluaAndThePortGroupInTheIdentification) {
  const Task standard = run({0x12, 0, 0, 0, 96, 0});
  EXPECT_EQ(standard.data_in.data()[5] & 0x30, 0x10);  // TPGS=01b
  const Task vpd = run({0x12, 1, 0x83, 0, 255, 0});
  ASSERT_EQ(vpd.status, Status::Good);
  bool relative_port = false, port_group = false;
  const std::uint8_t* d = vpd.data_in.data();
  for (std::size_t at = 4; at + 4 <= vpd.data_in_length; at += 4 + d[at + 3]) {
    const std::uint8_t association = (d[at + 1] >> 4) & 0x3, type = d[at + 1] & 0x0F;
    if (association == 1 && type == 4) relative_port = d[at + 7] == 1;
    if (association == 1 && type == 5) port_group = d[at + 7] == 1;
  }
  EXPECT_TRUE(relative_port);
  EXPECT_TRUE(port_group);
}

}  // namespace
}  // namespace freevsa::scsi
