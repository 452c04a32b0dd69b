#pragma once
// ChangeFeed: turns committed changes into notifications, off the request path. The database
// adapter hands it each commit's changes in commit order (ChangeListener); they wait in a bounded
// queue, and one fan-out thread matches each change against the Subscriptions index and publishes
// a notification per matching subscription. One thread keeps every subscription's notifications
// in commit order and its `seq` gap-free. When the queue is full the committing writer waits
// (back-pressure, counted) — nothing is dropped.
//
// Per change: create → subscriptions matching the new row; delete → those matching the deleted
// row; update → those matching the new row, plus `"match": false` to those that matched the old
// row but not the new one (the row left their view).
// Thread-safety: OnCommitted from any thread; Drain from any thread.

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "adapters/database.h"
#include "server/events.h"
#include "server/subscriptions.h"
#include "server/transport.h"

namespace mqttspec::server {

class ChangeFeed : public adapters::ChangeListener {
 public:
  // `events`, if given, gets a "change" event per change while someone watches.
  ChangeFeed(Subscriptions& subscriptions, Transport& publisher, int qos, size_t capacity,
             Events* events = nullptr);
  ~ChangeFeed() override;  // publishes what is queued, then stops

  void OnCommitted(std::vector<adapters::Change> changes) override;

  // Blocks until every change queued so far has been fanned out.
  void Drain();

  struct Stats {
    uint64_t changes = 0, notifications = 0, backpressure_waits = 0;
  };
  Stats stats() const;

 private:
  struct Numbered {
    uint64_t number;  // Subscriptions::NumberChanges: commit order
    adapters::Change change;
  };
  void Run();
  void FanOut(const Numbered& numbered);

  Subscriptions& subscriptions_;
  Transport& publisher_;
  Events* events_;
  int qos_;
  size_t capacity_;

  mutable std::mutex mu_;  // guards queue_, busy_, stopping_, stats_
  std::condition_variable ready_, space_, idle_;
  std::deque<Numbered> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace mqttspec::server
