// EXTENDED COPY(LID1), RECEIVE COPY RESULTS and the Third-party Copy VPD page against memory
// volumes, through LunMap::execute as the transport calls it: copies within one LUN and across
// LUNs of one target, and how the copy manager refuses parameter lists it cannot carry out.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "replication/memory_volume.h"
#include "scsi/extended_copy_parameters.h"
#include "scsi/lun_map.h"
#include "test/unit/scsi_task_support.h"
#include "util/endian.h"

namespace freevsa::scsi {
namespace {

using replication::MemoryVolume;

constexpr std::uint8_t kHold = 0;
constexpr std::uint8_t kNoList = 3;
constexpr std::uint16_t kFirstDescriptor = 16;  // the CSCD descriptor list starts after the header

// An EXTENDED COPY parameter list: CSCD descriptors (E4h) and segment descriptors (02h).
class ParameterList {
 public:
  ParameterList& target(const LunIdentity& id, std::uint32_t block_length, std::uint8_t type = 0xE4) {
    std::uint8_t d[32] = {};
    d[0] = type;
    d[4] = 0x01;  // binary
    d[5] = 0x03;  // logical unit association, NAA
    d[7] = static_cast<std::uint8_t>(id.naa.size());
    std::memcpy(d + 8, id.naa.data(), id.naa.size());
    util::put_be24(d + 29, block_length);
    targets_.insert(targets_.end(), d, d + sizeof d);
    return *this;
  }
  ParameterList& segment(std::uint16_t source, std::uint16_t destination, std::uint16_t blocks,
                         std::uint64_t source_lba, std::uint64_t destination_lba, bool dc = false,
                         std::uint8_t type = 0x02) {
    std::uint8_t d[28] = {};
    d[0] = type;
    d[1] = dc ? 0x02 : 0x00;
    util::put_be16(d + 2, 0x18);
    util::put_be16(d + 4, source);
    util::put_be16(d + 6, destination);
    util::put_be16(d + 10, blocks);
    util::put_be64(d + 12, source_lba);
    util::put_be64(d + 20, destination_lba);
    segments_.insert(segments_.end(), d, d + sizeof d);
    return *this;
  }
  std::vector<std::uint8_t> build(std::uint8_t list_id = 1, std::uint8_t usage = kHold) const {
    std::vector<std::uint8_t> list(kFirstDescriptor + targets_.size() + segments_.size(), 0);
    list[0] = list_id;
    list[1] = static_cast<std::uint8_t>(usage << 3);
    util::put_be16(&list[2], static_cast<std::uint16_t>(targets_.size()));
    util::put_be32(&list[8], static_cast<std::uint32_t>(segments_.size()));
    std::copy(targets_.begin(), targets_.end(), list.begin() + kFirstDescriptor);
    std::copy(segments_.begin(), segments_.end(), list.begin() + kFirstDescriptor + static_cast<std::ptrdiff_t>(targets_.size()));
    return list;
  }
  std::uint16_t segment_offset(std::size_t i) const {
    return static_cast<std::uint16_t>(kFirstDescriptor + targets_.size() + 28 * i);
  }

 private:
  std::vector<std::uint8_t> targets_;
  std::vector<std::uint8_t> segments_;
};

class ExtendedCopyTest : public ::testing::Test {
 protected:
  // LUN 0: 8 MiB of 512-byte blocks; LUN 1: 1 MiB of 512-byte blocks; LUN 2: 1 MiB of 4 KiB blocks.
  void SetUp() override {
    add(0, 8u << 20, 512);
    add(1, 1u << 20, 512);
    add(2, 1u << 20, 4096);
  }
  void add(std::uint64_t lun, std::uint64_t bytes, std::uint32_t block_size) {
    volumes_[lun] = std::make_unique<MemoryVolume>(bytes, block_size);
    ids_[lun] = LunIdentity::from_name("iqn.test:xcopy/lun" + std::to_string(lun));
    map_.add(lun, std::make_shared<LogicalUnit>(*volumes_[lun], ids_[lun]));
  }

