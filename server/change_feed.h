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

#include <atomic>
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

// How fast a resume replays (changes.replay_rate, replay_burst): a token bucket per resume, so a
// replay of a long backlog does not overrun the broker's queue for the subscriber
// (limits.max_queued_messages) — the broker cannot tell us how far delivery got. rate 0: unpaced.
struct ReplayPace {
  double rate = 20000;  // notifications per second
  size_t burst = 500;   // sent at once at most
};

class ChangeFeed : public adapters::ChangeListener {
 public:
  // `events`, if given, gets a "change" event per change while someone watches.
  ChangeFeed(Subscriptions& subscriptions, Transport& publisher, int qos, size_t capacity,
             Events* events = nullptr, ReplayPace pace = {});
  ~ChangeFeed() override;  // publishes what is queued, then stops

  void OnCommitted(std::vector<adapters::Change> changes) override;

  // Blocks until every change queued so far has been fanned out.
  void Drain();

  // Resumes `subscription` (added with live false) after change `since`: replays, in order,
  // every logged change after it that matches the subscription (docs/protocol.md "Resuming"),
  // then the replay_complete marker, and makes it live — no gap and no duplicate at the seam:
  // the replay reads the log in pages from `db` until it has reached the newest change this feed
  // was told of, and turns live under the lock that numbers changes. Runs on the caller's thread
  // (the subscriber's strand, after the subscribe answer left). If the log no longer reaches
  // back, or cannot be read, the subscription ends with a resync_required notification.
  // `marker` false: no replay_complete (a subscription taken over from another instance goes on
  // as if nothing happened, server/cluster.h).
  void Resume(const SubscriptionPtr& subscription, int64_t since, adapters::Database& db,
              bool marker = true);
  static constexpr size_t kReplayPage = 512;
  // Replays in progress stop at their next change, and later ones at once (the service is
  // stopping: a long replay must not hold up shutdown). Any thread.
  void StopReplays() { replays_stopped_.store(true); }

  // Ends every subscription with a resync_required notification (`why`; `change_seq`: the last
  // change told): changes after it can no longer be told (LogFollower). Any thread.
  void EndAll(int64_t change_seq, const Error& why);

  // Where every subscription stands, taken between two changes of the fan-out: every matching
  // change up to `change_seq` has been handed to the transport, and each live subscription's
  // last seq (replaying ones are left out: their replay is ahead or behind). For the cluster's
  // checkpoints. Any thread.
  struct Position {
    int64_t change_seq = 0;
    std::vector<std::pair<SubscriptionPtr, uint64_t>> seqs;
  };
  Position Checkpoint();

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
  void Send(const Subscription& subscription, std::string payload);
  // Ends a subscription the feed can no longer serve: here and wherever it is kept.
  void Forget(const Subscription& subscription);
  // One logged change replayed to `subscription` if it matches: how many notifications it sent
  // (0 or 1). Errors: internal (a row the model cannot read).
  class Pacer;
  Result<int> ReplayOne(Subscription& subscription, const adapters::LoggedChange& change,
                        Pacer& pacer);

  Subscriptions& subscriptions_;
  Transport& publisher_;
  Events* events_;
  int qos_;
  size_t capacity_;
  ReplayPace pace_;

  mutable std::mutex mu_;  // guards queue_, busy_, stopping_, stats_, last_change_seq_
  std::condition_variable ready_, space_, idle_;
  std::deque<Numbered> queue_;
  bool busy_ = false;
  bool stopping_ = false;
  Stats stats_;
  int64_t last_change_seq_ = 0;  // the newest change_seq OnCommitted numbered
  std::atomic<bool> replays_stopped_{false};
  // Held by the fan-out thread for each change (FanOut and fanned_through_), so Checkpoint sees
  // the position between two changes.
  std::mutex fanout_mu_;
  int64_t fanned_through_ = 0;  // guarded by fanout_mu_: the change_seq of the last fanned out
  std::thread thread_;
};

}  // namespace mqttspec::server
