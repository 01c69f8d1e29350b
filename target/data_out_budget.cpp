#include "target/data_out_budget.h"

#include <utility>

namespace freevsa::target {

bool DataOutBudget::try_take(std::uint64_t bytes) {
  std::uint64_t used = in_use_.load(std::memory_order_relaxed);
  do {
    if (bytes > limit_ || used > limit_ - bytes) return false;
  } while (!in_use_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
  return true;
}

void DataOutBudget::give_back(std::uint64_t bytes) { in_use_.fetch_sub(bytes, std::memory_order_relaxed); }

DataOutGrant::DataOutGrant(DataOutGrant&& other) noexcept
    : connection_(std::move(other.connection_)),
      process_(std::move(other.process_)),
      bytes_(std::exchange(other.bytes_, 0)) {}

DataOutGrant& DataOutGrant::operator=(DataOutGrant&& other) noexcept {
  if (this != &other) {
    reset();
    connection_ = std::move(other.connection_);
    process_ = std::move(other.process_);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

std::optional<DataOutGrant> DataOutGrant::take(const std::shared_ptr<DataOutBudget>& connection,
                                               const std::shared_ptr<DataOutBudget>& process, std::uint64_t bytes) {
  if (!connection->try_take(bytes)) return std::nullopt;
  if (!process->try_take(bytes)) {
    connection->give_back(bytes);
    return std::nullopt;
  }
  DataOutGrant grant;
  grant.connection_ = connection;
  grant.process_ = process;
  grant.bytes_ = bytes;
  return grant;
}

void DataOutGrant::reset() {
  if (connection_) connection_->give_back(bytes_);
  if (process_) process_->give_back(bytes_);
  connection_.reset();
  process_.reset();
  bytes_ = 0;
}

}  // namespace freevsa::target
