// The block layer under the SCSI layer. A Volume is what a LUN reads and writes; today it is a
// local file or block device, later the same interface fronts a replicated volume, so the SCSI
// layer never knows whether its data lives on one disk or two.
//
// Threading: every method may be called from several worker threads at once and blocks until
// the I/O completed. Never call these from a network thread.
// Completion: write() returning 0 means the data reached the Volume's backing store(s); with
// fua=true (or after flush() returned 0) it is on stable storage.
// Errors are values: 0 on success, otherwise a positive errno (EIO, ENOSPC, EINVAL, ...).
#pragma once

#include <cerrno>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

namespace freevsa::replication {

// Whether this node may serve the volume's data to initiators right now. A replicated volume is
// Active on its primary and Standby on the others; Transitioning while a role change is under
// way. The SCSI layer answers media commands on a non-Active volume with the sense data a
// multipath initiator takes as "use another path" (never as a lost device).
// Unavailable: this node cannot serve the volume even after a failover (its replica is not
// UpToDate, or its disk failed).
enum class Access { Active, Standby, Transitioning, Unavailable };

// A target port group (SPC-4 5.15, ALUA): every node that exports the volume is one group, with
// one target port whose relative identifier is the group's. `access` is that node's state.
struct PortGroup {
  std::uint16_t id = 1;
  Access access = Access::Active;
};

// A run of bytes and whether it holds data (GET LBA STATUS): `mapped` false means deallocated -
// never written, or discarded - and reads as zeroes.
struct AllocationExtent {
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  bool mapped = true;
};

class Volume {
 public:
  virtual ~Volume() = default;

  virtual std::uint64_t size_bytes() const = 0;
  // Offsets and lengths passed below are multiples of this (512 or 4096).
  virtual std::uint32_t block_size() const = 0;
  // A human-readable name for log lines ("data/lun0.img").
  virtual const std::string& name() const = 0;

  virtual int read(std::uint64_t offset, std::span<std::uint8_t> dst) = 0;
  virtual int write(std::uint64_t offset, std::span<const std::uint8_t> src, bool fua) = 0;
  virtual int flush() = 0;
  // Deallocates the range; later reads return zeroes. Used by UNMAP / WRITE SAME with UNMAP.
  virtual int discard(std::uint64_t offset, std::uint64_t length) = 0;

  // Describes the allocation of [offset, offset + length) in order from `offset`, in at most
  // `max_extents` extents (fewer bytes than asked when the limit is reached). A volume that
  // cannot tell reports everything mapped.
  virtual int allocation(std::uint64_t offset, std::uint64_t length, std::size_t max_extents,
                         std::vector<AllocationExtent>& out) {
    out.clear();
    if (length > 0 && max_extents > 0) out.push_back({offset, length, true});
    return 0;
  }

  // Persistent reservations (SPC-4 5.13) are kept with the volume, as an opaque record from the
  // SCSI layer: where they survive a restart and, on a replicated volume, on the peer as well,
  // so that the node taking over serves the same registrations. store_reservations returns 0
  // once the record is stored (and on the peer, when one is connected), otherwise an errno.
  // The default keeps the record in memory only.
  virtual int store_reservations(std::span<const std::uint8_t> record) {
    std::lock_guard lock(reservations_mutex_);
    reservations_.assign(record.begin(), record.end());
    return 0;
  }
  // The record last stored here or received from a peer.
  virtual std::vector<std::uint8_t> stored_reservations() const {
    std::lock_guard lock(reservations_mutex_);
    return reservations_;
  }
  // Counts the records that came from a peer (not through store_reservations): when it moves,
  // the SCSI layer adopts stored_reservations(). Cheap and thread-safe: read for every command.
  virtual std::uint64_t reservations_received() const { return 0; }

  // A PERSISTENT RESERVE OUT that reaches a node where the volume is not active runs on the node
  // where it is (SPC-4 5.15.2.4.4 accepts it on a standby port). `request` and `answer` are
  // opaque bytes of the SCSI layer. 0, or ENOTCONN when no node serving the volume answers.
  virtual int forward_reservation_command(std::span<const std::uint8_t> /*request*/,
                                          std::vector<std::uint8_t>& /*answer*/) {
    return ENOTCONN;
  }
  // On the serving node, the SCSI layer's runner for forwarded commands (null: none); an
  // empty answer means "not served here".
  using ReservationCommandRunner = std::function<std::vector<std::uint8_t>(std::span<const std::uint8_t>)>;
  virtual void set_reservation_command_runner(ReservationCommandRunner /*runner*/) {}

  // Cheap and thread-safe: called for every command.
  virtual Access access() const { return Access::Active; }
  // The port groups the volume is reachable through, this node's first. Thread-safe.
  virtual std::vector<PortGroup> port_groups() const { return {PortGroup{1, access()}}; }
  // A number that changes whenever a port group's id or access state does. Read for every
  // command (to announce ALUA state changes), so an override must not allocate.
  virtual std::uint64_t port_group_states() const { return static_cast<std::uint64_t>(access()); }

 private:
  mutable std::mutex reservations_mutex_;
  std::vector<std::uint8_t> reservations_;
};

}  // namespace freevsa::replication
