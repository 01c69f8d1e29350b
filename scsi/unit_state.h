// Mutable per-LUN state shared by all I_T nexuses: pending unit attentions per initiator port
// and the mode page settings. Internal to scsi/.
//
// A port's unit attentions live from its nexus_created (or first command) to its nexus_lost:
// a new nexus starts with 29/00 alone, so nothing pending for an ended one would ever be
// reported. Fresh ISIDs therefore cannot grow the state beyond the nexuses that exist.
// (Persistent reservation registrations are kept by ReservationTable and outlive the nexus.)
//
// Threading: every method may be called from any worker thread; one mutex guards the state and
// is never held across Volume I/O.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "scsi/copy_status_table.h"
#include "scsi/sense.h"

namespace freevsa::scsi {

// The changeable mode parameters (everything else in the mode pages is fixed).
struct ModeSettings {
  bool write_cache_enabled = true;  // caching page WCE; default: the volume has a volatile cache
  bool operator==(const ModeSettings&) const = default;
};

class LogicalUnitState {
 public:
  // A pending unit attention for the port, or nullopt. consume=false only reports it. Every call
  // also registers the port, so later resets reach it.
  std::optional<Sense> unit_attention(const std::string& port, bool consume);
  // New I_T nexus: its pending unit attentions are replaced by 29/00 POWER ON, RESET, OR BUS
  // DEVICE RESET OCCURRED (the one libiscsi's login loop and every OS initiator expect).
  void nexus_created(const std::string& port);
  // Raises asc/ascq for every known port except `except`. A reset-class UA (29h) replaces any
  // other pending 29h UA of that port; others queue behind it (duplicates dropped).
  void raise_except(const std::string& except, std::uint8_t asc, std::uint8_t ascq);
  // Raises asc/ascq for one port, if it has a nexus (a registrant that is not logged in gets
  // nothing: its next nexus begins with 29/00).
  void raise_for(const std::string& port, std::uint8_t asc, std::uint8_t ascq);
  // The I_T nexus ended: its unit attentions go with it.
  void nexus_lost(const std::string& port);
  // Logical unit reset: mode parameters return to their defaults (nothing is saved), and
  // 29h/ascq goes to every port, the requesting one included.
  void reset(const std::string& requesting_port, std::uint8_t ascq);

  ModeSettings mode() const;
  bool write_cache_enabled() const { return wce_.load(std::memory_order_relaxed); }
  // Applies new settings; if they differ, every other port gets 2A/01 MODE PARAMETERS CHANGED.
  void set_mode(const ModeSettings& settings, const std::string& port);

  std::size_t known_ports() const;

  // ALUA: `states` sums up every port group's access state (Volume::port_group_states). When
  // it differs from the last one seen, every known port gets 2A/06 ASYMMETRIC ACCESS STATE
  // CHANGED, so that multipath initiators ask REPORT TARGET PORT GROUPS again.
  void note_port_group_states(std::uint64_t states);

  // EXTENDED COPY operations of this logical unit's copy manager (thread-safe on its own).
  CopyStatusTable& copies() { return copies_; }

 private:
  static constexpr std::size_t kMaxQueuedUnitAttentions = 8;
  void push_locked(std::deque<Sense>& queue, const Sense& ua);

  mutable std::mutex mutex_;
  std::map<std::string, std::deque<Sense>> unit_attentions_;  // key: initiator port
  ModeSettings mode_;
  std::atomic<bool> wce_{ModeSettings{}.write_cache_enabled};
  static constexpr std::uint64_t kNoStatesSeen = ~std::uint64_t{0};
  std::atomic<std::uint64_t> port_group_states_{kNoStatesSeen};
  CopyStatusTable copies_;
};

}  // namespace freevsa::scsi
