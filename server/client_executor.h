#pragma once
// ClientExecutor: a pool of worker threads that runs tasks keyed by client id. Tasks of one
// client run in the order they were posted and never run code at the same time (one client's
// ClientInfo and hooks see one thread at a time); tasks of different clients run in parallel.
// Clients take turns (round robin), so one busy client cannot starve the others.
//
// At most `threads` tasks run at once — but a task that waits (a BlockingRegion, common/
// blocking.h: a write waiting for its group commit) does not count, and the executor starts
// another thread if none is idle (up to `threads` + kMaxWaitingThreads; threads, once started,
// stay), so other clients' requests run meanwhile and the next group commit fills up.
//
// Pipelined tasks (Post(..., pipelined = true): requests) may let the client's next task start
// before they finish: OrderFixed() (their write is queued for a group commit) detaches them from
// the strand; AwaitTurn() waits until every earlier task of the client has finished and takes the
// strand back. Every task finishes in order (the executor awaits its turn at the end), so answers
// leave in order. Other tasks (connect, disconnect) run only once every earlier task finished.
//
// A pipelined task may also Suspend() (common/blocking.h: its write waits for a group commit):
// it ends for its thread when it returns, without finishing — the thread goes on to other work
// instead of sleeping — and its client's next task may start. The Resumer it got queues the
// continuation; a worker runs it at the task's turn (every earlier task of the client finished
// and none runs code), and the task finishes when the continuation returns.
// Thread-safety: Post, TryRunHere, Drain, stats and a Resumer may be called from any thread.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/blocking.h"

namespace mqttspec::server {

class ClientExecutor {
 public:
  explicit ClientExecutor(int threads);
  ~ClientExecutor();  // drains, then joins

  using Task = std::function<void()>;
  void Post(const std::string& client, Task task, bool pipelined = false);

  // Runs `task` on the calling thread if the client has nothing queued or running (its order
  // and one-at-a-time rule hold: tasks posted meanwhile wait for it); returns false, leaving
  // `task` untouched, otherwise. For fronts whose threads may block (gRPC's synchronous server),
  // never for the broker's thread. Not pipelined.
  bool TryRunHere(const std::string& client, Task& task);

  // Blocks until every task posted so far has finished.
  void Drain();

  static constexpr size_t kMaxWaitingThreads = 256;
  struct Stats {
    size_t threads = 0;  // started so far
    size_t waiting = 0;  // in a BlockingRegion or awaiting their turn now
  };
  Stats stats() const;

 private:
  struct Entry {
    Task task;
    bool pipelined = false;
  };
  struct Strand {
    const std::string* name = nullptr;  // its key in strands_
    std::deque<Entry> tasks;
    bool taken = false;  // a started task holds the client's place: no next task may start
    bool active = false;      // a task runs code now (taken, or a detached one after its commit)
    uint64_t next_ticket = 0;  // the next task to start gets this
    uint64_t finished = 0;     // tasks with a smaller ticket have finished
    // Threads waiting for the strand, each on its own condition variable, so that a change wakes
    // only the one it concerns: tasks awaiting their turn (by ticket) and a pipelined task
    // waiting to start (at most one: it holds the client's place).
    std::unordered_map<uint64_t, std::condition_variable*> turn_waiters;
    std::condition_variable* start_waiter = nullptr;
    // Continuations of suspended tasks, by ticket: one runs when its ticket's turn comes.
    std::unordered_map<uint64_t, Task> resumptions;
    bool resume_queued = false;  // in resumable_
  };
  // The task a worker thread runs (thread-local; the Blocking observer acts on it).
  struct Current {
    std::string client;
    Strand* strand = nullptr;  // stays put: a strand with unfinished tasks is not erased
    uint64_t ticket = 0;
    bool pipelined = false;
    bool taken = false;      // holds the client's place
    bool active = false;     // may run code
    bool suspended = false;  // ends with its thread's run; a continuation finishes it
    bool takes_resumed = false;  // suspended: its thread takes the continuation it resumed itself
  };

  void Work();
  bool HasWork() const {  // mu_ held
    return !ready_.empty() || !resumable_.empty() || !idle_tasks_.empty();
  }
  void WakeOrStart();  // a task is ready: wake an idle thread, or start one (mu_ held)
  // Wakes one idle thread unless one is on its way already (mu_ held): the woken thread wakes the
  // next if work is left when it has taken its own (Work). Each ready task woke one, and every
  // thread but the first found nothing to do and slept again — two context switches for nothing.
  void WakeOne();
  // The next continuation, task or idle task to run, in that order — an idle task first once its
  // `latest` has passed (mu_ held): false if the entry taken was stale (a continuation whose turn
  // has not come: it is queued again when it does). An idle task runs with no client (`c.strand`
  // null).
  bool Next(std::unique_lock<std::mutex>& lock, Current& c, Task& task);
  // A suspended task's continuation (its Resumer): queued, and run at its turn.
  void Resume(const std::string& client, uint64_t ticket, Task task);
  // Its turn has come: a worker runs it (mu_ held); `wake`: wake or start one for it.
  void QueueResume(Strand& s, bool wake = true);
  // Starts the strand's next task on this thread (mu_ held): ticket, place, Current.
  Current Start(const std::string& client, Strand& s, bool pipelined);
  void Detach(Current& c);                            // mu_ held: the next task may start
  void Turn(std::unique_lock<std::mutex>& lock, Current& c);  // AwaitTurn, mu_ held
  // Ends the task (in order). `takes_next`: the calling worker goes on to the next ready client
  // itself, so a client that still has tasks needs no other thread woken.
  void Finish(std::unique_lock<std::mutex>& lock, Current& c, bool takes_next);
  // Waits on `cv` until `until` holds, not counted as running meanwhile.
  void Idle(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
            const std::function<bool()>& until);
  // The strand was given up or a task finished: wake the waiter that may go on now, or queue the
  // continuation whose turn it is (mu_ held).
  void Wake(Strand& s);
  static std::condition_variable& ThreadWaiter();  // the calling thread's

  struct Blocking : BlockingObserver {  // installed on every worker thread
    explicit Blocking(ClientExecutor& e) : executor(e) {}
    void OnBlock() override;
    void OnUnblock() override;
    void OnOrderFixed() override;
    void AwaitTurn() override;
    void ReleaseTurn() override;
    Resumer Suspend() override;
    bool RequestsWaiting() override;
    void WhenIdle(Continuation k, std::chrono::steady_clock::time_point latest) override;
    ClientExecutor& executor;
  };
  Blocking blocking_;
  static thread_local Current* current_;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable ready_cv_, idle_cv_;
  std::unordered_map<std::string, Strand> strands_;
  std::deque<std::string> ready_;  // clients whose next task may start, with no worker
  std::deque<std::string> resumable_;  // clients with a continuation whose turn has come
  struct IdleTask {
    Task task;
    std::chrono::steady_clock::time_point latest;
  };
  std::deque<IdleTask> idle_tasks_;  // WhenIdle's: run once no continuation or request is ready
  size_t pending_ = 0;
  size_t limit_ = 1;        // tasks running at once, waiting ones not counted
  size_t max_threads_ = 1;  // limit_ + kMaxWaitingThreads
  size_t running_ = 0;      // threads running a task, not waiting
  size_t waiting_ = 0;      // threads waiting (a BlockingRegion, their turn)
  size_t idle_ = 0;         // threads waiting for work (ready_cv_)
  size_t waking_ = 0;       // of those, woken by WakeOne and not yet up
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace mqttspec::server
