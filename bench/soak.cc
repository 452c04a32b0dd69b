// mqttspec_soak: the soak of bench/run_soak.sh — many subscribed clients and a steady write load
// for minutes, sampled every few seconds, with an exact account of the notifications at the end.
//
//   mqttspec_soak run --port P [--host H] [--qos Q] --service-pid PID [--subscribers N]
//                     [--groups G] [--writers W] [--rate R] [--duration S] [--interval S]
//                     [--per-proc K] [--batch B] [--settle-s S] [--json FILE]
//
// N subscriber clients (ids soak-s<i>) each subscribe (MQTT) to their own spec/soak-s<i>/# and
// then hold one mqttspec subscription on items with {grp eq i % G}. W writer clients (soak-w<j>)
// then create rows at R per second in total for S seconds, open loop (the k-th create is due at
// start + k/R, whatever is still unanswered; it goes out on connection k % W), row k in group
// k % G, so every create matches the N/G subscriptions of its group. The row's name carries the
// create's send time ("t<ns>-<k>", CLOCK_MONOTONIC), so a subscriber can tell how long after the
// request its notification arrived.
//
// Every `interval` seconds: the writes answered in the window (throughput; latency = request
// published → answer received, p50/p99/max), the notifications received (p50/p99 of request →
// notification), and VmRSS and CPU time of --service-pid (the Mosquitto process that hosts the
// plugin in embedded mode). After S seconds sending stops; the run waits for every answer, then for
// the notifications to settle (all expected ones in, or --settle-s without progress). Then every
// subscriber's notifications are checked: seq exactly 1, 2, …, k with no gap and no duplicate,
// every row of its group, and k = the number of successful creates in its group (the writers count
// them by the grp they sent). Output: a markdown table and a summary on stdout, the same as JSON
// lines (one per window, one summary) on stdout and in --json; progress on stderr.
// Exit status 0 only if no notification was lost or duplicated and every create succeeded.
//
// Processes: libmosquitto opens a socket pair per client beside its socket, 3 descriptors per
// client, and an unprivileged process may not raise its hard limit on descriptors (20 000 here).
// So the subscribers are spread over ceil(N / K) forked processes of K clients each, the writers
// are one more, and this process only coordinates: it asks each child for its window over a
// socket pair and merges. Subscriber processes drive their thousands of connections with epoll
// (bench::Loop's poll() walks every descriptor on every call); the writers use bench::Loop.
// Connections, subscriptions and callbacks are bench::Conn / bench::Connect (bench_conn.h), so
// any lost connection is fatal, as in the rest of bench/.

#include <fcntl.h>
#include <mosquitto.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.h"
#include "bench_conn.h"

namespace bench {
namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 1883;
  int qos = 1;
  pid_t service_pid = 0;
  int subscribers = 10000;
  int groups = 1000;
  int writers = 4;
  double rate = 200;
  double duration_s = 600;
  double interval_s = 10;
  int per_proc = 5000;
  int batch = 100;
  double settle_s = 30;
  std::string json;
};

// ---- the coordinator's socket pairs: one-byte commands down, framed replies up ----------------

enum Command : char {
  kStart = 'S',   // writers: start sending now
  kWindow = 'W',  // reply kWindowReply with the window since the last one, and start a new one
  kCount = 'C',   // reply kCountReply
  kFinal = 'F',   // reply kFinalReply
  kQuit = 'Q',
};
enum Reply : uint32_t { kReadyReply = 1, kWindowReply, kCountReply, kFinalReply };

struct FrameHeader {
  uint32_t kind;
  uint32_t bytes;
};

// One child's share of a sampling window, followed by n_lat int64 latencies in ns.
struct WindowStats {
  int64_t sent = 0;           // writers: creates published in the window
  int64_t answered = 0;       // writers: answers received
  int64_t errors = 0;         // writers: answers without "success":true
  int64_t max_lag_ns = 0;     // writers: the latest a create left after its due time
  int64_t inflight = 0;       // writers: unanswered at the end of the window
  int64_t notifications = 0;  // subscribers: notifications received
  int64_t anomalies = 0;      // subscribers: seq gaps + duplicates + wrong rows so far
  int64_t n_lat = 0;
};

struct Counts {
  int64_t planned = 0, sent = 0, answered = 0, sending_done = 0;  // writers
  int64_t notifications = 0;                                      // subscribers
};

struct Ready {
  int64_t clients = 0;
  double seconds = 0;
};

// Per subscriber, in a subscriber child's kFinalReply.
struct SubRecord {
  int32_t index = 0;
  int32_t group = 0;
  int64_t received = 0;  // notifications
  int64_t last_seq = 0;  // the highest seq seen
  int64_t gaps = 0;      // seqs skipped
  int64_t dups = 0;      // notifications whose seq was not above the last one
  int64_t wrong = 0;     // rows of another group, or unparseable notifications
};

// The writers' kFinalReply: this, then `groups` int64 successful creates per group.
struct WriterFinal {
  int64_t planned = 0, sent = 0, answered = 0, errors = 0;
  char first_error[400] = {};
};

void WriteAll(int fd, const void* p, size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) Die("write to the coordinator: %s", std::strerror(errno));
    c += w;
    n -= static_cast<size_t>(w);
  }
}

