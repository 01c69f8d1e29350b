// Caps on TCP connections per portal and per initiator address, so that no single host (or
// anyone who reaches a portal) can take every descriptor of the process. A connection counts
// from its accept until it is closed, logged in or not.
//
// Threading: all methods are thread-safe. A Ticket may be released on any thread; the limiter
// must outlive its tickets.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace freevsa::target {

class ConnectionLimiter {
 public:
  // One accepted connection's place in the counts; released when destroyed or reset().
  class Ticket {
   public:
    Ticket() = default;
    ~Ticket() { reset(); }
    Ticket(Ticket&& other) noexcept;
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    void reset();
    explicit operator bool() const { return limiter_ != nullptr; }

   private:
    friend class ConnectionLimiter;
    Ticket(ConnectionLimiter* limiter, std::size_t portal, std::string address)
        : limiter_(limiter), portal_(portal), address_(std::move(address)) {}
    ConnectionLimiter* limiter_ = nullptr;
    std::size_t portal_ = 0;
    std::string address_;
  };

  enum class Verdict { Admitted, PortalFull, AddressFull };
  struct Admission {
    Verdict verdict;
    Ticket ticket;  // set iff admitted
  };

  ConnectionLimiter(std::size_t portals, std::size_t per_portal, std::size_t per_address);

  // A connection accepted on portal `portal` (an index < portals) from `address` (the
  // initiator's IP, without the port).
  Admission admit(std::size_t portal, const std::string& address);

  std::size_t on_portal(std::size_t portal) const;
  std::size_t from_address(const std::string& address) const;

 private:
  void release(std::size_t portal, const std::string& address);

  const std::size_t per_portal_;
  const std::size_t per_address_;
  mutable std::mutex mutex_;
  std::vector<std::size_t> by_portal_;
  std::map<std::string, std::size_t> by_address_;  // only addresses with connections
};

}  // namespace freevsa::target
