// sdk_check: scenarios of the C++ client SDK against a real service, driven by
// tests/integration/test_client_sdk.py (which starts Mosquitto / mqttspecd and kills or restarts
// them mid-scenario). Each scenario prints JSON lines on stdout ({"event": …}); the last one is
// {"event":"summary", …, "ok": true|false}; the exit code is 0 only when every check held.
//
//   sdk_check crud      --uri U --id ID             CRUD, meta, errors, callbacks, timeouts, Stop
//   sdk_check stream    --uri U --id ID --n N       a writer and a subscriber; exact stream
//   sdk_check mirror    --uri U --id ID --n N [--slow-ms S] [--stall-ms T] [--trim]
//                                                   a slow Mirror that overflows (and resyncs
//                                                   when --trim lets the log's trim run)
//   sdk_check flood     --uri U --id ID --n N --policy block|fail|drop
//   sdk_check backoff   --uri U --id ID             no broker: back-off bounds, Stop mid-reconnect
#include <mqttspec/client.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using mqttspec::Client;
using mqttspec::ClientOptions;
using mqttspec::Json;
using mqttspec::Reply;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::mutex out_mu;
int failures = 0;

void Line(const std::string& json) {
  std::lock_guard lock(out_mu);
  std::fputs(json.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string Q(const std::string& s) { return Json(s).text(); }

#define CHECK(cond, what)                                                               \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      ++failures;                                                                       \
      Line(R"({"event":"failed","check":)" + Q(#cond) + R"(,"what":)" + Q(what) + "}"); \
    }                                                                                   \
  } while (0)

struct Args {
  std::string scenario, uri, id, policy = "block", prefix = "spec";
  int n = 1000;
  int slow_ms = 0;
  int stall_ms = 0;  // mirror: the first change's callback takes this long
  bool trim = false;  // mirror: after the writes, wait for the log's trim (while the stall lasts)
  std::string Get(int argc, char** argv, int& i) { return i + 1 < argc ? argv[++i] : ""; }
};

std::string Code(const Reply& r) { return r.ok ? "ok" : r.error.code; }

ClientOptions Options(const Args& a, const std::string& suffix) {
  ClientOptions o;
  o.server_uri = a.uri;
  o.client_id = a.id + suffix;
  o.topic_prefix = a.prefix;
  o.backoff = {50ms, 2.0, 1000ms};
  o.request_timeout = 60s;  // longer than any outage the tests make: a write is never given up
  o.liveness_interval = 500ms;
  o.on_connection = [suffix](const mqttspec::client::ConnectionEvent& e) {
    const char* k = e.kind == mqttspec::client::ConnectionEvent::Kind::kConnected ? "connected"
                    : e.kind == mqttspec::client::ConnectionEvent::Kind::kDisconnected
                        ? "disconnected"
                        : "connect_failed";
    Line(R"({"event":"connection","who":)" + Q(suffix) + R"(,"kind":")" + k + R"(","attempt":)" +
         std::to_string(e.attempt) + R"(,"next_ms":)" + std::to_string(e.next_attempt_in.count()) +
         "}");
  };
  return o;
}

std::string StatsJson(const mqttspec::client::ClientStats& s) {
  return R"({"connects":)" + std::to_string(s.connects) + R"(,"disconnects":)" +
         std::to_string(s.disconnects) + R"(,"resent":)" + std::to_string(s.requests_resent) +
         R"(,"timeouts":)" + std::to_string(s.timeouts) + R"(,"gaps_repaired":)" +
         std::to_string(s.gaps_repaired) + R"(,"duplicates_dropped":)" +
         std::to_string(s.duplicates_dropped) + R"(,"overflows":)" + std::to_string(s.overflows) +
         R"(,"resubscribes":)" + std::to_string(s.resubscribes) + R"(,"service_restarts_seen":)" +
         std::to_string(s.service_restarts_seen) + "}";
}

Json User(const std::string& name) {
  return Json::Object({{"name", name}, {"email", name + "@example.com"}, {"status", "active"}});
}

// ---- crud ----

int Crud(const Args& a) {
  Client c(Options(a, ""));
  c.Start();
  CHECK(c.WaitConnected(10s), "connect");
  auto created = c.Create("users", User(a.id + "-alice")).get();
  CHECK(created.ok, Code(created));
  const auto key = created.data.Get("id").value_or(Json()).AsInt();
  CHECK(key.has_value(), created.data.text());
  auto by_key = c.Read("users", Json(*key)).get();
  CHECK(by_key.ok && by_key.data.Get("name")->AsString() == a.id + "-alice", by_key.data.text());
  CHECK(by_key.metadata.Get("change_seq").has_value(), by_key.metadata.text());
  auto batch = c.Create("users", Json::Array({User(a.id + "-b1"), User(a.id + "-b2")})).get();
  CHECK(batch.ok && batch.data.Elements().size() == 2, batch.data.text());
  mqttspec::ReadOptions ro;
  ro.filters.emplace_back("name", "like", a.id + "-%");
  ro.sort.push_back({"name", "desc", ""});
  ro.limit = 2;
  auto list = c.Read("users", ro).get();
  CHECK(list.ok && list.data.Elements().size() == 2, list.data.text());
  CHECK(list.metadata.Get("total")->AsInt() == 3, list.metadata.text());
  CHECK(list.data.At(0)->Get("name")->AsString() == a.id + "-b2", list.data.text());
  auto upd = c.Update("users", Json(*key), Json::Object({{"status", "inactive"}})).get();
  CHECK(upd.ok && upd.data.Get("status")->AsString() == "inactive", upd.data.text());
  auto meta = c.Meta("users").get();
  CHECK(meta.ok && meta.data.Get("primary_key")->AsString() == "id", meta.data.text());
  // The protocol's errors, as values with its codes.
  auto nosuch = c.Read("nosuch").get();
  CHECK(!nosuch.ok && nosuch.error.code == "model_not_found", Code(nosuch));
  auto missing = c.Read("users", Json(999999999)).get();
  CHECK(!missing.ok && missing.error.code == "not_found", Code(missing));
  auto dup = c.Create("users", User(a.id + "-alice")).get();
  CHECK(!dup.ok && dup.error.code == "conflict", Code(dup));
  mqttspec::ReadOptions bad;
  bad.filters.emplace_back("nme", "eq", "x");
  auto unknown = c.Read("users", bad).get();
  CHECK(!unknown.ok && unknown.error.code == "unknown_column", Code(unknown));
  // An answer without our id (the service cannot read it from an oversized payload) is matched
  // by MQTT 5 correlation data.
  auto big = c.Create("users", User(std::string(300000, 'x')), 5s).get();
  CHECK(!big.ok && big.error.code == "payload_too_large", Code(big));
  // Refused before sending.
  auto empty = c.Read("").get();
  CHECK(!empty.ok && empty.error.code == "invalid_request", Code(empty));
  auto notobj = c.Update("users", Json(1), Json(5)).get();
  CHECK(!notobj.ok && notobj.error.code == "invalid_request", Code(notobj));
  // Callback form: on the dispatcher thread, in order.
  std::promise<std::string> got;
  c.Delete("users", Json(*key), [&](Reply r) { got.set_value(Code(r) + ":" + r.data.text()); });
  auto del = got.get_future().get();
  CHECK(del.rfind("ok:", 0) == 0 && del.find("\"deleted\":true") != std::string::npos, del);
  auto pong = c.Ping().get();
  CHECK(pong.ok && pong.data.Get("instance")->AsString().value_or("").size() == 16,
        pong.data.text());

  // Timeouts: a prefix no service answers.
  Args other = a;
  other.prefix = "nobody-answers";
  ClientOptions to = Options(other, "-t");
  to.request_timeout = 300ms;
  Client t(to);
  t.Start();
  // Paho C 1.3.11 notices a new connection's progress on its next poll cycle (up to ~1 s each
  // step) when another client of the process is already connected: allow for two.
  CHECK(!t.WaitConnected(4s), "nobody answers its pings: never ready");
  CHECK(t.connected(), "but connected to the broker");
  const auto t0 = Clock::now();
  auto late = t.Read("users").get();
  const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  CHECK(!late.ok && late.error.code == "request_timeout", Code(late));
  CHECK(waited >= 250ms && waited < 2s, std::to_string(waited.count()));
  auto per_call = t.Read("users", mqttspec::ReadOptions{}, 100ms).get();
  CHECK(per_call.error.code == "request_timeout", Code(per_call));
  // Stop with requests waiting: each is answered "stopped", Stop returns promptly.
  std::vector<std::future<Reply>> waiting;
  for (int i = 0; i < 50; ++i) waiting.push_back(t.Read("users", Json(i), 30s));
  const auto s0 = Clock::now();
  t.Stop();
  const auto stop_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - s0).count();
  CHECK(stop_ms < 3000, std::to_string(stop_ms));
  int stopped = 0;
  for (auto& f : waiting) stopped += f.get().error.code == "stopped";
  CHECK(stopped == 50, std::to_string(stopped));
  auto after = t.Read("users").get();
  CHECK(after.error.code == "stopped", Code(after));
  Line(R"({"event":"summary","scenario":"crud","stop_ms":)" + std::to_string(stop_ms) +
       R"(,"ok":)" + (failures ? "false" : "true") + "}");
  return failures ? 1 : 0;
}

// ---- stream: every change exactly once, in order, across whatever the test does meanwhile ----

int Stream(const Args& a) {
  Client sub(Options(a, "-s"));
  Client writer(Options(a, "-w"));
  sub.Start();
  writer.Start();
  CHECK(sub.WaitConnected(10s) && writer.WaitConnected(10s), "connect");
  std::mutex mu;
  std::vector<int> got;  // the writer's index of each created row, as notified
  uint64_t last_seq = 0;
  int seq_errors = 0;
  std::atomic<int> events_resumed{0};
  mqttspec::client::SubscribeOptions so;
  so.on_event = [&](const mqttspec::SubscriptionEvent& e) {
    if (e.kind == mqttspec::SubscriptionEvent::Kind::kResumed) ++events_resumed;
    Line(R"({"event":"subscription","kind":)" + std::to_string(static_cast<int>(e.kind)) +
         R"(,"change_seq":)" + std::to_string(e.change_seq) + R"(,"error":)" + Q(e.error.code) +
         "}");
  };
  const std::string tag = a.id + "-r";
  auto s = sub.Subscribe(
      "users", {{"name", "like", tag + "%"}},
      [&](const mqttspec::Notification& n) {
        std::lock_guard lock(mu);
        if (n.seq != last_seq + 1) ++seq_errors;
        last_seq = n.seq;
        const std::string name = n.row.Get("name").value_or(Json("")).AsString().value_or("");
        if (n.operation == "create") got.push_back(std::atoi(name.c_str() + tag.size()));
      },
      so);
  auto ready = s.Ready().get();
  CHECK(ready.ok, Code(ready) + " " + ready.error.message);
  int write_errors = 0;
  for (int i = 1; i <= a.n; ++i) {
    auto r = writer.Create("users", User(tag + std::to_string(i))).get();
    if (!r.ok) {
      ++write_errors;
      Line(R"({"event":"write_error","i":)" + std::to_string(i) + R"(,"code":)" + Q(r.error.code) +
           "}");
    }
    if (i % 100 == 0) {
      size_t k;
      {
        std::lock_guard lock(mu);
        k = got.size();
      }
      Line(R"({"event":"progress","written":)" + std::to_string(i) + R"(,"received":)" +
           std::to_string(k) + "}");
    }
    if (a.slow_ms) std::this_thread::sleep_for(std::chrono::milliseconds(a.slow_ms));
  }
  const auto until = Clock::now() + 30s;
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (static_cast<int>(got.size()) >= a.n) break;
    }
    if (Clock::now() > until) break;
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(300ms);  // anything extra (a duplicate) would arrive now
  std::lock_guard lock(mu);
  int dups = 0, out_of_order = 0;
  std::map<int, int> count;
  for (size_t i = 0; i < got.size(); ++i) {
    if (++count[got[i]] > 1) ++dups;
    if (i > 0 && got[i] <= got[i - 1]) ++out_of_order;
  }
  int missing = 0;
  for (int i = 1; i <= a.n; ++i) missing += count.count(i) == 0;
  CHECK(write_errors == 0, std::to_string(write_errors));
  CHECK(dups == 0, std::to_string(dups));
  CHECK(missing == 0, std::to_string(missing));
  CHECK(out_of_order == 0, std::to_string(out_of_order));
  CHECK(seq_errors == 0, std::to_string(seq_errors));
  const auto st = sub.stats();
  Line(R"({"event":"summary","scenario":"stream","written":)" + std::to_string(a.n) +
       R"(,"received":)" + std::to_string(got.size()) + R"(,"dups":)" + std::to_string(dups) +
       R"(,"missing":)" + std::to_string(missing) + R"(,"out_of_order":)" +
       std::to_string(out_of_order) + R"(,"resumed_events":)" + std::to_string(events_resumed) +
       R"(,"subscriber":)" + StatsJson(st) + R"(,"writer":)" + StatsJson(writer.stats()) +
       R"(,"ok":)" + (failures ? "false" : "true") + "}");
  return failures ? 1 : 0;
}

