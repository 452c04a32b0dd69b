#include "server/client_executor.h"

namespace mqttspec::server {

thread_local ClientExecutor::Current* ClientExecutor::current_ = nullptr;

ClientExecutor::ClientExecutor(int threads) : blocking_(*this) {
  if (threads < 1) threads = 1;
  limit_ = static_cast<size_t>(threads);
  max_threads_ = limit_ + kMaxWaitingThreads;
  std::lock_guard lock(mu_);
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

ClientExecutor::Stats ClientExecutor::stats() const {
  std::lock_guard lock(mu_);
  return Stats{threads_.size(), waiting_};
}

void ClientExecutor::WakeOrStart() {
  const bool all_busy = threads_.size() == running_ + waiting_;  // none idle or about to be
  if (!all_busy || running_ >= limit_) {
    WakeOne();
  } else if (threads_.size() < max_threads_ && !stopping_) {
    // Below the limit and every thread busy: some wait in BlockingRegions.
    threads_.emplace_back([this] { Work(); });
  }
}

void ClientExecutor::WakeOne() {
  if (waking_ > 0 || idle_ == 0) return;
  ++waking_;
  ready_cv_.notify_one();
}

void ClientExecutor::Blocking::OnBlock() {
  ClientExecutor& e = executor;
  std::lock_guard lock(e.mu_);
  --e.running_;
  ++e.waiting_;
  if (e.HasWork()) e.WakeOrStart();  // another client's request may run meanwhile
}

void ClientExecutor::Blocking::OnUnblock() {
  std::lock_guard lock(executor.mu_);
  --executor.waiting_;
  ++executor.running_;  // may exceed the limit until this task ends: it is nearly done
}

void ClientExecutor::Blocking::OnOrderFixed() {
  Current* c = current_;
  if (!c || !c->pipelined || !c->taken || c->suspended) return;
  std::lock_guard lock(executor.mu_);
  executor.Detach(*c);
}

void ClientExecutor::Blocking::AwaitTurn() {
  Current* c = current_;
  if (!c || c->suspended) return;  // suspended: its continuation runs at its turn
  std::unique_lock lock(executor.mu_);
  executor.Turn(lock, *c);
}

void ClientExecutor::Blocking::ReleaseTurn() {
  Current* c = current_;
  if (!c || c->suspended) return;
  std::lock_guard lock(executor.mu_);
  if (c->taken || !c->active) return;  // holds the client's place (not detached): keeps it
  c->active = c->strand->active = false;
  executor.Wake(*c->strand);
}

Resumer ClientExecutor::Blocking::Suspend() {
  Current* c = current_;
  if (!c || !c->pipelined || c->suspended) return {};
  ClientExecutor& e = executor;
  {
    std::lock_guard lock(e.mu_);
    if (c->taken) {
      e.Detach(*c);  // the client's next task may start
    } else if (c->active) {
      c->active = c->strand->active = false;
      e.Wake(*c->strand);
    }
    c->suspended = true;
  }
  return [&e, client = c->client, ticket = c->ticket](Continuation k) {
    e.Resume(client, ticket, std::move(k));
  };
}

bool ClientExecutor::Blocking::RequestsWaiting() {
  std::lock_guard lock(executor.mu_);
  return !executor.ready_.empty();
}

void ClientExecutor::Blocking::WhenIdle(Continuation k,
                                        std::chrono::steady_clock::time_point latest) {
  ClientExecutor& e = executor;
  std::lock_guard lock(e.mu_);
  e.idle_tasks_.push_back(IdleTask{std::move(k), latest});
  ++e.pending_;
  e.WakeOrStart();
}

void ClientExecutor::Resume(const std::string& client, uint64_t ticket, Task task) {
  std::lock_guard lock(mu_);
  Strand& s = strands_.find(client)->second;  // kept: the suspended task has not finished
  s.resumptions.emplace(ticket, std::move(task));
  if (s.finished != ticket || s.active) return;  // Wake queues it at its turn
  // A worker whose task has suspended (it led the group commit itself: a lone write) is about to
  // look for work: it takes the first continuation it resumes itself, without a hand-over.
  Current* c = current_;
  const bool self =
      c && c->suspended && !c->takes_resumed && ThreadBlockingObserver() == &blocking_;
  if (self) c->takes_resumed = true;
  QueueResume(s, /*wake=*/!self);
}

void ClientExecutor::QueueResume(Strand& s, bool wake) {
  if (s.resume_queued) return;
  s.resume_queued = true;
  resumable_.push_back(*s.name);
  if (wake) WakeOrStart();
}

std::condition_variable& ClientExecutor::ThreadWaiter() {
  thread_local std::condition_variable cv;  // a thread waits for one thing at a time
  return cv;
}

void ClientExecutor::Wake(Strand& s) {
  if (s.active) return;
  if (auto it = s.turn_waiters.find(s.finished); it != s.turn_waiters.end()) {
    it->second->notify_one();  // the next task in order goes first
  } else if (s.resumptions.count(s.finished)) {
    QueueResume(s);  // so does a suspended one's continuation
  } else if (s.start_waiter) {
    s.start_waiter->notify_one();
  }
}

void ClientExecutor::Idle(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          const std::function<bool()>& until) {
  if (until()) return;
  --running_;
  ++waiting_;
  if (HasWork()) WakeOrStart();
  cv.wait(lock, until);
  --waiting_;
  ++running_;
}

ClientExecutor::Current ClientExecutor::Start(const std::string& client, Strand& s,
                                              bool pipelined) {
  s.taken = true;
  return Current{client, &s, s.next_ticket++, pipelined, /*taken=*/true, /*active=*/false};
}

void ClientExecutor::Detach(Current& c) {
  Strand& s = *c.strand;
  c.taken = s.taken = false;
  if (c.active) {
    c.active = s.active = false;
    Wake(s);
  }
  if (!s.tasks.empty()) {
    ready_.push_back(c.client);
    WakeOrStart();
  }
}

void ClientExecutor::Turn(std::unique_lock<std::mutex>& lock, Current& c) {
  Strand& s = *c.strand;
  if (s.finished == c.ticket && c.active) return;
  if (c.active) {  // earlier tasks may need the strand to finish: give it up while waiting
    c.active = s.active = false;
    Wake(s);
  }
  std::condition_variable& cv = ThreadWaiter();
  s.turn_waiters.emplace(c.ticket, &cv);
  Idle(lock, cv, [&] { return s.finished == c.ticket && !s.active; });
  s.turn_waiters.erase(c.ticket);
  c.active = s.active = true;
}

void ClientExecutor::Finish(std::unique_lock<std::mutex>& lock, Current& c, bool takes_next) {
  Turn(lock, c);  // tasks finish in order
  Strand& s = *c.strand;
  s.finished = c.ticket + 1;
  c.active = s.active = false;
  if (c.taken) {
    c.taken = s.taken = false;
    if (!s.tasks.empty()) {
      ready_.push_back(c.client);  // back of the line: clients take turns
      if (!takes_next) WakeOrStart();
    }
  }
  Wake(s);
  if (s.tasks.empty() && !s.taken && s.finished == s.next_ticket) strands_.erase(c.client);
  if (--pending_ == 0) idle_cv_.notify_all();
}

void ClientExecutor::Post(const std::string& client, Task task, bool pipelined) {
  std::lock_guard lock(mu_);
  auto [it, created] = strands_.try_emplace(client);
  Strand& s = it->second;
  s.name = &it->first;
  s.tasks.push_back(Entry{std::move(task), pipelined});
  ++pending_;
  if (s.taken || s.tasks.size() > 1) return;  // its place is held, or it is queued already
  ready_.push_back(client);
  WakeOrStart();
}

bool ClientExecutor::TryRunHere(const std::string& client, Task& task) {
  Current c;
  {
    std::lock_guard lock(mu_);
    if (stopping_ || strands_.count(client)) return false;
    auto it = strands_.try_emplace(client).first;
    Strand& s = it->second;
    s.name = &it->first;
    c = Start(client, s, /*pipelined=*/false);
    c.active = s.active = true;
    ++pending_;
  }
  task();
  std::unique_lock lock(mu_);
  Finish(lock, c, /*takes_next=*/false);  // what was posted meanwhile goes to the workers
  return true;
}

bool ClientExecutor::Next(std::unique_lock<std::mutex>& lock, Current& c, Task& task) {
  const bool idle_due =
      !idle_tasks_.empty() &&
      (ready_.empty() ? resumable_.empty()
                      : std::chrono::steady_clock::now() >= idle_tasks_.front().latest);
  if (idle_due) {
    task = std::move(idle_tasks_.front().task);
    idle_tasks_.pop_front();
    c = Current{};
    return true;
  }
  if (!resumable_.empty()) {  // continuations first: they finish what has begun
    std::string client = std::move(resumable_.front());
    resumable_.pop_front();
    Strand& s = strands_.find(client)->second;  // kept while a continuation is due
    s.resume_queued = false;
    auto it = s.resumptions.find(s.finished);
    if (s.active || it == s.resumptions.end()) return false;  // Wake queues it at its turn
    task = std::move(it->second);
    s.resumptions.erase(it);
    c = Current{std::move(client), &s, s.finished, /*pipelined=*/true, /*taken=*/false,
                /*active=*/true};
    s.active = true;
    return true;
  }
  std::string client = std::move(ready_.front());
  ready_.pop_front();
  Strand& s = strands_.find(client)->second;
  Entry entry = std::move(s.tasks.front());
  s.tasks.pop_front();
  task = std::move(entry.task);
  c = Start(client, s, entry.pipelined);
  if (entry.pipelined) {  // may start while earlier ones wait for their commits
    std::condition_variable& cv = ThreadWaiter();
    s.start_waiter = &cv;
    Idle(lock, cv, [&] { return !s.active; });
    s.start_waiter = nullptr;
    c.active = s.active = true;
  } else {
    Turn(lock, c);
  }
  return true;
}

void ClientExecutor::Work() {
  ThreadBlockingObserver() = &blocking_;
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    while (!((stopping_ && !HasWork()) || (HasWork() && running_ < limit_))) {
      ready_cv_.wait(lock);
      if (waking_ > 0) --waking_;  // up (or up early: then another may be woken meanwhile)
    }
    --idle_;
    if (!HasWork()) return;  // stopping and nothing left
    ++running_;
    Current c;
    Task task;
    if (Next(lock, c, task)) {
      if (HasWork() && running_ < limit_) WakeOne();  // more than this thread takes
      current_ = c.strand ? &c : nullptr;
      lock.unlock();
      task();
      task = nullptr;
      lock.lock();
      current_ = nullptr;
      if (!c.strand) {  // an idle task
        if (--pending_ == 0) idle_cv_.notify_all();
      } else if (!c.suspended) {  // a suspended task ends here; its continuation finishes it
        Finish(lock, c, /*takes_next=*/true);
      }
    }
    --running_;
    // This thread takes the next ready client itself (the wait below returns at once): wake
    // another only for a second one. Waking one for the first cost two context switches per
    // request whenever the woken thread found nothing left (bench/RESULTS.md §Writes).
    if (ready_.size() + resumable_.size() > 1) WakeOne();
  }
}

void ClientExecutor::Drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return pending_ == 0; });
}

}  // namespace mqttspec::server
