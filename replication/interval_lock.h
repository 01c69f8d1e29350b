// Serialises overlapping writes to a volume: a write waits while an earlier write that overlaps
// it is still in flight, so two overlapping writes can never be applied in different orders on
// two replicas (DESIGN.md, "Ordering"). Writes to disjoint ranges run concurrently.
//
// Threading: thread-safe. lock() blocks the calling worker thread; the Guard releases the range
// when destroyed. Order: overlapping requests are granted in the order lock() was called - a
// later request never overtakes an earlier overlapping one.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <list>
#include <mutex>

namespace freevsa::replication {

class IntervalLock {
  struct Range {
    std::uint64_t begin;
    std::uint64_t end;  // exclusive
  };
  using Entry = std::list<Range>::iterator;

 public:
  class Guard {
   public:
    Guard() = default;
    Guard(Guard&& other) noexcept;
    Guard& operator=(Guard&& other) noexcept;
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { release(); }
    void release();

   private:
    friend class IntervalLock;
    Guard(IntervalLock* owner, Entry entry) : owner_(owner), entry_(entry) {}
    IntervalLock* owner_ = nullptr;
    Entry entry_{};
  };

  // Blocks until every earlier request overlapping [offset, offset + length) was released.
  Guard lock(std::uint64_t offset, std::uint64_t length);
  // Ranges held or waiting (for tests and status).
  std::size_t size() const;

 private:
  bool blocked(Entry entry) const;
  void unlock(Entry entry);

  mutable std::mutex mutex_;
  std::condition_variable released_;
  std::list<Range> ranges_;  // every held or waiting range, in arrival order
};

}  // namespace freevsa::replication