// ---- mirror: a slow view that overflows its queue (and resyncs when the log was trimmed) ----

int MirrorScenario(const Args& a) {
  ClientOptions mo = Options(a, "-m");
  mo.notification_queue = 4;
  Client mirror(mo);
  Client writer(Options(a, "-w"));
  mirror.Start();
  writer.Start();
  CHECK(mirror.WaitConnected(10s) && writer.WaitConnected(10s), "connect");
  const std::string tag = a.id + "-m";
  // Rows of the view: name like tag%, status active. Some exist before the mirror starts.
  std::vector<int64_t> keys;
  for (int i = 0; i < 20; ++i) {
    auto r = writer.Create("users", User(tag + std::to_string(i))).get();
    CHECK(r.ok, Code(r));
    keys.push_back(r.data.Get("id")->AsInt().value_or(0));
  }
  std::mutex mu;
  std::map<int64_t, std::string> view;  // id → status
  std::atomic<int> snapshots{0}, resyncs{0}, overflows{0};
  mqttspec::MirrorCallbacks cb;
  cb.on_snapshot = [&](const std::vector<Json>& rows) {
    std::lock_guard lock(mu);
    view.clear();
    for (const Json& r : rows)
      view[r.Get("id")->AsInt().value_or(0)] = r.Get("status")->AsString().value_or("");
    ++snapshots;
  };
  std::atomic<bool> stalled{false};
  cb.on_change = [&](const mqttspec::Notification& n) {
    if (a.stall_ms && !stalled.exchange(true))
      std::this_thread::sleep_for(std::chrono::milliseconds(a.stall_ms));
    if (a.slow_ms) std::this_thread::sleep_for(std::chrono::milliseconds(a.slow_ms));
    std::lock_guard lock(mu);
    const int64_t id = n.row.Get("id")->AsInt().value_or(0);
    if (n.operation == "delete" || !n.match)
      view.erase(id);
    else
      view[id] = n.row.Get("status")->AsString().value_or("");
  };
  cb.on_event = [&](const mqttspec::SubscriptionEvent& e) {
    if (e.kind == mqttspec::SubscriptionEvent::Kind::kResyncRequired) ++resyncs;
    if (e.kind == mqttspec::SubscriptionEvent::Kind::kOverflow) ++overflows;
  };
  auto m = mirror.Mirror("users", {{"name", "like", tag + "%"}, {"status", "eq", "active"}}, cb);
  auto ready = m.Ready().get();
  CHECK(ready.ok, Code(ready));
  // Writes: creates, updates that leave and re-enter the view, deletes.
  for (int i = 0; i < a.n; ++i) {
    const int64_t k = keys[static_cast<size_t>(i) % keys.size()];
    Reply r;
    switch (i % 5) {
      case 0: {
        r = writer.Create("users", User(tag + "n" + std::to_string(i))).get();
        if (r.ok) keys.push_back(r.data.Get("id")->AsInt().value_or(0));
        break;
      }
      case 1:
        r = writer.Update("users", Json(k), Json::Object({{"status", "inactive"}})).get();
        break;
      case 2:
      case 3:
        r = writer.Update("users", Json(k), Json::Object({{"status", "active"}})).get();
        break;
      case 4: r = writer.Delete("users", Json(k)).get(); break;
    }
    CHECK(r.ok || r.error.code == "not_found", Code(r));
  }
  if (a.trim) {
    // The change log is trimmed at most once a second, by a write: writes that all went by
    // within a second of the last trim are all still in the log. One more write (outside the
    // view) after a second trims it to changes.max_rows while the callback still stalls.
    std::this_thread::sleep_for(1100ms);
    auto r = writer.Create("users", User("x" + tag)).get();
    CHECK(r.ok, Code(r));
  }
  // The truth, read directly, then wait for the view to match it.
  mqttspec::ReadOptions ro;
  ro.filters = {{"name", "like", tag + "%"}, {"status", "eq", "active"}};
  auto truth = writer.Read("users", ro).get();
  CHECK(truth.ok, Code(truth));
  std::map<int64_t, std::string> want;
  for (const Json& r : truth.data.Elements()) want[r.Get("id")->AsInt().value_or(0)] = "active";
  bool equal = false;
  const auto until = Clock::now() + 60s;
  while (Clock::now() < until && !equal) {
    {
      std::lock_guard lock(mu);
      equal = view == want;
    }
    if (!equal) std::this_thread::sleep_for(50ms);
  }
  CHECK(equal, "the view differs from the table");
  const auto st = mirror.stats();
  Line(R"({"event":"summary","scenario":"mirror","rows":)" + std::to_string(want.size()) +
       R"(,"snapshots":)" + std::to_string(snapshots) + R"(,"resyncs":)" + std::to_string(resyncs) +
       R"(,"overflow_events":)" + std::to_string(overflows) + R"(,"mirror":)" + StatsJson(st) +
       R"(,"ok":)" + (failures ? "false" : "true") + "}");
  return failures ? 1 : 0;
}

