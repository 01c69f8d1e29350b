// libFuzzer target: the persistent reservation record as read back from the replication
// metadata or received from the peer. Decoding arbitrary bytes must never crash, and a record
// that decodes must encode to bytes that decode to the same state.
#include <cstdint>
#include <cstdlib>

#include "scsi/persistent_reservations.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  freevsa::scsi::PersistentReservations state;
  if (!state.decode({data, size})) return 0;
  freevsa::scsi::PersistentReservations again;
  if (!again.decode(state.encode()) || !(again == state)) std::abort();
  return 0;
}
