// GroupCommit (adapters/group_commit.h) with a runner that records its batches: writes that
// arrive while a batch runs share the next one, in arrival order; the row cap and the time cap
// bound a batch, and jobs left over by the time cap run next, in order.
#include "adapters/group_commit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/blocking.h"
#include "server/client_executor.h"

namespace mqttspec::adapters {
namespace {

using namespace std::chrono_literals;

// Waits (bounded) until `n` jobs queue behind the running batch: arrival order made certain.
void WaitEntered(const std::atomic<int>& entered) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (entered == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(entered.load(), 1);
}

void WaitQueued(const GroupCommit& gc, size_t n) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (gc.queued() < n && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(gc.queued(), n);
}

// Runs every job of a batch (within the deadline), recording which ran together.
struct Recorder {
  std::mutex mu;
  std::vector<std::vector<int>> batches;  // the jobs' ids, per batch
  std::atomic<bool> hold{false};          // the first batch waits while set
  std::chrono::microseconds per_job{0};
  std::atomic<int> entered{0};  // batches begun

  size_t Run(const std::vector<WriteJob*>& batch, GroupCommit::Deadline deadline) {
    ++entered;
    while (hold) std::this_thread::sleep_for(1ms);
    std::vector<int> ids;
    size_t ran = 0;
    for (WriteJob* job : batch) {
      if (ran > 0 && std::chrono::steady_clock::now() > deadline) break;
      std::vector<Change> changes;
      job->status = job->run(changes);
      ids.push_back(static_cast<int>(job->rows));  // tests put the id in rows when rows are 1
      std::this_thread::sleep_for(per_job);
      ++ran;
    }
    std::lock_guard lock(mu);
    batches.push_back(ids);
    return ran;
  }
};

TEST(GroupCommit, WritesArrivingWhileABatchRunsShareTheNextOneInOrder) {
  Recorder rec;
  GroupCommit gc({1000, 1s}, [&](auto& b, auto d) { return rec.Run(b, d); });
  rec.hold = true;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  // The first write leads and is held; the others queue behind it, one after another.
  auto submit = [&] {
    WriteJob job;
    job.run = [](std::vector<Change>&) { return OkStatus(); };
    if (gc.Submit(job).ok()) ++ok;
  };
  threads.emplace_back(submit);
  WaitEntered(rec.entered);  // the leader is in its (held) batch now
  for (int i = 1; i <= 8; ++i) threads.emplace_back(submit);
  WaitQueued(gc, 8);
  rec.hold = false;
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 9);
  auto s = gc.stats();
  EXPECT_EQ(s.jobs, 9u);
  EXPECT_EQ(s.batches, 2u);  // the held one, then the eight that waited, together
  EXPECT_EQ(s.largest, 8u);
}

TEST(GroupCommit, ABatchHoldsAtMostMaxRowsAndABiggerJobRunsAlone) {
  Recorder rec;
  GroupCommit gc({10, 1s}, [&](auto& b, auto d) { return rec.Run(b, d); });
  rec.hold = true;
  std::vector<std::thread> threads;
  auto submit = [&](size_t rows) {
    WriteJob job;
    job.rows = rows;
    job.run = [](std::vector<Change>&) { return OkStatus(); };
    EXPECT_TRUE(gc.Submit(job).ok());
  };
  threads.emplace_back(submit, 1);
  WaitEntered(rec.entered);
  // Queued in this order: 4, 4, 4 (12 rows: two batches), then 50 (alone).
  size_t n = 0;
  for (size_t rows : {4, 4, 4, 50}) {
    threads.emplace_back(submit, rows);
    WaitQueued(gc, ++n);
  }
  rec.hold = false;
  for (auto& t : threads) t.join();
  std::lock_guard lock(rec.mu);
  ASSERT_EQ(rec.batches.size(), 4u);
  EXPECT_EQ(rec.batches[1], (std::vector<int>{4, 4}));
  EXPECT_EQ(rec.batches[2], (std::vector<int>{4}));
  EXPECT_EQ(rec.batches[3], (std::vector<int>{50}));
}

TEST(GroupCommit, JobsBeyondTheTimeCapRunInTheNextBatchInOrder) {
  Recorder rec;
  rec.per_job = 5ms;
  GroupCommit gc({1000, 8ms}, [&](auto& b, auto d) { return rec.Run(b, d); });
  rec.hold = true;
  std::vector<std::thread> threads;
  std::mutex order_mu;
  std::vector<int> order;
  auto submit = [&](int id) {
    WriteJob job;
    job.rows = static_cast<size_t>(id);
    job.run = [&, id](std::vector<Change>&) {
      std::lock_guard lock(order_mu);
      order.push_back(id);
      return OkStatus();
    };
    EXPECT_TRUE(gc.Submit(job).ok());
  };
  threads.emplace_back(submit, 1);
  WaitEntered(rec.entered);
  for (int id = 2; id <= 7; ++id) {
    threads.emplace_back(submit, id);
    WaitQueued(gc, static_cast<size_t>(id - 1));
  }
  rec.hold = false;
  for (auto& t : threads) t.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5, 6, 7}));  // arrival order, across batches
  std::lock_guard lock(rec.mu);
  EXPECT_GE(rec.batches.size(), 3u);  // 6 jobs of 5 ms do not fit one 8 ms batch
  for (const auto& b : rec.batches) EXPECT_LE(b.size(), 2u);
}

