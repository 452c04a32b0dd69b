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
  {
    std::lock_guard lock(mu_);
    job.done_ = false;
    queue_.push_back(&job);
  }
  OrderFixed();  // its place in the commit order is taken: the client's next request may start
  Wait(job);
  AwaitTurn();  // what follows (After hooks, the answer) comes after the client's earlier ones
  return job.status;
}

void GroupCommit::Wait(WriteJob& job) {
  BlockingRegion waiting;
  std::unique_lock lock(mu_);
  while (!job.done_) {
    if (leading_) {
      done_cv_.wait(lock);
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
    done_cv_.notify_all();
  }
}

}  // namespace mqttspec::adapters
