// The bytes a PERSISTENT RESERVE OUT travels in from a standby port to the primary, and back.
#include <gtest/gtest.h>

#include "scsi/reservation_forwarding.h"

namespace freevsa::scsi {
namespace {

TEST(ReservationForwarding, CommandRoundTrips) {
  ForwardedCommand c;
  c.nexus = Nexus{"iqn.2026-01.org.example:host,i,0x23d000000001", 2};
  c.cdb = {0x5F, 0x06, 0x00, 0, 0, 0, 0, 0, 24, 0};
  c.parameters.assign(24, 0x11);
  const auto bytes = encode_forwarded_command(c);
  const auto decoded = decode_forwarded_command(bytes);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, c);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(decode_forwarded_command({bytes.data(), cut}).has_value()) << cut;
  }
  auto longer = bytes;
  longer.push_back(0);
  EXPECT_FALSE(decode_forwarded_command(longer).has_value());
}

TEST(ReservationForwarding, EveryKindOfResultRoundTrips) {
  Sense with_field = Sense::invalid_field_in_parameter_list(20, 3);
  with_field.information = 77;
  for (const Result& r : {good(), Result::reservation_conflict(), Result(Sense::parameter_list_length_error()),
                          Result(with_field)}) {
    const auto decoded = decode_forwarded_result(encode_forwarded_result(r));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->ok(), r.ok());
    EXPECT_EQ(decoded->is_reservation_conflict(), r.is_reservation_conflict());
    if (!r.ok() && !r.is_reservation_conflict()) {
      EXPECT_EQ(decoded->sense(), r.sense());
    }
  }
  EXPECT_FALSE(decode_forwarded_result({}).has_value());
  const std::uint8_t unknown[] = {9};
  EXPECT_FALSE(decode_forwarded_result(unknown).has_value());
}

}  // namespace
}  // namespace freevsa::scsi
