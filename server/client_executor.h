#pragma once
// ClientExecutor: a fixed pool of worker threads that runs tasks keyed by client id. Tasks of one
// client run one at a time, in the order they were posted; tasks of different clients run in
// parallel. Clients take turns (round robin), so one busy client cannot starve the others.
// Thread-safety: Post and Drain may be called from any thread.

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

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

 private:
  struct Strand {
    std::deque<Task> tasks;
    bool running = false;  // a worker holds this strand
  };
  void Work();

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable ready_cv_, idle_cv_;
  std::unordered_map<std::string, Strand> strands_;
  std::deque<std::string> ready_;  // clients with tasks and no worker
  size_t pending_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace mqttspec::server
