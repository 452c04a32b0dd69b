#pragma once
// Events: what happens in the service, for the admin API's WatchEvents stream — each answered
// request, each committed change, each connect and disconnect. Nothing is built or queued while
// no one watches (active()). Each watcher has its own bounded queue; a watcher that lets it fill
// is dropped (its stream ends), so a slow watcher never slows the service or the other watchers.
// Thread-safety: all methods from any thread (one mutex for the watcher list, one per watcher).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace mqttspec::server {

struct Event {
  std::string kind;  // request | change | connect | disconnect
  int64_t time_ms = 0;
  std::string client_id, schema, entity, operation, code, record_id, front;
  double duration_ms = 0;
};

// What one watcher wants; each "" = all. `entity`: "entity" or "schema.entity".
struct EventFilter {
  std::string kind, client_id, entity;
  bool Matches(const Event& e) const;
};

class EventWatch {
 public:
  explicit EventWatch(EventFilter filter) : filter_(std::move(filter)) {}
  // Waits up to `timeout` for events and moves them into `out`. Returns false once the watcher
  // has been dropped for falling behind.
  bool Next(std::vector<Event>* out, std::chrono::milliseconds timeout);

 private:
  friend class Events;
  const EventFilter filter_;
  std::mutex mu_;  // guards queue_, dropped_
  std::condition_variable ready_;
  std::deque<Event> queue_;
  bool dropped_ = false;
};

class Events {
 public:
  static constexpr size_t kWatchCapacity = 4096;  // events a watcher may have waiting

  std::shared_ptr<EventWatch> Watch(EventFilter filter);
  void Unwatch(const std::shared_ptr<EventWatch>& watch);

  // Whether anyone watches: check before building an event.
  bool active() const { return watchers_.load(std::memory_order_relaxed) > 0; }
  void Publish(Event event);

  static int64_t NowMillis();

 private:
  mutable std::mutex mu_;  // guards list_
  std::vector<std::shared_ptr<EventWatch>> list_;
  std::atomic<size_t> watchers_{0};
};

}  // namespace mqttspec::server