  Task run(const std::vector<std::uint8_t>& cdb, const std::vector<std::uint8_t>& out = {},
           std::uint64_t lun = 0, const std::string& port = "iqn.init,i,0x1") {
    Task t = make_task(cdb, out, lun, port);
    map_.execute(t);
    return t;
  }
  Task xcopy(const std::vector<std::uint8_t>& list, std::uint64_t lun = 0,
             const std::string& port = "iqn.init,i,0x1") {
    std::vector<std::uint8_t> cdb(16, 0);
    cdb[0] = 0x83;
    util::put_be32(&cdb[10], static_cast<std::uint32_t>(list.size()));
    return run(cdb, list, lun, port);
  }
  Task receive_copy_results(std::uint8_t service_action, std::uint8_t list_id = 0,
                            const std::string& port = "iqn.init,i,0x1") {
    std::vector<std::uint8_t> cdb(16, 0);
    cdb[0] = 0x84;
    cdb[1] = service_action;
    cdb[2] = list_id;
    util::put_be32(&cdb[10], 1024);
    return run(cdb, {}, 0, port);
  }

  // The sense-key specific field points into the parameter list (C/D=0, or SD=0 for COPY ABORTED).
  static void expect_list_pointer(const Task& t, std::uint16_t byte) {
    EXPECT_EQ(t.sense[15] & 0xC0, 0x80);
    EXPECT_EQ(util::get_be16(&t.sense[16]), byte);
  }

  std::vector<std::uint8_t>& raw(std::uint64_t lun) { return volumes_[lun]->raw(); }
  void fill(std::uint64_t lun, std::uint64_t offset, std::size_t length, std::uint8_t seed) {
    for (std::size_t i = 0; i < length; ++i) raw(lun)[offset + i] = static_cast<std::uint8_t>(seed + i * 7 + (i >> 9));
  }
  std::vector<std::uint8_t> bytes(std::uint64_t lun, std::uint64_t offset, std::size_t length) {
    return {raw(lun).begin() + static_cast<std::ptrdiff_t>(offset),
            raw(lun).begin() + static_cast<std::ptrdiff_t>(offset + length)};
  }

