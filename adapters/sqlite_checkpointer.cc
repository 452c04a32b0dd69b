#include "adapters/sqlite_checkpointer.h"

#include <chrono>

namespace mqttspec::adapters {

Result<std::unique_ptr<SqliteCheckpointer>> SqliteCheckpointer::Start(
    std::unique_ptr<SqliteConnection> conn, sqlite3* writer) {
  // A connection attaches to the WAL only once it has read the database; until then a checkpoint
  // through it silently does nothing.
  if (auto st = conn->Exec("SELECT count(*) FROM sqlite_master"); !st.ok()) return st.take_error();
  auto c = std::unique_ptr<SqliteCheckpointer>(new SqliteCheckpointer(std::move(conn), writer));
  sqlite3_wal_hook(
      writer,
      [](void* self, sqlite3* db, const char*, int pages) -> int {
        static_cast<SqliteCheckpointer*>(self)->OnCommit(db, pages);
        return SQLITE_OK;
      },
      c.get());
  c->thread_ = std::thread([p = c.get()] { p->Run(); });
  return c;
}

SqliteCheckpointer::~SqliteCheckpointer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  sqlite3_wal_hook(writer_, nullptr, nullptr);
}

void SqliteCheckpointer::OnCommit(sqlite3* writer, int pages) {
  written_.store(true, std::memory_order_relaxed);
  // Once per kCheckpointPages new frames: under steady writes the WAL never drains completely, so
  // asking on every commit past the threshold meant an fsync per commit.
  if (pages < next_at_ - kCheckpointPages) next_at_ = kCheckpointPages;  // the WAL restarted
  if (pages >= kWriterCheckpointPages) {  // the backstop: bounded, as SQLite's own
    sqlite3_wal_checkpoint_v2(writer, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    next_at_ = pages + kCheckpointPages;
  } else if (pages >= next_at_) {
    next_at_ = pages + kCheckpointPages;
    std::lock_guard lock(mu_);
    wanted_ = true;
    cv_.notify_one();
  }
}

void SqliteCheckpointer::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    // Asked for (every kCheckpointPages new frames), or the writer has gone quiet for a second
    // with frames still in the WAL: drain it then, so a pause leaves a small WAL behind.
    bool asked = cv_.wait_for(lock, std::chrono::seconds(1), [&] { return wanted_ || stopping_; });
    if (stopping_) return;
    const bool idle_drain = !asked && written_.exchange(false);
    if (!asked && !idle_drain) continue;
    wanted_ = false;
    written_ = false;
    lock.unlock();
    int log = 0, done = 0;
    int rc =
        sqlite3_wal_checkpoint_v2(conn_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc == SQLITE_OK) done_.fetch_add(1, std::memory_order_relaxed);
    lock.lock();
  }
}

}  // namespace mqttspec::adapters