// ---- flood: thousands of requests with back-pressure ----

int Flood(const Args& a) {
  ClientOptions o = Options(a, "-f");
  o.max_in_flight = 32;
  o.max_queued = a.policy == "block" ? 256 : 100;
  o.overflow = a.policy == "block"  ? mqttspec::Overflow::kBlock
               : a.policy == "fail" ? mqttspec::Overflow::kFailFast
                                    : mqttspec::Overflow::kDropOldest;
  Client c(o);
  const std::string tag = a.id + "-f" + a.policy + "-";
  std::map<std::string, int> codes;
  std::vector<std::future<Reply>> fs;
  std::vector<int> order;
  if (a.policy == "drop") {
    // While not connected: the queue keeps the newest max_queued requests.
    for (int i = 0; i < a.n; ++i) fs.push_back(c.Create("users", User(tag + std::to_string(i))));
    c.Start();
    for (int i = 0; i < a.n; ++i) {
      auto r = fs[static_cast<size_t>(i)].get();
      ++codes[Code(r)];
      if (r.ok) order.push_back(i);
    }
    CHECK(codes["dropped"] == a.n - 100, std::to_string(codes["dropped"]));
    CHECK(codes["ok"] == 100, std::to_string(codes["ok"]));
    CHECK(!order.empty() && order.front() == a.n - 100, "the newest are kept");
  } else {
    c.Start();
    CHECK(c.WaitConnected(10s), "connect");
    const int threads = 4;
    std::vector<std::thread> ts;
    std::mutex mu;
    std::atomic<size_t> max_queued_seen{0};
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        std::vector<std::future<Reply>> mine;
        for (int i = t; i < a.n; i += threads) {
          mine.push_back(c.Create("users", User(tag + std::to_string(i))));
          const size_t q = c.stats().queued;
          if (q > max_queued_seen) max_queued_seen = q;
        }
        for (auto& f : mine) {
          auto r = f.get();
          std::lock_guard lock(mu);
          ++codes[Code(r)];
        }
      });
    for (auto& t : ts) t.join();
    if (a.policy == "block") {
      CHECK(codes["ok"] == a.n, std::to_string(codes["ok"]));
      CHECK(max_queued_seen <= o.max_queued, std::to_string(max_queued_seen.load()));
    } else {
      CHECK(codes["ok"] + codes["queue_full"] == a.n, "every request answered ok or queue_full");
      CHECK(codes["queue_full"] > 0, "the queue filled");
    }
  }
  // What the table holds is exactly what was answered ok.
  mqttspec::ReadOptions ro;
  ro.filters.emplace_back("name", "like", tag + "%");
  ro.limit = 1;
  auto count = c.Read("users", ro).get();
  const int64_t total = count.metadata.Get("total").value_or(Json(-1)).AsInt().value_or(-1);
  CHECK(total == codes["ok"], std::to_string(total) + " rows for " + std::to_string(codes["ok"]));
  std::string cs;
  for (auto& [k, v] : codes) cs += (cs.empty() ? "" : ",") + Q(k) + ":" + std::to_string(v);
  Line(R"({"event":"summary","scenario":"flood","policy":)" + Q(a.policy) + R"(,"codes":{)" + cs +
       R"(},"rows":)" + std::to_string(total) + R"(,"ok":)" + (failures ? "false" : "true") + "}");
  return failures ? 1 : 0;
}

