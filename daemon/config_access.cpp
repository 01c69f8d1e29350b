// The access keys of a target (single node) or volume (cluster): CHAP, mutual CHAP and the
// initiator allow-list, with the same rules in both forms; and the warning for a target anyone
// on the network may log in to.
#include <fmt/format.h>

#include <map>
#include <string>

#include "daemon/config_reader.h"

namespace freevsa::daemon::config_detail {
namespace {

// RFC 7143 section 12.1.3 allows CHAP secrets of fewer than 96 bits only under IPsec, which we
// do not do. Shorter ones are refused rather than warned about: a warning scrolls by while the
// weak secret stays in production.
constexpr std::size_t kMinChapSecretBytes = 12;
constexpr std::size_t kMaxChapBytes = 255;

// The parsed pair and where its secret was written, for the "mutual secret must differ" error.
struct ChapField {
  ChapConfig chap;
  Field secret;
};

ChapField read_chap(const Reader& r, const Field& field) {
  Reader::MapView map(r, field, {"user", "secret"});
  ChapField result;
  result.chap.user = r.text(map.require("user"), kMaxChapBytes);
  result.secret = map.require("secret");
  // The secret itself never appears in a message: logs and terminals outlive the config file's mode.
  if (!result.secret.node.IsScalar()) {
    r.fail(result.secret, fmt::format("expected a string, got {}", describe(result.secret.node)));
  }
  result.chap.secret = result.secret.node.Scalar();
  if (result.chap.secret.size() < kMinChapSecretBytes) {
    r.fail(result.secret, fmt::format("must be at least {} bytes long (RFC 7143 section 12.1.3), got {}",
                                      kMinChapSecretBytes, result.chap.secret.size()));
  }
  if (result.chap.secret.size() > kMaxChapBytes) {
    r.fail(result.secret,
           fmt::format("is {} bytes long, at most {} allowed", result.chap.secret.size(), kMaxChapBytes));
  }
  return result;
}

std::vector<std::string> read_initiators(const Reader& r, const Field& field) {
  std::vector<std::string> names;
  std::map<std::string, int> seen;
  for (const Field& item : r.sequence(field)) {
    std::string name = r.iscsi_name(item);
    if (auto [it, inserted] = seen.emplace(name, item.line); !inserted) {
      r.fail(item, fmt::format("'{}' is listed twice (first at line {})", name, it->second));
    }
    names.push_back(std::move(name));
  }
  return names;
}

}  // namespace

void read_chap_pair(const Reader& r, const Reader::MapView& map, std::string_view chap_key,
                    std::string_view mutual_key, std::optional<ChapConfig>& chap, std::optional<ChapConfig>& mutual) {
  std::optional<ChapField> incoming;
  if (auto field = map.get(chap_key)) incoming = read_chap(r, *field);
  auto mutual_field = map.get(mutual_key);
  if (!mutual_field) {
    if (incoming) {
      chap = incoming->chap;
      mutual.reset();
    }
    return;
  }
  if (!incoming) {
    r.fail(*mutual_field, fmt::format("needs '{}' as well: the target only proves itself to initiators that "
                                      "authenticated first",
                                      chap_key));
  }
  ChapField outgoing = read_chap(r, *mutual_field);
  if (outgoing.chap.secret == incoming->chap.secret) {
    r.fail(outgoing.secret, fmt::format("must differ from {}.secret: a shared secret lets anyone reflect the "
                                        "target's own challenge back at it",
                                        chap_key));
  }
  chap = incoming->chap;
  mutual = outgoing.chap;
}

TargetAccess read_access(const Reader& r, const Reader::MapView& map, const TargetAccess& defaults) {
  TargetAccess access = defaults;
  read_chap_pair(r, map, "chap", "mutual_chap", access.chap, access.mutual_chap);
  if (auto allowed = map.get("allowed_initiators")) access.allowed_initiators = read_initiators(r, *allowed);
  return access;
}

void warn_if_exposed(const Reader& r, const Field& where, std::string_view what, const TargetAccess& access,
                     const std::vector<ServedPortal>& portals, std::string_view remedy) {
  if (!access.open()) return;
  std::string reachable;
  for (const ServedPortal& portal : portals) {
    if (is_loopback(portal.endpoint.address)) continue;
    if (!reachable.empty()) reachable += ", ";
    reachable += endpoint_text(portal.endpoint);
    if (!portal.owner.empty()) reachable += fmt::format(" ({})", portal.owner);
  }
  if (reachable.empty()) return;
  r.warn(where, fmt::format("{} is open to every initiator that reaches {}: without CHAP or an initiator list it is "
                            "readable and writable from the network; {}",
                            what, reachable, remedy));
}

}  // namespace freevsa::daemon::config_detail