bool ReadAll(int fd, void* p, size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    ssize_t r = read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

template <class T>
void Put(std::string& s, const T& v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T>
void PutAll(std::string& s, const std::vector<T>& v) {
  s.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

void SendFrame(int fd, Reply kind, const std::string& payload) {
  FrameHeader h{kind, static_cast<uint32_t>(payload.size())};
  WriteAll(fd, &h, sizeof h);
  WriteAll(fd, payload.data(), payload.size());
}

struct Frame {
  uint32_t kind = 0;
  std::string data;
  size_t off = 0;
  template <class T>
  T Get() {
    T v{};
    if (off + sizeof v > data.size()) Die("short frame from a child");
    std::memcpy(&v, data.data() + off, sizeof v);
    off += sizeof v;
    return v;
  }
  template <class T>
  void GetAll(size_t n, std::vector<T>& out) {
    if (off + n * sizeof(T) > data.size()) Die("short frame from a child");
    size_t at = out.size();
    out.resize(at + n);
    std::memcpy(out.data() + at, data.data() + off, n * sizeof(T));
    off += n * sizeof(T);
  }
};

// ---- JSON scraping: the first integer after `key` in `s` (from `from`) -------------------------

std::optional<int64_t> IntAfter(std::string_view s, std::string_view key, size_t from = 0) {
  size_t at = s.find(key, from);
  if (at == std::string_view::npos) return std::nullopt;
  at += key.size();
  while (at < s.size() && s[at] == ' ') ++at;
  bool neg = at < s.size() && s[at] == '-';
  if (neg) ++at;
  int64_t v = 0;
  bool any = false;
  while (at < s.size() && s[at] >= '0' && s[at] <= '9') {
    v = v * 10 + (s[at++] - '0');
    any = true;
  }
  if (!any) return std::nullopt;
  return neg ? -v : v;
}

std::string_view Body(const mosquitto_message& m) {
  return {static_cast<const char*>(m.payload), static_cast<size_t>(m.payloadlen)};
}

// ---- the children's common part -----------------------------------------------------------------

// A command byte waiting on `ctl`, or 0.
char PollCommand(int ctl, int timeout_ms) {
  pollfd p{ctl, POLLIN, 0};
  int n = poll(&p, 1, timeout_ms);
  if (n <= 0) return 0;
  char c = 0;
  if (!ReadAll(ctl, &c, 1)) _exit(0);  // the coordinator is gone
  return c;
}

// Reads what the broker sent `c` and writes what it queued (the body of bench::Loop::Pump for
// one connection).
void ServeConn(Conn& c, bool readable) {
  if (readable) {
    for (int k = 0; k < 256; ++k) {
      int rc = mosquitto_loop_read(c.m, 1);
      if (rc != MOSQ_ERR_SUCCESS) Die("%s: read: %s", c.client_id.c_str(), mosquitto_strerror(rc));
      int pending = 0;
      if (ioctl(mosquitto_socket(c.m), FIONREAD, &pending) != 0 || pending <= 0) break;
    }
  }
  if (mosquitto_want_write(c.m)) {
    int rc = mosquitto_loop_write(c.m, 1);
    if (rc != MOSQ_ERR_SUCCESS) Die("%s: write: %s", c.client_id.c_str(), mosquitto_strerror(rc));
  }
}

// ---- subscriber children ------------------------------------------------------------------------

struct SubState {
  int group = 0;
  int64_t received = 0, last_seq = 0, gaps = 0, dups = 0, wrong = 0;
};

struct Subscribers {
  const Options* o = nullptr;
  int first = 0;  // global index of conns[0]
  std::vector<Conn> conns;
  std::vector<SubState> st;
  std::vector<uint8_t> want_out;  // EPOLLOUT registered
  int ep = -1;
  int ctl = -1;
  int64_t answers = 0, answers_ok = 0;
  std::string first_error;
  int64_t total = 0, anomalies = 0;
  int64_t win_notifications = 0;
  std::vector<int64_t> win_lat;
  int64_t last_misc = 0;
  bool quit = false;
};

constexpr uint64_t kCtlTag = ~uint64_t{0};

void SubHandler(Conn& c, const mosquitto_message& m) {
  auto& s = *static_cast<Subscribers*>(c.owner);
  const int64_t now = NowNs();
  std::string_view topic(m.topic), body = Body(m);
  if (topic.size() > 9 && topic.substr(topic.size() - 9) == "/response") {
    ++s.answers;
    if (body.find("\"success\":true") != std::string_view::npos)
      ++s.answers_ok;
    else if (s.first_error.empty())
      s.first_error.assign(body.substr(0, 300));
    return;
  }
  SubState& st = s.st[static_cast<size_t>(c.index)];
  ++st.received;
  ++s.total;
  ++s.win_notifications;
  auto seq = IntAfter(body, "\"seq\":");
  auto grp = IntAfter(body, "\"grp\":");
  auto t = IntAfter(body, "\"name\":\"t");
  if (!seq || !grp || *grp != st.group || body.find("\"notification\"") == std::string_view::npos) {
    ++st.wrong;
    ++s.anomalies;
    return;
  }
  if (*seq <= st.last_seq) {
    ++st.dups;
    ++s.anomalies;
  } else {
    if (*seq != st.last_seq + 1) {
      st.gaps += *seq - st.last_seq - 1;
      ++s.anomalies;
    }
    st.last_seq = *seq;
  }
  if (t) s.win_lat.push_back(now - *t);
}

void SyncInterest(Subscribers& s, size_t i) {
  const bool want = mosquitto_want_write(s.conns[i].m);
  if (want == static_cast<bool>(s.want_out[i])) return;
  epoll_event ev{};
  ev.events = want ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
  ev.data.u64 = i;
  if (epoll_ctl(s.ep, EPOLL_CTL_MOD, mosquitto_socket(s.conns[i].m), &ev) != 0)
    Die("epoll_ctl: %s", std::strerror(errno));
  s.want_out[i] = want;
}

void SubCommand(Subscribers& s, char cmd) {
  std::string out;
  switch (cmd) {
    case kWindow: {
      WindowStats w;
      w.notifications = s.win_notifications;
      w.anomalies = s.anomalies;
      w.n_lat = static_cast<int64_t>(s.win_lat.size());
      Put(out, w);
      PutAll(out, s.win_lat);
      SendFrame(s.ctl, kWindowReply, out);
      s.win_notifications = 0;
      s.win_lat.clear();
      break;
    }
    case kCount: {
      Counts c;
      c.notifications = s.total;
      Put(out, c);
      SendFrame(s.ctl, kCountReply, out);
      break;
    }
    case kFinal: {
      std::vector<SubRecord> recs(s.st.size());
      for (size_t i = 0; i < s.st.size(); ++i) {
        const SubState& st = s.st[i];
        recs[i] = {s.first + static_cast<int32_t>(i), st.group, st.received, st.last_seq, st.gaps,
                   st.dups, st.wrong};
      }
      PutAll(out, recs);
      SendFrame(s.ctl, kFinalReply, out);
      break;
    }
    case kQuit: s.quit = true; break;
    default: break;
  }
}

// One epoll_wait over the connections registered so far (and the coordinator's socket), then the
// keep-alives once a second.
void SubPump(Subscribers& s, int timeout_ms) {
  epoll_event evs[256];
  int n = epoll_wait(s.ep, evs, 256, timeout_ms);
  if (n < 0 && errno != EINTR) Die("epoll_wait: %s", std::strerror(errno));
  for (int k = 0; k < n; ++k) {
    if (evs[k].data.u64 == kCtlTag) {
      char cmd = 0;
      if (!ReadAll(s.ctl, &cmd, 1)) _exit(0);
      SubCommand(s, cmd);
      continue;
    }
    size_t i = evs[k].data.u64;
    ServeConn(s.conns[i], evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP));
    SyncInterest(s, i);
  }
  int64_t now = NowNs();
  if (now - s.last_misc > 1'000'000'000) {
    s.last_misc = now;
    for (size_t i = 0; i < s.conns.size(); ++i) {
      if (!s.conns[i].m) break;  // not connected yet (connections are made in order)
      mosquitto_loop_misc(s.conns[i].m);
      SyncInterest(s, i);
    }
  }
}

template <class Pred>
bool SubUntil(Subscribers& s, Pred pred, double seconds) {
  int64_t deadline = NowNs() + static_cast<int64_t>(seconds * 1e9);
  while (!pred()) {
    if (NowNs() >= deadline) return false;
    SubPump(s, 50);
  }
  return true;
}

[[noreturn]] void RunSubscribers(const Options& o, int ctl, int first, int count) {
  mosquitto_lib_init();
  Subscribers s;
  s.o = &o;
  s.first = first;
  s.ctl = ctl;
  s.conns.resize(static_cast<size_t>(count));  // never resized again: Conn* is the userdata
  s.st.resize(s.conns.size());
  s.want_out.assign(s.conns.size(), 1);  // forces the first SyncInterest to register
  s.ep = epoll_create1(EPOLL_CLOEXEC);
  if (s.ep < 0) Die("epoll_create1: %s", std::strerror(errno));
  epoll_event cev{};
  cev.events = EPOLLIN;
  cev.data.u64 = kCtlTag;
  epoll_ctl(s.ep, EPOLL_CTL_ADD, ctl, &cev);

  const int64_t t0 = NowNs();
  for (int base = 0; base < count; base += o.batch) {
    const int end = std::min(count, base + o.batch);
    for (int i = base; i < end; ++i) {
      Conn& c = s.conns[static_cast<size_t>(i)];
      const int global = first + i;
      c.index = i;
      c.client_id = "soak-s" + std::to_string(global);
      c.request_topic = "spec/" + c.client_id + "/request";
      c.response_topic = "spec/" + c.client_id + "/response";
      c.subscribe_filter = "spec/" + c.client_id + "/#";  // the answer and the notifications
      c.qos = o.qos;
      c.handler = SubHandler;
      c.owner = &s;
      s.st[static_cast<size_t>(i)].group = global % o.groups;
      Connect(c, o.host, o.port);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = static_cast<uint64_t>(i);
      if (epoll_ctl(s.ep, EPOLL_CTL_ADD, mosquitto_socket(c.m), &ev) != 0)
        Die("epoll_ctl: %s", std::strerror(errno));
      s.want_out[static_cast<size_t>(i)] = 0;
      SyncInterest(s, static_cast<size_t>(i));
    }
    auto batch_subscribed = [&] {
      for (int i = base; i < end; ++i)
        if (!s.conns[static_cast<size_t>(i)].subscribed) return false;
      return true;
    };
    if (!SubUntil(s, batch_subscribed, 60))
      Die("soak-s%d…: no SUBACK within 60 s", first + base);
    for (int i = base; i < end; ++i) {
      Conn& c = s.conns[static_cast<size_t>(i)];
      char buf[320];
      int n = std::snprintf(
          buf, sizeof buf,
          R"({"id":"s%d","type":"subscription","operation":"subscribe","entity":"items","options":{"filters":[{"column":"grp","operator":"eq","value":%d}]}})",
          first + i, s.st[static_cast<size_t>(i)].group);
      int rc = mosquitto_publish(c.m, nullptr, c.request_topic.c_str(), n, buf, o.qos, false);
      if (rc != MOSQ_ERR_SUCCESS) Die("publish: %s", mosquitto_strerror(rc));
      SyncInterest(s, static_cast<size_t>(i));
    }
  }
  if (!SubUntil(s, [&] { return s.answers >= count; }, 120))
    Die("%lld of %d subscribe requests unanswered after 120 s", (long long)(count - s.answers),
        count);
  if (s.answers_ok != count)
    Die("%lld of %d subscribe requests failed: %s", (long long)(count - s.answers_ok), count,
        s.first_error.c_str());
  std::string out;
  Put(out, Ready{count, static_cast<double>(NowNs() - t0) / 1e9});
  SendFrame(ctl, kReadyReply, out);
  while (!s.quit) SubPump(s, 100);
  _exit(0);
}

// ---- the writers' child -------------------------------------------------------------------------

struct Writers {
  const Options* o = nullptr;
  std::vector<Conn> conns;
  int ctl = -1;
  int64_t planned = 0;
  int64_t t0 = 0;
  bool started = false, sending_done = false;
  int64_t next_k = 0;
  std::vector<int64_t> sent_at;  // by k; 0 once answered
  std::vector<int64_t> created;  // successful creates by group
  int64_t sent = 0, answered = 0, errors = 0, stale = 0;
  std::string first_error;
  WindowStats win;
  std::vector<int64_t> win_lat;
  std::string payload;
};

void WriterHandler(Conn& c, const mosquitto_message& m) {
  auto& w = *static_cast<Writers*>(c.owner);
  const int64_t now = NowNs();
  std::string_view body = Body(m);
  auto k = IntAfter(body, "\"id\":\"w");
  if (!k || *k < 0 || *k >= w.next_k || w.sent_at[static_cast<size_t>(*k)] == 0) {
    ++w.stale;
    return;
  }
  int64_t& t = w.sent_at[static_cast<size_t>(*k)];
  w.win_lat.push_back(now - t);
  t = 0;
  ++w.answered;
  ++w.win.answered;
  if (body.find("\"success\":true") != std::string_view::npos) {
    ++w.created[static_cast<size_t>(*k % w.o->groups)];
  } else {
    ++w.errors;
    ++w.win.errors;
    if (w.first_error.empty()) w.first_error.assign(body.substr(0, 300));
  }
}

void SendCreate(Writers& w, int64_t now) {
  const int64_t k = w.next_k++;
  const int64_t due = w.t0 + static_cast<int64_t>(static_cast<double>(k) * 1e9 / w.o->rate);
  w.win.max_lag_ns = std::max(w.win.max_lag_ns, now - due);
  Conn& c = w.conns[static_cast<size_t>(k % static_cast<int64_t>(w.conns.size()))];
  char buf[320];
  int n = std::snprintf(
      buf, sizeof buf,
      R"({"id":"w%lld","type":"request","operation":"create","entity":"items","data":{"grp":%lld,"name":"t%lld-%lld","score":%lld.5}})",
      (long long)k, (long long)(k % w.o->groups), (long long)now, (long long)k,
      (long long)(k % 1000));
  w.sent_at[static_cast<size_t>(k)] = now;
  int rc = mosquitto_publish(c.m, nullptr, c.request_topic.c_str(), n, buf, w.o->qos, false);
  if (rc != MOSQ_ERR_SUCCESS) Die("publish: %s", mosquitto_strerror(rc));
  ++w.sent;
  ++w.win.sent;
}

void WriterCommand(Writers& w, char cmd, bool& quit) {
  std::string out;
  switch (cmd) {
    case kStart:
      w.started = true;
      w.t0 = NowNs();
      break;
    case kWindow:
      w.win.inflight = w.sent - w.answered;
      w.win.n_lat = static_cast<int64_t>(w.win_lat.size());
      Put(out, w.win);
      PutAll(out, w.win_lat);
      SendFrame(w.ctl, kWindowReply, out);
      w.win = WindowStats{};
      w.win_lat.clear();
      break;
    case kCount: {
      Counts c;
      c.planned = w.planned;
      c.sent = w.sent;
      c.answered = w.answered;
      c.sending_done = w.sending_done;
      Put(out, c);
      SendFrame(w.ctl, kCountReply, out);
      break;
    }
    case kFinal: {
      WriterFinal f;
      f.planned = w.planned;
      f.sent = w.sent;
      f.answered = w.answered;
      f.errors = w.errors;
      std::snprintf(f.first_error, sizeof f.first_error, "%s", w.first_error.c_str());
      Put(out, f);
      PutAll(out, w.created);
      SendFrame(w.ctl, kFinalReply, out);
      break;
    }
    case kQuit: quit = true; break;
    default: break;
  }
}

[[noreturn]] void RunWriters(const Options& o, int ctl) {
  mosquitto_lib_init();
  Writers w;
  w.o = &o;
  w.ctl = ctl;
  w.planned = static_cast<int64_t>(std::llround(o.rate * o.duration_s));
  w.sent_at.assign(static_cast<size_t>(w.planned), 0);
  w.created.assign(static_cast<size_t>(o.groups), 0);
  w.conns.resize(static_cast<size_t>(std::max(1, o.writers)));
  for (size_t i = 0; i < w.conns.size(); ++i) {
    Conn& c = w.conns[i];
    c.index = static_cast<int>(i);
    c.client_id = "soak-w" + std::to_string(i);
    c.request_topic = "spec/" + c.client_id + "/request";
    c.response_topic = "spec/" + c.client_id + "/response";
    c.subscribe_filter = c.response_topic;
    c.qos = o.qos;
    c.handler = WriterHandler;
    c.owner = &w;
    Connect(c, o.host, o.port);
  }
  Loop loop(w.conns);
  const int64_t t0 = NowNs();
  if (!loop.Until(
          [&] {
            return std::all_of(w.conns.begin(), w.conns.end(),
                               [](const Conn& c) { return c.subscribed; });
          },
          30))
    Die("writers: no SUBACK within 30 s");
  std::string out;
  Put(out, Ready{static_cast<int64_t>(w.conns.size()), static_cast<double>(NowNs() - t0) / 1e9});
  SendFrame(ctl, kReadyReply, out);

  const double step_ns = 1e9 / o.rate;
  bool quit = false;
  while (!quit) {
    int timeout_ms = 5;
    if (w.started && !w.sending_done) {
      int64_t now = NowNs();
      while (w.next_k < w.planned &&
             w.t0 + static_cast<int64_t>(static_cast<double>(w.next_k) * step_ns) <= now) {
        SendCreate(w, now);
        now = NowNs();
      }
      if (w.next_k >= w.planned) {
        w.sending_done = true;
      } else {
        int64_t next = w.t0 + static_cast<int64_t>(static_cast<double>(w.next_k) * step_ns);
        timeout_ms = static_cast<int>(std::clamp<int64_t>((next - now + 999'999) / 1'000'000, 0, 5));
      }
    }
    loop.Pump(timeout_ms);
    for (char cmd; (cmd = PollCommand(ctl, 0)) != 0;) WriterCommand(w, cmd, quit);
  }
  _exit(0);
}

// ---- the coordinator ----------------------------------------------------------------------------

struct Child {
  pid_t pid = 0;
  int fd = -1;
  bool writer = false;
  int first = 0, count = 0;
};

std::vector<Child> g_children;

void KillChildren() {
  for (auto& c : g_children)
    if (c.pid > 0) kill(c.pid, SIGKILL);
}

Frame ReadFrame(const Child& c, uint32_t want, double timeout_s) {
  pollfd p{c.fd, POLLIN, 0};
  int n = 0;
  do {
    n = poll(&p, 1, static_cast<int>(timeout_s * 1000));
  } while (n < 0 && errno == EINTR);
  if (n == 0) {
    KillChildren();
    Die("no answer from the %s child (pid %d) within %.0f s", c.writer ? "writers'" : "subscribers'",
        c.pid, timeout_s);
  }
  Frame f;
  FrameHeader h{};
  if (!ReadAll(c.fd, &h, sizeof h)) {
    int status = 0;
    waitpid(c.pid, &status, 0);
    KillChildren();
    Die("the %s child (pid %d) exited (status %d): see its message above",
        c.writer ? "writers'" : "subscribers'", c.pid, status);
  }
  f.kind = h.kind;
  f.data.resize(h.bytes);
  if (!ReadAll(c.fd, f.data.data(), h.bytes)) Die("short frame from pid %d", c.pid);
  if (f.kind != want) Die("unexpected frame %u from pid %d (wanted %u)", f.kind, c.pid, want);
  return f;
}

void Tell(const Child& c, char cmd) { WriteAll(c.fd, &cmd, 1); }

// A field of /proc/<pid>/status in kB ("VmRSS"), or -1.
int64_t StatusKb(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string key = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + key.size());
  }
  return -1;
}

// utime + stime of pid in clock ticks, or -1.
int64_t CpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t r = s.rfind(')');
  if (r == std::string::npos) return -1;
  std::istringstream f(s.substr(r + 2));
  std::string x;
  int64_t ut = 0, st = 0;
  for (int i = 3; i <= 15; ++i) {  // fields 3… after "pid (comm)"; utime is 14, stime 15
    f >> x;
    if (i == 14) ut = std::atoll(x.c_str());
    if (i == 15) st = std::atoll(x.c_str());
  }
  return ut + st;
}

double LoadAvg1() {
  std::ifstream in("/proc/loadavg");
  double v = 0;
  in >> v;
  return v;
}

struct Row {
  std::string label;
  double t = 0;       // s since the start of the writes, at the end of the window
  double span = 0;    // s the window covered
  int64_t sent = 0, answered = 0, errors = 0, inflight = 0;
  double lag_ms = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  int64_t notifications = 0, anomalies = 0;
  double n_p50_ms = 0, n_p99_ms = 0;
  int64_t rss_kb = 0, rss_anon_kb = 0, rss_file_kb = 0, rss_shmem_kb = 0, gen_rss_kb = 0;
  double cpu_pct = 0, load = 0;
};

double Ms(std::vector<int64_t>& v, double q) { return Percentile(v, q) / 1000.0; }

std::string RowJson(const Row& r) {
  char b[1536];
  std::snprintf(b, sizeof b,
                R"({"type":"window","label":"%s","t_s":%.1f,"span_s":%.2f,"creates_sent":%lld,"creates_answered":%lld,"creates_per_s":%.1f,"errors":%lld,"inflight":%lld,"max_send_lag_ms":%.2f,"write_p50_ms":%.3f,"write_p99_ms":%.3f,"write_max_ms":%.3f,"notifications":%lld,"notifications_per_s":%.1f,"notify_p50_ms":%.3f,"notify_p99_ms":%.3f,"seq_anomalies":%lld,"service_rss_kb":%lld,"service_rss_anon_kb":%lld,"service_rss_file_kb":%lld,"service_rss_shmem_kb":%lld,"service_cpu_pct":%.1f,"loadgen_rss_kb":%lld,"loadavg1":%.2f})",
                r.label.c_str(), r.t, r.span, (long long)r.sent, (long long)r.answered,
                r.span > 0 ? static_cast<double>(r.answered) / r.span : 0, (long long)r.errors,
                (long long)r.inflight, r.lag_ms, r.p50_ms, r.p99_ms, r.max_ms,
                (long long)r.notifications,
                r.span > 0 ? static_cast<double>(r.notifications) / r.span : 0, r.n_p50_ms,
                r.n_p99_ms, (long long)r.anomalies, (long long)r.rss_kb, (long long)r.rss_anon_kb,
                (long long)r.rss_file_kb, (long long)r.rss_shmem_kb, r.cpu_pct,
                (long long)r.gen_rss_kb, r.load);
  return b;
}

std::string RowMarkdown(const Row& r) {
  // Rates of a window shorter than a second (the drain, usually) would mislead: counts instead.
  auto rate = [&](int64_t n) {
    char x[32];
    if (r.span >= 1)
      std::snprintf(x, sizeof x, "%.1f", static_cast<double>(n) / r.span);
    else
      std::snprintf(x, sizeof x, "(%lld)", (long long)n);
    return std::string(x);
  };
  char b[512];
  std::snprintf(b, sizeof b,
                "| %s | %.0f | %.1f | %s | %.2f / %.2f / %.1f | %.1f | %s | %.2f / %.2f | %lld | "
                "%.1f | %.0f %% | %.1f |",
                r.label.c_str(), r.t, r.span, rate(r.answered).c_str(), r.p50_ms, r.p99_ms,
                r.max_ms, r.lag_ms, rate(r.notifications).c_str(), r.n_p50_ms, r.n_p99_ms,
                (long long)r.errors, static_cast<double>(r.rss_kb) / 1024.0,
                r.span >= 1 ? r.cpu_pct : 0, r.load);
  return b;
}

const char* kTableHead =
    "| window | t s | span s | creates/s | write p50 / p99 / max ms | send lag ms | notif/s | notify "
    "p50 / p99 ms | errors | service RSS MiB | service CPU | load |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";

int RunSoak(const Options& o) {
  if (o.service_pid <= 0) Die("--service-pid PID is required (the broker hosting the plugin)");
  if (StatusKb(o.service_pid, "VmRSS") < 0) Die("no process %d", o.service_pid);
  if (o.groups < 1 || o.subscribers < 1 || o.rate <= 0 || o.duration_s <= 0 || o.per_proc < 1)
    Die("bad parameters");
  signal(SIGPIPE, SIG_IGN);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  const pid_t parent = getpid();
  auto spawn = [&](bool writer, int first, int count) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      Die("socketpair: %s", std::strerror(errno));
    pid_t pid = fork();
    if (pid < 0) Die("fork: %s", std::strerror(errno));
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      close(sv[0]);
      for (auto& c : g_children) close(c.fd);
      if (writer) RunWriters(o, sv[1]);
      RunSubscribers(o, sv[1], first, count);
    }
    close(sv[1]);
    g_children.push_back({pid, sv[0], writer, first, count});
  };

  const int procs = (o.subscribers + o.per_proc - 1) / o.per_proc;
  const int per = (o.subscribers + procs - 1) / procs;
  const int64_t t_connect = NowNs();
  std::fprintf(stderr, "soak: connecting %d subscribers in %d process(es), %d writer(s)\n",
               o.subscribers, procs, o.writers);
  for (int p = 0; p < procs; ++p) {
    int first = p * per;
    spawn(false, first, std::min(per, o.subscribers - first));
  }
  for (auto& c : g_children) ReadFrame(c, kReadyReply, 900);
  const double connect_s = static_cast<double>(NowNs() - t_connect) / 1e9;
  std::fprintf(stderr, "soak: %d subscribers connected and subscribed in %.1f s\n", o.subscribers,
               connect_s);
  spawn(true, 0, 0);
  Child writer = g_children.back();
  ReadFrame(writer, kReadyReply, 60);
  const int64_t rss_start = StatusKb(o.service_pid, "VmRSS");

  std::vector<Row> rows;
  std::vector<int64_t> all_write, all_notify;
  int64_t hz = sysconf(_SC_CLK_TCK);
  int64_t last_ticks = CpuTicks(o.service_pid);
  int64_t last_ns = NowNs();
  const int64_t t0 = last_ns;
  auto sample = [&](const std::string& label) {
    Row r;
    r.label = label;
    std::vector<int64_t> wl, nl;
    for (auto& c : g_children) {
      Tell(c, kWindow);
      Frame f = ReadFrame(c, kWindowReply, 60);
      auto w = f.Get<WindowStats>();
      if (c.writer) {
        r.sent += w.sent;
        r.answered += w.answered;
        r.errors += w.errors;
        r.inflight += w.inflight;
        r.lag_ms = std::max(r.lag_ms, static_cast<double>(w.max_lag_ns) / 1e6);
        f.GetAll(static_cast<size_t>(w.n_lat), wl);
      } else {
        r.notifications += w.notifications;
        r.anomalies += w.anomalies;
        f.GetAll(static_cast<size_t>(w.n_lat), nl);
      }
      r.gen_rss_kb += std::max<int64_t>(0, StatusKb(c.pid, "VmRSS"));
    }
    int64_t now = NowNs();
    int64_t ticks = CpuTicks(o.service_pid);
    r.t = static_cast<double>(now - t0) / 1e9;
    r.span = static_cast<double>(now - last_ns) / 1e9;
    r.cpu_pct = r.span > 0 ? 100.0 * static_cast<double>(ticks - last_ticks) /
                                 static_cast<double>(hz) / r.span
                           : 0;
    last_ns = now;
    last_ticks = ticks;
    r.rss_kb = StatusKb(o.service_pid, "VmRSS");  // = RssAnon + RssFile + RssShmem
    r.rss_anon_kb = StatusKb(o.service_pid, "RssAnon");
    r.rss_file_kb = StatusKb(o.service_pid, "RssFile");
    r.rss_shmem_kb = StatusKb(o.service_pid, "RssShmem");
    if (r.rss_kb < 0) {
      KillChildren();
      Die("the service (pid %d) is gone", o.service_pid);
    }
    r.load = LoadAvg1();
    all_write.insert(all_write.end(), wl.begin(), wl.end());
    all_notify.insert(all_notify.end(), nl.begin(), nl.end());
    if (!wl.empty()) {
      r.max_ms = static_cast<double>(*std::max_element(wl.begin(), wl.end())) / 1e6;
      r.p50_ms = Ms(wl, 0.50);
      r.p99_ms = Ms(wl, 0.99);
    }
    if (!nl.empty()) {
      r.n_p50_ms = Ms(nl, 0.50);
      r.n_p99_ms = Ms(nl, 0.99);
    }
    rows.push_back(r);
    std::fprintf(stderr, "%s\n", RowMarkdown(r).c_str());
  };

  std::fprintf(stderr, "soak: writing %.0f creates/s for %.0f s; every %.0f s:\n%s\n", o.rate,
               o.duration_s, o.interval_s, kTableHead);
  Tell(writer, kStart);
  for (int k = 1;; ++k) {
    double at = std::min(o.duration_s, k * o.interval_s);
    int64_t wake = t0 + static_cast<int64_t>(at * 1e9);
    while (NowNs() < wake) {
      int64_t left = wake - NowNs();
      usleep(static_cast<useconds_t>(std::min<int64_t>(left / 1000 + 1, 200'000)));
    }
    sample(std::to_string(k));
    if (at >= o.duration_s) break;
  }
  // Drain: every answer, then every notification (or settle_s without progress).
  Counts wc;
  const int64_t drain_deadline = NowNs() + 60'000'000'000LL;
  for (;;) {
    Tell(writer, kCount);
    wc = ReadFrame(writer, kCountReply, 60).Get<Counts>();
    if ((wc.sending_done && wc.answered == wc.sent) || NowNs() > drain_deadline) break;
    usleep(200'000);
  }
  Tell(writer, kFinal);
  Frame wf = ReadFrame(writer, kFinalReply, 60);
  WriterFinal fin = wf.Get<WriterFinal>();
  std::vector<int64_t> created;
  wf.GetAll(static_cast<size_t>(o.groups), created);
  int64_t expected = 0;
  for (int i = 0; i < o.subscribers; ++i) expected += created[static_cast<size_t>(i % o.groups)];
  int64_t received = 0, last_progress = NowNs(), prev = -1;
  for (;;) {
    received = 0;
    for (auto& c : g_children) {
      if (c.writer) continue;
      Tell(c, kCount);
      received += ReadFrame(c, kCountReply, 60).Get<Counts>().notifications;
    }
    if (received != prev) last_progress = NowNs();
    prev = received;
    if (received >= expected ||
        NowNs() - last_progress > static_cast<int64_t>(o.settle_s * 1e9))
      break;
    usleep(200'000);
  }
  sample("drain");
  const double drain_s = rows.back().span;

  // The account of every subscriber.
  int64_t subs_ok = 0, subs_gap = 0, subs_dup = 0, subs_short = 0, subs_extra = 0, subs_wrong = 0;
  int64_t lost = 0, extra = 0, gaps = 0, dups = 0, wrong = 0, got = 0;
  std::string first_bad;
  for (auto& c : g_children) {
    if (c.writer) continue;
    Tell(c, kFinal);
    Frame f = ReadFrame(c, kFinalReply, 60);
    std::vector<SubRecord> recs;
    f.GetAll(static_cast<size_t>(c.count), recs);
    for (const SubRecord& s : recs) {
      const int64_t want = created[static_cast<size_t>(s.group)];
      got += s.received;
      gaps += s.gaps;
      dups += s.dups;
      wrong += s.wrong;
      lost += std::max<int64_t>(0, want - (s.received - s.dups - s.wrong));
      extra += std::max<int64_t>(0, (s.received - s.dups - s.wrong) - want);
      const bool ok = s.gaps == 0 && s.dups == 0 && s.wrong == 0 && s.last_seq == want &&
                      s.received == want;
      subs_ok += ok;
      subs_gap += s.gaps > 0;
      subs_dup += s.dups > 0;
      subs_wrong += s.wrong > 0;
      subs_short += s.gaps == 0 && s.last_seq < want;
      subs_extra += s.last_seq > want;
      if (!ok && first_bad.empty()) {
        char b[256];
        std::snprintf(b, sizeof b,
                      "soak-s%d (grp %d): %lld received, last seq %lld, %lld skipped, %lld dup, "
                      "%lld wrong; %lld creates in its group",
                      s.index, s.group, (long long)s.received, (long long)s.last_seq,
                      (long long)s.gaps, (long long)s.dups, (long long)s.wrong, (long long)want);
        first_bad = b;
      }
    }
  }
  for (auto& c : g_children) Tell(c, kQuit);
  for (auto& c : g_children) waitpid(c.pid, nullptr, 0);
  g_children.clear();

  // RSS over the run: first, last, max, and the slope over the second half (least squares).
  int64_t rss_first = rows.front().rss_kb, rss_last = rows.back().rss_kb, rss_max = 0;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int nh = 0;
  for (const Row& r : rows) {
    rss_max = std::max(rss_max, r.rss_kb);
    if (r.label == "drain" || r.t < o.duration_s / 2) continue;
    sx += r.t;
    sy += static_cast<double>(r.rss_kb);
    sxx += r.t * r.t;
    sxy += r.t * static_cast<double>(r.rss_kb);
    ++nh;
  }
  double slope = 0;  // kB per s
  if (nh >= 2 && nh * sxx - sx * sx != 0) slope = (nh * sxy - sx * sy) / (nh * sxx - sx * sx);
  const double write_s = o.duration_s;
  const double w_p50 = Ms(all_write, 0.50), w_p99 = Ms(all_write, 0.99),
               w_p999 = Ms(all_write, 0.999);
  const double w_max =
      all_write.empty() ? 0 : static_cast<double>(all_write.back()) / 1e6;  // sorted by Ms
  const double n_p50 = Ms(all_notify, 0.50), n_p99 = Ms(all_notify, 0.99);
  const double n_max = all_notify.empty() ? 0 : static_cast<double>(all_notify.back()) / 1e6;
  const bool pass = lost == 0 && extra == 0 && gaps == 0 && dups == 0 && wrong == 0 &&
                    fin.errors == 0 && fin.answered == fin.sent && fin.sent == fin.planned &&
                    subs_ok == o.subscribers;

  std::printf("\n%s\n", kTableHead);
  for (const Row& r : rows) std::printf("%s\n", RowMarkdown(r).c_str());
  std::printf(
      "\n- subscribers: %d in %d process(es), one subscription each ({grp eq i %% %d}: %d per "
      "group), connected and subscribed in %.1f s\n"
      "- writes: %d writer(s), %.0f creates/s for %.0f s: %lld planned, %lld sent, %lld answered, "
      "%lld errors%s%s; %.1f creates/s\n"
      "- write latency (request published → answer), whole run: p50 %.2f ms, p99 %.2f ms, p99.9 "
      "%.2f ms, max %.1f ms\n"
      "- notification latency (request published → notification received): p50 %.2f ms, p99 %.2f "
      "ms, max %.1f ms\n"
      "- notifications: %lld expected, %lld received, **%lld lost**, %lld duplicated, %lld seq "
      "skipped, %lld extra, %lld wrong; drain after the last write %.1f s\n"
      "- subscribers whose seq ran exactly 1..k with k = creates in their group: %lld of %d (gap "
      "%lld, duplicate %lld, short %lld, beyond %lld, wrong rows %lld)%s%s\n"
      "- service RSS (VmRSS of pid %d): %.1f MiB after subscribing, %.1f first window, %.1f last, "
      "%.1f max; second-half slope %+.1f KiB/min; anonymous (heap) %.1f first window, %.1f last; "
      "file-backed + shared %.1f first, %.1f last\n"
      "- verdict: %s\n",
      o.subscribers, procs, o.groups, o.subscribers / o.groups, connect_s, o.writers, o.rate,
      o.duration_s, (long long)fin.planned, (long long)fin.sent, (long long)fin.answered,
      (long long)fin.errors, fin.errors ? ", first: " : "", fin.first_error,
      static_cast<double>(fin.answered) / write_s, w_p50, w_p99, w_p999, w_max, n_p50, n_p99,
      n_max, (long long)expected, (long long)got, (long long)lost, (long long)dups, (long long)gaps,
      (long long)extra, (long long)wrong, drain_s, (long long)subs_ok, o.subscribers,
      (long long)subs_gap, (long long)subs_dup, (long long)subs_short, (long long)subs_extra,
      (long long)subs_wrong, first_bad.empty() ? "" : "; first: ", first_bad.c_str(),
      o.service_pid, static_cast<double>(rss_start) / 1024.0,
      static_cast<double>(rss_first) / 1024.0, static_cast<double>(rss_last) / 1024.0,
      static_cast<double>(rss_max) / 1024.0, slope * 60.0,
      static_cast<double>(rows.front().rss_anon_kb) / 1024.0,
      static_cast<double>(rows.back().rss_anon_kb) / 1024.0,
      static_cast<double>(rows.front().rss_file_kb + rows.front().rss_shmem_kb) / 1024.0,
      static_cast<double>(rows.back().rss_file_kb + rows.back().rss_shmem_kb) / 1024.0,
      pass ? "PASS" : "FAIL");

  char sum[2048];
  std::snprintf(
      sum, sizeof sum,
      R"({"type":"summary","subscribers":%d,"groups":%d,"processes":%d,"writers":%d,"rate":%.1f,"duration_s":%.0f,"connect_s":%.1f,"creates_planned":%lld,"creates_sent":%lld,"creates_answered":%lld,"create_errors":%lld,"creates_per_s":%.1f,"write_p50_ms":%.3f,"write_p99_ms":%.3f,"write_p999_ms":%.3f,"write_max_ms":%.3f,"notify_p50_ms":%.3f,"notify_p99_ms":%.3f,"notify_max_ms":%.3f,"notifications_expected":%lld,"notifications_received":%lld,"notifications_lost":%lld,"duplicates":%lld,"seq_skipped":%lld,"extra":%lld,"wrong":%lld,"subscribers_ok":%lld,"drain_s":%.2f,"rss_start_kb":%lld,"rss_first_kb":%lld,"rss_last_kb":%lld,"rss_max_kb":%lld,"rss_slope_kb_per_min":%.1f,"pass":%s})",
      o.subscribers, o.groups, procs, o.writers, o.rate, o.duration_s, connect_s,
      (long long)fin.planned, (long long)fin.sent, (long long)fin.answered, (long long)fin.errors,
      static_cast<double>(fin.answered) / write_s, w_p50, w_p99, w_p999, w_max, n_p50, n_p99, n_max,
      (long long)expected, (long long)got, (long long)lost, (long long)dups, (long long)gaps,
      (long long)extra, (long long)wrong, (long long)subs_ok, drain_s, (long long)rss_start,
      (long long)rss_first, (long long)rss_last, (long long)rss_max, slope * 60.0,
      pass ? "true" : "false");
  std::printf("\n");
  std::FILE* js = o.json.empty() ? nullptr : std::fopen(o.json.c_str(), "w");
  if (!o.json.empty() && !js) Die("cannot write %s", o.json.c_str());
  for (const Row& r : rows) {
    std::string line = RowJson(r);
    std::printf("%s\n", line.c_str());
    if (js) std::fprintf(js, "%s\n", line.c_str());
  }
  std::printf("%s\n", sum);
  if (js) {
    std::fprintf(js, "%s\n", sum);
    std::fclose(js);
  }
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  using namespace bench;  // NOLINT: bench_common.h
  program_name = "mqttspec_soak";
  if (argc < 2 || std::string(argv[1]) != "run") {
    std::fprintf(stderr,
                 "usage: mqttspec_soak run --port P --service-pid PID [--host H] [--qos Q] "
                 "[--subscribers N] [--groups G] [--writers W] [--rate R] [--duration S] "
                 "[--interval S] [--per-proc K] [--batch B] [--settle-s S] [--json FILE]\n");
    return 2;
  }
  Args a = ParseArgs(argc, argv, 2);
  Options o;
  o.host = a.Get("host", o.host);
  o.port = static_cast<int>(a.Int("port", o.port));
  o.qos = static_cast<int>(a.Int("qos", o.qos));
  o.service_pid = static_cast<pid_t>(a.Int("service-pid", 0));
  o.subscribers = static_cast<int>(a.Int("subscribers", o.subscribers));
  o.groups = static_cast<int>(a.Int("groups", std::max(1, o.subscribers / 10)));
  o.writers = static_cast<int>(a.Int("writers", o.writers));
  o.rate = a.Real("rate", o.rate);
  o.duration_s = a.Real("duration", o.duration_s);
  o.interval_s = a.Real("interval", o.interval_s);
  o.per_proc = static_cast<int>(a.Int("per-proc", o.per_proc));
  o.batch = static_cast<int>(a.Int("batch", o.batch));
  o.settle_s = a.Real("settle-s", o.settle_s);
  o.json = a.Get("json");
  return RunSoak(o);
}
