// dashboard: a live copy of a filtered table through the C++ client SDK's Mirror
// (mqttspec/client.h).
//
//   dashboard --uri tcp://127.0.0.1:1883 --id dash-1 [--entity readings] [--key id]
//             [--where column=value]... [--seconds S]
//
// Mirror reads the rows of the view (every --where joined with AND; the value is sent as a string
// and the service converts it to the column's type), then subscribes to its changes from the
// change_seq that read stood at. The SDK resumes the subscription after a reconnect or a restart
// of the service without losing or repeating a change, and when the change log cannot fill a gap
// it reads the view again (on_snapshot once more). So the map below stays equal to the table.
//
// Status lines (the view's size and change_seq, at most about once a second when it changed;
// subscription and connection events) go to stderr. With --seconds S the dashboard stops S
// seconds after its first snapshot and prints the final view on stdout, one JSON line
// {"key":…,"row":…} per row in key order; without it, it runs until SIGINT or SIGTERM. Exit code: 0
// when the view was read (and not refused), 1 otherwise, 2 on a usage error.
#include <mqttspec/client.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using mqttspec::Json;
using mqttspec::Notification;
using mqttspec::SubscriptionEvent;
using ConnectionEvent = mqttspec::client::ConnectionEvent;
using namespace std::chrono_literals;

struct Flags {
  std::string uri = "tcp://127.0.0.1:1883";
  std::string id;
  std::string entity = "readings";
  std::string key = "id";  // the column that identifies a row: the model's primary key
  std::vector<mqttspec::Filter> where;
  int seconds = 0;  // 0: until a signal
};

// The primary key of a row: integers sort as numbers, anything else by its JSON text.
using Key = std::variant<int64_t, std::string>;

std::string KeyJson(const Key& k) {
  if (const auto* n = std::get_if<int64_t>(&k)) return std::to_string(*n);
  return std::get<std::string>(k);
}

// The view, written by the client's callbacks (on its dispatcher thread) and read by main.
struct View {
  std::mutex mu;                    // guards every field
  std::map<Key, std::string> rows;  // key → the row as JSON text
  int64_t change_seq = 0;           // where the view stands in the change log
  uint64_t snapshots = 0, changes = 0;
  bool dirty = false;   // changed since the last status line
  bool failed = false;  // the service refused the mirror: it has ended
};

std::atomic<bool> stop_requested{false};
extern "C" void OnSignal(int) { stop_requested = true; }

void Status(const std::string& line) { std::fprintf(stderr, "# %s\n", line.c_str()); }

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "dashboard: %s\nusage: dashboard --uri tcp://HOST:PORT --id CLIENT_ID "
               "[--entity readings] [--key id] [--where column=value]... [--seconds S]\n",
               why.c_str());
  return 2;
}

const char* KindName(SubscriptionEvent::Kind k) {
  switch (k) {
    case SubscriptionEvent::Kind::kActive: return "active";
    case SubscriptionEvent::Kind::kResumed: return "resumed";
    case SubscriptionEvent::Kind::kOverflow: return "overflow";
    case SubscriptionEvent::Kind::kResyncRequired: return "resync required";
    case SubscriptionEvent::Kind::kFailed: return "failed";
  }
  return "?";
}

std::string Describe(const ConnectionEvent& e) {
  if (e.kind == ConnectionEvent::Kind::kConnected) return "connected";
  return (e.kind == ConnectionEvent::Kind::kDisconnected ? "disconnected: " : "connect failed: ") +
         e.reason + "; next attempt in " + std::to_string(e.next_attempt_in.count()) + " ms";
}