TEST(GroupCommit, AJobsErrorIsItsOwn) {
  GroupCommit gc({1000, 1s}, [](const std::vector<WriteJob*>& batch, GroupCommit::Deadline) {
    for (WriteJob* job : batch) {
      std::vector<Change> changes;
      job->status = job->run(changes);
    }
    return batch.size();
  });
  WriteJob bad;
  bad.run = [](std::vector<Change>&) -> Status { return MakeError(ErrorCode::kConflict, "dup"); };
  auto st = gc.Submit(bad);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kConflict);
  WriteJob good;
  good.run = [](std::vector<Change>&) { return OkStatus(); };
  EXPECT_TRUE(gc.Submit(good).ok());
}

// Counts the hints Submit gives the executor (common/blocking.h) on this thread.
struct RecordingObserver : BlockingObserver {
  std::string calls;  // B(lock) U(nblock) F(order fixed) T(urn) R(elease turn)
  std::function<void()> on_first_turn;
  void OnBlock() override { calls += 'B'; }
  void OnUnblock() override { calls += 'U'; }
  void OnOrderFixed() override { calls += 'F'; }
  void AwaitTurn() override {
    calls += 'T';
    if (on_first_turn) std::exchange(on_first_turn, nullptr)();
  }
  void ReleaseTurn() override { calls += 'R'; }
};

GroupCommit::Runner RunAll() {
  return [](const std::vector<WriteJob*>& batch, GroupCommit::Deadline) {
    for (WriteJob* job : batch) {
      std::vector<Change> changes;
      job->status = job->run(changes);
    }
    return batch.size();
  };
}

// With `pipeline`, a queued write lets its client's next request start (OrderFixed) and awaits
// its turn first, giving it up again while it waits for its commit; without it (SQLite
// synchronous=normal: commits are fast) the client waits for the commit, holding its place.
// Either way the answer follows the client's earlier ones (the last call is AwaitTurn).
TEST(GroupCommit, OrderFixedOnlyWhenPipelining) {
  for (bool pipeline : {true, false}) {
    GroupCommit gc(GroupCommitOptions{1000, 1s, pipeline}, RunAll());
    RecordingObserver observer;
    ThreadBlockingObserver() = &observer;
    WriteJob job;
    job.run = [](std::vector<Change>&) { return OkStatus(); };
    EXPECT_TRUE(gc.Submit(job).ok());
    ThreadBlockingObserver() = nullptr;
    EXPECT_EQ(observer.calls, pipeline ? "FTRBUT" : "BUT") << "pipeline " << pipeline;
  }
}

// Pipelined, a write whose batch committed while it awaited its turn (another thread led it)
// goes on at once: one wait (the turn), not two (the commit, then the turn).
TEST(GroupCommit, AWriteCommittedWhileItAwaitedItsTurnDoesNotWaitAgain) {
  GroupCommit gc(GroupCommitOptions{1000, 1s, true}, RunAll());
  RecordingObserver observer;
  observer.on_first_turn = [&] {
    std::thread other([&] {  // another client's write: it leads the batch, ours included
      WriteJob job;
      job.run = [](std::vector<Change>&) { return OkStatus(); };
      EXPECT_TRUE(gc.Submit(job).ok());
    });
    other.join();
  };
  ThreadBlockingObserver() = &observer;
  WriteJob job;
  job.run = [](std::vector<Change>&) { return OkStatus(); };
  EXPECT_TRUE(gc.Submit(job).ok());
  ThreadBlockingObserver() = nullptr;
  EXPECT_EQ(observer.calls, "FT");
  EXPECT_EQ(gc.stats().batches, 1u);
  EXPECT_EQ(gc.stats().jobs, 2u);
}

