// Asymmetric logical unit access (SPC-4 5.15), implicit only: each node that exports a volume
// is a target port group with one port; the primary's group is active/optimized, the others
// are standby (transitioning while a role change runs, unavailable while their replica could
// not take over). ESXi's VMW_SATP_ALUA and Linux's
// dm-multipath ALUA handler read the states with REPORT TARGET PORT GROUPS and move I/O to the
// active group by themselves, with no virtual IP.
#include <vector>

#include "scsi/cdb.h"
#include "scsi/handlers.h"
#include "util/endian.h"

namespace freevsa::scsi {

std::uint8_t asymmetric_access_state(replication::Access access) {
  switch (access) {
    case replication::Access::Active: return 0x0;         // active/optimized
    case replication::Access::Standby: return 0x2;        // standby
    case replication::Access::Transitioning: return 0xF;  // transitioning
    case replication::Access::Unavailable: return 0x3;    // unavailable
  }
  return 0x2;
}

Sense access_state_sense(replication::Access access) {
  switch (access) {
    case replication::Access::Active: break;
    case replication::Access::Standby: return Sense::standby_port();
    case replication::Access::Transitioning: return Sense::access_state_transition();
    case replication::Access::Unavailable: return Sense::unavailable_port();
  }
  return Sense::standby_port();
}

// REPORT TARGET PORT GROUPS (MAINTENANCE IN, service action 0Ah): length-only (format 000b) or
// extended header (001b) parameter data, one descriptor per group with its single port.
Result handle_report_target_port_groups(CommandContext& ctx) {
  const std::uint8_t* cdb = ctx.task.cdb.data();
  const std::uint8_t format = cdb[1] >> 5;
  if (format > 1) return Sense::invalid_field_in_cdb(1, 7);
  const std::uint32_t alloc = util::get_be32(cdb + 6);
  const std::vector<replication::PortGroup> groups = ctx.unit->volume().port_groups();

  std::vector<std::uint8_t> d(format == 1 ? 8 : 4, 0);
  if (format == 1) {
    d[4] = 0x10;  // FORMAT TYPE 001b
    d[5] = 0;     // IMPLICIT TRANSITION TIME: not specified
  }
  for (const replication::PortGroup& g : groups) {
    const std::size_t at = d.size();
    d.resize(at + 12, 0);
    // PREF: the active group (the primary's) is the preferred path.
    d[at] = static_cast<std::uint8_t>((g.access == replication::Access::Active ? 0x80 : 0x00) |
                                      asymmetric_access_state(g.access));
    d[at + 1] = 0x8D;  // supported states: T_SUP, U_SUP, S_SUP, AO_SUP
    util::put_be16(&d[at + 2], g.id);
    d[at + 5] = 0x02;  // STATUS CODE: altered by implicit behaviour
    d[at + 7] = 1;     // TARGET PORT COUNT
    util::put_be16(&d[at + 10], g.id);  // RELATIVE TARGET PORT IDENTIFIER
  }
  util::put_be32(d.data(), static_cast<std::uint32_t>(d.size() - 4));  // RETURN DATA LENGTH
  return send_data_in(ctx.task, d, alloc);
}

}  // namespace freevsa::scsi