std::string Summary(View& v) {  // REQUIRES: v.mu held
  return "view: " + std::to_string(v.rows.size()) + " rows at change_seq " +
         std::to_string(v.change_seq) + " (" + std::to_string(v.snapshots) + " snapshots, " +
         std::to_string(v.changes) + " changes)";
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) return Usage("missing value of " + k);
    const std::string v = argv[++i];
    if (k == "--uri") {
      f.uri = v;
    } else if (k == "--id") {
      f.id = v;
    } else if (k == "--entity") {
      f.entity = v;
    } else if (k == "--key") {
      f.key = v;
    } else if (k == "--seconds") {
      f.seconds = std::atoi(v.c_str());
    } else if (k == "--where") {
      const size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0) return Usage("--where wants column=value");
      f.where.emplace_back(v.substr(0, eq), "eq", Json(v.substr(eq + 1)));
    } else {
      return Usage("unknown flag " + k);
    }
  }
  if (f.id.empty()) return Usage("--id is required (the MQTT client id)");

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  mqttspec::ClientOptions o;
  o.server_uri = f.uri;
  o.client_id = f.id;
  o.on_connection = [](const ConnectionEvent& e) { Status(Describe(e)); };
  mqttspec::Client client(o);

  View view;
  auto key_of = [&f](const Json& row) -> Key {
    const Json k = row.Get(f.key).value_or(Json());
    if (auto n = k.AsInt()) return *n;
    return k.text();
  };
  mqttspec::MirrorCallbacks cb;
  // The whole view, first and after every resync: it replaces what we had.
  cb.on_snapshot = [&](const std::vector<Json>& rows) {
    std::lock_guard lock(view.mu);
    view.rows.clear();
    for (const Json& row : rows) view.rows[key_of(row)] = row.text();
    ++view.snapshots;
    view.dirty = true;
  };
  // Every change after it, once and in commit order. An update that moves a row out of the
  // filters arrives with match == false: it leaves the view like a delete.
  cb.on_change = [&](const Notification& n) {
    std::lock_guard lock(view.mu);
    if (n.operation == "delete" || !n.match)
      view.rows.erase(key_of(n.row));
    else
      view.rows[key_of(n.row)] = n.row.text();
    if (n.change_seq) view.change_seq = n.change_seq;
    ++view.changes;
    view.dirty = true;
  };
  cb.on_event = [&](const SubscriptionEvent& e) {
    Status(std::string("subscription ") + KindName(e.kind) + " at change_seq " +
           std::to_string(e.change_seq) +
           (e.error.code.empty() ? "" : ": " + e.error.code + ": " + e.error.message));
    std::lock_guard lock(view.mu);
    if (e.kind == SubscriptionEvent::Kind::kFailed) view.failed = true;
    if (e.change_seq > view.change_seq) view.change_seq = e.change_seq;
    view.dirty = true;
  };

  client.Start();
  client.Mirror(f.entity, f.where, cb);  // the handle is not needed: Stop() ends the mirror

  // --seconds S counts from the first snapshot (connecting may take a while); at most 30 s are
  // spent waiting for that snapshot.
  const auto give_up = Clock::now() + 30s;
  std::optional<Clock::time_point> deadline;
  auto last_status = Clock::now() - 1s;
  while (!stop_requested) {
    std::this_thread::sleep_for(100ms);
    std::lock_guard lock(view.mu);
    if (view.failed) break;
    if (f.seconds > 0) {
      if (!deadline && view.snapshots > 0)
        deadline = Clock::now() + std::chrono::seconds(f.seconds);
      if (deadline ? Clock::now() >= *deadline : Clock::now() >= give_up) break;
    }
    if (view.dirty && Clock::now() - last_status >= 1s) {
      Status(Summary(view));
      view.dirty = false;
      last_status = Clock::now();
    }
  }
  client.Stop();  // returns once no callback runs any more: the view is ours now

  std::lock_guard lock(view.mu);
  Status(Summary(view));
  if (f.seconds > 0)
    for (const auto& [key, row] : view.rows)
      std::printf("{\"key\":%s,\"row\":%s}\n", KeyJson(key).c_str(), row.c_str());
  return view.snapshots > 0 && !view.failed ? 0 : 1;
}
