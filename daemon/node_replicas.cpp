#include "daemon/node_replicas.h"

#include <fmt/format.h>

#include <cstdio>
#include <stdexcept>

#include "replication/peer_tls.h"
#include "util/log.h"

namespace freevsa::daemon {

using namespace replication;

namespace {

Protocol protocol_of(ReplicationProtocol p) {
  switch (p) {
    case ReplicationProtocol::A: return Protocol::A;
    case ReplicationProtocol::B: return Protocol::B;
    case ReplicationProtocol::C: return Protocol::C;
  }
  return Protocol::C;
}

ReplicaSettings settings_for(const LocalCluster& local, const LocalVolume& volume,
                             const std::shared_ptr<boost::asio::ssl::context>& tls) {
  if (volume.peers.size() != 1) {
    throw std::runtime_error(fmt::format("volume {}: this version replicates to exactly one peer; the cluster has {} "
                                         "other nodes",
                                         volume.name, volume.peers.size()));
  }
  const PeerLink& peer = volume.peers.front();
  ReplicaSettings s;
  s.cluster_name = local.cluster_name;
  s.volume_name = volume.name;
  s.node_name = local.self.name;
  s.node_id = local.self.id;
  s.peer_name = peer.node_name;
  s.peer_id = peer.node_id;
  s.peer_address = peer.address.address;
  s.peer_port = peer.address.port;
  s.secret = local.secret;
  s.tls = tls;
  s.tls_certificates = local.tls.has_value();
  s.keepalive = KeepAlive{local.keepalive.ping_interval, local.keepalive.timeout};
  s.protocol = protocol_of(volume.protocol);
  s.config_hash = volume.config_hash;
  s.shared_settings = volume.shared_settings;
  s.initial_primary = volume.initial_primary;
  s.resync_adaptive = volume.resync.adaptive;
  s.resync_rate = volume.resync.rate;
  s.resync_min_rate = volume.resync.min_rate;
  s.resync_max_rate = volume.resync.max_rate;
  s.resync_checksum = volume.resync.checksum;
  s.verify_rate = volume.verify.rate;
  s.verify_algorithm =
      volume.verify.algorithm == VerifyAlgorithm::Sha256 ? peer::DigestAlgorithm::Sha256 : peer::DigestAlgorithm::Crc32c;
  s.backing_path = volume.backing_path;
  return s;
}

FormatOptions format_options(const LocalCluster& local, const LocalVolume& volume, const ReplicaStorage& storage,
                             bool in_sync) {
  FormatOptions f;
  f.placement = storage.placement();
  f.data_size = storage.placement() == MetadataPlacement::External ? volume.size_bytes : 0;
  f.block_size = volume.block_size;
  f.node_id = local.self.id;
  f.volume_uuid = volume_uuid_for(local.cluster_name, volume.name);
  f.start_in_sync = in_sync;
  f.bitmap_all_set = true;
  return f;
}

std::unique_ptr<MetadataStore> open_metadata(ReplicaStorage& storage, const LocalVolume& volume) {
  OpenOptions options;
  options.placement = storage.placement();
  options.data_device_size = storage.placement() == MetadataPlacement::External ? volume.size_bytes : 0;
  options.block_size = volume.block_size;
  std::unique_ptr<MetadataStore> store;
  MetadataStatus status = MetadataStore::open(storage.metadata_device(), options, store);
  if (!status.ok()) {
    if (status.error == MetadataError::NotFormatted) return nullptr;
    throw std::runtime_error(fmt::format("volume {}: {} (to start this replica over as a copy of its peer's, run "
                                         "`freevsa create-md {} --force ...`)",
                                         volume.name, status.message, volume.name));
  }
  return store;
}

const LocalVolume& find_volume(const LocalCluster& local, const std::string& name) {
  for (const LocalVolume& volume : local.volumes)
    if (volume.name == name) return volume;
  std::string names;
  for (const LocalVolume& volume : local.volumes) names += (names.empty() ? "" : ", ") + volume.name;
  throw std::runtime_error(fmt::format("no volume named '{}' in the configuration (volumes: {})", name, names));
}

}  // namespace

NodeReplicas::NodeReplicas(const Config& config) : local_(*config.local) {
  std::shared_ptr<boost::asio::ssl::context> tls;
  if (local_.tls) tls = make_peer_tls_context(TlsFilePaths{local_.tls->cert, local_.tls->key, local_.tls->ca});
  if (local_.tls_psk) tls = make_peer_tls_psk_context(local_.secret, local_.cluster_name);
  peer::LinkCredentials credentials{local_.cluster_name, local_.self.id, local_.self.name, local_.secret, {}};
  for (const ClusterNode& peer : local_.peers)
    credentials.peers.push_back(peer::KnownNode{peer.id, peer.name, peer.replication.address});
  manager_ = std::make_unique<ReplicationManager>(
      config.worker_threads, KeepAlive{local_.keepalive.ping_interval, local_.keepalive.timeout}, std::move(credentials),
      tls);
  for (const LocalVolume& volume : local_.volumes) {
    Replica replica;
    replica.backing_path = volume.backing_path;
    replica.storage = std::make_unique<ReplicaStorage>(volume, true);
    replica.metadata = open_metadata(*replica.storage, volume);
    if (!replica.metadata) {
      // First start of this replica: it is Inconsistent until its peer's data filled it (or,
      // meeting another new replica, it is the initial primary's and so the volume's).
      util::log_info("volume {}: no metadata on {} yet; creating it", volume.name, replica.storage->metadata_name());
      MetadataStore::format(replica.storage->metadata_device(), format_options(local_, volume, *replica.storage, false));
      replica.metadata = open_metadata(*replica.storage, volume);
      if (!replica.metadata) throw std::runtime_error(fmt::format("volume {}: metadata just written cannot be read", volume.name));
    }
    const Superblock sb = replica.metadata->superblock();
    const RecoveryReport& recovery = replica.metadata->recovery();
    if (recovery.crashed_primary || recovery.extents_marked_dirty > 0) {
      util::log_warn("volume {}: did not stop cleanly{}; {} activity-log extent(s) marked out of sync", volume.name,
                     recovery.crashed_primary ? " while primary" : "", recovery.extents_marked_dirty);
    }
    replica.replicator = manager_->add(settings_for(local_, volume, tls), replica.storage->data(), *replica.metadata);
    // Every start is as secondary. A node that was primary (or is the initial primary of a new
    // volume) takes the role back once it has met its peer as secondary; never alone.
    const std::string resume = primary_when_peer_met(sb, volume.initial_primary);
    replica.replicator->set_initial_role(Role::Secondary, resume);
    util::log_info("volume {}: {} bytes on {}, disk {}, generation {:016x}, {} out of sync{}", volume.name,
                   volume.size_bytes, volume.backing_path, to_string(sb.disk_state), sb.generations.current,
                   replica.metadata->bitmap().count_dirty_bytes(),
                   resume.empty() ? "" : "; becomes primary once it has met its peer as secondary");
    replicas_.push_back(std::move(replica));
  }
}

NodeReplicas::~NodeReplicas() { stop(); }

Volume* NodeReplicas::volume_for(const LunConfig& lun) {
  for (Replica& replica : replicas_)
    if (replica.backing_path == lun.path) return &replica.replicator->volume();
  return nullptr;
}

void NodeReplicas::start() {
  manager_->listen(local_.self.replication.address, local_.self.replication.port);
  manager_->start();
}

void NodeReplicas::stop() {
  if (manager_) manager_->stop();
}

int create_metadata(const Config& config, const CreateMetadataOptions& options) {
  const LocalCluster& local = *config.local;
  const LocalVolume& volume = find_volume(local, options.volume);
  ReplicaStorage storage(volume, true);
  if (!options.force && open_metadata(storage, volume)) {
    std::fprintf(stderr,
                 "freevsa: %s already holds valid metadata for volume %s; --force replaces it (this replica then "
                 "counts as %s)\n",
                 storage.metadata_name().c_str(), volume.name.c_str(),
                 options.in_sync ? "identical to its peer's: only correct if both are new and empty"
                                 : "empty: a full sync from the peer overwrites it");
    return 1;
  }
  const Superblock sb =
      MetadataStore::format(storage.metadata_device(), format_options(local, volume, storage, options.in_sync));
  std::printf("%s: metadata for volume %s written (UUID %s, %s)\n", storage.metadata_name().c_str(), volume.name.c_str(),
              to_string(sb.volume_uuid).c_str(),
              options.in_sync ? "declared in sync: no initial sync with a peer formatted the same way"
                              : "inconsistent until a full sync from the peer");
  return 0;
}

}  // namespace freevsa::daemon