// ---- backoff: nobody listens; delays within bounds; Stop() in the middle of reconnecting ----

int BackoffScenario(const Args& a) {
  ClientOptions o = Options(a, "-b");
  o.backoff = {40ms, 2.0, 320ms};
  std::mutex mu;
  std::vector<std::pair<int, int64_t>> delays;  // attempt, next_ms
  o.on_connection = [&](const mqttspec::client::ConnectionEvent& e) {
    std::lock_guard lock(mu);
    if (e.kind == mqttspec::client::ConnectionEvent::Kind::kConnectFailed)
      delays.emplace_back(e.attempt, e.next_attempt_in.count());
  };
  Client c(o);
  c.Start();
  auto pending = c.Create("users", User(a.id + "-never"), 30s);
  std::this_thread::sleep_for(2500ms);
  const auto s0 = Clock::now();
  c.Stop();
  const auto stop_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - s0).count();
  auto r = pending.get();
  CHECK(r.error.code == "stopped", Code(r));
  CHECK(stop_ms < 1500, std::to_string(stop_ms));
  std::lock_guard lock(mu);
  CHECK(delays.size() >= 5, std::to_string(delays.size()));
  CHECK(delays.size() < 60, "no tight loop: " + std::to_string(delays.size()));
  for (auto [attempt, ms] : delays) {
    const auto ceiling = o.backoff.Ceiling(attempt).count();
    CHECK(ms >= 40 && ms <= ceiling, std::to_string(attempt) + ": " + std::to_string(ms));
  }
  Line(R"({"event":"summary","scenario":"backoff","attempts":)" + std::to_string(delays.size()) +
       R"(,"stop_ms":)" + std::to_string(stop_ms) + R"(,"ok":)" + (failures ? "false" : "true") +
       "}");
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (argc < 2) {
    std::fprintf(stderr, "usage: sdk_check crud|stream|mirror|flood|backoff --uri U --id ID …\n");
    return 2;
  }
  a.scenario = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string k = argv[i];
    if (k == "--uri")
      a.uri = a.Get(argc, argv, i);
    else if (k == "--id")
      a.id = a.Get(argc, argv, i);
    else if (k == "--n")
      a.n = std::atoi(a.Get(argc, argv, i).c_str());
    else if (k == "--policy")
      a.policy = a.Get(argc, argv, i);
    else if (k == "--slow-ms")
      a.slow_ms = std::atoi(a.Get(argc, argv, i).c_str());
    else if (k == "--stall-ms")
      a.stall_ms = std::atoi(a.Get(argc, argv, i).c_str());
    else if (k == "--trim")
      a.trim = true;
    else if (k == "--prefix")
      a.prefix = a.Get(argc, argv, i);
  }
  if (a.scenario == "crud") return Crud(a);
  if (a.scenario == "stream") return Stream(a);
  if (a.scenario == "mirror") return MirrorScenario(a);
  if (a.scenario == "flood") return Flood(a);
  if (a.scenario == "backoff") return BackoffScenario(a);
  std::fprintf(stderr, "unknown scenario %s\n", a.scenario.c_str());
  return 2;
}
