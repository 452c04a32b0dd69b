#pragma once
// ClusterStore: what instances of a cluster (cluster.enabled, docs/cluster.md) keep in the shared
// database so that a survivor can take over a dead instance's work. PostgreSQL only:
//  - "mqttspec"."instances": one row per live instance — its id, the partitions it holds
//    (broker.partition, a bit set) and its lease (until when it is alive, in the database's
//    clock, so the instances' clocks need not agree);
//  - "mqttspec"."subscriptions": every subscription of an MQTT client, with the instance that
//    serves it and its checkpoint: the last `seq` sent and the change_seq through which every
//    matching change has been sent (and acknowledged by the broker).
// Thread-safety: every method may be called from any thread (one connection, one mutex).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"

namespace mqttspec::adapters {

struct StoredSubscription {
  std::string id, client_id, schema, entity;
  std::string filters;     // protocol::RenderFilters
  int64_t seq = 0;         // the last notification seq sent
  int64_t change_seq = 0;  // every matching change up to here was sent
};

struct SubscriptionCheckpoint {
  std::string id;
  int64_t seq = 0, change_seq = 0;
};

// A dead instance's work, taken over (AdoptExpired).
struct AdoptedInstance {
  std::string instance_id;
  uint64_t partitions = 0;
  std::vector<StoredSubscription> subscriptions;
};

class ClusterStore {
 public:
  virtual ~ClusterStore() = default;
  // What the database says this instance holds (Heartbeat).
  struct Holding {
    uint64_t partitions = 0;
    std::vector<std::string> subscriptions;  // ids
    bool joined = false;  // the row was made now: a first heartbeat, or the instance was taken
                          // for dead (its row adopted) and joins again
  };
  // Renews this instance's lease until `lease_ms` from now. The first call makes its row with
  // `own` (its own partitions: an instance that adopted them gives them back); later calls keep
  // the row's. Returns what it holds now: partitions it adopted are added, ones given back are
  // gone, and subscriptions unsubscribed through another instance are missing.
  // Errors: unavailable, internal.
  virtual Result<Holding> Heartbeat(const std::string& instance_id, uint64_t own,
                                    int64_t lease_ms) = 0;
  // Records a new subscription served by `instance_id`.
  virtual Status Save(const std::string& instance_id, const StoredSubscription& s) = 0;
  // Removes the subscription if `client_id` has it; false when it had none such.
  virtual Result<bool> Remove(const std::string& client_id, const std::string& subscription_id) = 0;
  // Moves the checkpoints of the given subscriptions on (one transaction).
  virtual Status Checkpoint(const std::vector<SubscriptionCheckpoint>& checkpoints) = 0;
  // Takes over, each in one transaction, every instance whose lease has run out: its row goes,
  // its subscriptions become `instance_id`'s, its partitions are added to this instance's row.
  // Exactly one survivor adopts each dead instance.
  virtual Result<std::vector<AdoptedInstance>> AdoptExpired(const std::string& instance_id) = 0;
  // This instance leaves (a clean stop): its lease ends now, so a survivor adopts its
  // subscriptions and partitions at once.
  virtual Status Leave(const std::string& instance_id) = 0;
};

}  // namespace mqttspec::adapters
