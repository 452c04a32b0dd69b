#pragma once
// Subscriptions: who wants to hear about which rows. A subscription is a client, a model and a
// filter list (the client's filters plus any a hook added). Lookup is by index, not scan: per
// entity, a subscription whose top-level filters are AND-joined and include an `eq` or `in` on a
// field is filed under those (field, value) keys in a hash map; only the rest sit in a list that
// every change of the entity checks. So the cost of a change grows with the subscriptions that
// could match it, not with all subscriptions.
// Thread-safety: all methods may be called from any thread (one mutex; Match copies out the
// candidates' shared pointers and evaluates filters outside the lock).

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "adapters/query.h"
#include "common/error.h"
#include "registry/model.h"

namespace mqttspec::server {

struct Subscription {
  std::string id;         // "sub-<hex>"
  std::string client_id;  // the owner
  std::string topic;      // <prefix>/<client>/notify/<id>
  registry::ModelPtr model;
  adapters::FilterList filters;
  std::atomic<uint64_t> seq{0};  // last sequence number sent; the fan-out stage owns it
  // Changes numbered up to this one (Subscriptions::NumberChanges) were committed before the
  // subscription existed: they are not sent to it, however late the fan-out gets to them.
  // kReplaying while a resumed subscription replays the change log (ChangeFeed::Resume): it gets
  // no live change until the replay has caught up and set this.
  static constexpr uint64_t kReplaying = UINT64_MAX;
  std::atomic<uint64_t> after{0};
  // The last change_seq a resume replayed from the log: a change committed before the replay
  // read it but announced to the feed after the subscription went live is not sent again.
  std::atomic<int64_t> replayed_through{0};
};
using SubscriptionPtr = std::shared_ptr<Subscription>;

// Keeps subscriptions beyond this process, so another instance can take them over
// (server/cluster.h). Told by the subscribe and unsubscribe handlers.
class SubscriptionKeeper {
 public:
  virtual ~SubscriptionKeeper() = default;
  // A new subscription; every matching change after `change_seq` is its news.
  virtual Status Keep(const Subscription& subscription, int64_t change_seq) = 0;
  // Forgets `id` of `client_id`; false if nothing was kept under that pair (perhaps another
  // instance serves it: it learns at its next heartbeat).
  virtual Result<bool> Forget(const std::string& client_id, const std::string& id) = 0;
};

class Subscriptions {
 public:
  Subscriptions(std::string topic_prefix, int max_per_client);

  // Registers a subscription of `client_id`; `live` false: it starts replaying (kReplaying).
  // Errors: too_many_subscriptions.
  Result<SubscriptionPtr> Add(const std::string& client_id, registry::ModelPtr model,
                              adapters::FilterList filters, bool live = true);

  // Registers a subscription taken over from another instance (server/cluster.h) under its own
  // id, replaying (kReplaying), its `seq` continuing from `seq`. Errors: conflict (the id exists).
  Result<SubscriptionPtr> Adopt(const std::string& id, const std::string& client_id,
                                registry::ModelPtr model, adapters::FilterList filters,
                                uint64_t seq);

  // Who keeps subscriptions beyond this process (nullptr: nobody). Set before serving.
  void set_keeper(SubscriptionKeeper* keeper) { keeper_.store(keeper); }
  SubscriptionKeeper* keeper() const { return keeper_.load(); }

  // Numbers `n` committed changes in commit order (the change feed, as it takes them); returns
  // the first number. A subscription added later has `after` >= every number handed out before.
  uint64_t NumberChanges(size_t n) { return changes_.fetch_add(n) + 1; }
  // The last number handed out.
  uint64_t numbered() const { return changes_.load(); }

  // Removes `id` if `client_id` owns it. Errors: not_found (no such id, or someone else's).
  Status Remove(const std::string& client_id, const std::string& id);

  // Removes `id` whoever owns it (the admin API). Errors: not_found.
  Result<SubscriptionPtr> Cancel(const std::string& id);
  bool Has(const std::string& id) const;

  // The subscriptions of `client_id` ("" = all) on `entity` ("entity" or "schema.entity"; "" =
  // all), by client and id.
  std::vector<SubscriptionPtr> List(const std::string& client_id, const std::string& entity) const;

  // Removes every subscription of the client; returns how many.
  size_t RemoveClient(const std::string& client_id);

  // The subscriptions on `model` whose filters match `row` (all fields, in field order).
  std::vector<SubscriptionPtr> Match(const registry::Model& model, const Row& row) const;

  size_t size() const;
  size_t count(const std::string& client_id) const;

 private:
  struct EntityIndex {
    // field → canonical value key → subscriptions filed under it
    std::unordered_map<int, std::unordered_map<std::string, std::vector<SubscriptionPtr>>> by_value;
    std::vector<SubscriptionPtr> scan;  // no usable eq / in: checked on every change
  };
  // The (field, keys) a subscription is filed under, or field -1 for the scan list.
  static std::pair<int, std::vector<std::string>> IndexKeys(const registry::Model& model,
                                                            const adapters::FilterList& filters);
  static std::string EntityKey(const registry::Model& model);
  void Unindex(const SubscriptionPtr& sub);
  void RemoveLocked(std::unordered_map<std::string, SubscriptionPtr>::iterator it);
  // REQUIRES mu_: files `sub` (id set) under its client and in the entity index.
  void InsertLocked(const SubscriptionPtr& sub);
  std::atomic<SubscriptionKeeper*> keeper_{nullptr};

  std::string prefix_;
  int max_per_client_;
  std::atomic<uint64_t> changes_{0};  // committed changes numbered so far
  mutable std::mutex mu_;  // guards everything below
  std::unordered_map<std::string, SubscriptionPtr> by_id_;
  std::unordered_map<std::string, std::vector<std::string>> by_client_;
  std::unordered_map<std::string, EntityIndex> entities_;
};

// The key two equal values of `type` share (1 == 1.0 for numbers, true == 1 for booleans).
std::string CanonicalKey(registry::FieldType type, const Value& value);

}  // namespace mqttspec::server
