#include "daemon/replica_storage.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <stdexcept>

namespace freevsa::daemon {

using namespace replication;

namespace {
std::uint64_t existing_size(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}

std::unique_ptr<FileVolume> open_file(const std::string& path, std::uint64_t size, std::uint32_t block_size,
                                      bool direct_io, bool create, const std::string& what) {
  const std::uint64_t found = existing_size(path);
  if (found != 0 && found != size) {
    throw std::runtime_error(fmt::format("{}: the file is {} bytes, but {} needs exactly {} bytes", path, found, what,
                                         size));
  }
  FileVolumeOptions options;
  options.path = path;
  options.size_bytes = size;
  options.block_size = block_size;
  options.direct_io = direct_io;
  options.create = create;
  auto file = FileVolume::open(options);
  if (file->size_bytes() != size) {
    throw std::runtime_error(fmt::format("{}: the device holds {} bytes, but {} needs exactly {} bytes", path,
                                         file->size_bytes(), what, size));
  }
  return file;
}
}  // namespace

ReplicaStorage::ReplicaStorage(const LocalVolume& volume, bool create) {
  const MetadataLayout layout = metadata_layout(volume.size_bytes, ActivityLogGeometry{});
  if (volume.metadata.internal) {
    const std::uint64_t total = volume.size_bytes + layout.size;
    backing_ = open_file(volume.backing_path, total, volume.block_size, volume.direct_io, create,
                         fmt::format("volume {} ({} bytes of data + {} bytes of internal metadata)", volume.name,
                                     volume.size_bytes, layout.size));
    data_area_ = std::make_unique<DataAreaVolume>(*backing_, volume.size_bytes);
    metadata_device_ = std::make_unique<VolumeMetadataDevice>(*backing_);
    data_ = data_area_.get();
    placement_ = MetadataPlacement::Internal;
    metadata_name_ = volume.backing_path + " (internal metadata)";
  } else {
    backing_ = open_file(volume.backing_path, volume.size_bytes, volume.block_size, volume.direct_io, create,
                         fmt::format("volume {}", volume.name));
    metadata_file_ = open_file(volume.metadata.path, layout.size, 512, volume.direct_io, create,
                               fmt::format("the metadata of volume {}", volume.name));
    metadata_device_ = std::make_unique<VolumeMetadataDevice>(*metadata_file_);
    data_ = backing_.get();
    placement_ = MetadataPlacement::External;
    metadata_name_ = volume.metadata.path;
  }
}

Uuid volume_uuid_for(const std::string& cluster_name, const std::string& volume_name) {
  std::string input = "freevsa-volume-uuid-v1";
  input.push_back('\0');
  input += cluster_name;
  input.push_back('\0');
  input += volume_name;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha256(), nullptr) != 1 || length < 16) {
    throw std::runtime_error("cannot compute SHA-256 (OpenSSL failed)");
  }
  Uuid uuid{};
  std::copy(digest, digest + 16, uuid.begin());
  uuid[6] = static_cast<std::uint8_t>((uuid[6] & 0x0f) | 0x80);
  uuid[8] = static_cast<std::uint8_t>((uuid[8] & 0x3f) | 0x80);
  return uuid;
}

}  // namespace freevsa::daemon
