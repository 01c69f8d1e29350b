// A small record kept in a file of its own and replaced atomically (write a temporary file,
// fsync, rename, fsync the directory): after a crash the file holds the old or the new record,
// never a mix. Used for the persistent reservations of a volume without replication metadata.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace freevsa::replication {

// 0 or an errno.
int store_record_file(const std::string& path, std::span<const std::uint8_t> record);
// 0 (a missing file reads as an empty record) or an errno.
int load_record_file(const std::string& path, std::vector<std::uint8_t>& record);

}  // namespace freevsa::replication
