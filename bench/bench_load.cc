// mqttspec_bench run: the load generator of bench/run.sh. Measures request→response round trips
// against whatever answers on <prefix>/<id>/response (the service, or the echo baseline): per
// workload a warm-up, p50/p99 at 1 in flight, then throughput with C connections × N in flight
// each; one tab-separated line per workload (the input of `mqttspec_bench report`).
//
// Each connection publishes its requests to its own <prefix>/<id>/request and receives the
// answers on its own <prefix>/<id>/response (what the embedded ACL allows). Responses are matched
// to requests by the echoed "id" ("<tag>-<seq>", tag unique per process). One thread (Loop)
// drives all connections.

#include <mosquitto.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.h"
#include "bench_conn.h"
#include "mqttspec_bench.h"

namespace bench {
namespace {

enum class Workload { kPing, kRead, kCreate, kList, kUpdate, kDelete };

const char* WorkloadName(Workload w) {
  switch (w) {
    case Workload::kPing: return "ping";
    case Workload::kRead: return "read-by-key";
    case Workload::kCreate: return "create";
    case Workload::kList: return "list-20";
    case Workload::kUpdate: return "update";
    case Workload::kDelete: return "delete";
  }
  return "?";
}

constexpr int kGroups = 250;  // grp = row % kGroups: 40 rows per group with 10 000 rows

struct Phase {
  Workload workload = Workload::kRead;
  int64_t first_seq = 0;
  int64_t max_requests = 0;  // send at most this many
  int64_t deadline_ns = 0;   // and send none after this
  int per_conn_inflight = 1;
  int64_t sent = 0;
  int64_t received = 0;
  int64_t errors = 0;
  int64_t stale = 0;
  std::string first_error;
  std::vector<int64_t> sent_at;    // by seq - first_seq
  std::vector<int64_t> latencies;  // ns
  int64_t start_ns = 0;
  int64_t last_recv_ns = 0;
  bool check_success = true;  // service answers: require "success":true
};

struct Driver {
  std::vector<Conn> conns;
  std::string tag;  // makes ids unique per process
  int64_t next_seq = 1;
  int64_t rows = 10000;  // keys 1..rows exist
  int64_t next_delete = 1;  // delete: keys 1, 2, … in turn (the pre-filled rows, then created ones)
  Phase* phase = nullptr;
  std::string payload;  // scratch
};

Driver* g_driver = nullptr;

// Request bytes for `seq`. The echo baseline receives exactly the same bytes.
void BuildPayload(Driver& d, Workload w, int64_t seq, std::string& out) {
  char buf[512];
  int n = 0;
  switch (w) {
    case Workload::kPing:
      n = std::snprintf(buf, sizeof buf, R"({"id":"%s-%lld","type":"ping"})", d.tag.c_str(),
                        (long long)seq);
      break;
    case Workload::kRead: {
      // Scattered over keys 2..rows: key 1 may be gone (delete's checked round trip, before any
      // measurement, takes it).
      long long key = (seq * 7919) % (d.rows - 1) + 2;
      n = std::snprintf(
          buf, sizeof buf,
          R"({"id":"%s-%lld","type":"request","operation":"read","entity":"items","record_id":%lld})",
          d.tag.c_str(), (long long)seq, key);
      break;
    }
    case Workload::kCreate:
      n = std::snprintf(
          buf, sizeof buf,
          R"({"id":"%s-%lld","type":"request","operation":"create","entity":"items","data":{"grp":%lld,"name":"new-%lld","score":%lld.5}})",
          d.tag.c_str(), (long long)seq, (long long)(seq % kGroups), (long long)seq,
          (long long)(seq % 1000));
      break;
    case Workload::kUpdate: {
      // Scattered over keys 2..rows (key 1 may be gone: delete's checked round trip takes it).
      long long key = (seq * 7919) % (d.rows - 1) + 2;
      n = std::snprintf(
          buf, sizeof buf,
          R"({"id":"%s-%lld","type":"request","operation":"update","entity":"items","record_id":%lld,"data":{"score":%lld.25}})",
          d.tag.c_str(), (long long)seq, key, (long long)(seq % 1000));
      break;
    }
    case Workload::kDelete:
      // Each request deletes the next key: run it after create, so enough rows exist.
      n = std::snprintf(
          buf, sizeof buf,
          R"({"id":"%s-%lld","type":"request","operation":"delete","entity":"items","record_id":%lld})",
          d.tag.c_str(), (long long)seq, (long long)d.next_delete++);
      break;
    case Workload::kList:
      n = std::snprintf(
          buf, sizeof buf,
          R"({"id":"%s-%lld","type":"request","operation":"read","entity":"items","options":{"filters":[{"column":"grp","operator":"eq","value":%lld}],"limit":20}})",
          d.tag.c_str(), (long long)seq, (long long)((seq * 7) % kGroups));
      break;
  }
  out.assign(buf, static_cast<size_t>(n));
}

// The seq of a response: the number after "<tag>-" in the first "id":"…".
std::optional<int64_t> SeqOf(const Driver& d, const char* p, size_t n) {
  std::string_view s(p, n);
  size_t at = s.find("\"id\":\"");
  if (at == std::string_view::npos) return std::nullopt;
  at += 6;
  if (s.compare(at, d.tag.size(), d.tag) != 0 || at + d.tag.size() >= s.size() ||
      s[at + d.tag.size()] != '-')
    return std::nullopt;
  at += d.tag.size() + 1;
  int64_t v = 0;
  bool any = false;
  while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
    v = v * 10 + (s[at] - '0');
    ++at;
    any = true;
  }
  if (!any || at >= s.size() || s[at] != '"') return std::nullopt;
  return v;
}

void SendOne(Driver& d, Conn& c) {
  Phase& p = *d.phase;
  int64_t seq = d.next_seq++;
  BuildPayload(d, p.workload, seq, d.payload);
  int64_t idx = seq - p.first_seq;
  p.sent_at[static_cast<size_t>(idx)] = NowNs();
  int rc = mosquitto_publish(c.m, nullptr, c.request_topic.c_str(),
                             static_cast<int>(d.payload.size()), d.payload.data(), c.qos, false);
  if (rc != MOSQ_ERR_SUCCESS) Die("publish: %s", mosquitto_strerror(rc));
  ++p.sent;
  ++c.inflight;
}

bool MaySend(const Phase& p) { return p.sent < p.max_requests && NowNs() < p.deadline_ns; }

void LoadHandler(Conn& c, const mosquitto_message& msg) {
  int64_t now = NowNs();
  Driver& d = *g_driver;
  Phase* p = d.phase;
  auto seq = SeqOf(d, static_cast<const char*>(msg.payload), static_cast<size_t>(msg.payloadlen));
  if (!p || !seq || *seq < p->first_seq || *seq >= p->first_seq + p->sent) {
    if (p) ++p->stale;
    return;
  }
  int64_t idx = *seq - p->first_seq;
  int64_t& t0 = p->sent_at[static_cast<size_t>(idx)];
  if (t0 == 0) {  // a duplicate (QoS 1 redelivery)
    ++p->stale;
    return;
  }
  p->latencies.push_back(now - t0);
  t0 = 0;
  ++p->received;
  p->last_recv_ns = now;
  --c.inflight;
  if (p->check_success) {
    std::string_view body(static_cast<const char*>(msg.payload),
                          static_cast<size_t>(msg.payloadlen));
    bool ok = body.find("\"success\":true") != std::string_view::npos ||
              (p->workload == Workload::kPing && body.find("\"pong\"") != std::string_view::npos);
    if (!ok) {
      if (p->errors++ == 0) p->first_error.assign(body.substr(0, 400));
    }
  }
  if (MaySend(*p)) SendOne(d, c);
}

struct PhaseResult {
  int64_t n = 0;
  double p50_us = 0, p99_us = 0, rps = 0;
  int64_t errors = 0, lost = 0;
  std::string first_error;
};

PhaseResult RunPhase(Driver& d, Loop& loop, Workload w, int conns, int inflight,
                     int64_t max_requests, double seconds, bool check_success) {
  Phase p;
  p.workload = w;
  p.first_seq = d.next_seq;
  p.max_requests = max_requests;
  p.per_conn_inflight = inflight;
  p.check_success = check_success;
  p.sent_at.assign(static_cast<size_t>(max_requests), 0);
  p.latencies.reserve(static_cast<size_t>(max_requests));
  d.phase = &p;
  p.start_ns = NowNs();
  p.deadline_ns = p.start_ns + static_cast<int64_t>(seconds * 1e9);
  for (int i = 0; i < inflight; ++i) {
    for (int c = 0; c < conns; ++c) {
      if (MaySend(p)) SendOne(d, d.conns[static_cast<size_t>(c)]);
    }
  }
  loop.Flush();
  // Sending stops at the deadline; answers still on their way get 10 s more.
  bool done = loop.Until([&] { return p.received == p.sent && !MaySend(p); }, seconds + 10);
  PhaseResult r;
  r.n = p.received;
  r.errors = p.errors;
  r.first_error = p.first_error;
  r.lost = p.sent - p.received;
  if (!done) {
    std::fprintf(stderr, "mqttspec_bench: %s: %lld of %lld answers missing after the deadline\n",
                 WorkloadName(w), (long long)r.lost, (long long)p.sent);
    for (auto& c : d.conns) c.inflight = 0;
  }
  double elapsed = static_cast<double>(p.last_recv_ns - p.start_ns) / 1e9;
  r.rps = elapsed > 0 ? static_cast<double>(p.received) / elapsed : 0;
  r.p50_us = Percentile(p.latencies, 0.50);
  r.p99_us = Percentile(p.latencies, 0.99);
  d.phase = nullptr;
  if (p.stale)
    std::fprintf(stderr, "mqttspec_bench: %s: %lld unmatched or duplicate answers\n",
                 WorkloadName(w), (long long)p.stale);
  return r;
}

// One request, the whole answer returned: used to check a setup before measuring it.
std::string RoundTrip(Driver& d, Loop& loop, Conn& c, const std::string& payload,
                      const std::string& id, double seconds) {
  std::string answer;
  struct Ctx {
    const std::string* id;
    std::string* answer;
  } ctx{&id, &answer};
  c.owner = &ctx;
  c.handler = [](Conn& conn, const mosquitto_message& msg) {
    auto* x = static_cast<Ctx*>(conn.owner);
    std::string_view body(static_cast<const char*>(msg.payload),
                          static_cast<size_t>(msg.payloadlen));
    std::string want = "\"id\":\"" + *x->id + "\"";
    if (body.find(want) != std::string_view::npos) x->answer->assign(body);
  };
  int rc = mosquitto_publish(c.m, nullptr, c.request_topic.c_str(),
                             static_cast<int>(payload.size()), payload.data(), c.qos, false);
  if (rc != MOSQ_ERR_SUCCESS) Die("publish: %s", mosquitto_strerror(rc));
  loop.Until([&] { return !answer.empty(); }, seconds);
  c.handler = LoadHandler;
  c.owner = nullptr;
  return answer;
}

// Pre-fills items with `rows` rows through the service itself: batch creates of 1000.
void Prefill(Driver& d, Loop& loop, int64_t rows) {
  Conn& c = d.conns[0];
  int64_t start = NowNs();
  for (int64_t base = 0; base < rows; base += 1000) {
    int64_t n = std::min<int64_t>(1000, rows - base);
    std::string id = d.tag + "-fill" + std::to_string(base);
    std::string p =
        R"({"id":")" + id + R"(","type":"request","operation":"create","entity":"items","data":[)";
    for (int64_t i = 0; i < n; ++i) {
      int64_t row = base + i + 1;
      char buf[160];
      std::snprintf(buf, sizeof buf, R"(%s{"grp":%lld,"name":"item-%05lld","score":%lld.25})",
                    i ? "," : "", (long long)(row % kGroups), (long long)row,
                    (long long)(row % 1000));
      p += buf;
    }
    p += "]}";
    std::string answer = RoundTrip(d, loop, c, p, id, 30);
    if (answer.find("\"success\":true") == std::string::npos)
      Die("prefill batch at row %lld failed: %.300s", (long long)base,
          answer.empty() ? "(no answer in 30 s)" : answer.c_str());
  }
  std::fprintf(stderr, "mqttspec_bench: pre-filled %lld rows in %.2f s\n", (long long)rows,
               static_cast<double>(NowNs() - start) / 1e9);
}

// replay: a subscriber that resumes from change_seq 0 receives every change the run logged so far
// (the pre-fill and the writes of the workloads before), then the replay_complete marker; measured
// from its subscribe request to the marker. The connection listens on <prefix>/<id>/# (answer and
// notifications).
struct Replay {
  std::string id;  // the subscribe request's id
  std::string answer;
  int64_t sent_ns = 0, first_ns = 0, done_ns = 0;
  int64_t notifications = 0;
  int64_t replayed = -1;  // from the marker
};

void ReplayHandler(Conn& c, const mosquitto_message& msg) {
  auto& r = *static_cast<Replay*>(c.owner);
  if (c.request_topic == msg.topic) return;  // its own request (the filter is <id>/#)
  std::string_view body(static_cast<const char*>(msg.payload), static_cast<size_t>(msg.payloadlen));
  if (body.find(R"("type":"notification")") == std::string_view::npos) {
    if (body.find("\"id\":\"" + r.id + "\"") != std::string_view::npos) r.answer.assign(body);
    return;
  }
  const int64_t now = NowNs();
  if (body.find(R"("operation":"replay_complete")") != std::string_view::npos) {
    r.done_ns = now;
    size_t at = body.find(R"("replayed":)");
    if (at != std::string_view::npos) r.replayed = std::atoll(body.data() + at + 11);
    return;
  }
  if (!r.first_ns) r.first_ns = now;
  ++r.notifications;
}

// One resume of `c` from change_seq 0; fatal if it is refused or does not complete in `seconds`.
Replay RunReplay(Driver& d, Loop& loop, Conn& c, double seconds) {
  Replay r;
  r.id = d.tag + "-replay" + std::to_string(d.next_seq++);
  c.owner = &r;
  c.handler = ReplayHandler;
  const std::string payload = R"({"id":")" + r.id +
                              R"(","type":"subscription","operation":"subscribe","entity":"items",)"
                              R"("options":{"since_change_seq":0}})";
  r.sent_ns = NowNs();
  int rc = mosquitto_publish(c.m, nullptr, c.request_topic.c_str(),
                             static_cast<int>(payload.size()), payload.data(), c.qos, false);
  if (rc != MOSQ_ERR_SUCCESS) Die("publish: %s", mosquitto_strerror(rc));
  loop.Until(
      [&] {
        return r.done_ns != 0 ||
               (!r.answer.empty() && r.answer.find("\"success\":true") == std::string::npos);
      },
      seconds);
  c.owner = nullptr;
  if (r.answer.find("\"success\":true") == std::string::npos)
    Die("replay: the subscribe was not answered with success: %.300s",
        r.answer.empty() ? "(no answer)" : r.answer.c_str());
  if (!r.done_ns)
    Die("replay: no replay_complete within %.0f s (%lld notifications)", seconds,
        (long long)r.notifications);
  if (r.replayed != r.notifications)
    std::fprintf(stderr, "mqttspec_bench: replay: the marker says %lld, %lld arrived\n",
                 (long long)r.replayed, (long long)r.notifications);
  // Unsubscribing is not needed: the subscription is idle once the run's writes are done.
  return r;
}

