#pragma once
// Waiting and ordering hints from deep inside a request to the thread pool that runs it
// (server/client_executor.h), through a per-thread observer. Code outside such a pool (gRPC's
// threads, tests) has no observer: every hint is then a thread-local load and nothing else.
//
// - BlockingRegion: a scope in which the thread waits for something that is not CPU work (a
//   group commit's fsync). The pool runs other clients' requests meanwhile — the more writes
//   wait together, the bigger the next group commit.
// - OrderFixed(): the running request's effect has its place in the commit order (its write is
//   queued for a group commit). The client's next request may start now, while this one waits
//   for its commit — a client's writes share commits too.
// - AwaitTurn(): blocks until every earlier request of the running request's client has
//   finished (answered), and gives the request the client's strand back. Reads call it before
//   reading (they see every earlier write), a write after its commit (its After hooks and answer
//   follow the earlier ones'), every request before its answer leaves.
// - ReleaseTurn(): a request that let its client's next one start (OrderFixed) and then awaited
//   its turn gives the strand up again while it waits for something else (its commit); it awaits
//   its turn again before it goes on.
// - Suspend(): the running request goes on later, as a continuation, instead of blocking its
//   thread (a write queued for its group commit): it returns a Resumer, and the request ends for
//   its thread when it returns — the client's next request may start (as after OrderFixed). The
//   Resumer, called exactly once from any thread, runs the continuation on the pool at the
//   request's turn (every earlier request of the client finished); the request finishes when the
//   continuation returns. An empty Resumer: the thread cannot suspend (no pool, or a task that is
//   not pipelined) — the caller blocks instead.
// - RequestsWaiting() / WhenIdle(): whether requests wait to start on the pool (their writes may
//   join the next group commit if it starts a little later), and a task the pool runs once none
//   does, or at the latest when a worker picks work after `latest` (a deferred group commit:
//   common to all clients, run by whichever worker runs out of requests first; the pool's Drain
//   waits for it).
// Thread-safety: the observer is per thread; its callbacks run on the calling thread.

#include <chrono>
#include <functional>

namespace mqttspec {

using Continuation = std::function<void()>;
using Resumer = std::function<void(Continuation)>;

class BlockingObserver {
 public:
  virtual ~BlockingObserver() = default;
  virtual void OnBlock() = 0;    // the thread is about to wait
  virtual void OnUnblock() = 0;  // it runs again
  virtual void OnOrderFixed() {}
  virtual void AwaitTurn() {}
  virtual void ReleaseTurn() {}
  virtual Resumer Suspend() { return {}; }
  virtual bool RequestsWaiting() { return false; }
  virtual void WhenIdle(Continuation k, std::chrono::steady_clock::time_point /*latest*/) { k(); }
};

// The calling thread's observer (nullptr: none).
inline BlockingObserver*& ThreadBlockingObserver() {
  thread_local BlockingObserver* observer = nullptr;
  return observer;
}

class BlockingRegion {
 public:
  BlockingRegion() : observer_(ThreadBlockingObserver()) {
    if (observer_) observer_->OnBlock();
  }
  ~BlockingRegion() {
    if (observer_) observer_->OnUnblock();
  }
  BlockingRegion(const BlockingRegion&) = delete;
  BlockingRegion& operator=(const BlockingRegion&) = delete;

 private:
  BlockingObserver* observer_;
};

inline void OrderFixed() {
  if (auto* o = ThreadBlockingObserver()) o->OnOrderFixed();
}

inline void AwaitTurn() {
  if (auto* o = ThreadBlockingObserver()) o->AwaitTurn();
}

inline void ReleaseTurn() {
  if (auto* o = ThreadBlockingObserver()) o->ReleaseTurn();
}

inline Resumer Suspend() {
  if (auto* o = ThreadBlockingObserver()) return o->Suspend();
  return {};
}

}  // namespace mqttspec
