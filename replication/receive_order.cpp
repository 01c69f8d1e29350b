#include "replication/receive_order.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace freevsa::replication {

ReceiveOrder::Ticket ReceiveOrder::submit(std::uint64_t offset, std::uint64_t length, std::uint64_t epoch,
                                          Start start) {
  const Ticket ticket = next_ticket_++;
  items_.push_back(Item{ticket, offset, length, epoch, false, std::move(start)});
  auto item = std::prev(items_.end());
  if (may_start(item)) {
    item->started = true;
    Start run = std::move(item->start);
    run(ticket);
  }
  return ticket;
}

void ReceiveOrder::complete(Ticket ticket) {
  auto it = std::find_if(items_.begin(), items_.end(), [ticket](const Item& i) { return i.ticket == ticket; });
  if (it == items_.end()) return;
  items_.erase(it);
  start_ready();
}

void ReceiveOrder::clear_waiting() {
  items_.remove_if([](const Item& item) { return !item.started; });
}

bool ReceiveOrder::may_start(std::list<Item>::iterator item) const {
  for (auto earlier = items_.begin(); earlier != item; ++earlier) {
    if (earlier->epoch < item->epoch) return false;
    const bool overlaps = earlier->offset < item->offset + item->length && item->offset < earlier->offset + earlier->length;
    if (overlaps) return false;
  }
  return true;
}

void ReceiveOrder::start_ready() {
  // Collect first: a start may complete synchronously and change the list.
  std::vector<std::pair<Ticket, Start>> ready;
  for (auto it = items_.begin(); it != items_.end(); ++it) {
    if (!it->started && may_start(it)) {
      it->started = true;
      ready.emplace_back(it->ticket, std::move(it->start));
    }
  }
  for (auto& [ticket, start] : ready) start(ticket);
}

}  // namespace freevsa::replication