// SubmitAsync from the executor's pipelined tasks (server/client_executor.h): no thread waits
// for a write. While the first batch is held, every other client's writes queue; the committer
// leads them in batches; each write's continuation runs once, after its commit, in its client's
// order — and the executor's two threads were never all blocked.
TEST(GroupCommit, AsyncWritesResumeTheirTasksInOrderAfterTheirCommit) {
  constexpr int kClients = 4, kWrites = 25;
  std::mutex mu;
  std::vector<int> committed;                 // job ids in commit order
  std::map<int, std::vector<int>> continued;  // per client, job ids in continuation order
  std::atomic<bool> hold{true};
  std::atomic<int> batches_entered{0};
  GroupCommit gc(GroupCommitOptions{1000, 1s, true},
                 [&](const std::vector<WriteJob*>& batch, GroupCommit::Deadline) {
                   if (batches_entered++ == 0) {
                     auto deadline = std::chrono::steady_clock::now() + 5s;
                     while (hold && std::chrono::steady_clock::now() < deadline)
                       std::this_thread::sleep_for(1ms);
                   }
                   for (WriteJob* job : batch) {
                     std::vector<Change> changes;
                     job->status = job->run(changes);
                   }
                   return batch.size();
                 });
  {
    server::ClientExecutor ex(2);
    for (int i = 0; i < kWrites; ++i) {
      for (int c = 0; c < kClients; ++c) {
        const int id = c * 1000 + i;
        ex.Post(
            "client" + std::to_string(c),
            [&, id, c] {
              auto job = std::make_shared<JobOf<int>>();
              job->run = [&, id, raw = job.get()](std::vector<Change>&) {
                std::lock_guard lock(mu);
                committed.push_back(id);
                raw->value = id;
                return OkStatus();
              };
              gc.Submit<int>(
                  std::move(job),
                  [&, c](Result<int> r) {
                    ASSERT_TRUE(r.ok());
                    std::lock_guard lock(mu);
                    continued[c].push_back(r.value());
                  },
                  /*suspend=*/true);
            },
            /*pipelined=*/true);
      }
    }
    // Every write but the held batch's queues: nobody blocks on a commit.
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (gc.queued() < size_t{kClients * kWrites - 1} &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    EXPECT_EQ(gc.queued(), size_t{kClients * kWrites - 1});
    hold = false;
    ex.Drain();
  }
  ASSERT_EQ(committed.size(), size_t{kClients * kWrites});
  for (int c = 0; c < kClients; ++c) {
    std::vector<int> want;
    for (int i = 0; i < kWrites; ++i) want.push_back(c * 1000 + i);
    std::vector<int> in_commit_order;
    for (int id : committed)
      if (id / 1000 == c) in_commit_order.push_back(id);
    EXPECT_EQ(in_commit_order, want) << "client " << c;
    EXPECT_EQ(continued[c], want) << "client " << c;
  }
  EXPECT_LE(gc.stats().batches, 3u) << "the queued writes share the committer's batches";
}

// A failing async write's error reaches its continuation; without a pool to suspend on,
// SubmitAsync blocks and the continuation has run when it returns.
TEST(GroupCommit, AsyncWithoutAPoolCompletesBeforeItReturns) {
  GroupCommit gc(GroupCommitOptions{1000, 1s, true}, RunAll());
  auto bad = std::make_shared<JobOf<int>>();
  bad->run = [](std::vector<Change>&) -> Status { return MakeError(ErrorCode::kConflict, "dup"); };
  std::optional<Result<int>> got;
  gc.Submit<int>(
      std::move(bad), [&](Result<int> r) { got = std::move(r); }, true);
  ASSERT_TRUE(got.has_value());
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->error().code, ErrorCode::kConflict);
}

