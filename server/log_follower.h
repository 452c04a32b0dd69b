#pragma once
// LogFollower: how the service learns of changes when it is not the log's only writer
// (Database::shares_log: other instances over the same PostgreSQL, or capture triggers for other
// applications' writes). One thread reads the change log after the last change_seq it handed on,
// page by page, decodes each change against the registry's model and hands it to the ChangeFeed
// in change_seq order — the instance's own writes included, so every instance notifies in the one
// commit order of the database. It sleeps on the database's ChangeSignal (PostgreSQL:
// LISTEN/NOTIFY), which is only a wake-up: after every wake and every timeout (kPollMs) it reads
// the log again, so a missed notification or a lost connection loses nothing.
//
// It is the database's ChangeListener in this mode: the instance's own commits wake it at once
// (no NOTIFY round trip). Changes of models this instance does not serve are skipped. If the log
// was trimmed past the follower's position (it fell behind by more than the retention), the
// changes in between cannot be told: every subscription ends with a resync_required
// notification (ChangeFeed::EndAll) — visible, never silent.
// Thread-safety: OnCommitted and position() from any thread; one thread of its own.

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "adapters/database.h"
#include "registry/model_registry.h"
#include "server/change_feed.h"

namespace mqttspec::server {

class LogFollower : public adapters::ChangeListener {
 public:
  static constexpr int kPollMs = 1000;  // re-read the log at least this often
  static constexpr size_t kPage = 512;

  // Follows from the newest change at start (earlier ones are nobody's news).
  LogFollower(adapters::Database& db, const registry::ModelRegistry& models, ChangeFeed& feed);
  ~LogFollower() override;  // stops its thread

  void OnCommitted(std::vector<adapters::Change> changes) override;

  // The last change_seq handed to the feed (-1 until the follower has read the log once).
  int64_t position() const { return position_.load(); }

 private:
  void Run();
  // Reads and hands on one page; how many changes it read (-1: the log could not be read).
  int ReadPage();

  adapters::Database& db_;
  const registry::ModelRegistry& models_;
  ChangeFeed& feed_;
  std::unique_ptr<adapters::ChangeSignal> signal_;
  std::atomic<int64_t> position_{-1};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace mqttspec::server
