// Where one replica of a volume lives on this node: the backing file or device, the metadata
// area (internal: the end of the backing file; external: its own file), and the data area the
// initiators see. Shared by `serve` and `create-md`.
#pragma once

#include <memory>
#include <string>

#include "daemon/cluster_config.h"
#include "replication/file_volume.h"
#include "replication/metadata.h"
#include "replication/metadata_device.h"

namespace freevsa::daemon {

class ReplicaStorage {
 public:
  // Opens (and with `create`, creates sparse) the files of `volume` at the size its data and
  // metadata need. Throws std::runtime_error naming the file and the reason (start-up edge).
  ReplicaStorage(const LocalVolume& volume, bool create);

  replication::Volume& data() { return *data_; }
  replication::MetadataDevice& metadata_device() { return *metadata_device_; }
  replication::MetadataPlacement placement() const { return placement_; }
  const std::string& metadata_name() const { return metadata_name_; }

 private:
  std::unique_ptr<replication::FileVolume> backing_;
  std::unique_ptr<replication::FileVolume> metadata_file_;
  std::unique_ptr<replication::Volume> data_area_;  // internal metadata: the part before it
  std::unique_ptr<replication::VolumeMetadataDevice> metadata_device_;
  replication::Volume* data_ = nullptr;
  replication::MetadataPlacement placement_ = replication::MetadataPlacement::Internal;
  std::string metadata_name_;
};

// Both replicas of a volume carry the same UUID without talking to each other first: it is
// derived from the cluster and volume names (RFC 9562 version 8, name-based).
replication::Uuid volume_uuid_for(const std::string& cluster_name, const std::string& volume_name);

}  // namespace freevsa::daemon
