// mqttspec_bench: load generator, echo baseline and report writer for bench/run.sh.
//
//   mqttspec_bench free-port
//       prints a free TCP port on 127.0.0.1
//   mqttspec_bench echo --port P [--host H] [--qos Q]
//       the bare-broker baseline: subscribes to spec/+/request and republishes every payload,
//       unchanged, to spec/<client>/response (no database)
//   mqttspec_bench run --port P --setup NAME [--qos Q] [--prefill ROWS] [--workloads read,create,list]
//                      [--warmup N] [--samples N] [--latency-s S] [--tput-requests N] [--tput-s S]
//                      [--conns C] [--inflight N] [--out FILE] [--label TEXT]
//       measures request→response round trips against whatever answers on spec/<id>/response:
//       p50/p99 at 1 in flight, then throughput with C connections × N in flight each; appends
//       one tab-separated line per workload to FILE (or stdout)
//   mqttspec_bench report FILE
//       turns those lines into the markdown tables of bench/RESULTS.md, with ratios to the echo
//       baseline of the same run; rows of mqttspec_pq_baseline (QoS -1: raw-sqlite, raw-pg,
//       raw-pg-tx) become the raw-database tables, beside the service's SQLite and PostgreSQL
//       (setups *-pg) rows
//
// Every connection sets TCP_NODELAY. Each connection publishes its requests to its own
// spec/<id>/request and receives the answers on its own spec/<id>/response (what the embedded
// ACL allows). Responses are matched to requests by the echoed "id". One thread drives all
// connections with poll(), so the load generator costs the same in every setup.

#include <mosquitto.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.h"

