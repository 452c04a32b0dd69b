#pragma once
// Cluster: this instance's part in a cluster of instances over one PostgreSQL (cluster.enabled,
// docs/cluster.md). It keeps every MQTT subscription in the database (SubscriptionKeeper: saved
// when made, forgotten when unsubscribed) with a checkpoint, and holds a lease there that a
// heartbeat renews every heartbeat_ms. Each heartbeat also
//  - writes the checkpoint it took earlier (ChangeFeed::Checkpoint: each subscription's last seq
//    and the change_seq through which every matching change was handed to the transport) once
//    the transport has settled every message taken up to it (Transport::settled: acknowledged
//    by the broker) — so a checkpoint never claims a notification the broker has not got — and
//    takes the next;
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
#include <optional>
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
#include "server/transport.h"

namespace mqttspec::server {

class Cluster : public SubscriptionKeeper {
 public:
  // Joins at once (the first heartbeat, on the caller's thread: an instance that cannot reach
  // the database still starts, and joins when it can).
  Cluster(const ClusterConfig& config, std::unique_ptr<adapters::ClusterStore> store,
          adapters::Database& db, const registry::ModelRegistry& models,
          Subscriptions& subscriptions, ChangeFeed& feed, Partitions& partitions,
          Transport& notifications);
  ~Cluster() override;  // a last checkpoint, then leaves (Leave)

  Status Keep(const Subscription& subscription, int64_t change_seq) override;
  Result<bool> Forget(const std::string& client_id, const std::string& id) override;

  const std::string& instance_id() const { return id_; }
  // Stops the heartbeat and the adoptions (the service is stopping; ChangeFeed::StopReplays
  // first, so a long replay ends at once) and waits for their threads. One thread (the
  // service's owner); again in the destructor.
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
  Transport& notifications_;

  // Writes the pending checkpoint if the transport has settled it (or, `wait_ms` > 0, once it
  // has, waiting at most that long), then takes the next one.
  void Checkpoint(int64_t wait_ms);

  // Heartbeat thread's: the checkpoint taken and not yet written, the transport's count of
  // messages taken when it was taken, and what was written for each subscription (a
  // subscription's checkpoint is written only when it moved).
  std::optional<ChangeFeed::Position> pending_;
  uint64_t pending_mark_ = 0;
  uint64_t beats_ = 0;  // heartbeats that reached the database
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
