#pragma once
// BlockingRegion: a scope in which the calling thread waits for something that is not CPU work
// (a group commit's fsync, another thread's batch). A thread pool that sizes itself by the
// number of cores (server/client_executor.h) installs a BlockingObserver on its threads and runs
// other work while one of them waits, so a waiting write does not keep other clients' requests
// from the database — the more writes wait together, the bigger the next group commit.
// Code outside such a pool (gRPC's threads, tests) has no observer: a region costs a thread-local
// load. Thread-safety: the observer is per thread; its callbacks run on the waiting thread.

namespace mqttspec {

class BlockingObserver {
 public:
  virtual ~BlockingObserver() = default;
  virtual void OnBlock() = 0;    // the thread is about to wait
  virtual void OnUnblock() = 0;  // it runs again
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

}  // namespace mqttspec
