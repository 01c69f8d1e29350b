// A volume that is not active on this node (the standby of a replicated pair) refuses every
// command that touches its data with the ALUA sense codes, and still answers the commands a
// multipath initiator uses to find out what the path is.
#include <gtest/gtest.h>

#include <cstring>
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
  volume_.set_access(Access::Standby);
  expect_not_ready(run(kRead10), 0x0B);
  expect_not_ready(run(kWrite10, std::vector<std::uint8_t>(512, 0xAB)), 0x0B);
  expect_not_ready(run({0x00, 0, 0, 0, 0, 0}), 0x0B);
  expect_not_ready(run({0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0}), 0x0B);
}

TEST_F(ScsiAccessState, StandbyWritesNothing) {
  volume_.set_access(Access::Standby);
  run(kWrite10, std::vector<std::uint8_t>(512, 0xAB));
  EXPECT_EQ(volume_.raw()[0], 0);
}

TEST_F(ScsiAccessState, StandbyStillAnswersInquiryReportLunsAndModeSense) {
  volume_.set_access(Access::Standby);
  EXPECT_EQ(run({0x12, 0, 0, 0, 96, 0}).status, Status::Good);
  EXPECT_EQ(run({0x12, 1, 0x83, 0, 255, 0}).status, Status::Good);
  EXPECT_EQ(run({0xA0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0}).status, Status::Good);
  EXPECT_EQ(run({0x1A, 0, 0x3F, 0, 255, 0}).status, Status::Good);
}

TEST_F(ScsiAccessState, TransitioningAnswersAsymmetricAccessStateTransition) {
  volume_.set_access(Access::Transitioning);
  expect_not_ready(run(kRead10), 0x0A);
}

TEST_F(ScsiAccessState, StandbyIsNeverReportedAsALostDevice) {
  volume_.set_access(Access::Standby);
  const Task t = run(kRead10);
  ASSERT_GE(t.sense.size(), 14u);
  // 05/25/00 LOGICAL UNIT NOT SUPPORTED makes ESXi declare the device permanently lost.
  EXPECT_FALSE(t.sense[2] == 0x05 && t.sense[12] == 0x25);
}

}  // namespace
}  // namespace freevsa::scsi
