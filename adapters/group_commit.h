#pragma once
// GroupCommit: one transaction, and so one fsync, for every write that arrives while the previous
// commit is in flight. A writer Submit()s a WriteJob and waits, or SubmitAsync()s it and goes on.
// A writer that finds no batch running leads one itself: it takes the queued jobs in arrival
// order (up to max_rows rows), hands them to the adapter's Runner — one transaction, each job in
// its own savepoint so a failing job rolls back alone, one commit, then the listener hears of the
// committed changes in order — and wakes their threads (SubmitAsync: resumes their tasks). Jobs
// that arrived meanwhile form the next batch, led by the committer thread (started on first need),
// which leads batches while jobs queue. A lone write pays one commit and no hand-over, as before;
// under load a commit is shared by many writes.
//
// Bounds: a batch holds at most max_rows rows (a bigger job runs alone), and takes no further job
// once it has run for max_time — the rest go back to the front of the queue. A job waits for at
// most the batch in flight and its own (defer_while_busy: and at most max_time for the requests
// that waited to start on its pool).
// Submit's waiting is a BlockingRegion (common/blocking.h): the executor runs other clients'
// requests meanwhile, which is what fills the next batch. Once queued, the job's place in the
// commit order is fixed (OrderFixed, if options.pipeline: the client's next request may start and
// queue its write behind it); the caller awaits its turn (AwaitTurn) and its commit before it
// goes on — pipelined, the turn first (see Submit). A waiting thread sleeps on its own condition
// variable: the leader wakes the jobs it ran, nobody else.
// SubmitAsync: no thread waits for the job. The calling task suspends (common/blocking.h Suspend:
// its thread goes on to other requests, the client's next request may start) and the job's
// on_done runs as the task's continuation, on its client's turn, once the batch committed.
// Thread-safety: Submit and SubmitAsync from any thread; the Runner runs on one thread at a time.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "adapters/database.h"
#include "common/blocking.h"
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

  // SubmitAsync's: runs once the job's batch is done (status set), as the continuation of the
  // task that submitted it. It may own the job (the job is not touched after it is taken).
  Continuation on_done;

 private:
  friend class GroupCommit;
  bool done_ = false;                     // guarded by GroupCommit::mu_
  std::condition_variable* waiter_ = nullptr;  // its thread's, woken when done or to lead
  Resumer resume_;                             // SubmitAsync's: queues on_done when done
  BlockingObserver* pool_ = nullptr;  // SubmitAsync's: its thread's pool (alive while queued)
};

// A job with what its statements produce (`value`, read once it committed).
template <typename R, typename Base = WriteJob>
struct JobOf : Base {
  R value{};
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
  // Where a commit costs CPU rather than waiting (SQLite synchronous=normal: no fsync), a batch
  // waits to start while requests wait to start on the pool its writers came from — their
  // writes join it — and starts once they have (the pool runs it when idle, common/blocking.h
  // WhenIdle) or max_rows are queued. Small batches each pay their own commit: the WAL frames
  // of every page they touched, the locks, the statements (bench/RESULTS.md §Writes,
  // 2026-12-05 (3)). A write with nothing behind it (1 in flight) starts at once.
  bool defer_while_busy = false;
};

class GroupCommit {
 public:
  using Deadline = std::chrono::steady_clock::time_point;
  // Runs the jobs of `batch` in order as one transaction, while the deadline has not passed (at
  // least the first), sets each run job's status and tells the listener of the committed changes;
  // returns how many jobs it ran. The others go back to the queue, in order.
  using Runner = std::function<size_t(const std::vector<WriteJob*>& batch, Deadline deadline)>;

  GroupCommit(GroupCommitOptions options, Runner runner);
  ~GroupCommit();  // runs what is queued, then stops the committer thread

  // Blocks until the job has run and its batch committed (or failed); returns job.status.
  Status Submit(WriteJob& job);

  // Runs the job as Submit does, then its on_done — as the continuation of the calling task, which
  // suspends (common/blocking.h); where it cannot, Submit blocks and on_done runs before this
  // returns. The caller must not touch the job after the call.
  void SubmitAsync(WriteJob* job);

  // Runs `job` — SubmitAsync if `suspend`, else Submit — and hands its outcome, its value or its
  // error, to `done`.
  template <typename R, typename Job>
  void Submit(std::shared_ptr<Job> job, std::function<void(Result<R>)> done, bool suspend) {
    WriteJob* raw = job.get();
    raw->on_done = [job = std::move(job), done = std::move(done)]() mutable {
      if (job->status.ok()) {
        done(std::move(job->value));
      } else {
        done(job->status.error());
      }
    };
    if (suspend) return SubmitAsync(raw);
    SubmitAndContinue(raw);
  }

  struct Stats {
    uint64_t batches = 0, jobs = 0, largest = 0;
  };
  Stats stats() const;
  size_t queued() const;  // jobs waiting for a batch (not the running one's)

 private:
  void SubmitAndContinue(WriteJob* job);  // Submit, then its on_done (which may own the job)
  void Wait(WriteJob& job);  // until the job's batch is done, leading batches as needed
  bool Done(const WriteJob& job) const;
  // Runs one batch from the front of the queue (mu_ held by `lock`, released meanwhile), wakes
  // its blocked jobs, resumes its asynchronous ones (outside mu_) and, if jobs are left, wakes
  // the committer to lead the next batch.
  void LeadOne(std::unique_lock<std::mutex>& lock);
  void Committer();  // the committer thread: leads while jobs queue
  // defer_while_busy: the queue waits for the requests waiting on `pool` (mu_ held): true if it
  // does — the pool leads it once idle.
  bool Defer(BlockingObserver* pool);
  void IdleLead();  // the pool's idle task: leads what is queued unless a batch runs

  GroupCommitOptions options_;
  Runner runner_;

  mutable std::mutex mu_;  // guards everything below and each queued job's done_
  std::deque<WriteJob*> queue_;
  bool leading_ = false;  // a thread runs a batch
  bool idle_lead_ = false;  // an IdleLead is due on a pool
  size_t queued_rows_ = 0;
  Stats stats_;
  std::condition_variable commit_cv_;  // the committer's
  bool stopping_ = false;
  std::thread committer_;  // started on first need
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
