// The replicated volumes of this node of a cluster: each one's storage, metadata and
// replicator, and the manager that runs their links. `serve` builds one from a cluster file
// (after the whole file was validated) and hands its volumes to the targets.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/replica_storage.h"
#include "replication/metadata_store.h"
#include "replication/replication_manager.h"

namespace freevsa::daemon {

class NodeReplicas {
 public:
  // Opens every volume of `config.local`; a replica without metadata gets it (first start).
  // Throws std::runtime_error naming the file and what is wrong.
  explicit NodeReplicas(const Config& config);
  ~NodeReplicas();

  // The replicated volume a LUN of the derived targets serves; null for any other LUN.
  replication::Volume* volume_for(const LunConfig& lun);
  replication::ReplicationManager& manager() { return *manager_; }

  // Listens for the peers and starts connecting.
  void start();
  // After initiators stopped: tells the peers, leaves the metadata clean.
  void stop();

 private:
  struct Replica {
    std::string backing_path;
    std::unique_ptr<ReplicaStorage> storage;
    std::unique_ptr<replication::MetadataStore> metadata;
    std::shared_ptr<replication::Replicator> replicator;
  };
  const LocalCluster local_;
  std::unique_ptr<replication::ReplicationManager> manager_;
  std::vector<Replica> replicas_;
};

// `freevsa create-md VOLUME --config FILE --node NAME [--in-sync] [--force]`: writes fresh
// metadata for this node's replica. --in-sync declares the replica identical to its peers'
// (only true when every replica is new and empty: run it on every node before the first start);
// without it the replica is Inconsistent and a full sync from the peer fills it. Refuses to
// overwrite valid metadata without --force. Returns the exit code; prints what it did.
struct CreateMetadataOptions {
  std::string volume;
  bool in_sync = false;
  bool force = false;
};
int create_metadata(const Config& config, const CreateMetadataOptions& options);

}  // namespace freevsa::daemon
