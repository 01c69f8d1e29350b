// For the SCSI tests: a Task as the transport hands it to LunMap::execute, and checks of the
// sense data it comes back with.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "scsi/task.h"

namespace freevsa::scsi {

// A command for `lun` from the initiator port `port`: the CDB (at least 6 bytes are sent) and
// its Data-Out.
inline Task make_task(std::span<const std::uint8_t> cdb, const std::vector<std::uint8_t>& data_out,
                      std::uint64_t lun, const std::string& port) {
  Task t;
  t.lun = lun;
  std::copy(cdb.begin(), cdb.end(), t.cdb.begin());
  t.cdb_length = static_cast<std::uint8_t>(std::max<std::size_t>(cdb.size(), 6));
  t.initiator_port = port;
  t.data_out = util::AlignedBuffer(data_out.size());
  if (!data_out.empty()) std::memcpy(t.data_out.data(), data_out.data(), data_out.size());
  t.data_out_length = static_cast<std::uint32_t>(data_out.size());
  t.expected_data_in_length = 1u << 24;
  return t;
}

inline std::vector<std::uint8_t> data_in(const Task& t) {
  return {t.data_in.data(), t.data_in.data() + t.data_in_length};
}

// CHECK CONDITION with fixed-format sense data of this key and ASC/ASCQ, and no data.
inline void expect_sense(const Task& t, std::uint8_t key, std::uint8_t asc, std::uint8_t ascq) {
  ASSERT_EQ(t.status, Status::CheckCondition);
  ASSERT_EQ(t.sense.size(), 18u);
  EXPECT_EQ(t.sense[0] & 0x7F, 0x70);
  EXPECT_EQ(t.sense[2] & 0x0F, key);
  EXPECT_EQ(t.sense[12], asc);
  EXPECT_EQ(t.sense[13], ascq);
  EXPECT_EQ(t.data_in_length, 0u);
}

}  // namespace freevsa::scsi
