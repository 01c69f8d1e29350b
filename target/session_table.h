// Live sessions of the target, for TSIH allocation and session reinstatement (RFC 7143 6.3.5):
// a login with the ISID of an existing session of the same initiator and target replaces it.
// A connection asks for a TSIH and registers only when its login completed, i.e. after CHAP and
// the initiator list passed: a login that fails them, whatever ISID it names, never touches
// the session it would replace.
//
// Threading: all methods are thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace freevsa::target {

class Connection;

class SessionTable {
 public:
  // A non-zero TSIH not in use by a live session.
  std::uint16_t allocate_tsih();

  // Registers the session with this key ("initiator,isid,target") and TSIH; returns the
  // connection of a session it replaces (to be closed), or null.
  std::shared_ptr<Connection> register_session(const std::string& key, std::uint16_t tsih,
                                               std::weak_ptr<Connection> connection);
  // Returns false when a reinstating session had already taken the key over (its I_T nexus
  // lives on).
  bool unregister_session(const std::string& key, std::uint16_t tsih);
  std::size_t size() const;

 private:
  struct Entry {
    std::uint16_t tsih;
    std::weak_ptr<Connection> connection;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Entry> by_key_;
  std::map<std::uint16_t, std::string> by_tsih_;
  std::uint16_t next_tsih_ = 1;
};

}  // namespace freevsa::target
