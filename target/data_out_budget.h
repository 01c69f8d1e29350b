// Bounds on the memory that write commands hold while their Data-Out arrives: a budget per
// connection and one for the whole process. A write command takes its Expected Data Transfer
// Length from both before its buffer is allocated (immediate and unsolicited data land in that
// buffer, so they are covered too); one that does not fit is answered TASK SET FULL and gets no
// buffer. The bytes come back when the command's buffer is freed: after it executed, failed or
// timed out, or when its connection closed.
//
// Threading: budgets are thread-safe (atomics); a grant is owned by one task and may be freed on
// any thread. Grants share ownership of their budgets, so a budget lives until its last grant.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

namespace freevsa::target {

class DataOutBudget {
 public:
  explicit DataOutBudget(std::uint64_t limit) : limit_(limit) {}
  std::uint64_t limit() const { return limit_; }
  std::uint64_t in_use() const { return in_use_.load(std::memory_order_relaxed); }

  // Takes `bytes` if they fit under the limit; false (and nothing taken) otherwise.
  bool try_take(std::uint64_t bytes);
  void give_back(std::uint64_t bytes);

 private:
  const std::uint64_t limit_;
  std::atomic<std::uint64_t> in_use_{0};
};

// Bytes taken from a connection's budget and the process's together; returned when destroyed.
class DataOutGrant {
 public:
  DataOutGrant() = default;
  ~DataOutGrant() { reset(); }
  DataOutGrant(DataOutGrant&& other) noexcept;
  DataOutGrant& operator=(DataOutGrant&& other) noexcept;
  DataOutGrant(const DataOutGrant&) = delete;
  DataOutGrant& operator=(const DataOutGrant&) = delete;

  // Both budgets or neither: nullopt when `bytes` fit in one of them but not the other.
  static std::optional<DataOutGrant> take(const std::shared_ptr<DataOutBudget>& connection,
                                          const std::shared_ptr<DataOutBudget>& process, std::uint64_t bytes);
  std::uint64_t bytes() const { return bytes_; }
  void reset();

 private:
  std::shared_ptr<DataOutBudget> connection_;
  std::shared_ptr<DataOutBudget> process_;
  std::uint64_t bytes_ = 0;
};

}  // namespace freevsa::target