namespace {

using namespace bench;  // NOLINT: bench_common.h




// ---- command line -------------------------------------------------------------------------



// ---- connections --------------------------------------------------------------------------

struct Conn;
using MessageHandler = void (*)(Conn&, const mosquitto_message&);

struct Conn {
  mosquitto* m = nullptr;
  int index = 0;
  std::string client_id;
  std::string request_topic;
  std::string response_topic;
  std::string subscribe_filter;
  int qos = 0;
  bool connected = false;
  bool subscribed = false;
  int inflight = 0;
  MessageHandler handler = nullptr;
  void* owner = nullptr;
};

void OnConnect(mosquitto* m, void* ud, int rc) {
  auto* c = static_cast<Conn*>(ud);
  if (rc != 0) Die("%s: connection refused (%s)", c->client_id.c_str(), mosquitto_connack_string(rc));
  c->connected = true;
  int r = mosquitto_subscribe(m, nullptr, c->subscribe_filter.c_str(), c->qos);
  if (r != MOSQ_ERR_SUCCESS) Die("subscribe: %s", mosquitto_strerror(r));
}

void OnSubscribe(mosquitto*, void* ud, int, int count, const int* granted) {
  auto* c = static_cast<Conn*>(ud);
  if (count < 1 || granted[0] > 2) Die("%s: subscription to %s refused", c->client_id.c_str(), c->subscribe_filter.c_str());
  c->subscribed = true;
}

void OnMessage(mosquitto*, void* ud, const mosquitto_message* msg) {
  auto* c = static_cast<Conn*>(ud);
  if (c->handler) c->handler(*c, *msg);
}

void OnDisconnect(mosquitto*, void* ud, int rc) {
  auto* c = static_cast<Conn*>(ud);
  c->connected = false;
  if (rc != 0) Die("%s: lost the connection to the broker (%s)", c->client_id.c_str(), mosquitto_strerror(rc));
}

void Connect(Conn& c, const std::string& host, int port) {
  c.m = mosquitto_new(c.client_id.c_str(), true, &c);
  if (!c.m) Die("mosquitto_new failed");
  mosquitto_int_option(c.m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_connect_callback_set(c.m, OnConnect);
  mosquitto_subscribe_callback_set(c.m, OnSubscribe);
  mosquitto_message_callback_set(c.m, OnMessage);
  mosquitto_disconnect_callback_set(c.m, OnDisconnect);
  int rc = mosquitto_connect(c.m, host.c_str(), port, 60);
  if (rc != MOSQ_ERR_SUCCESS) Die("cannot connect to %s:%d: %s", host.c_str(), port, mosquitto_strerror(rc));
}

// One thread, all connections: poll, read every complete packet waiting, write what callbacks
// queued. Publishing from a callback only queues the packet in libmosquitto; it is written here
// right after the read, without another poll.
class Loop {
 public:
  explicit Loop(std::vector<Conn>& conns) : conns_(conns), fds_(conns.size()) {}

  void Pump(int timeout_ms) {
    for (size_t i = 0; i < conns_.size(); ++i) {
      fds_[i].fd = mosquitto_socket(conns_[i].m);
      fds_[i].events = POLLIN | (mosquitto_want_write(conns_[i].m) ? POLLOUT : 0);
      fds_[i].revents = 0;
    }
    int n = poll(fds_.data(), fds_.size(), timeout_ms);
    if (n < 0 && errno != EINTR) Die("poll: %s", std::strerror(errno));
    for (size_t i = 0; n > 0 && i < conns_.size(); ++i) {
      mosquitto* m = conns_[i].m;
      if (fds_[i].revents & (POLLIN | POLLERR | POLLHUP)) {
        for (int k = 0; k < 256; ++k) {  // every packet already received, then back to poll
          int rc = mosquitto_loop_read(m, 1);
          if (rc != MOSQ_ERR_SUCCESS) Die("%s: read: %s", conns_[i].client_id.c_str(), mosquitto_strerror(rc));
          int pending = 0;
          if (ioctl(mosquitto_socket(m), FIONREAD, &pending) != 0 || pending <= 0) break;
        }
      }
      if (mosquitto_want_write(m)) {
        int rc = mosquitto_loop_write(m, 1);
        if (rc != MOSQ_ERR_SUCCESS) Die("%s: write: %s", conns_[i].client_id.c_str(), mosquitto_strerror(rc));
      }
    }
    int64_t now = NowNs();
    if (now - last_misc_ > 1'000'000'000) {
      last_misc_ = now;
      for (auto& c : conns_) mosquitto_loop_misc(c.m);
    }
  }

  // Flushes packets queued outside a callback (mosquitto_publish then writes at once anyway).
  void Flush() {
    for (auto& c : conns_) {
      if (mosquitto_want_write(c.m)) {
        int rc = mosquitto_loop_write(c.m, 1);
        if (rc != MOSQ_ERR_SUCCESS) Die("%s: write: %s", c.client_id.c_str(), mosquitto_strerror(rc));
      }
    }
  }

  // Pumps until pred() or the deadline; false on timeout.
  template <class Pred>
  bool Until(Pred pred, double seconds) {
    int64_t deadline = NowNs() + static_cast<int64_t>(seconds * 1e9);
    while (!pred()) {
      int64_t left = deadline - NowNs();
      if (left <= 0) return false;
      Pump(static_cast<int>(std::min<int64_t>(left / 1'000'000 + 1, 100)));
    }
    return true;
  }

 private:
  std::vector<Conn>& conns_;
  std::vector<pollfd> fds_;
  int64_t last_misc_ = 0;
};

// ---- echo baseline ------------------------------------------------------------------------

void EchoHandler(Conn& c, const mosquitto_message& msg) {
  std::string_view topic(msg.topic);
  constexpr std::string_view kSuffix = "/request";
  if (topic.size() <= kSuffix.size() || topic.substr(topic.size() - kSuffix.size()) != kSuffix) return;
  std::string out(topic.substr(0, topic.size() - kSuffix.size()));
  out += "/response";
  int rc = mosquitto_publish(c.m, nullptr, out.c_str(), msg.payloadlen, msg.payload, msg.qos, false);
  if (rc != MOSQ_ERR_SUCCESS) Die("echo publish: %s", mosquitto_strerror(rc));
}

int RunEcho(const Args& a) {
  std::vector<Conn> conns(1);
  Conn& c = conns[0];
  c.client_id = a.Get("client-id", "bench-echo");
  c.qos = static_cast<int>(a.Int("qos", 0));
  c.subscribe_filter = a.Get("prefix", "spec") + "/+/request";
  c.handler = EchoHandler;
  Connect(c, a.Get("host", "127.0.0.1"), static_cast<int>(a.Int("port", 1883)));
  const std::string how = a.Get("loop", "lib");
  if (how == "lib") {
    // The stock client: libmosquitto's own loop (select() per packet, a socketpair wake per
    // publish from the callback).
    std::fprintf(stderr, "mqttspec_bench echo: republishing %s at QoS %d (mosquitto_loop_forever)\n",
                 c.subscribe_filter.c_str(), c.qos);
    int rc = mosquitto_loop_forever(c.m, -1, 1);
    Die("echo: loop ended: %s", mosquitto_strerror(rc));
  }
  if (how != "poll") Die("--loop: lib or poll");
  Loop loop(conns);
  if (!loop.Until([&] { return c.subscribed; }, 10)) Die("echo: no SUBACK within 10 s");
  std::fprintf(stderr, "mqttspec_bench echo: republishing %s at QoS %d (poll loop)\n", c.subscribe_filter.c_str(), c.qos);
  for (;;) loop.Pump(1000);
}

// ---- load generator -----------------------------------------------------------------------

enum class Workload { kPing, kRead, kCreate, kList };

const char* WorkloadName(Workload w) {
  switch (w) {
    case Workload::kPing: return "ping";
    case Workload::kRead: return "read-by-key";
    case Workload::kCreate: return "create";
    case Workload::kList: return "list-20";
  }
  return "?";
}

constexpr int kGroups = 250;  // grp = row % kGroups: 40 rows per group with 10 000 rows

struct Phase {
  Workload workload = Workload::kRead;
  int64_t first_seq = 0;
  int64_t max_requests = 0;   // send at most this many
  int64_t deadline_ns = 0;    // and send none after this
  int per_conn_inflight = 1;
  int64_t sent = 0;
  int64_t received = 0;
  int64_t errors = 0;
  int64_t stale = 0;
  std::string first_error;
  std::vector<int64_t> sent_at;     // by seq - first_seq
  std::vector<int64_t> latencies;   // ns
  int64_t start_ns = 0;
  int64_t last_recv_ns = 0;
  bool check_success = true;        // service answers: require "success":true
};

struct Driver {
  std::vector<Conn> conns;
  std::string tag;          // makes ids unique per process
  int64_t next_seq = 1;
  int64_t rows = 10000;     // keys 1..rows exist
  Phase* phase = nullptr;
  std::string payload;      // scratch
};

Driver* g_driver = nullptr;

// Request bytes for `seq`. The echo baseline receives exactly the same bytes.
void BuildPayload(const Driver& d, Workload w, int64_t seq, std::string& out) {
  char buf[512];
  int n = 0;
  switch (w) {
    case Workload::kPing:
      n = std::snprintf(buf, sizeof buf, R"({"id":"%s-%lld","type":"ping"})", d.tag.c_str(), (long long)seq);
      break;
    case Workload::kRead: {
      long long key = (seq * 7919) % d.rows + 1;  // scattered over the whole table
      n = std::snprintf(buf, sizeof buf,
                        R"({"id":"%s-%lld","type":"request","operation":"read","entity":"items","record_id":%lld})",
                        d.tag.c_str(), (long long)seq, key);
      break;
    }
    case Workload::kCreate:
      n = std::snprintf(buf, sizeof buf,
                        R"({"id":"%s-%lld","type":"request","operation":"create","entity":"items","data":{"grp":%lld,"name":"new-%lld","score":%lld.5}})",
                        d.tag.c_str(), (long long)seq, (long long)(seq % kGroups), (long long)seq,
                        (long long)(seq % 1000));
      break;
    case Workload::kList:
      n = std::snprintf(buf, sizeof buf,
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
  if (s.compare(at, d.tag.size(), d.tag) != 0 || at + d.tag.size() >= s.size() || s[at + d.tag.size()] != '-')
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
  int rc = mosquitto_publish(c.m, nullptr, c.request_topic.c_str(), static_cast<int>(d.payload.size()),
                             d.payload.data(), c.qos, false);
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
    std::string_view body(static_cast<const char*>(msg.payload), static_cast<size_t>(msg.payloadlen));
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


PhaseResult RunPhase(Driver& d, Loop& loop, Workload w, int conns, int inflight, int64_t max_requests,
                     double seconds, bool check_success) {
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
    std::fprintf(stderr, "mqttspec_bench: %s: %lld of %lld answers missing after the deadline\n", WorkloadName(w),
                 (long long)r.lost, (long long)p.sent);
    for (auto& c : d.conns) c.inflight = 0;
  }
  double elapsed = static_cast<double>(p.last_recv_ns - p.start_ns) / 1e9;
  r.rps = elapsed > 0 ? static_cast<double>(p.received) / elapsed : 0;
  r.p50_us = Percentile(p.latencies, 0.50);
  r.p99_us = Percentile(p.latencies, 0.99);
  d.phase = nullptr;
  if (p.stale) std::fprintf(stderr, "mqttspec_bench: %s: %lld unmatched or duplicate answers\n", WorkloadName(w), (long long)p.stale);
  return r;
}

// One request, the whole answer returned: used to check a setup before measuring it.
std::string RoundTrip(Driver& d, Loop& loop, Conn& c, const std::string& payload, const std::string& id,
                      double seconds) {
  std::string answer;
  struct Ctx {
    const std::string* id;
    std::string* answer;
  } ctx{&id, &answer};
  c.owner = &ctx;
  c.handler = [](Conn& conn, const mosquitto_message& msg) {
    auto* x = static_cast<Ctx*>(conn.owner);
    std::string_view body(static_cast<const char*>(msg.payload), static_cast<size_t>(msg.payloadlen));
    std::string want = "\"id\":\"" + *x->id + "\"";
    if (body.find(want) != std::string_view::npos) x->answer->assign(body);
  };
  int rc = mosquitto_publish(c.m, nullptr, c.request_topic.c_str(), static_cast<int>(payload.size()), payload.data(),
                             c.qos, false);
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
    std::string p = R"({"id":")" + id + R"(","type":"request","operation":"create","entity":"items","data":[)";
    for (int64_t i = 0; i < n; ++i) {
      int64_t row = base + i + 1;
      char buf[160];
      std::snprintf(buf, sizeof buf, R"(%s{"grp":%lld,"name":"item-%05lld","score":%lld.25})", i ? "," : "",
                    (long long)(row % kGroups), (long long)row, (long long)(row % 1000));
      p += buf;
    }
    p += "]}";
    std::string answer = RoundTrip(d, loop, c, p, id, 30);
    if (answer.find("\"success\":true") == std::string::npos)
      Die("prefill batch at row %lld failed: %.300s", (long long)base, answer.empty() ? "(no answer in 30 s)" : answer.c_str());
  }
  std::fprintf(stderr, "mqttspec_bench: pre-filled %lld rows in %.2f s\n", (long long)rows,
               static_cast<double>(NowNs() - start) / 1e9);
}

std::vector<Workload> ParseWorkloads(const std::string& s) {
  std::vector<Workload> out;
  std::stringstream in(s);
  std::string w;
  while (std::getline(in, w, ',')) {
    if (w == "read") out.push_back(Workload::kRead);
    else if (w == "create") out.push_back(Workload::kCreate);
    else if (w == "list") out.push_back(Workload::kList);
    else if (w == "ping") out.push_back(Workload::kPing);
    else Die("unknown workload '%s' (read, create, list, ping)", w.c_str());
  }
  return out;
}

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
  auto workloads = ParseWorkloads(a.Get("workloads", "read,create,list"));

  d.conns.resize(static_cast<size_t>(std::max(1, nconns)));
  for (size_t i = 0; i < d.conns.size(); ++i) {
    Conn& c = d.conns[i];
    c.index = static_cast<int>(i);
    c.client_id = a.Get("client-prefix", "bench") + std::to_string(i);
    c.request_topic = prefix + "/" + c.client_id + "/request";
    c.response_topic = prefix + "/" + c.client_id + "/response";
    c.subscribe_filter = c.response_topic;
    c.qos = qos;
    c.handler = LoadHandler;
    Connect(c, host, port);
  }
  Loop loop(d.conns);
  if (!loop.Until([&] { return std::all_of(d.conns.begin(), d.conns.end(), [](const Conn& c) { return c.subscribed; }); }, 10))
    Die("no SUBACK on every connection within 10 s");

  // Ready when a ping comes back (the service or the echo answers).
  bool ready = false;
  for (int i = 0; i < 100 && !ready; ++i) {
    std::string id = d.tag + "-ready" + std::to_string(i);
    ready = !RoundTrip(d, loop, d.conns[0], R"({"id":")" + id + R"(","type":"ping"})", id, 0.2).empty();
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
    std::fprintf(out, "%s\t%d\t%s\t%lld\t%.1f\t%.1f\t%lld\t%.0f\t%.1f\t%.1f\t%lld\t%lld\t%s\n", setup.c_str(), qos,
                 WorkloadName(w), (long long)lat.n, lat.p50_us, lat.p99_us, (long long)tput.n, tput.rps, tput.p50_us,
                 tput.p99_us, (long long)errors, (long long)lost, label.c_str());
    std::fflush(out);
    std::fprintf(stderr, "%-14s qos%d %-12s 1 in flight: p50 %7.1f µs p99 %7.1f µs (n=%lld) | %d×%d in flight: %8.0f req/s p50 %7.1f µs p99 %7.1f µs (n=%lld)%s\n",
                 setup.c_str(), qos, WorkloadName(w), lat.p50_us, lat.p99_us, (long long)lat.n, nconns, inflight,
                 tput.rps, tput.p50_us, tput.p99_us, (long long)tput.n,
                 errors || lost ? " ERRORS" : "");
    if (errors) std::fprintf(stderr, "  %lld error answers, first: %s\n", (long long)errors,
                             (lat.first_error.empty() ? tput.first_error : lat.first_error).c_str());
  }
  if (out != stdout) std::fclose(out);
  for (auto& c : d.conns) {
    mosquitto_disconnect(c.m);
    loop.Flush();
  }
  for (auto& c : d.conns) mosquitto_destroy(c.m);
  return 0;
}

// ---- report -------------------------------------------------------------------------------

struct Row {
  std::string setup, workload, label;
  int qos = 0;
  long long n1 = 0, n64 = 0, errors = 0, lost = 0;
  double p50 = 0, p99 = 0, rps = 0, p50_64 = 0, p99_64 = 0;
};

std::string Fmt(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Rows of several rounds, one per (setup, qos, workload): medians, and the range of p50 and req/s.
struct Cell {
  std::string setup, workload;
  int qos = 0;
  int rounds = 0;
  double p50 = 0, p99 = 0, rps = 0, p50_64 = 0, p99_64 = 0;
  double p50_min = 0, p50_max = 0, rps_min = 0, rps_max = 0;
  long long errors = 0, lost = 0;
};

int RunReport(const std::string& path) {
  std::ifstream in(path);
  if (!in) Die("cannot read %s", path.c_str());
  std::vector<Row> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, '\t')) f.push_back(x);
    if (f.size() < 12) continue;
    Row r;
    r.setup = f[0];
    r.qos = std::atoi(f[1].c_str());
    r.workload = f[2];
    r.n1 = std::atoll(f[3].c_str());
    r.p50 = std::atof(f[4].c_str());
    r.p99 = std::atof(f[5].c_str());
    r.n64 = std::atoll(f[6].c_str());
    r.rps = std::atof(f[7].c_str());
    r.p50_64 = std::atof(f[8].c_str());
    r.p99_64 = std::atof(f[9].c_str());
    r.errors = std::atoll(f[10].c_str());
    r.lost = std::atoll(f[11].c_str());
    r.label = f.size() > 12 ? f[12] : "-";
    rows.push_back(r);
  }
  std::vector<Cell> cells;
  for (const Row& r : rows) {
    auto it = std::find_if(cells.begin(), cells.end(), [&](const Cell& c) {
      return c.setup == r.setup && c.qos == r.qos && c.workload == r.workload;
    });
    if (it != cells.end()) continue;
    Cell c;
    c.setup = r.setup;
    c.qos = r.qos;
    c.workload = r.workload;
    std::vector<double> p50, p99, rps, p50_64, p99_64;
    for (const Row& s : rows) {
      if (s.setup != r.setup || s.qos != r.qos || s.workload != r.workload) continue;
      p50.push_back(s.p50);
      p99.push_back(s.p99);
      rps.push_back(s.rps);
      p50_64.push_back(s.p50_64);
      p99_64.push_back(s.p99_64);
      c.errors += s.errors;
      c.lost += s.lost;
      ++c.rounds;
    }
    c.p50 = Median(p50);
    c.p99 = Median(p99);
    c.rps = Median(rps);
    c.p50_64 = Median(p50_64);
    c.p99_64 = Median(p99_64);
    c.p50_min = *std::min_element(p50.begin(), p50.end());
    c.p50_max = *std::max_element(p50.begin(), p50.end());
    c.rps_min = *std::min_element(rps.begin(), rps.end());
    c.rps_max = *std::max_element(rps.begin(), rps.end());
    cells.push_back(c);
  }
  auto base = [&](const Cell& r) -> const Cell* {
    for (const Cell& b : cells)
      if (b.setup == "echo" && b.qos == r.qos && b.workload == r.workload) return &b;
    return nullptr;
  };
  auto range = [](double lo, double hi, const char* f) {
    return lo == hi ? std::string() : " (" + Fmt(f, lo) + "–" + Fmt(f, hi) + ")";
  };
  std::printf("| QoS | workload | setup | p50 µs, 1 in flight | p99 µs | p50 × echo | req/s, 64 in flight | req/s × echo | p50 / p99 µs at 64 | errors |\n");
  std::printf("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  std::vector<std::string> order_w = {"read-by-key", "create", "list-20", "ping"};
  for (int qos : {0, 1}) {
    for (const auto& w : order_w) {
      for (const Cell& r : cells) {
        if (r.qos != qos || r.workload != w) continue;
        const Cell* b = base(r);
        std::string rp = b && b->p50 > 0 ? Fmt("%.2f×", r.p50 / b->p50) : "—";
        std::string rt = b && b->rps > 0 ? Fmt("%.2f×", r.rps / b->rps) : "—";
        if (r.setup == "echo") rp = rt = "1";
        std::printf("| %d | %s | %s | %.0f%s | %.0f | %s | %.0f%s | %s | %.0f / %.0f | %lld%s |\n", r.qos,
                    r.workload.c_str(), r.setup.c_str(), r.p50, range(r.p50_min, r.p50_max, "%.0f").c_str(), r.p99,
                    rp.c_str(), r.rps, range(r.rps_min, r.rps_max, "%.0f").c_str(), rt.c_str(), r.p50_64, r.p99_64,
                    r.errors, r.lost ? Fmt(" (+%lld lost)", r.lost).c_str() : "");
      }
    }
  }
  std::printf("\n**Targets** (read-by-key, ratios of medians to the echo baseline of the same QoS in this run):\n\n");
  std::printf("| QoS | setup | p50 × echo | per round | target | verdict | req/s × echo | per round | target | verdict |\n"
              "|---|---|---:|---|---|---|---:|---|---|---|\n");
  // Ratios of the rows of one round (same label) to that round's echo: how much the verdict
  // depends on the round.
  auto per_round = [&](const Cell& c, bool latency) {
    std::vector<double> v;
    for (const Row& r : rows) {
      if (r.setup != c.setup || r.qos != c.qos || r.workload != c.workload) continue;
      for (const Row& b : rows) {
        if (b.setup == "echo" && b.qos == r.qos && b.workload == r.workload && b.label == r.label) {
          double x = latency ? (b.p50 > 0 ? r.p50 / b.p50 : 0) : (b.rps > 0 ? r.rps / b.rps : 0);
          if (x > 0) v.push_back(x);
        }
      }
    }
    if (v.size() < 2) return std::string("—");
    std::sort(v.begin(), v.end());
    std::string out;
    for (double x : v) out += (out.empty() ? "" : ", ") + Fmt("%.2f", x);
    return out;
  };
  struct Target {
    const char* setup;
    double p50_max, rps_min;
  };
  for (int qos : {0, 1}) {
    for (Target t : {Target{"embedded", 1.0, 0.8}, Target{"external", 1.5, 0.6}, Target{"embedded-pg", 1.0, 0.8},
                     Target{"external-pg", 1.5, 0.6}}) {
      for (const Cell& r : cells) {
        if (r.qos != qos || r.setup != t.setup || r.workload != "read-by-key") continue;
        const Cell* b = base(r);
        if (!b || b->p50 <= 0 || b->rps <= 0) continue;
        double rp = r.p50 / b->p50, rt = r.rps / b->rps;
        std::string vp = rp <= t.p50_max ? "met" : Fmt("**missed** by %.0f %%", (rp / t.p50_max - 1) * 100);
        std::string vt = rt >= t.rps_min ? "met" : Fmt("**missed** by %.0f %%", (1 - rt / t.rps_min) * 100);
        std::printf("| %d | %s | %.2f× | %s | ≤ %.1f× | %s | %.2f× | %s | ≥ %.1f× | %s |\n", qos, t.setup, rp,
                    per_round(r, true).c_str(), t.p50_max, vp.c_str(), rt, per_round(r, false).c_str(), t.rps_min,
                    vt.c_str());
      }
    }
  }

  // The raw database baselines (mqttspec_pq_baseline: QoS -1) and what the service adds to them.
  auto find = [&](const std::string& setup, int qos, const std::string& w) -> const Cell* {
    for (const Cell& c : cells)
      if (c.setup == setup && c.qos == qos && c.workload == w) return &c;
    return nullptr;
  };
  if (std::none_of(cells.begin(), cells.end(), [](const Cell& c) { return c.qos == -1; })) return 0;
  std::printf("\n**Raw database baselines** (the same statements without mqttspec: libpq `PQexecPrepared` / the "
              "sqlite3 C API; latency 1 connection, 1 statement at a time; throughput 8 connections/threads, "
              "closed loop):\n\n");
  std::printf("| setup | statement | p50 µs, 1 conn | p99 µs | ops/s, 8 conns | p50 / p99 µs at 8 | errors |\n"
              "|---|---|---:|---:|---:|---:|---:|\n");
  for (const char* w : {"read-by-key", "create"}) {
    for (const Cell& c : cells) {
      if (c.qos != -1 || c.workload != w) continue;
      std::printf("| %s | %s | %.0f%s | %.0f | %.0f%s | %.0f / %.0f | %lld |\n", c.setup.c_str(), w, c.p50,
                  range(c.p50_min, c.p50_max, "%.0f").c_str(), c.p99, c.rps, range(c.rps_min, c.rps_max, "%.0f").c_str(),
                  c.p50_64, c.p99_64, c.errors);
    }
  }
  std::printf("\n**Service vs raw database** (p50 µs at 1 in flight, medians; \"− raw\" = service p50 − raw p50 = "
              "what the adapter and the MQTT path add to the statement; echo = the bare MQTT round trip):\n\n");
  std::printf("| QoS | workload | mode | echo | SQLite | raw sqlite3 | − raw | PostgreSQL | raw libpq | − raw | raw libpq, BEGIN…COMMIT as the adapter | − that |\n"
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  // One row per (QoS, workload, mode): the service beside the raw statement on each database.
  // `value` formats a cell, `compare` the service against a raw baseline.
  auto service_vs_raw = [&](auto value, auto compare) {
    for (int qos : {0, 1}) {
      for (const char* w : {"read-by-key", "create"}) {
        for (const char* mode : {"embedded", "external"}) {
          const Cell* e = find("echo", qos, w);
          const Cell* s = find(mode, qos, w);
          const Cell* p = find(std::string(mode) + "-pg", qos, w);
          if (!s && !p) continue;
          const Cell* rs = find("raw-sqlite", -1, w);
          const Cell* rp = find("raw-pg", -1, w);
          const Cell* rt = find("raw-pg-tx", -1, w);
          std::printf("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", qos, w, mode,
                      value(e).c_str(), value(s).c_str(), value(rs).c_str(), compare(s, rs).c_str(),
                      value(p).c_str(), value(rp).c_str(), compare(p, rp).c_str(),
                      value(rt).c_str(), compare(p, rt).c_str());
        }
      }
    }
  };
  service_vs_raw([](const Cell* c) { return c ? Fmt("%.0f", c->p50) : std::string("—"); },
       [](const Cell* a, const Cell* b) {
         return a && b ? Fmt("%+.0f", a->p50 - b->p50) : std::string("—");
       });
  std::printf("\n**Throughput, service vs raw database** (req/s at 4 × 16 in flight vs raw ops/s with 8 "
              "connections; medians):\n\n");
  std::printf("| QoS | workload | mode | echo | SQLite | raw sqlite3 | service / raw | PostgreSQL | raw libpq | service / raw | raw libpq, BEGIN…COMMIT | service / that |\n"
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  service_vs_raw([](const Cell* c) { return c ? Fmt("%.0f", c->rps) : std::string("—"); },
       [](const Cell* a, const Cell* b) {
         return a && b && b->rps > 0 ? Fmt("%.2f×", a->rps / b->rps) : std::string("—");
       });
  return 0;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) Die("bind: %s", std::strerror(errno));
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("%d\n", ntohs(addr.sin_port));
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench::program_name = "mqttspec_bench";
  if (argc < 2) {
    std::fprintf(stderr, "usage: mqttspec_bench free-port | echo --port P [--qos Q] | run --port P --setup NAME [...] | report FILE\n");
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "free-port") return FreePort();
  if (cmd == "report") {
    if (argc < 3) Die("report FILE");
    return RunReport(argv[2]);
  }
  mosquitto_lib_init();
  Args a = ParseArgs(argc, argv, 2);
  int rc = 2;
  if (cmd == "echo") rc = RunEcho(a);
  else if (cmd == "run") rc = RunLoad(a);
  else Die("unknown command '%s'", cmd.c_str());
  mosquitto_lib_cleanup();
  return rc;
}
