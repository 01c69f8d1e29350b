#include "daemon/node.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "replication/file_volume.h"
#include "scsi/lun_map.h"
#include "util/log.h"

namespace freevsa::daemon {

namespace {
std::optional<target::ChapSecret> chap_from(const std::optional<ChapConfig>& chap) {
  if (!chap) return std::nullopt;
  return target::ChapSecret{chap->user, chap->secret};
}
}  // namespace

Node::Node(const Config& config, const VolumeFor& volume_for) {
  auto& tc = target_config_;
  tc.portals.clear();
  for (const auto& portal : config.portals) tc.portals.push_back(target::Portal{portal.address, portal.port});
  tc.discovery_chap = chap_from(config.discovery_chap);
  tc.discovery_mutual_chap = chap_from(config.discovery_mutual_chap);
  tc.network_threads = config.network_threads;
  tc.worker_threads = config.worker_threads;
  tc.nop_interval_seconds = config.nop_interval_seconds;
  tc.nop_timeout_seconds = config.nop_timeout_seconds;
  tc.limits.max_recv_data_segment_length = config.max_recv_data_segment_length;
  tc.limits.max_burst_length = config.max_burst_length;
  tc.limits.first_burst_length = config.first_burst_length;
  tc.limits.max_outstanding_r2t = config.max_outstanding_r2t;
  tc.limits.immediate_data = config.immediate_data;
  tc.limits.initial_r2t = config.initial_r2t;
  tc.resources = config.resources;

  for (const auto& target : config.targets) {
    target::TargetDefinition definition;
    definition.iqn = target.iqn;
    definition.alias = target.alias;
    definition.chap = chap_from(target.access.chap);
    definition.mutual_chap = chap_from(target.access.mutual_chap);
    definition.allowed_initiators = target.access.allowed_initiators;
    definition.luns = std::make_shared<scsi::LunMap>();
    for (const auto& lun : target.luns) {
      replication::Volume* volume = volume_for ? volume_for(lun) : nullptr;
      if (volume == nullptr) volume = open_file(target.iqn, lun);
      // The identity comes from configuration only, so it is the same after every restart and
      // on every node that exports the volume.
      auto identity = scsi::LunIdentity::from_name(fmt::format("{}/{}", target.iqn, lun.number));
      if (!lun.serial.empty()) identity.serial = lun.serial;
      definition.luns->add(lun.number, std::make_shared<scsi::LogicalUnit>(*volume, identity));
    }
    tc.targets.push_back(std::move(definition));
  }
}

replication::Volume* Node::open_file(const std::string& iqn, const LunConfig& lun) {
  replication::FileVolumeOptions options;
  options.path = lun.path;
  options.size_bytes = lun.size_bytes;
  options.block_size = lun.block_size;
  options.direct_io = lun.direct_io;
  // Persistent reservations made with APTPL outlive a restart in a file beside the volume (a
  // block device's go to the state directory: nothing may be created under /dev).
  const std::string dev = "/dev/";
  if (lun.path.starts_with(dev)) {
    const std::string state_dir = "/var/lib/freevsa";
    std::filesystem::create_directories(state_dir);
    std::string device = lun.path.substr(dev.size());
    std::replace(device.begin(), device.end(), '/', '_');
    options.reservations_path = state_dir + "/" + device + ".reservations";
  } else {
    options.reservations_path = lun.path + ".reservations";
  }
  std::unique_ptr<replication::FileVolume> volume;
  try {
    volume = replication::FileVolume::open(options);
  } catch (const std::exception& e) {
    throw std::runtime_error(fmt::format("target {} LUN {}: {}", iqn, lun.number, e.what()));
  }
  util::log_info("target {} LUN {}: {} ({} bytes, {}-byte blocks, {})", iqn, lun.number, lun.path, volume->size_bytes(),
                 volume->block_size(), volume->direct_io() ? "O_DIRECT" : "buffered");
  volumes_.push_back(std::move(volume));
  return volumes_.back().get();
}

Node::~Node() {
  // Logical units refer to the volumes: release them first.
  target_config_.targets.clear();
}

void Node::flush_all() {
  for (auto& volume : volumes_) {
    if (int error = volume->flush(); error != 0)
      util::log_error("{}: flush failed: {}", volume->name(), std::strerror(error));
  }
}

}  // namespace freevsa::daemon
