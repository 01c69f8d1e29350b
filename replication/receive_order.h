// The order in which a secondary applies what the primary sends (DESIGN.md, "Ordering").
// Replicated writes and resync data are applied concurrently on worker threads, except that
//  - an item never starts before an earlier-arrived item whose range overlaps it completed
//    (both replicas then apply overlapping writes in the same order), and
//  - an item of a later epoch never starts before every item of an earlier epoch completed
//    (protocols A and B: a write the initiator issued after another completed lands after it).
//
// Threading: not thread-safe; the link's thread calls submit() and complete().
#pragma once

#include <cstdint>
#include <functional>
#include <list>

namespace freevsa::replication {

class ReceiveOrder {
 public:
  using Ticket = std::uint64_t;
  using Start = std::function<void(Ticket)>;

  // Registers an item; `start` runs (now or from a later complete()) once it may begin, with
  // the ticket to complete() it with.
  Ticket submit(std::uint64_t offset, std::uint64_t length, std::uint64_t epoch, Start start);
  // The item finished; items it held back may start.
  void complete(Ticket ticket);
  // The link went down: forgets the items that have not started. Started ones stay until they
  // complete, so that what the next connection sends cannot overtake them.
  void clear_waiting();
  std::size_t pending() const { return items_.size(); }

 private:
  struct Item {
    Ticket ticket;
    std::uint64_t offset;
    std::uint64_t length;
    std::uint64_t epoch;
    bool started = false;
    Start start;
  };
  bool may_start(std::list<Item>::iterator item) const;
  void start_ready();

  std::list<Item> items_;  // arrival order
  Ticket next_ticket_ = 1;
};

}  // namespace freevsa::replication
