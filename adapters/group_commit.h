#pragma once
// GroupCommit: one transaction, and so one fsync, for every write that arrives while the previous
// commit is in flight. A writer Submit()s a WriteJob and waits. The first waiting thread that finds
// no batch running leads: it takes the queued jobs in arrival order (up to max_rows rows), hands
// them to the adapter's Runner — one transaction, each job in its own savepoint so a failing job
// rolls back alone, one commit, then the listener hears of the committed changes in order — and
// wakes their threads. Jobs that arrived meanwhile form the next batch, led by one of them. A lone
// write pays one commit, as before; under load a commit is shared by many writes.
//
// Bounds: a batch holds at most max_rows rows (a bigger job runs alone), and takes no further job
// once it has run for max_time — the rest go back to the front of the queue. A job's thread waits
// for at most the batch in flight and its own.
// Waiting is a BlockingRegion (common/blocking.h): the executor runs other clients' requests
// meanwhile, which is what fills the next batch. Once queued, the job's place in the commit
// order is fixed (OrderFixed, if options.pipeline: the client's next request may start and queue
// its write behind it); the caller awaits its turn (AwaitTurn) and its commit before it goes on —
// pipelined, the turn first (see Submit).
// A waiting thread sleeps on its own condition variable: the leader wakes the jobs it ran and the
// next leader, nobody else.
// Thread-safety: Submit from any thread; the Runner runs on one thread at a time.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "adapters/database.h"
#include "common/error.h"

namespace mqttspec::adapters {

struct WriteJob {
  // The job's statements, run inside the batch's transaction. They must not begin, commit or roll
  // back; they append the rows they changed to `changes` (told to the listener after the commit)
  // and return ok or the request's error (conflict, invalid_value, …).
  std::function<Status(std::vector<Change>& changes)> run;
  size_t rows = 1;                // its weight against max_rows
  bool single_statement = false;  // alone in its batch, it may run in autocommit

  // Set by the batch: the job's outcome (its own error, or the commit's), its changes.
  Status status = OkStatus();
  std::vector<Change> changes;

  // The job failed (its own error, or its transaction's): it changed nothing.
  void Fail(const Error& e) {
    status = e;
    changes.clear();
  }

 private:
  friend class GroupCommit;
  bool done_ = false;                     // guarded by GroupCommit::mu_
  std::condition_variable* waiter_ = nullptr;  // its thread's, woken when done or to lead
};

struct GroupCommitOptions {
  size_t max_rows = 1000;
  std::chrono::microseconds max_time{10000};
  // A queued job lets its client's next request start (OrderFixed), so one client's writes share
  // commits too. Both adapters pipeline: where a commit waits for a disk or a network (SQLite
  // synchronous=full, PostgreSQL) and — since a job's thread sleeps once, not twice — where
  // commits are fast too (synchronous=normal: bigger batches write a third of the WAL bytes per
  // write; bench/RESULTS.md §Writes, 2026-12-04 evening). false: a job holds its client until
  // it committed.
  bool pipeline = true;
};

class GroupCommit {
 public:
  using Deadline = std::chrono::steady_clock::time_point;
  // Runs the jobs of `batch` in order as one transaction, while the deadline has not passed (at
  // least the first), sets each run job's status and tells the listener of the committed changes;
  // returns how many jobs it ran. The others go back to the queue, in order.
  using Runner = std::function<size_t(const std::vector<WriteJob*>& batch, Deadline deadline)>;

  GroupCommit(GroupCommitOptions options, Runner runner);

  // Blocks until the job has run and its batch committed (or failed); returns job.status.
  Status Submit(WriteJob& job);

  struct Stats {
    uint64_t batches = 0, jobs = 0, largest = 0;
  };
  Stats stats() const;
  size_t queued() const;  // jobs waiting for a batch (not the running one's)

 private:
  void Wait(WriteJob& job);  // until the job's batch is done, leading batches as needed
  bool Done(const WriteJob& job) const;

  GroupCommitOptions options_;
  Runner runner_;

  mutable std::mutex mu_;  // guards everything below and each queued job's done_
  std::deque<WriteJob*> queue_;
  bool leading_ = false;  // a thread runs a batch
  Stats stats_;
};

// Whether a batch runs its jobs without savepoints first. A savepoint costs each job two more
// statements (SQLite: parsed and run in the process) or two more round trips (PostgreSQL), and
// jobs rarely fail; so a batch first runs without them, and only when a job fails is the batch
// rolled back and run again with a savepoint per job — the failing job fails alone, as before.
// After a failure the next kCautiousBatches batches use savepoints from the start, so a stream of
// failing writes does not make every batch run twice.
// Thread-safety: the runner's (one batch at a time).
class SavepointPolicy {
 public:
  static constexpr int kCautiousBatches = 8;
  bool WithoutSavepoints() {
    if (cautious_ == 0) return true;
    --cautious_;
    return false;
  }
  void JobFailed() { cautious_ = kCautiousBatches; }

 private:
  int cautious_ = 0;
};

// Tells `listener` (none: nobody) of the committed jobs' changes, in commit order, in one call;
// the jobs keep none. The adapters' runners call it after their COMMIT.
void TellCommitted(ChangeListener* listener, std::span<WriteJob* const> committed);

}  // namespace mqttspec::adapters
