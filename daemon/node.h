// Turns a validated Config into what serves it: the volumes, their logical units, the targets.
// Opening the volumes is the first thing that touches a disk, so it happens only after the
// whole configuration was parsed and checked.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "daemon/config.h"
#include "replication/volume.h"
#include "scsi/logical_unit.h"
#include "target/target_config.h"

namespace freevsa::daemon {

class Node {
 public:
  // Where a LUN's data lives when it is not simply its file (a replicated volume): null to
  // open the LUN's file.
  using VolumeFor = std::function<replication::Volume*(const LunConfig& lun)>;

  // Throws std::runtime_error naming the LUN and the file when a volume cannot be opened.
  explicit Node(const Config& config, const VolumeFor& volume_for = nullptr);
  ~Node();

  const target::TargetServerConfig& target_config() const { return target_config_; }
  // Flushes every volume: called on shutdown after the last command completed.
  void flush_all();

 private:
  replication::Volume* open_file(const std::string& iqn, const LunConfig& lun);

  std::vector<std::unique_ptr<replication::Volume>> volumes_;  // the LUN files this node opened
  target::TargetServerConfig target_config_;
};

}  // namespace freevsa::daemon
