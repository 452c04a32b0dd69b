#include "adapters/group_commit.h"

#include <algorithm>
#include <exception>

#include "common/blocking.h"

namespace mqttspec::adapters {

GroupCommit::GroupCommit(GroupCommitOptions options, Runner runner)
    : options_(options), runner_(std::move(runner)) {
  options_.max_rows = std::max<size_t>(1, options_.max_rows);
}

GroupCommit::~GroupCommit() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  commit_cv_.notify_one();
  if (committer_.joinable()) committer_.join();
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
    job.pool_ = nullptr;
    queue_.push_back(&job);
    queued_rows_ += job.rows;
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

void GroupCommit::SubmitAsync(WriteJob* job) {
  std::unique_lock lock(mu_);
  // Suspending lets the client's next request start: its write must queue behind this one, so
  // both happen under mu_ (the executor's lock is taken inside ours, never the other way round).
  Resumer resume = Suspend();
  if (!resume) {  // nothing to go on with meanwhile: wait
    lock.unlock();
    return SubmitAndContinue(job);
  }
  job->done_ = false;
  job->waiter_ = nullptr;
  job->resume_ = std::move(resume);
  job->pool_ = ThreadBlockingObserver();
  queue_.push_back(job);
  queued_rows_ += job->rows;
  if (leading_) return;  // the batch in flight hands the queue on
  if (Defer(job->pool_)) return;
  // None in flight: lead one now. (The job may be gone afterwards: its continuation owns it.)
  BlockingRegion leading;
  LeadOne(lock);
}

void GroupCommit::SubmitAndContinue(WriteJob* job) {
  (void)Submit(*job);                           // its outcome is in job->status
  Continuation done = std::move(job->on_done);  // owns the job now
  done();
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
    LeadOne(lock);
  }
}

void GroupCommit::LeadOne(std::unique_lock<std::mutex>& lock) {
  leading_ = true;
  std::vector<WriteJob*> batch;
  size_t rows = 0;
  while (!queue_.empty() && (batch.empty() || rows + queue_.front()->rows <= options_.max_rows)) {
    rows += queue_.front()->rows;
    batch.push_back(queue_.front());
    queue_.pop_front();
  }
  queued_rows_ -= rows;
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
  for (size_t i = batch.size(); i > ran; --i) {
    queue_.push_front(batch[i - 1]);
    queued_rows_ += batch[i - 1]->rows;
  }
  ++stats_.batches;
  stats_.jobs += ran;
  stats_.largest = std::max<uint64_t>(stats_.largest, ran);
  leading_ = false;
  // Wake only whom it concerns (a notify_all woke every waiting writer for each batch): the
  // blocked jobs that ran. The asynchronous ones are resumed below; the committer leads next.
  std::vector<std::pair<Resumer, Continuation>> resumed;
  for (size_t i = 0; i < ran; ++i) {
    WriteJob* j = batch[i];
    j->done_ = true;
    if (j->resume_) {
      resumed.emplace_back(std::move(j->resume_), std::move(j->on_done));
    } else {
      j->waiter_->notify_one();  // the job may be gone once its thread runs: not touched after
    }
  }
  // The committer leads the next batch. (The first job's thread, if it has one, may not be
  // waiting yet — it may await its turn first — and the jobs behind it would wait for it.)
  if (!queue_.empty() && !Defer(queue_.back()->pool_)) {
    if (!committer_.joinable()) committer_ = std::thread([this] { Committer(); });
    commit_cv_.notify_one();
  }
  if (resumed.empty()) return;
  lock.unlock();
  for (auto& [resume, done] : resumed) resume(std::move(done));  // in commit order
  lock.lock();
}

void GroupCommit::Committer() {
  std::unique_lock lock(mu_);
  for (;;) {
    commit_cv_.wait(lock, [&] { return !leading_ && (stopping_ || !queue_.empty()); });
    if (queue_.empty()) return;  // stopping, and nothing left
    LeadOne(lock);
  }
}

bool GroupCommit::Defer(BlockingObserver* pool) {
  if (!options_.defer_while_busy || !pool || stopping_) return false;
  if (queued_rows_ >= options_.max_rows) return false;
  if (idle_lead_) return true;  // one is due already
  if (!pool->RequestsWaiting()) return false;
  idle_lead_ = true;
  pool->WhenIdle([this] { IdleLead(); }, std::chrono::steady_clock::now() + options_.max_time);
  return true;
}

void GroupCommit::IdleLead() {
  std::unique_lock lock(mu_);
  idle_lead_ = false;
  if (leading_ || queue_.empty()) return;  // a batch runs: it hands the queue on
  BlockingRegion leading;
  LeadOne(lock);
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
