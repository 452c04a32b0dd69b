// notify_bench: notification latency of ONE committed change, in process, with the real
// Subscriptions index and ChangeFeed and a Publisher that timestamps each notification as it is
// handed over (no broker, no database: what is measured is matching + fan-out).
//
// For each scenario, N subscriptions on the entity, of which M match the change:
//   indexed  the M matching ones are {status eq "hot"}, the others {status eq "s<i>"} (each filed
//            under its own key, as a real population of eq subscriptions would be);
//   scan     the same N and M, but every filter is one the index cannot use ({n gt …}), so every
//            change is checked against all N: the naive-scan baseline.
// One repetition: 200 µs pause (the fan-out thread goes idle), t0, OnCommitted(create of a row with status "hot", n 1), the M-th notification
// handed to the Publisher at t1; latency = t1 - t0. Then Drain. Reported: p50 / p99 / mean / max
// over the repetitions, and the writer's own time in OnCommitted.
//
// Build (against the static libraries of a normal CMake build of the repo in build/; the whole
// command is in bench/NOTIFY_RESULTS.md):
//   g++ -std=c++20 -O2 -DNDEBUG -I. -Iinclude bench/notify_bench.cc -o /tmp/notify_bench
//       build/server/libmqttspec_server_core.a build/hooks/libmqttspec_hooks.a
//       build/adapters/libmqttspec_adapters.a build/registry/libmqttspec_registry.a
//       build/common/libmqttspec_common.a -lyaml-cpp -lspdlog -lfmt -lsqlite3 -lpthread -ldl
// Run: /tmp/notify_bench [reps-scale, default 1.0]   (a markdown table on stdout)

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/change_feed.h"
#include "server/subscriptions.h"

using namespace mqttspec;
using namespace mqttspec::server;
using Clock = std::chrono::steady_clock;

namespace {

registry::Field MakeField(std::string name, registry::FieldType type) {
  registry::Field f;
  f.name = std::move(name);
  f.type = type;
  return f;
}

enum { kId = 0, kStatus, kN };

adapters::FilterNode Cond(int field, adapters::Op op, Value v) {
  adapters::FilterNode n;
  n.cond.field = field;
  n.cond.op = op;
  n.cond.values = {std::move(v)};
  return n;
}

// Counts notifications and stamps the time the `want`-th of the current repetition arrives.
class StampingPublisher : public Publisher {
 public:
  void Arm(size_t want) {
    std::lock_guard l(mu_);
    want_ = want;
    seen_ = 0;
    done_ = false;
  }
  void Publish(OutboundMessage m) override {
    auto now = Clock::now();
    std::lock_guard l(mu_);
    bytes_ += m.payload.size();
    if (++seen_ == want_) {
      at_ = now;
      done_ = true;
    }
  }
  Clock::time_point at() {
    std::lock_guard l(mu_);
    return at_;
  }
  size_t seen() {
    std::lock_guard l(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  size_t want_ = 0, seen_ = 0, bytes_ = 0;
  bool done_ = false;
  Clock::time_point at_{};
};

struct Measured {
  std::string name;
  size_t total, matching;
  int reps;
  std::vector<double> lat_us, writer_us;
};

double Pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

Measured Run(const registry::ModelPtr& model, const std::string& kind, size_t total, size_t matching,
           int reps) {
  Subscriptions subs("spec", 1 << 30);
  const bool scan = kind == "scan";
  for (size_t i = 0; i < total; ++i) {
    const bool hit = i < matching;
    adapters::FilterList f;
    if (scan) {
      // n gt 0 matches the change's n = 1; n gt 1000000+i does not. Neither is indexable.
      f.push_back(Cond(kN, adapters::Op::kGt, Value{int64_t{hit ? 0 : 1000000 + static_cast<int64_t>(i)}}));
    } else {
      f.push_back(Cond(kStatus, adapters::Op::kEq, Value{hit ? std::string("hot") : "s" + std::to_string(i)}));
    }
    // Spread over clients as a real population would be (100 per client).
    auto r = subs.Add("client-" + std::to_string(i / 100), model, std::move(f));
    if (!r.ok()) {
      std::fprintf(stderr, "Add: %s\n", r.error().message.c_str());
      std::exit(1);
    }
  }
  StampingPublisher pub;
  ChangeFeed feed(subs, pub, 1, 10000);
  Measured res{kind, total, matching, reps, {}, {}};
  const int warmup = std::max(3, reps / 20);
  for (int r = -warmup; r < reps; ++r) {
    adapters::Change c;
    c.kind = adapters::Change::Kind::kCreate;
    c.model = model.get();
    c.after = Row{Value{int64_t{r + 100}}, Value{std::string("hot")}, Value{int64_t{1}}};
    std::vector<adapters::Change> v;
    v.push_back(std::move(c));
    // Let the fan-out thread go to sleep first: a change arriving at an idle feed, as changes
    // do (back to back, the thread may catch the next one before sleeping, which is faster
    // but makes the numbers bimodal on a small machine).
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    pub.Arm(matching);
    const auto t0 = Clock::now();
    feed.OnCommitted(std::move(v));
    const auto t_writer = Clock::now();
    feed.Drain();
    if (pub.seen() != matching) {
      std::fprintf(stderr, "%s N=%zu: %zu notifications, want %zu\n", kind.c_str(), total,
                   pub.seen(), matching);
      std::exit(1);
    }
    if (r < 0) continue;
    res.lat_us.push_back(std::chrono::duration<double, std::micro>(pub.at() - t0).count());
    res.writer_us.push_back(std::chrono::duration<double, std::micro>(t_writer - t0).count());
  }
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  const double scale = argc > 1 ? std::atof(argv[1]) : 1.0;
  auto m = registry::Model::Create("public", "things",
                                   {MakeField("id", registry::FieldType::kInteger),
                                    MakeField("status", registry::FieldType::kText),
                                    MakeField("n", registry::FieldType::kInteger)},
                                   "id");
  if (!m.ok()) return 1;
  const registry::ModelPtr model = m.value();
  auto reps = [&](int n) { return std::max(20, static_cast<int>(n * scale)); };

  struct Scenario {
    std::string kind;
    size_t total, matching;
    int reps;
  };
  const std::vector<Scenario> scenarios = {
      {"indexed", 1, 1, reps(5000)},         {"indexed", 10, 10, reps(5000)},
      {"indexed", 1000, 10, reps(5000)},     {"indexed", 100000, 10, reps(5000)},
      {"scan", 10, 10, reps(5000)},          {"scan", 1000, 10, reps(2000)},
      {"scan", 100000, 10, reps(300)},
  };
  std::printf("| filters | subscriptions | matching | reps | p50 µs | p99 µs | mean µs | max µs | "
              "writer p50 µs | writer p99 µs |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const auto& s : scenarios) {
    Measured r = Run(model, s.kind, s.total, s.matching, s.reps);
    double mean = 0, mx = 0;
    for (double x : r.lat_us) mean += x, mx = std::max(mx, x);
    mean /= static_cast<double>(r.lat_us.size());
    std::printf("| %s | %zu | %zu | %d | %.1f | %.1f | %.1f | %.1f | %.2f | %.2f |\n", r.name.c_str(),
                r.total, r.matching, r.reps, Pct(r.lat_us, 0.5), Pct(r.lat_us, 0.99), mean, mx,
                Pct(r.writer_us, 0.5), Pct(r.writer_us, 0.99));
    std::fflush(stdout);
  }
  return 0;
}
