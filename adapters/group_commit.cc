#include "adapters/group_commit.h"

#include <algorithm>
#include <exception>

#include "common/blocking.h"

namespace mqttspec::adapters {

GroupCommit::GroupCommit(GroupCommitOptions options, Runner runner)
    : options_(options), runner_(std::move(runner)) {
  options_.max_rows = std::max<size_t>(1, options_.max_rows);
}

GroupCommit::Stats GroupCommit::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

size_t GroupCommit::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

Status GroupCommit::Submit(WriteJob& job) {
  thread_local std::condition_variable waiter;  // a thread waits for one job at a time
  {
    std::lock_guard lock(mu_);
    job.done_ = false;
    job.waiter_ = &waiter;
    queue_.push_back(&job);
  }
  if (options_.pipeline) {
    // Its place in the commit order is taken: the client's next request may start.
    OrderFixed();
    // What follows (After hooks, the answer) comes after the client's earlier requests, which
    // finish after their commits — and those come before this one's. So the turn first: when
    // it comes, the commit is mostly done too (the same batch), one sleep instead of two (a
    // wake-up for the commit, then another for the turn). Else the strand goes back to the
    // client's next request while this one waits for its batch.
    AwaitTurn();
    if (Done(job)) return job.status;
    ReleaseTurn();
  }
  Wait(job);
  AwaitTurn();
  return job.status;
}

bool GroupCommit::Done(const WriteJob& job) const {
  std::lock_guard lock(mu_);
  return job.done_;
}

void GroupCommit::Wait(WriteJob& job) {
  BlockingRegion waiting;
  std::unique_lock lock(mu_);
  while (!job.done_) {
    if (leading_) {  // woken when its batch is done, or when it is first in line to lead
      job.waiter_->wait(lock);
      continue;
    }
    leading_ = true;
    std::vector<WriteJob*> batch;
    size_t rows = 0;
    while (!queue_.empty() &&
           (batch.empty() || rows + queue_.front()->rows <= options_.max_rows)) {
      rows += queue_.front()->rows;
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    size_t ran = 0;
    try {
      ran = runner_(batch, std::chrono::steady_clock::now() + options_.max_time);
    } catch (const std::exception& e) {  // the runner maps what it knows; this is a bug
      for (WriteJob* j : batch) j->status = MakeError(ErrorCode::kInternal, e.what());
      ran = batch.size();
    }
    ran = std::clamp<size_t>(ran, 1, batch.size());
    lock.lock();
    for (size_t i = 0; i < ran; ++i) batch[i]->done_ = true;
    for (size_t i = batch.size(); i > ran; --i) queue_.push_front(batch[i - 1]);
    ++stats_.batches;
    stats_.jobs += ran;
    stats_.largest = std::max<uint64_t>(stats_.largest, ran);
    leading_ = false;
    // Wake only whom it concerns (a notify_all woke every waiting writer for each batch): the
    // jobs that ran, and the first queued one, which leads the next batch.
    for (size_t i = 0; i < ran; ++i) {
      if (batch[i] != &job) batch[i]->waiter_->notify_one();
    }
    if (!queue_.empty() && queue_.front() != &job) queue_.front()->waiter_->notify_one();
  }
}

void TellCommitted(ChangeListener* listener, std::span<WriteJob* const> committed) {
  if (!listener) return;
  std::vector<Change> changes;
  for (WriteJob* job : committed) {
    for (Change& c : job->changes) changes.push_back(std::move(c));
    job->changes.clear();
  }
  if (!changes.empty()) listener->OnCommitted(std::move(changes));
}

}  // namespace mqttspec::adapters
