#include "server/client_executor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mqttspec::server {
namespace {

using namespace std::chrono_literals;

TEST(ClientExecutor, TryRunHereRunsOnTheCallerOnlyWhenTheClientIsIdleAndKeepsItsOrder) {
  ClientExecutor ex(2);
  std::mutex mu;
  std::vector<int> order;
  std::atomic<bool> release{false};
  // Idle client: runs right here, on this thread.
  const auto me = std::this_thread::get_id();
  std::thread::id ran_on;
  ClientExecutor::Task here = [&] { ran_on = std::this_thread::get_id(); };
  ASSERT_TRUE(ex.TryRunHere("a", here));
  EXPECT_EQ(ran_on, me);
  // While a posted task of "a" runs (blocked), TryRunHere refuses and leaves the task intact.
  ex.Post("a", [&] {
    while (!release) std::this_thread::yield();
    std::lock_guard l(mu);
    order.push_back(1);
  });
  ClientExecutor::Task second = [&] {
    std::lock_guard l(mu);
    order.push_back(2);
  };
  EXPECT_FALSE(ex.TryRunHere("a", second));
  ASSERT_TRUE(second) << "a refused task is not consumed";
  ex.Post("a", std::move(second));
  // Another client is not held up.
  ClientExecutor::Task other = [] {};
  EXPECT_TRUE(ex.TryRunHere("b", other));
  release = true;
  ex.Drain();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  // A task posted while an inline one runs waits for it, then runs on a worker.
  std::atomic<bool> inline_done{false}, posted_ran_after{false};
  ClientExecutor::Task first = [&] {
    ex.Post("c", [&] { posted_ran_after = inline_done.load(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    inline_done = true;
  };
  ASSERT_TRUE(ex.TryRunHere("c", first));
  ex.Drain();
  EXPECT_TRUE(posted_ran_after);
}

TEST(ClientExecutor, TasksOfOneClientRunInOrderAndNeverOverlap) {
  ClientExecutor ex(4);
  std::mutex mu;
  std::map<std::string, std::vector<int>> seen;
  std::map<std::string, int> running;
  std::atomic<bool> overlap{false};
  for (int i = 0; i < 200; ++i) {
    for (std::string c : {"a", "b", "c"}) {
      ex.Post(c, [&, c, i] {
        {
          std::lock_guard l(mu);
          if (++running[c] > 1) overlap = true;
        }
        std::this_thread::yield();
        std::lock_guard l(mu);
        --running[c];
        seen[c].push_back(i);
      });
    }
  }
  ex.Drain();
  EXPECT_FALSE(overlap);
  for (std::string c : {"a", "b", "c"}) {
    ASSERT_EQ(seen[c].size(), 200u);
    for (int i = 0; i < 200; ++i) EXPECT_EQ(seen[c][i], i);
  }
}

TEST(ClientExecutor, DifferentClientsRunInParallel) {
  ClientExecutor ex(2);
  std::atomic<int> arrived{0};
  std::atomic<bool> both{false};
  for (std::string c : {"a", "b"}) {
    ex.Post(c, [&] {
      ++arrived;
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (arrived < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      if (arrived == 2) both = true;
    });
  }
  ex.Drain();
  EXPECT_TRUE(both);  // the second task started while the first was still running
}

// A task waiting in a BlockingRegion (a write waiting for its group commit) does not hold the
// executor's only thread: another client's task runs meanwhile (a new thread is started).
TEST(ClientExecutor, AWaitingTaskLetsOtherClientsRun) {
  ClientExecutor ex(1);
  std::atomic<bool> other_ran{false};
  std::atomic<bool> saw_other{false};
  ex.Post("waiter", [&] {
    BlockingRegion waiting;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!other_ran && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    saw_other = other_ran.load();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the waiter holds the thread
  ex.Post("other", [&] { other_ran = true; });
  ex.Drain();
  EXPECT_TRUE(saw_other);
  EXPECT_EQ(ex.stats().threads, 2u);
  EXPECT_EQ(ex.stats().waiting, 0u);
}

// Without a region, one thread runs one task at a time: the limit holds.
TEST(ClientExecutor, TasksThatDoNotWaitRunWithinTheThreadLimit) {
  ClientExecutor ex(1);
  std::atomic<int> running{0}, most{0};
  for (int c = 0; c < 4; ++c) {
    ex.Post("c" + std::to_string(c), [&] {
      int now = ++running;
      int m = most.load();
      while (now > m && !most.compare_exchange_weak(m, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      --running;
    });
  }
  ex.Drain();
  EXPECT_EQ(most.load(), 1);
  EXPECT_EQ(ex.stats().threads, 1u);
}

// A pipelined task that has fixed its order (its write is queued) lets the client's next task
// start; the tasks still finish in order, and two never run code of the client at once.
TEST(ClientExecutor, PipelinedTasksOverlapOnlyWhileWaitingAndFinishInOrder) {
  ClientExecutor ex(2);
  std::mutex mu;
  std::vector<std::string> log;
  std::atomic<int> in_code{0}, overlap{0};
  std::atomic<bool> second_started{false};
  auto note = [&](const std::string& what) {
    std::lock_guard lock(mu);
    log.push_back(what);
  };
  auto code = [&](const std::string& what) {  // runs code of the client: never two at once
    if (++in_code > 1) ++overlap;
    note(what);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    --in_code;
  };
  ex.Post("a", [&] {
    code("1 before");
    OrderFixed();
    {
      BlockingRegion commit;  // waits "for its commit" until the next task has started
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (!second_started && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    AwaitTurn();
    code("1 after");
  }, /*pipelined=*/true);
  ex.Post("a", [&] {
    second_started = true;
    code("2 before");
    AwaitTurn();  // a read: after every earlier task
    code("2 after");
  }, /*pipelined=*/true);
  ex.Post("a", [&] { code("3 disconnect"); });  // not pipelined: after both
  ex.Drain();
  EXPECT_TRUE(second_started);
  EXPECT_EQ(overlap.load(), 0);
  EXPECT_EQ(log, (std::vector<std::string>{"1 before", "2 before", "1 after", "2 after",
                                           "3 disconnect"}));
}

// A task that never fixes its order keeps the client's place: the next one waits for it.
TEST(ClientExecutor, PipelinedTasksWithoutOrderFixedRunOneAfterAnother) {
  ClientExecutor ex(2);
  std::atomic<int> running{0}, most{0};
  for (int i = 0; i < 20; ++i) {
    ex.Post("a", [&] {
      int now = ++running;
      int m = most.load();
      while (now > m && !most.compare_exchange_weak(m, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      --running;
    }, /*pipelined=*/true);
  }
  ex.Drain();
  EXPECT_EQ(most.load(), 1);
}

TEST(ClientExecutor, SlowClientDoesNotBlockOthers) {
  ClientExecutor ex(2);
  std::atomic<bool> release{false};
  std::atomic<int> fast_done{0};
  ex.Post("slow", [&] {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!release && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  });
  for (int i = 0; i < 100; ++i) ex.Post("fast", [&] { ++fast_done; });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (fast_done < 100 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(fast_done, 100);
  release = true;
  ex.Drain();
}

// A suspended task frees its thread (one thread here) and lets its client's next tasks start;
// continuations run at their tasks' turns whatever order they are resumed in, a later read
// awaits them, and Drain waits for them.
TEST(ClientExecutor, SuspendedTasksFinishThroughTheirContinuationsInOrder) {
  ClientExecutor ex(1);
  std::mutex mu;
  std::vector<std::string> log;
  std::map<int, Resumer> resumers;
  auto note = [&](const std::string& what) {
    std::lock_guard lock(mu);
    log.push_back(what);
  };
  for (int i = 1; i <= 2; ++i) {
    ex.Post(
        "a",
        [&, i] {
          Resumer r = Suspend();
          ASSERT_TRUE(r);
          AwaitTurn();  // suspended: no-op (its continuation runs at its turn)
          std::lock_guard lock(mu);
          log.push_back(std::to_string(i) + " suspended");
          resumers[i] = std::move(r);
        },
        /*pipelined=*/true);
  }
  ex.Post(
      "a",
      [&] {
        note("3 read");
        AwaitTurn();
        note("3 after");
      },
      /*pipelined=*/true);
  ex.Post("a", [&] { note("4 disconnect"); });  // not pipelined: after all of them
  auto logged = [&](const std::string& what) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(mu);
        if (std::find(log.begin(), log.end(), what) != log.end()) return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  };
  ASSERT_TRUE(logged("3 read"));
  Resumer r1, r2;
  {
    std::lock_guard lock(mu);
    r1 = std::move(resumers[1]);
    r2 = std::move(resumers[2]);
  }
  r2([&] { note("2 done"); });  // resumed first, runs second
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(std::count(log.begin(), log.end(), "2 done"), 0) << "ran before task 1 finished";
  }
  std::thread other([&] { r1([&] { note("1 done"); }); });  // from any thread
  other.join();
  ex.Drain();
  EXPECT_EQ(log, (std::vector<std::string>{"1 suspended", "2 suspended", "3 read", "1 done",
                                           "2 done", "3 after", "4 disconnect"}));
}

// Only a pipelined task on the pool may suspend; elsewhere the caller blocks instead.
TEST(ClientExecutor, OnlyPipelinedTasksSuspend) {
  EXPECT_FALSE(Suspend());  // no pool
  ClientExecutor ex(1);
  std::atomic<int> empty{0};
  ex.Post("a", [&] { empty += !Suspend(); });  // not pipelined
  ClientExecutor::Task here = [&] { empty += !Suspend(); };
  ASSERT_TRUE(ex.TryRunHere("b", here));
  ex.Drain();
  EXPECT_EQ(empty.load(), 2);
}

// WhenIdle (common/blocking.h): a task the pool runs once no request waits to start — after
// the requests posted before and meanwhile, whoever's they are — or, with requests still
// waiting, at the first pick after its `latest`; Drain waits for it. It runs with no client:
// its thread may go on to any client's request.
TEST(ClientExecutor, AnIdleTaskRunsOnceNoRequestWaitsOrOnceItsLatestHasPassed) {
  for (bool overdue : {false, true}) {
    ClientExecutor ex(1);
    std::mutex mu;
    std::vector<std::string> order;
    auto record = [&](std::string what) {
      std::lock_guard l(mu);
      order.push_back(std::move(what));
    };
    std::atomic<bool> release{false}, waiting_seen{false};
    ex.Post("gate", [&] {
      // On a worker: its observer is the pool's. The requests below are posted before it runs.
      while (!release) std::this_thread::sleep_for(1ms);
      waiting_seen = ThreadBlockingObserver()->RequestsWaiting();
      ThreadBlockingObserver()->WhenIdle(
          [&] {
            record("idle");
            EXPECT_FALSE(ThreadBlockingObserver()->Suspend()) << "no client: no task";
          },
          std::chrono::steady_clock::now() + (overdue ? 0s : 1h));
    });
    for (const char* c : {"a", "b", "c"}) ex.Post(c, [&, c] { record(c); });
    release = true;
    ex.Drain();
    EXPECT_TRUE(waiting_seen.load());
    const std::vector<std::string> want = overdue ? std::vector<std::string>{"idle", "a", "b", "c"}
                                                  : std::vector<std::string>{"a", "b", "c", "idle"};
    EXPECT_EQ(order, want) << "overdue " << overdue;
  }
}

}  // namespace
}  // namespace mqttspec::server
