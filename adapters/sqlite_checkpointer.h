#pragma once
// SqliteCheckpointer: WAL checkpoints on a background connection (PASSIVE, so they never block
// the writer), instead of SQLite's auto-checkpoint, which runs them — fsync included — inside
// whichever commit crossed the threshold while every queued write waits. The writer's WAL hook
// asks for one per kCheckpointPages new frames; a writer that never pauses can outrun them, so
// past kWriterCheckpointPages the writer checkpoints itself, as SQLite would, and the WAL stays
// bounded; when the writer goes quiet for a second with frames in the WAL, it is drained.
// Thread-safety: the hook runs on the writer's thread with the writer's lock held; the
// checkpoints on the checkpointer's own thread; checkpoints() from any thread.

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "adapters/sqlite_connection.h"
#include "common/error.h"

namespace mqttspec::adapters {

class SqliteCheckpointer {
 public:
  // `conn`: a connection of its own to the same file; `writer`: the writer's handle, whose WAL
  // hook it installs (and removes when destroyed: destroy it before the writer).
  static Result<std::unique_ptr<SqliteCheckpointer>> Start(std::unique_ptr<SqliteConnection> conn,
                                                           sqlite3* writer);
  ~SqliteCheckpointer();

  uint64_t checkpoints() const { return done_.load(); }

 private:
  static constexpr int kCheckpointPages = 1000;  // SQLite's own auto-checkpoint threshold
  // Under steady writes a background checkpoint never finds the WAL fully backfilled at a
  // transaction's start, so the WAL restarts only after the writer's own checkpoint: this bound
  // keeps it within journal_size_limit (16 MiB, sqlite_connection.h; 4 000 frames of 4 KiB + 24),
  // so after its first lap every commit overwrites the WAL's blocks instead of growing the file,
  // and an fdatasync that need not journal a new file size is ~30 % cheaper on ext4 (measured:
  // bench/RESULTS.md §Writes). The writer's checkpoint copies at most kCheckpointPages frames.
  // 3 800, not the 4 000 that fit: while a background checkpoint holds the checkpoint lock the
  // writer's attempts fail and commits keep appending; 200 frames (~800 KiB) leave room for them
  // (SqliteCheckpoint test: 17.1 MB once, with the change log doubling each commit's frames; on
  // a loaded CI machine 18.75 MB once — the bound is soft by what a checkpoint's time lets the
  // writer append).
  static constexpr int kWriterCheckpointPages = 3800;

  SqliteCheckpointer(std::unique_ptr<SqliteConnection> conn, sqlite3* writer)
      : conn_(std::move(conn)), writer_(writer) {}
  void OnCommit(sqlite3* writer, int pages);  // the WAL hook
  void Run();

  std::unique_ptr<SqliteConnection> conn_;
  sqlite3* writer_;
  int next_at_ = kCheckpointPages;    // WAL frames; the hook only (the writer's lock is held)
  std::atomic<bool> written_{false};  // commits since the last checkpoint
  std::mutex mu_;                     // guards wanted_, stopping_
  std::condition_variable cv_;
  bool wanted_ = false;
  bool stopping_ = false;
  std::atomic<uint64_t> done_{0};
  std::thread thread_;
};

}  // namespace mqttspec::adapters
