// libFuzzer target: what the persistent reservations receive as bytes from disk or the peer -
// the record (read back from the replication metadata or sent by the primary) and the
// forwarded PERSISTENT RESERVE OUT and its result. Decoding arbitrary bytes must never crash,
// and whatever decodes must encode to bytes that decode to the same value.
// Input layout: [0] selects the decoder (0 record, 1 forwarded command, 2 forwarded result).
#include <cstdint>
#include <cstdlib>

#include "scsi/persistent_reservations.h"
#include "scsi/reservation_forwarding.h"

namespace {
using namespace freevsa::scsi;

void record(std::span<const std::uint8_t> bytes) {
  PersistentReservations state;
  if (!state.decode(bytes)) return;
  PersistentReservations again;
  if (!again.decode(state.encode()) || !(again == state)) std::abort();
}

void command(std::span<const std::uint8_t> bytes) {
  const auto decoded = decode_forwarded_command(bytes);
  if (!decoded) return;
  const auto again = decode_forwarded_command(encode_forwarded_command(*decoded));
  if (!again || !(*again == *decoded)) std::abort();
}

void result(std::span<const std::uint8_t> bytes) {
  const auto decoded = decode_forwarded_result(bytes);
  if (!decoded) return;
  const auto again = decode_forwarded_result(encode_forwarded_result(*decoded));
  if (!again || again->ok() != decoded->ok() || again->is_reservation_conflict() != decoded->is_reservation_conflict())
    std::abort();
  if (!decoded->ok() && !decoded->is_reservation_conflict() && !(again->sense() == decoded->sense())) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::span<const std::uint8_t> bytes(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: record(bytes); break;
    case 1: command(bytes); break;
    default: result(bytes); break;
  }
  return 0;
}
