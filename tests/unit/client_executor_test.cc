#include "server/client_executor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

namespace mqttspec::server {
namespace {

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

}  // namespace
}  // namespace mqttspec::server
