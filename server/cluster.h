#pragma once
// Cluster: this instance's part in a cluster of instances over one PostgreSQL (cluster.enabled,
// docs/cluster.md). It keeps every MQTT subscription in the database (SubscriptionKeeper: saved
// when made, forgotten when unsubscribed) with a checkpoint, and holds a lease there that a
// heartbeat renews every heartbeat_ms. Each heartbeat also
//  - writes the checkpoints taken at the previous heartbeat (ChangeFeed::Checkpoint: the last
//    seq and the change_seq through which every matching change was handed to the transport —
//    a heartbeat's time ago, so published by then);
//  - applies what the database says this instance holds: partitions adopted or given back
//    (Partitions), subscriptions unsubscribed through another instance (dropped here);
//  - adopts every instance whose lease ran out: its partitions and its subscriptions, each
//    resumed from its checkpoint (ChangeFeed::Resume without the marker), its seq continuing —
//    on a thread of its own, so a long replay does not hold up the heartbeat.
// A clean stop ends the lease at once, so a survivor adopts without waiting for it to run out.
// Subscriptions of gRPC callers live and end with their stream: they are not kept.
// Thread-safety: Keep and Forget from any thread (worker threads); one heartbeat thread.

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/cluster_store.h"
#include "adapters/database.h"
#include "registry/model_registry.h"
#include "server/change_feed.h"
#include "server/config.h"
#include "server/partitions.h"
#include "server/subscriptions.h"

namespace mqttspec::server {

class Cluster : public SubscriptionKeeper {
 public:
  // Joins at once (the first heartbeat, on the caller's thread: an instance that cannot reach
  // the database still starts, and joins when it can).
  Cluster(const ClusterConfig& config, std::unique_ptr<adapters::ClusterStore> store,
          adapters::Database& db, const registry::ModelRegistry& models,
          Subscriptions& subscriptions, ChangeFeed& feed, Partitions& partitions);
  ~Cluster() override;  // a last checkpoint, then leaves (Leave)

  Status Keep(const Subscription& subscription, int64_t change_seq) override;
  Result<bool> Forget(const std::string& client_id, const std::string& id) override;

  const std::string& instance_id() const { return id_; }
  // Stops taking over and replaying (the service is stopping). Any thread.
  void Stop();

 private:
  void Run();
  void Beat();
  void WriteCheckpoints();
  void Adopt(adapters::AdoptedInstance dead);

  const ClusterConfig config_;
  const std::string id_;
  const uint64_t own_;  // this instance's own partitions
  std::unique_ptr<adapters::ClusterStore> store_;
  adapters::Database& db_;
  const registry::ModelRegistry& models_;
  Subscriptions& subscriptions_;
  ChangeFeed& feed_;
  Partitions& partitions_;

  // Heartbeat thread's: the checkpoint taken last time, and the one written before it
  // (a subscription's is written only when it moved).
  ChangeFeed::Position pending_;
  std::map<std::string, std::pair<uint64_t, int64_t>> written_;

  std::mutex mu_;  // guards stopping_, adopters_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::thread> adopters_;
  std::thread thread_;
};

// This instance's id: cluster.instance_id, or <hostname>-<pid>.
std::string InstanceId(const ClusterConfig& config);

}  // namespace mqttspec::server