  std::map<std::uint64_t, std::unique_ptr<MemoryVolume>> volumes_;
  std::map<std::uint64_t, LunIdentity> ids_;
  LunMap map_;
};

// ---------------------------------------------------------------- copies

TEST_F(ExtendedCopyTest, CopiesBlocksWithinOneLun) {
  fill(0, 0, 64 * 512, 1);
  const auto expected = bytes(0, 0, 64 * 512);
  auto t = xcopy(ParameterList().target(ids_[0], 512).segment(0, 0, 64, 0, 1000).build());
  ASSERT_EQ(t.status, Status::Good);
  EXPECT_EQ(bytes(0, 1000 * 512, 64 * 512), expected);
}

TEST_F(ExtendedCopyTest, CopiesBlocksFromOneLunToAnotherOfTheTarget) {
  fill(0, 100 * 512, 16 * 512, 2);
  const auto expected = bytes(0, 100 * 512, 16 * 512);
  const auto list = ParameterList().target(ids_[0], 512).target(ids_[1], 512).segment(0, 1, 16, 100, 7).build();
  ASSERT_EQ(xcopy(list).status, Status::Good);
  EXPECT_EQ(bytes(1, 7 * 512, 16 * 512), expected);
  EXPECT_EQ(bytes(0, 100 * 512, 16 * 512), expected);  // the source stays as it was
}

TEST_F(ExtendedCopyTest, ACommandToOneLunMayCopyBetweenTwoOthers) {
  fill(1, 0, 4096, 3);
  const auto expected = bytes(1, 0, 4096);
  const auto list = ParameterList().target(ids_[1], 512).target(ids_[2], 4096).segment(0, 1, 8, 0, 3).build();
  ASSERT_EQ(xcopy(list, 0).status, Status::Good);
  EXPECT_EQ(bytes(2, 3 * 4096, 4096), expected);
}

TEST_F(ExtendedCopyTest, AnotherLunsReservationAppliesToTheCopy) {
  // Another host holds LUN 1 with Write Exclusive: a copy into it conflicts, out of it does not.
  const std::string holder = "iqn.holder,i,0x9";
  run({0x00, 0, 0, 0, 0, 0}, {}, 1, holder);  // its power-on unit attention
  std::vector<std::uint8_t> params(24, 0);
  util::put_be64(&params[8], 0xABC);
  ASSERT_EQ(run({0x5F, 0x00, 0, 0, 0, 0, 0, 0, 24, 0}, params, 1, holder).status, Status::Good);  // REGISTER
  util::put_be64(&params[0], 0xABC);
  util::put_be64(&params[8], 0);
  ASSERT_EQ(run({0x5F, 0x01, 0x01, 0, 0, 0, 0, 0, 24, 0}, params, 1, holder).status, Status::Good);  // RESERVE WE
  fill(0, 0, 4096, 6);
  const auto into_reserved = ParameterList().target(ids_[0], 512).target(ids_[1], 512).segment(0, 1, 8, 0, 0).build();
  EXPECT_EQ(xcopy(into_reserved).status, Status::ReservationConflict);
  EXPECT_NE(bytes(1, 0, 4096), bytes(0, 0, 4096));
  const auto out_of_reserved = ParameterList().target(ids_[1], 512).target(ids_[0], 512).segment(0, 1, 8, 0, 64).build();
  EXPECT_EQ(xcopy(out_of_reserved).status, Status::Good);
}

TEST_F(ExtendedCopyTest, DestinationCountCountsDestinationBlocks) {
  fill(1, 0, 2 * 4096, 4);
  const auto expected = bytes(1, 0, 2 * 4096);
  // DC=1: two 4 KiB destination blocks, i.e. sixteen 512-byte source blocks.
  const auto list = ParameterList().target(ids_[1], 512).target(ids_[2], 4096).segment(0, 1, 2, 0, 0, true).build();
  ASSERT_EQ(xcopy(list).status, Status::Good);
  EXPECT_EQ(bytes(2, 0, 2 * 4096), expected);
}

TEST_F(ExtendedCopyTest, CscdIdFfffIsTheLunTheCommandCameTo) {
  fill(1, 0, 512, 5);
  const auto expected = bytes(1, 0, 512);
  ASSERT_EQ(xcopy(ParameterList().segment(0xFFFF, 0xFFFF, 1, 0, 9).build(), 1).status, Status::Good);
  EXPECT_EQ(bytes(1, 9 * 512, 512), expected);
}

// Overlapping ranges copy as if the whole source had been read first, in either direction and
// across more than one copy buffer (1 MiB).
TEST_F(ExtendedCopyTest, OverlappingRangeToHigherLbasCopiesAsIfReadFirst) {
  fill(0, 0, 5u << 20, 6);
  const auto expected = bytes(0, 0, 3u << 20);
  const std::uint16_t blocks = (3u << 20) / 512;
  ASSERT_EQ(xcopy(ParameterList().target(ids_[0], 512).segment(0, 0, blocks, 0, 1000).build()).status, Status::Good);
  EXPECT_EQ(bytes(0, 1000 * 512, 3u << 20), expected);
}

TEST_F(ExtendedCopyTest, OverlappingRangeToLowerLbasCopiesAsIfReadFirst) {
  fill(0, 0, 5u << 20, 7);
  const auto expected = bytes(0, 1000 * 512, 3u << 20);
  const std::uint16_t blocks = (3u << 20) / 512;
  ASSERT_EQ(xcopy(ParameterList().target(ids_[0], 512).segment(0, 0, blocks, 1000, 0).build()).status, Status::Good);
  EXPECT_EQ(bytes(0, 0, 3u << 20), expected);
}

TEST_F(ExtendedCopyTest, SegmentsRunInOrder) {
  fill(1, 0, 512, 8);
  const auto expected = bytes(1, 0, 512);
  // The second segment copies what the first one wrote.
  const auto list = ParameterList().target(ids_[1], 512).segment(0, 0, 1, 0, 10).segment(0, 0, 1, 10, 20).build();
  ASSERT_EQ(xcopy(list, 1).status, Status::Good);
  EXPECT_EQ(bytes(1, 20 * 512, 512), expected);
}

TEST_F(ExtendedCopyTest, ParameterListLengthZeroCopiesNothing) {
  std::vector<std::uint8_t> cdb(16, 0);
  cdb[0] = 0x83;
  EXPECT_EQ(run(cdb).status, Status::Good);
}

TEST_F(ExtendedCopyTest, DestinationWithWriteCacheOffIsFlushed) {
  std::vector<std::uint8_t> caching(4 + 20, 0);
  caching[4] = 0x08;
  caching[5] = 0x12;  // WCE=0
  ASSERT_EQ(run({0x15, 0x10, 0, 0, static_cast<std::uint8_t>(caching.size()), 0}, caching, 1).status, Status::Good);
  const auto list = ParameterList().target(ids_[0], 512).target(ids_[1], 512).segment(0, 1, 4, 0, 0).build();
  ASSERT_EQ(xcopy(list).status, Status::Good);
  EXPECT_EQ(volumes_[1]->flush_count(), 1u);
  EXPECT_EQ(volumes_[0]->flush_count(), 0u);
}

// ---------------------------------------------------------------- copy targets

TEST_F(ExtendedCopyTest, UnknownDesignatorIsCopyTargetDeviceNotReachable) {
  const auto stranger = LunIdentity::from_name("iqn.test:other/lun0");
  auto t = xcopy(ParameterList().target(stranger, 512).segment(0, 0, 1, 0, 1).build());
  expect_sense(t, 0x0A, 0x0D, 0x02);
  expect_list_pointer(t, kFirstDescriptor);
}

TEST_F(ExtendedCopyTest, CscdIdBeyondTheListIsCopyTargetDeviceNotReachable) {
  ParameterList p;
  p.target(ids_[0], 512).segment(0, 1, 1, 0, 1);
  auto t = xcopy(p.build());
  expect_sense(t, 0x0A, 0x0D, 0x02);
  expect_list_pointer(t, p.segment_offset(0) + 6);
}

TEST_F(ExtendedCopyTest, LunNotActiveOnThisNodeIsNotReachable) {
  volumes_[1]->set_access(replication::Access::Standby);
  fill(1, 0, 512, 9);
  const auto before = bytes(1, 512, 512);
  auto t = xcopy(ParameterList().target(ids_[0], 512).target(ids_[1], 512).segment(0, 1, 1, 0, 1).build());
  expect_sense(t, 0x0A, 0x0D, 0x02);
  EXPECT_EQ(bytes(1, 512, 512), before);
}

TEST_F(ExtendedCopyTest, DiskBlockLengthOtherThanTheLunsIsInvalidField) {
  auto t = xcopy(ParameterList().target(ids_[0], 4096).segment(0, 0, 1, 0, 1).build());
  expect_sense(t, 0x05, 0x26, 0x00);
  expect_list_pointer(t, kFirstDescriptor + 29);
}

// ---------------------------------------------------------------- ranges

TEST_F(ExtendedCopyTest, DestinationBeyondCapacityAbortsBeforeCopying) {
  ParameterList p;
  p.target(ids_[1], 512).segment(0, 0, 1, 0, 1).segment(0, 0, 4, 0, 2046);
  fill(1, 0, 512, 10);
  const auto before = bytes(1, 512, 512);
  auto t = xcopy(p.build(), 1);
  expect_sense(t, 0x0A, 0x00, 0x00);
  expect_list_pointer(t, p.segment_offset(1) + 20);
  EXPECT_EQ(bytes(1, 512, 512), before);  // the first, valid, segment did not run either
}

TEST_F(ExtendedCopyTest, SourceBeyondCapacityAborts) {
  ParameterList p;
  p.target(ids_[1], 512).segment(0, 0, 2, 2047, 0);
  auto t = xcopy(p.build(), 1);
  expect_sense(t, 0x0A, 0x00, 0x00);
  expect_list_pointer(t, p.segment_offset(0) + 12);
}

TEST_F(ExtendedCopyTest, BytesThatAreNotWholeDestinationBlocksAreInvalidField) {
  ParameterList p;
  p.target(ids_[1], 512).target(ids_[2], 4096).segment(0, 1, 3, 0, 0);  // 1536 bytes into 4 KiB blocks
  auto t = xcopy(p.build());
  expect_sense(t, 0x05, 0x26, 0x00);
  expect_list_pointer(t, p.segment_offset(0) + 10);
}

TEST_F(ExtendedCopyTest, SegmentLongerThanMaximumSegmentLengthIsInvalidField) {
  ParameterList p;
  p.target(ids_[0], 512).segment(0, 0, kMaxSegmentBytes / 512 + 1, 0, 0x8000);
  auto t = xcopy(p.build());
  expect_sense(t, 0x05, 0x26, 0x00);
  expect_list_pointer(t, p.segment_offset(0) + 10);
}

// ---------------------------------------------------------------- parameter list

TEST_F(ExtendedCopyTest, UnsupportedCscdDescriptorTypeIs2607) {
  auto t = xcopy(ParameterList().target(ids_[0], 512, 0xE0).segment(0, 0, 1, 0, 1).build());
  expect_sense(t, 0x05, 0x26, 0x07);
  expect_list_pointer(t, kFirstDescriptor);
}

TEST_F(ExtendedCopyTest, UnsupportedSegmentDescriptorTypeIs2609) {
  ParameterList p;
  p.target(ids_[0], 512).segment(0, 0, 1, 0, 1, false, 0x03);
  auto t = xcopy(p.build());
  expect_sense(t, 0x05, 0x26, 0x09);
  expect_list_pointer(t, p.segment_offset(0));
}

TEST_F(ExtendedCopyTest, TooManyCscdDescriptorsIs2606) {
  ParameterList p;
  for (int i = 0; i <= kMaxCscdDescriptors; ++i) p.target(ids_[0], 512);
  auto t = xcopy(p.segment(0, 0, 1, 0, 1).build());
  expect_sense(t, 0x05, 0x26, 0x06);
}

TEST_F(ExtendedCopyTest, TooManySegmentDescriptorsIs2608) {
  ParameterList p;
  p.target(ids_[0], 512);
  for (int i = 0; i <= kMaxSegmentDescriptors; ++i) p.segment(0, 0, 1, 0, 1);
  expect_sense(xcopy(p.build()), 0x05, 0x26, 0x08);
}

TEST_F(ExtendedCopyTest, DescriptorListsLongerThanTheMaximumAreParameterListLengthError) {
  ParameterList p;
  for (int i = 0; i <= kMaxCscdDescriptors; ++i) p.target(ids_[0], 512);
  for (int i = 0; i <= kMaxSegmentDescriptors; ++i) p.segment(0, 0, 1, 0, 1);
  expect_sense(xcopy(p.build()), 0x05, 0x1A, 0x00);
}

TEST_F(ExtendedCopyTest, ListShorterThanItsHeaderSaysIsParameterListLengthError) {
  auto list = ParameterList().target(ids_[0], 512).segment(0, 0, 1, 0, 1).build();
  list.pop_back();
  expect_sense(xcopy(list), 0x05, 0x1A, 0x00);
  expect_sense(xcopy(std::vector<std::uint8_t>(15, 0)), 0x05, 0x1A, 0x00);
}

TEST_F(ExtendedCopyTest, InlineDataIsInvalidField) {
  auto list = ParameterList().target(ids_[0], 512).segment(0, 0, 1, 0, 1).build();
  util::put_be32(&list[12], 4);
  list.resize(list.size() + 4, 0);
  auto t = xcopy(list);
  expect_sense(t, 0x05, 0x26, 0x00);
  expect_list_pointer(t, 12);
}

TEST_F(ExtendedCopyTest, ReservedListIdUsageIsInvalidField) {
  auto t = xcopy(ParameterList().segment(0xFFFF, 0xFFFF, 1, 0, 1).build(1, 1));
  expect_sense(t, 0x05, 0x26, 0x00);
  EXPECT_EQ(t.sense[15], 0x80 | 0x08 | 4);
  EXPECT_EQ(util::get_be16(&t.sense[16]), 1);
}

TEST_F(ExtendedCopyTest, NoListWithAListIdentifierIsInvalidField) {
  auto t = xcopy(ParameterList().segment(0xFFFF, 0xFFFF, 1, 0, 1).build(5, kNoList));
  expect_sense(t, 0x05, 0x26, 0x00);
  expect_list_pointer(t, 0);
}

TEST_F(ExtendedCopyTest, SegmentDescriptorLengthOtherThan18hIsInvalidField) {
  ParameterList p;
  auto list = p.segment(0xFFFF, 0xFFFF, 1, 0, 1).build();
  list[p.segment_offset(0) + 3] = 0x14;
  auto t = xcopy(list);
  expect_sense(t, 0x05, 0x26, 0x00);
  expect_list_pointer(t, p.segment_offset(0) + 2);
}

TEST_F(ExtendedCopyTest, ParsesTheFieldsOfBothDescriptorTypes) {
  ParameterList p;
  const auto list = p.target(ids_[2], 4096).segment(0, 0xFFFF, 0x1234, 0x0102030405060708ull, 42, true).build(9, 2);
  ExtendedCopyParameters params;
  ASSERT_TRUE(parse_extended_copy_parameters(list, params).ok());
  EXPECT_EQ(params.list_id, 9);
  EXPECT_EQ(params.usage, ListIdUsage::Discard);
  ASSERT_EQ(params.targets.size(), 1u);
  EXPECT_EQ(params.targets[0].offset, kFirstDescriptor);
  EXPECT_EQ(params.targets[0].code_set, 1);
  EXPECT_EQ(params.targets[0].designator_type, 3);
  EXPECT_EQ(params.targets[0].association, 0);
  EXPECT_EQ(params.targets[0].designator, std::vector<std::uint8_t>(ids_[2].naa.begin(), ids_[2].naa.end()));
  EXPECT_EQ(params.targets[0].disk_block_length, 4096u);
  ASSERT_EQ(params.segments.size(), 1u);
  const BlockCopySegment& s = params.segments[0];
  EXPECT_EQ(s.offset, p.segment_offset(0));
  EXPECT_TRUE(s.destination_count);
  EXPECT_EQ(s.source_id, 0);
  EXPECT_EQ(s.destination_id, 0xFFFF);
  EXPECT_EQ(s.blocks, 0x1234);
  EXPECT_EQ(s.source_lba, 0x0102030405060708ull);
  EXPECT_EQ(s.destination_lba, 42u);
}

// ---------------------------------------------------------------- RECEIVE COPY RESULTS

TEST_F(ExtendedCopyTest, OperatingParametersReportTheLimits) {
  auto t = receive_copy_results(0x03);
  ASSERT_EQ(t.status, Status::Good);
  auto d = data_in(t);
  ASSERT_EQ(d.size(), 46u);
  EXPECT_EQ(util::get_be32(&d[0]), 42u);                          // AVAILABLE DATA
  EXPECT_EQ(d[4] & 0x01, 0x01);                                    // SNLID
  EXPECT_EQ(util::get_be16(&d[8]), kMaxCscdDescriptors);
  EXPECT_EQ(util::get_be16(&d[10]), kMaxSegmentDescriptors);
  EXPECT_EQ(util::get_be32(&d[12]), kMaxDescriptorListLength);
  EXPECT_EQ(util::get_be32(&d[16]), kMaxSegmentBytes);
  EXPECT_EQ(util::get_be32(&d[20]), 0u);                           // no inline data
  EXPECT_EQ(util::get_be32(&d[24]), 0u);                           // no held data
  EXPECT_EQ(util::get_be32(&d[28]), 0u);                           // no stream devices
  EXPECT_EQ(util::get_be16(&d[34]), kMaxConcurrentCopies);
  EXPECT_EQ(d[36], kMaxConcurrentCopies);
  EXPECT_EQ(d[37], 9);                                             // 512-byte blocks
  EXPECT_EQ(d[43], 2);
  EXPECT_EQ(d[44], 0x02);
  EXPECT_EQ(d[45], 0xE4);
}

TEST_F(ExtendedCopyTest, CopyStatusOfAnUnknownListIdentifierIsInvalidField) {
  auto t = receive_copy_results(0x00, 7);
  expect_sense(t, 0x05, 0x24, 0x00);
  EXPECT_EQ(t.sense[15], 0xC0);
  EXPECT_EQ(util::get_be16(&t.sense[16]), 2);
}

TEST_F(ExtendedCopyTest, CopyStatusReportsAFinishedCopyOnceToItsNexus) {
  ASSERT_EQ(xcopy(ParameterList().segment(0xFFFF, 0xFFFF, 8, 0, 100).segment(0xFFFF, 0xFFFF, 2, 0, 200).build(7))
                .status,
            Status::Good);
  expect_sense(receive_copy_results(0x00, 7, "iqn.other,i,0x2"), 0x05, 0x24, 0x00);
  auto t = receive_copy_results(0x00, 7);
  ASSERT_EQ(t.status, Status::Good);
  auto d = data_in(t);
  ASSERT_EQ(d.size(), 12u);
  EXPECT_EQ(util::get_be32(&d[0]), 8u);
  EXPECT_EQ(d[4], 0x01);                       // completed without errors, HDD=0
  EXPECT_EQ(util::get_be16(&d[5]), 2);         // segments processed
  EXPECT_EQ(d[7], 0x00);                       // bytes
  EXPECT_EQ(util::get_be32(&d[8]), 10u * 512);
  expect_sense(receive_copy_results(0x00, 7), 0x05, 0x24, 0x00);
}

TEST_F(ExtendedCopyTest, HeldCopyStatusEndsWithItsNexusAndWithAReset) {
  const auto copy = [&] {
    return xcopy(ParameterList().segment(0xFFFF, 0xFFFF, 1, 0, 1).build(7)).status;
  };
  ASSERT_EQ(copy(), Status::Good);
  map_.nexus_lost("iqn.other,i,0x2");  // someone else's nexus: nothing of ours goes
  map_.nexus_lost("iqn.init,i,0x1");
  expect_sense(receive_copy_results(0x00, 7), 0x05, 0x24, 0x00);
  ASSERT_EQ(copy(), Status::Good);
  map_.lun_reset(0, "iqn.other,i,0x2");
  receive_copy_results(0x00, 7);  // the reset's unit attention
  expect_sense(receive_copy_results(0x00, 7), 0x05, 0x24, 0x00);
}

TEST_F(ExtendedCopyTest, CopyWithoutListIdentifierLeavesNoStatus) {
  ASSERT_EQ(xcopy(ParameterList().segment(0xFFFF, 0xFFFF, 1, 0, 1).build(0, kNoList)).status, Status::Good);
  expect_sense(receive_copy_results(0x00, 0), 0x05, 0x24, 0x00);
}

TEST_F(ExtendedCopyTest, RejectedParameterListLeavesNoStatus) {
  ASSERT_EQ(xcopy(ParameterList().segment(0xFFFF, 0xFFFF, 1, 0, 1u << 30).build(4)).status, Status::CheckCondition);
  expect_sense(receive_copy_results(0x00, 4), 0x05, 0x24, 0x00);
}

TEST_F(ExtendedCopyTest, IoErrorAbortsTheCopyAndCopyStatusSaysSo) {
  volumes_[0]->fail_writes_with(EIO);
  ParameterList p;
  auto t = xcopy(p.segment(0xFFFF, 0xFFFF, 1, 0, 1).build(3));
  expect_sense(t, 0x0A, 0x0C, 0x00);  // COPY ABORTED, WRITE ERROR
  expect_list_pointer(t, p.segment_offset(0));
  volumes_[0]->fail_writes_with(0);
  auto status = receive_copy_results(0x00, 3);
  ASSERT_EQ(status.status, Status::Good);
  auto d = data_in(status);
  EXPECT_EQ(d[4], 0x02);  // completed with errors
  EXPECT_EQ(util::get_be16(&d[5]), 0);
}

TEST_F(ExtendedCopyTest, UnsupportedReceiveCopyResultsServiceActionIsInvalidField) {
  auto t = receive_copy_results(0x01);
  expect_sense(t, 0x05, 0x24, 0x00);
  EXPECT_EQ(util::get_be16(&t.sense[16]), 1);
}

// ---------------------------------------------------------------- INQUIRY, supported opcodes

TEST_F(ExtendedCopyTest, StandardInquirySetsThe3pcBit) {
  auto d = data_in(run({0x12, 0, 0, 0, 96, 0}));
  ASSERT_GE(d.size(), 6u);
  EXPECT_EQ(d[5] & 0x08, 0x08);
}

// Descriptor type -> body, from a Third-party Copy VPD page.
std::map<std::uint16_t, std::vector<std::uint8_t>> third_party_copy_descriptors(const std::vector<std::uint8_t>& page) {
  std::map<std::uint16_t, std::vector<std::uint8_t>> out;
  for (std::size_t at = 4; at + 4 <= page.size();) {
    const std::uint16_t length = util::get_be16(&page[at + 2]);
    EXPECT_EQ(length % 4, 0u);
    out[util::get_be16(&page[at])].assign(page.begin() + static_cast<std::ptrdiff_t>(at + 4),
                                          page.begin() + static_cast<std::ptrdiff_t>(at + 4 + length));
    at += 4 + length;
  }
  return out;
}

TEST_F(ExtendedCopyTest, ThirdPartyCopyVpdPageDescribesTheCopyManager) {
  auto page = data_in(run({0x12, 1, 0x8F, 0x04, 0x00, 0}, {}, 2));
  ASSERT_GE(page.size(), 4u);
  EXPECT_EQ(page[1], 0x8F);
  ASSERT_EQ(page.size(), 4u + util::get_be16(&page[2]));
  auto descriptors = third_party_copy_descriptors(page);
  ASSERT_EQ(descriptors.size(), 5u);

  // Supported commands: 83h with service action 00h, 84h with 00h and 03h.
  const auto& commands = descriptors[0x0001];
  EXPECT_EQ(commands[0], 7);
  EXPECT_EQ(std::vector<std::uint8_t>(commands.begin() + 1, commands.begin() + 8),
            (std::vector<std::uint8_t>{0x83, 1, 0x00, 0x84, 2, 0x00, 0x03}));
  // Parameter data.
  const auto& parameters = descriptors[0x0004];
  EXPECT_EQ(util::get_be16(&parameters[4]), kMaxCscdDescriptors);
  EXPECT_EQ(util::get_be16(&parameters[6]), kMaxSegmentDescriptors);
  EXPECT_EQ(util::get_be32(&parameters[8]), kMaxDescriptorListLength);
  EXPECT_EQ(util::get_be32(&parameters[12]), 0u);
  // Supported descriptors and CSCD IDs.
  EXPECT_EQ(std::vector<std::uint8_t>(descriptors[0x0008].begin(), descriptors[0x0008].begin() + 3),
            (std::vector<std::uint8_t>{2, 0x02, 0xE4}));
  EXPECT_EQ(std::vector<std::uint8_t>(descriptors[0x000C].begin(), descriptors[0x000C].begin() + 4),
            (std::vector<std::uint8_t>{0x00, 0x02, 0xFF, 0xFF}));
  // General copy operations (LUN 2 has 4 KiB blocks).
  const auto& general = descriptors[0x8001];
  EXPECT_EQ(util::get_be32(&general[0]), kMaxConcurrentCopies);
  EXPECT_EQ(util::get_be32(&general[4]), kMaxConcurrentCopies);
  EXPECT_EQ(util::get_be32(&general[8]), kMaxSegmentBytes);
  EXPECT_EQ(general[12], 12);
}

TEST_F(ExtendedCopyTest, ReportSupportedOperationCodesListsTheCopyCommands) {
  for (const auto& [opcode, action] : {std::pair<std::uint8_t, std::uint8_t>{0x83, 0x00}, {0x84, 0x00}, {0x84, 0x03}}) {
    std::vector<std::uint8_t> cdb = {0xA3, 0x0C, 0x02, opcode, 0x00, action, 0, 0, 0x01, 0x00, 0, 0};
    auto d = data_in(run(cdb));
    ASSERT_GE(d.size(), 4u + 16u) << int(opcode) << "/" << int(action);
    EXPECT_EQ(d[1] & 0x07, 0x03);
    EXPECT_EQ(util::get_be16(&d[2]), 16);
    EXPECT_EQ(d[4], opcode);
    EXPECT_EQ(d[5], action);
  }
}

}  // namespace
}  // namespace freevsa::scsi
