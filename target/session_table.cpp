#include "target/session_table.h"

namespace freevsa::target {

std::uint16_t SessionTable::allocate_tsih() {
  std::lock_guard lock(mutex_);
  // 65535 candidates; live sessions are far fewer, so this ends quickly.
  for (int tries = 0; tries < 65536; ++tries) {
    std::uint16_t candidate = next_tsih_++;
    if (next_tsih_ == 0) next_tsih_ = 1;
    if (candidate != 0 && by_tsih_.count(candidate) == 0) {
      by_tsih_[candidate] = std::string();  // reserved until registered
      return candidate;
    }
  }
  return 0;
}

std::shared_ptr<Connection> SessionTable::register_session(const std::string& key, std::uint16_t tsih,
                                                           std::weak_ptr<Connection> connection) {
  std::lock_guard lock(mutex_);
  std::shared_ptr<Connection> replaced;
  auto it = by_key_.find(key);
  if (it != by_key_.end()) {
    replaced = it->second.connection.lock();
    if (it->second.tsih != tsih) by_tsih_.erase(it->second.tsih);
  }
  by_key_[key] = Entry{tsih, std::move(connection)};
  by_tsih_[tsih] = key;
  return replaced;
}

bool SessionTable::unregister_session(const std::string& key, std::uint16_t tsih) {
  std::lock_guard lock(mutex_);
  auto it = by_key_.find(key);
  // A reinstated session's replacement may already own the key: only remove our own entry.
  const bool own = it != by_key_.end() && it->second.tsih == tsih;
  if (own) by_key_.erase(it);
  auto t = by_tsih_.find(tsih);
  if (t != by_tsih_.end() && (t->second == key || t->second.empty())) by_tsih_.erase(t);
  return own;
}

std::size_t SessionTable::size() const {
  std::lock_guard lock(mutex_);
  return by_key_.size();
}

}  // namespace freevsa::target
