#include "server/client_executor.h"

namespace mqttspec::server {

ClientExecutor::ClientExecutor(int threads) : blocking_(*this) {
  if (threads < 1) threads = 1;
  limit_ = static_cast<size_t>(threads);
  max_threads_ = limit_ + kMaxWaitingThreads;
  std::lock_guard lock(mu_);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Work(); });
}

void ClientExecutor::Blocking::OnBlock() {
  ClientExecutor& e = executor;
  std::lock_guard lock(e.mu_);
  --e.running_;
  ++e.waiting_;
  if (!e.ready_.empty()) e.WakeOrStart();  // another client's request may run meanwhile
}

void ClientExecutor::WakeOrStart() {
  const bool all_busy = threads_.size() == running_ + waiting_;  // none idle or about to be
  if (!all_busy || running_ >= limit_) {
    ready_cv_.notify_one();
  } else if (threads_.size() < max_threads_ && !stopping_) {
    // Below the limit and every thread busy: some wait in BlockingRegions.
    threads_.emplace_back([this] { Work(); });
  }
}

void ClientExecutor::Blocking::OnUnblock() {
  std::lock_guard lock(executor.mu_);
  --executor.waiting_;
  ++executor.running_;  // may exceed the limit until this task ends: it is nearly done
}

ClientExecutor::Stats ClientExecutor::stats() const {
  std::lock_guard lock(mu_);
  return Stats{threads_.size(), waiting_};
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
    WakeOrStart();
  }
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
    WakeOrStart();
  }
  if (--pending_ == 0) idle_cv_.notify_all();
  return true;
}

void ClientExecutor::Work() {
  ThreadBlockingObserver() = &blocking_;
  std::unique_lock lock(mu_);
  for (;;) {
    ready_cv_.wait(lock, [&] {
      return (stopping_ && ready_.empty()) || (!ready_.empty() && running_ < limit_);
    });
    if (ready_.empty()) return;  // stopping and nothing left
    ++running_;
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
    --running_;
    it = strands_.find(client);  // rehashing may have moved it
    it->second.running = false;
    if (it->second.tasks.empty()) {
      strands_.erase(it);
    } else {
      ready_.push_back(std::move(client));  // back of the line: clients take turns
    }
    if (!ready_.empty()) ready_cv_.notify_one();
    if (--pending_ == 0) idle_cv_.notify_all();
  }
}

void ClientExecutor::Drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return pending_ == 0; });
}

}  // namespace mqttspec::server
