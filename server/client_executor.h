#pragma once
// ClientExecutor: a fixed pool of worker threads that runs tasks keyed by client id. Tasks of one
// client run one at a time, in the order they were posted; tasks of different clients run in
// parallel. Clients take turns (round robin), so one busy client cannot starve the others.
// At most `threads` tasks run at once — but a task that waits (a BlockingRegion, common/
// blocking.h: a write waiting for its group commit) does not count, and the executor starts
// another thread if none is idle (up to `threads` + kMaxWaitingThreads), so other clients'
// requests run meanwhile and the next group commit fills up. Threads, once started, stay.
// Thread-safety: Post and Drain may be called from any thread.

#include <condition_variable>
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
  void Post(const std::string& client, Task task);

  // Runs `task` on the calling thread if the client has nothing queued or running (its order
  // and one-at-a-time rule hold: tasks posted meanwhile wait for it); returns false, leaving
  // `task` untouched, otherwise. For fronts whose threads may block (gRPC's synchronous server),
  // never for the broker's thread.
  bool TryRunHere(const std::string& client, Task& task);

  // Blocks until every task posted so far has finished.
  void Drain();

  static constexpr size_t kMaxWaitingThreads = 256;
  struct Stats {
    size_t threads = 0;  // started so far
    size_t waiting = 0;  // in a BlockingRegion now
  };
  Stats stats() const;

 private:
  struct Strand {
    std::deque<Task> tasks;
    bool running = false;  // a worker holds this strand
  };
  void Work();
  void WakeOrStart();  // a task is ready: wake an idle thread, or start one (mu_ held)

  struct Blocking : BlockingObserver {  // installed on every worker thread
    explicit Blocking(ClientExecutor& e) : executor(e) {}
    void OnBlock() override;
    void OnUnblock() override;
    ClientExecutor& executor;
  };
  Blocking blocking_;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable ready_cv_, idle_cv_;
  std::unordered_map<std::string, Strand> strands_;
  std::deque<std::string> ready_;  // clients with tasks and no worker
  size_t pending_ = 0;
  size_t limit_ = 1;        // tasks running at once, waiting ones not counted
  size_t max_threads_ = 1;  // limit_ + kMaxWaitingThreads
  size_t running_ = 0;      // threads running a task, not waiting
  size_t waiting_ = 0;      // threads waiting in a BlockingRegion
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace mqttspec::server
