#include "scsi/reservation_forwarding.h"

#include <algorithm>

#include "util/endian.h"

namespace freevsa::scsi {
namespace {

constexpr std::uint8_t kCommandVersion = 1;
constexpr std::size_t kMaxInitiatorLength = 255;  // an iSCSI name (223) with ",i,0x<isid>"
constexpr std::size_t kMaxParameters = 1024;
enum ResultCode : std::uint8_t { kGood = 0, kConflict = 1, kCheckCondition = 2 };
constexpr std::uint8_t kHasField = 1, kFieldInCdb = 2, kHasBit = 4, kHasInformation = 8;

struct Cursor {
  std::span<const std::uint8_t> bytes;
  std::size_t at = 0;
  const std::uint8_t* take(std::size_t n) {
    if (bytes.size() - at < n) return nullptr;
    const std::uint8_t* p = bytes.data() + at;
    at += n;
    return p;
  }
  bool done() const { return at == bytes.size(); }
};

}  // namespace

// version (1), target port (2), initiator length (1), initiator, CDB (10), parameter length
// (2), parameters.
std::vector<std::uint8_t> encode_forwarded_command(const ForwardedCommand& c) {
  const std::size_t name = std::min(c.nexus.initiator.size(), kMaxInitiatorLength);
  const std::size_t parameters = std::min(c.parameters.size(), kMaxParameters);
  std::vector<std::uint8_t> out(4 + name + c.cdb.size() + 2 + parameters);
  out[0] = kCommandVersion;
  util::put_be16(&out[1], c.nexus.target_port);
  out[3] = static_cast<std::uint8_t>(name);
  std::copy_n(c.nexus.initiator.begin(), name, out.begin() + 4);
  std::copy(c.cdb.begin(), c.cdb.end(), out.begin() + 4 + static_cast<std::ptrdiff_t>(name));
  const std::size_t at = 4 + name + c.cdb.size();
  util::put_be16(&out[at], static_cast<std::uint16_t>(parameters));
  std::copy_n(c.parameters.begin(), parameters, out.begin() + static_cast<std::ptrdiff_t>(at + 2));
  return out;
}

std::optional<ForwardedCommand> decode_forwarded_command(std::span<const std::uint8_t> bytes) {
  Cursor in{bytes};
  ForwardedCommand c;
  const std::uint8_t* p = in.take(4);
  if (p == nullptr || p[0] != kCommandVersion) return std::nullopt;
  c.nexus.target_port = util::get_be16(p + 1);
  const std::uint8_t name = p[3];
  if ((p = in.take(name)) == nullptr) return std::nullopt;
  c.nexus.initiator.assign(reinterpret_cast<const char*>(p), name);
  if ((p = in.take(c.cdb.size())) == nullptr) return std::nullopt;
  std::copy_n(p, c.cdb.size(), c.cdb.begin());
  if ((p = in.take(2)) == nullptr) return std::nullopt;
  const std::uint16_t parameters = util::get_be16(p);
  if (parameters > kMaxParameters || (p = in.take(parameters)) == nullptr || !in.done()) return std::nullopt;
  c.parameters.assign(p, p + parameters);
  return c;
}

// code (1); with CHECK CONDITION: key, ASC, ASCQ (3), flags (1), field byte (2), field bit (1),
// information (4).
std::vector<std::uint8_t> encode_forwarded_result(const Result& result) {
  if (result.ok()) return {kGood};
  if (result.is_reservation_conflict()) return {kConflict};
  const Sense& s = result.sense();
  std::vector<std::uint8_t> out(12, 0);
  out[0] = kCheckCondition;
  out[1] = s.key;
  out[2] = s.asc;
  out[3] = s.ascq;
  if (s.field) {
    out[4] |= kHasField | (s.field->in_cdb ? kFieldInCdb : 0) | (s.field->bit ? kHasBit : 0);
    util::put_be16(&out[5], s.field->byte);
    out[7] = s.field->bit.value_or(0);
  }
  if (s.information) {
    out[4] |= kHasInformation;
    util::put_be32(&out[8], *s.information);
  }
  return out;
}

std::optional<Result> decode_forwarded_result(std::span<const std::uint8_t> bytes) {
  if (bytes.size() == 1 && bytes[0] == kGood) return good();
  if (bytes.size() == 1 && bytes[0] == kConflict) return Result::reservation_conflict();
  if (bytes.size() != 12 || bytes[0] != kCheckCondition || bytes[1] > 0xF) return std::nullopt;
  const std::uint8_t flags = bytes[4];
  if ((flags & ~(kHasField | kFieldInCdb | kHasBit | kHasInformation)) != 0 || bytes[7] > 7) return std::nullopt;
  Sense s = Sense::make(bytes[1], bytes[2], bytes[3]);
  if (flags & kHasField) {
    s.field = FieldPointer{(flags & kFieldInCdb) != 0, util::get_be16(&bytes[5]), std::nullopt};
    if (flags & kHasBit) s.field->bit = bytes[7];
  }
  if (flags & kHasInformation) s.information = util::get_be32(&bytes[8]);
  return Result(s);
}

}  // namespace freevsa::scsi
