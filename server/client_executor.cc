#include "server/client_executor.h"

namespace mqttspec::server {

ClientExecutor::ClientExecutor(int threads) {
  if (threads < 1) threads = 1;
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

ClientExecutor::~ClientExecutor() {
  Drain();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  ready_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ClientExecutor::Post(const std::string& client, Task task) {
  {
    std::lock_guard lock(mu_);
    Strand& s = strands_[client];
    s.tasks.push_back(std::move(task));
    ++pending_;
    if (s.running || s.tasks.size() > 1) return;  // already queued or held by a worker
    ready_.push_back(client);
  }
  ready_cv_.notify_one();
}

bool ClientExecutor::TryRunHere(const std::string& client, Task& task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || strands_.count(client)) return false;
    strands_[client].running = true;
    ++pending_;
  }
  task();
  std::lock_guard lock(mu_);
  auto it = strands_.find(client);
  it->second.running = false;
  if (it->second.tasks.empty()) {
    strands_.erase(it);
  } else {
    ready_.push_back(client);  // what was posted meanwhile goes to the workers, in order
    ready_cv_.notify_one();
  }
  if (--pending_ == 0) idle_cv_.notify_all();
  return true;
}

void ClientExecutor::Work() {
  std::unique_lock lock(mu_);
  for (;;) {
    ready_cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
    if (ready_.empty()) return;  // stopping and nothing left
    std::string client = std::move(ready_.front());
    ready_.pop_front();
    auto it = strands_.find(client);
    Strand& s = it->second;
    s.running = true;
    Task task = std::move(s.tasks.front());
    s.tasks.pop_front();
    lock.unlock();
    task();
    task = nullptr;
    lock.lock();
    it = strands_.find(client);  // rehashing may have moved it
    it->second.running = false;
    if (it->second.tasks.empty()) {
      strands_.erase(it);
    } else {
      ready_.push_back(std::move(client));  // back of the line: clients take turns
      ready_cv_.notify_one();
    }
    if (--pending_ == 0) idle_cv_.notify_all();
  }
}

void ClientExecutor::Drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return pending_ == 0; });
}

}  // namespace mqttspec::server