std::vector<Workload> ParseWorkloads(const std::string& s, bool* replay) {
  std::vector<Workload> out;
  std::stringstream in(s);
  std::string w;
  while (std::getline(in, w, ',')) {
    if (w == "replay")
      *replay = true;
    else if (w == "read")
      out.push_back(Workload::kRead);
    else if (w == "create")
      out.push_back(Workload::kCreate);
    else if (w == "list")
      out.push_back(Workload::kList);
    else if (w == "update")
      out.push_back(Workload::kUpdate);
    else if (w == "delete")
      out.push_back(Workload::kDelete);
    else if (w == "ping")
      out.push_back(Workload::kPing);
    else
      Die("unknown workload '%s' (read, create, list, update, delete, ping, replay)", w.c_str());
  }
  return out;
}

}  // namespace

int RunLoad(const Args& a) {
  Driver d;
  g_driver = &d;
  const std::string host = a.Get("host", "127.0.0.1");
  const int port = static_cast<int>(a.Int("port", 1883));
  const int qos = static_cast<int>(a.Int("qos", 0));
  const std::string setup = a.Get("setup");
  if (setup.empty()) Die("--setup NAME is required");
  const bool echo = setup.rfind("echo", 0) == 0;
  const int nconns = static_cast<int>(a.Int("conns", 4));
  const int inflight = static_cast<int>(a.Int("inflight", 16));
  const int64_t warmup = a.Int("warmup", 500);
  const int64_t samples = a.Int("samples", 5000);
  const double latency_s = a.Real("latency-s", 10);
  const int64_t tput_requests = a.Int("tput-requests", 20000);
  const double tput_s = a.Real("tput-s", 5);
  const int64_t prefill = a.Int("prefill", 0);
  const std::string prefix = a.Get("prefix", "spec");
  d.rows = a.Int("rows", 10000);
  d.tag = "b" + std::to_string(getpid());
  bool replay = false;
  auto workloads = ParseWorkloads(a.Get("workloads", "read,create,list"), &replay);
  if (replay && echo) replay = false;  // the echo keeps no log

  // The load's connections, then (replay) the resuming subscriber's.
  d.conns.resize(static_cast<size_t>(std::max(1, nconns) + (replay ? 1 : 0)));
  for (size_t i = 0; i < d.conns.size(); ++i) {
    Conn& c = d.conns[i];
    c.index = static_cast<int>(i);
    c.client_id = a.Get("client-prefix", "bench") + std::to_string(i);
    c.request_topic = prefix + "/" + c.client_id + "/request";
    c.response_topic = prefix + "/" + c.client_id + "/response";
    c.subscribe_filter = c.response_topic;
    c.qos = qos;
    c.handler = LoadHandler;
    if (replay && i + 1 == d.conns.size()) {
      c.client_id = a.Get("client-prefix", "bench") + "-replay";
      c.request_topic = prefix + "/" + c.client_id + "/request";
      c.response_topic = prefix + "/" + c.client_id + "/response";
      c.subscribe_filter = prefix + "/" + c.client_id + "/#";
    }
    Connect(c, host, port);
  }
  Loop loop(d.conns);
  if (!loop.Until(
          [&] {
            return std::all_of(d.conns.begin(), d.conns.end(),
                               [](const Conn& c) { return c.subscribed; });
          },
          10))
    Die("no SUBACK on every connection within 10 s");

  // Ready when a ping comes back (the service or the echo answers).
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    std::string id = d.tag + "-ready" + std::to_string(i);
    ready =
        !RoundTrip(d, loop, d.conns[0], R"({"id":")" + id + R"(","type":"ping"})", id, 0.2).empty();
  }
  if (!ready) Die("%s: no answer to a ping within 20 s", setup.c_str());
  if (prefill > 0 && !echo) Prefill(d, loop, prefill);

  // One checked round trip per workload, so a wrong setup fails loudly instead of measuring errors.
  for (Workload w : workloads) {
    int64_t seq = d.next_seq++;
    std::string payload;
    BuildPayload(d, w, seq, payload);
    std::string id = d.tag + "-" + std::to_string(seq);
    std::string answer = RoundTrip(d, loop, d.conns[0], payload, id, 10);
    if (answer.empty()) Die("%s %s: no answer", setup.c_str(), WorkloadName(w));
    if (echo) {
      if (answer != payload) Die("echo answered different bytes: %.200s", answer.c_str());
    } else if (answer.find("\"success\":true") == std::string::npos) {
      Die("%s %s failed: %.400s", setup.c_str(), WorkloadName(w), answer.c_str());
    } else if (w == Workload::kList && answer.find("\"count\":20") == std::string::npos) {
      Die("%s list: expected 20 rows: %.400s", setup.c_str(), answer.c_str());
    }
    if (a.Get("verbose") == "1") std::fprintf(stderr, "%s → %s\n", payload.c_str(), answer.c_str());
  }

  std::FILE* out = stdout;
  std::string out_path = a.Get("out");
  if (!out_path.empty()) {
    out = std::fopen(out_path.c_str(), "a");
    if (!out) Die("cannot open %s", out_path.c_str());
  }
  const std::string label = a.Get("label", "-");
  for (Workload w : workloads) {
    RunPhase(d, loop, w, 1, 1, warmup, latency_s, !echo);
    PhaseResult lat = RunPhase(d, loop, w, 1, 1, samples, latency_s, !echo);
    RunPhase(d, loop, w, nconns, inflight, std::min<int64_t>(1000, tput_requests), tput_s, !echo);
    PhaseResult tput = RunPhase(d, loop, w, nconns, inflight, tput_requests, tput_s, !echo);
    int64_t errors = lat.errors + tput.errors;
    int64_t lost = lat.lost + tput.lost;
    std::fprintf(out, "%s\t%d\t%s\t%lld\t%.1f\t%.1f\t%lld\t%.0f\t%.1f\t%.1f\t%lld\t%lld\t%s\n",
                 setup.c_str(), qos, WorkloadName(w), (long long)lat.n, lat.p50_us, lat.p99_us,
                 (long long)tput.n, tput.rps, tput.p50_us, tput.p99_us, (long long)errors,
                 (long long)lost, label.c_str());
    std::fflush(out);
    std::fprintf(stderr,
                 "%-14s qos%d %-12s 1 in flight: p50 %7.1f µs p99 %7.1f µs (n=%lld) | %d×%d in "
                 "flight: %8.0f req/s p50 %7.1f µs p99 %7.1f µs (n=%lld)%s\n",
                 setup.c_str(), qos, WorkloadName(w), lat.p50_us, lat.p99_us, (long long)lat.n,
                 nconns, inflight, tput.rps, tput.p50_us, tput.p99_us, (long long)tput.n,
                 errors || lost ? " ERRORS" : "");
    if (errors)
      std::fprintf(stderr, "  %lld error answers, first: %s\n", (long long)errors,
                   (lat.first_error.empty() ? tput.first_error : lat.first_error).c_str());
  }
  if (replay) {
    // Three resumes, each replaying the whole log; the median one is reported: n = changes
    // replayed, p50 = µs to the first replayed notification, req/s = changes delivered per second
    // from the subscribe to the marker.
    std::vector<Replay> runs;
    for (int i = 0; i < 3; ++i) runs.push_back(RunReplay(d, loop, d.conns.back(), 120));
    std::sort(runs.begin(), runs.end(), [](const Replay& x, const Replay& y) {
      return x.done_ns - x.sent_ns < y.done_ns - y.sent_ns;
    });
    const Replay& r = runs[1];
    const double total_s = static_cast<double>(r.done_ns - r.sent_ns) / 1e9;
    const double first_us = r.first_ns ? static_cast<double>(r.first_ns - r.sent_ns) / 1e3 : 0;
    const double rate = total_s > 0 ? static_cast<double>(r.notifications) / total_s : 0;
    std::fprintf(out, "%s\t%d\treplay\t%lld\t%.1f\t%.1f\t%lld\t%.0f\t%.1f\t%.1f\t0\t%lld\t%s\n",
                 setup.c_str(), qos, (long long)r.notifications, first_us, first_us,
                 (long long)r.notifications, rate, total_s * 1e6, total_s * 1e6,
                 (long long)(r.replayed - r.notifications), label.c_str());
    std::fflush(out);
    std::fprintf(stderr,
                 "%-14s qos%d replay       %lld changes in %.3f s: %.0f changes/s, first after "
                 "%.0f µs\n",
                 setup.c_str(), qos, (long long)r.notifications, total_s, rate, first_us);
  }
  if (out != stdout) std::fclose(out);
  for (auto& c : d.conns) {
    mosquitto_disconnect(c.m);
    loop.Flush();
  }
  for (auto& c : d.conns) mosquitto_destroy(c.m);
  return 0;
}

}  // namespace bench