// defer_while_busy (SQLite synchronous=normal): writes posted as requests of several clients
// while the pool's one worker was held. The first write does not lead a batch at once: requests
// wait to start, and their writes join it; the pool leads the batch once it has started them
// all — one commit for every write. Without the option the first write leads a batch of its own.
// With max_rows 3 a batch starts as soon as 3 rows wait.
TEST(GroupCommit, DeferredWhileRequestsWaitWritesShareOneCommitUpToMaxRows) {
  constexpr int kWrites = 6;
  struct Case {
    bool defer;
    size_t max_rows;
  };
  for (Case c : {Case{true, 1000}, Case{false, 1000}, Case{true, 3}}) {
    std::mutex mu;
    std::vector<std::vector<int>> batches;
    std::vector<int> continued;
    GroupCommitOptions options{c.max_rows, 1s, true};
    options.defer_while_busy = c.defer;
    GroupCommit gc(options, [&](const std::vector<WriteJob*>& batch, GroupCommit::Deadline) {
      std::vector<int> ids;
      for (WriteJob* job : batch) {
        std::vector<Change> changes;
        job->status = job->run(changes);
        ids.push_back(static_cast<JobOf<int>*>(job)->value);
      }
      std::lock_guard lock(mu);
      batches.push_back(ids);
      return batch.size();
    });
    {
      server::ClientExecutor ex(1);
      std::atomic<bool> release{false};
      ex.Post("gate", [&] {
        while (!release) std::this_thread::sleep_for(1ms);
      });
      for (int i = 0; i < kWrites; ++i) {
        ex.Post(
            "client" + std::to_string(i),
            [&, i] {
              auto job = std::make_shared<JobOf<int>>();
              job->value = i;
              job->run = [](std::vector<Change>&) { return OkStatus(); };
              gc.Submit<int>(
                  std::move(job),
                  [&](Result<int> r) {
                    ASSERT_TRUE(r.ok());
                    std::lock_guard lock(mu);
                    continued.push_back(r.value());
                  },
                  /*suspend=*/true);
            },
            /*pipelined=*/true);
      }
      release = true;
      ex.Drain();
    }
    SCOPED_TRACE("defer " + std::to_string(c.defer) + ", max_rows " + std::to_string(c.max_rows));
    std::vector<int> all, want;
    for (int i = 0; i < kWrites; ++i) want.push_back(i);
    for (const auto& b : batches) {
      EXPECT_LE(b.size(), c.max_rows);
      all.insert(all.end(), b.begin(), b.end());
    }
    EXPECT_EQ(all, want) << "every write committed once, in order";
    std::sort(continued.begin(), continued.end());
    EXPECT_EQ(continued, want) << "every write's continuation ran";
    ASSERT_FALSE(batches.empty());
    if (!c.defer) {
      EXPECT_EQ(batches[0], std::vector<int>{0}) << "the first write leads at once";
    } else if (c.max_rows == 3) {
      EXPECT_EQ(batches[0], (std::vector<int>{0, 1, 2})) << "3 rows wait: the batch starts";
    } else {
      EXPECT_EQ(batches.size(), 1u) << "one commit for all";
    }
  }
}

// A deferred batch waits for the requests waiting to start, but no longer than max_time: on a
// pool that never runs out of requests (one worker, a stream of slow reads of other clients)
// the write commits once max_time has passed, before the stream ends.
TEST(GroupCommit, ADeferredBatchStartsWithinMaxTimeOnAPoolThatStaysBusy) {
  constexpr int kReads = 100;  // 2 ms each: 200 ms of requests
  std::atomic<int> reads_done{0}, reads_at_commit{-1};
  GroupCommitOptions options{1000, 10ms, true};
  options.defer_while_busy = true;
  GroupCommit gc(options, [&](const std::vector<WriteJob*>& batch, GroupCommit::Deadline) {
    reads_at_commit = reads_done.load();
    for (WriteJob* job : batch) {
      std::vector<Change> changes;
      job->status = job->run(changes);
    }
    return batch.size();
  });
  {
    server::ClientExecutor ex(1);
    std::atomic<bool> release{false};
    ex.Post("gate", [&] {
      while (!release) std::this_thread::sleep_for(1ms);
    });
    ex.Post(
        "writer",
        [&] {
          auto job = std::make_shared<JobOf<int>>();
          job->run = [](std::vector<Change>&) { return OkStatus(); };
          gc.Submit<int>(
              std::move(job), [](Result<int> r) { ASSERT_TRUE(r.ok()); }, true);
        },
        /*pipelined=*/true);
    for (int i = 0; i < kReads; ++i) {
      ex.Post("reader" + std::to_string(i), [&] {
        std::this_thread::sleep_for(2ms);
        ++reads_done;
      });
    }
    release = true;
    ex.Drain();
  }
  EXPECT_GE(reads_at_commit.load(), 1) << "it waited for the requests first";
  EXPECT_LT(reads_at_commit.load(), kReads / 2) << "but not for all of them";
}

}  // namespace
}  // namespace mqttspec::adapters
