#include "target/connection_limiter.h"

#include <utility>

namespace freevsa::target {

ConnectionLimiter::Ticket::Ticket(Ticket&& other) noexcept
    : limiter_(std::exchange(other.limiter_, nullptr)), portal_(other.portal_), address_(std::move(other.address_)) {}

ConnectionLimiter::Ticket& ConnectionLimiter::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    reset();
    limiter_ = std::exchange(other.limiter_, nullptr);
    portal_ = other.portal_;
    address_ = std::move(other.address_);
  }
  return *this;
}

void ConnectionLimiter::Ticket::reset() {
  if (limiter_ == nullptr) return;
  std::exchange(limiter_, nullptr)->release(portal_, address_);
}

ConnectionLimiter::ConnectionLimiter(std::size_t portals, std::size_t per_portal, std::size_t per_address)
    : per_portal_(per_portal), per_address_(per_address), by_portal_(portals, 0) {}

ConnectionLimiter::Admission ConnectionLimiter::admit(std::size_t portal, const std::string& address) {
  std::lock_guard lock(mutex_);
  if (by_portal_.at(portal) >= per_portal_) return {Verdict::PortalFull, Ticket()};
  auto found = by_address_.find(address);
  if (found != by_address_.end() && found->second >= per_address_) return {Verdict::AddressFull, Ticket()};
  ++by_portal_[portal];
  ++by_address_[address];
  return {Verdict::Admitted, Ticket(this, portal, address)};
}

void ConnectionLimiter::release(std::size_t portal, const std::string& address) {
  std::lock_guard lock(mutex_);
  --by_portal_.at(portal);
  auto found = by_address_.find(address);
  if (found != by_address_.end() && --found->second == 0) by_address_.erase(found);
}

std::size_t ConnectionLimiter::on_portal(std::size_t portal) const {
  std::lock_guard lock(mutex_);
  return by_portal_.at(portal);
}

std::size_t ConnectionLimiter::from_address(const std::string& address) const {
  std::lock_guard lock(mutex_);
  auto found = by_address_.find(address);
  return found == by_address_.end() ? 0 : found->second;
}

}  // namespace freevsa::target
