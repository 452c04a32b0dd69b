// sensor: a device that writes readings through the C++ client SDK (mqttspec/client.h).
//
//   sensor --uri tcp://127.0.0.1:1883 --id sensor-7 [--entity readings] [--count 60]
//          [--interval-ms 1000] [--timeout-ms 60000]
//
// Creates one row {"sensor": <id>, "value": <number>, "taken_at": <ISO 8601 UTC>} per reading and
// waits for each answer, printing the new row's id or the error. It keeps going while the broker
// or the service restarts: the SDK queues the requests while disconnected and sends the
// unanswered ones again after reconnecting, and the service applies a repeated write once, so a
// reading is stored exactly once. A write fails on an error of the service (model_not_found, …)
// or when no answer comes within --timeout-ms.
// Exit code: 0 when every reading was acknowledged ok, 1 otherwise, 2 on a usage error.
#include <mqttspec/client.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <random>
#include <string>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;
using ConnectionEvent = mqttspec::client::ConnectionEvent;

struct Flags {
  std::string uri = "tcp://127.0.0.1:1883";
  std::string id;
  std::string entity = "readings";
  int count = 60;
  int interval_ms = 1000;
  int timeout_ms = 60000;  // longer than the outages the sensor should ride out
};

// One line at a time: the connection events come from the client's dispatcher thread.
std::mutex out_mu;
void Print(const std::string& line) {
  std::lock_guard lock(out_mu);
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "sensor: %s\nusage: sensor --uri tcp://HOST:PORT --id CLIENT_ID [--entity readings] "
               "[--count N] [--interval-ms M] [--timeout-ms T]\n",
               why);
  return 2;
}

// "2026-12-03T10:05:43.792Z" (UTC, milliseconds): the form a timestamp field stores.
std::string NowIso8601() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms));
  return buf;
}

std::string Describe(const ConnectionEvent& e) {
  switch (e.kind) {
    case ConnectionEvent::Kind::kConnected:
      return std::string("connected (MQTT ") + (e.mqtt_version == 4 ? "3.1.1" : "5") + ")";
    case ConnectionEvent::Kind::kDisconnected:
      return "disconnected: " + e.reason + "; reconnecting in " +
             std::to_string(e.next_attempt_in.count()) + " ms";
    case ConnectionEvent::Kind::kConnectFailed:
      return "connect attempt " + std::to_string(e.attempt) + " failed: " + e.reason +
             "; next in " + std::to_string(e.next_attempt_in.count()) + " ms";
  }
  return "?";
}

}  // namespace

int main(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) return Usage(("missing value of " + k).c_str());
    const char* v = argv[++i];
    if (k == "--uri")
      f.uri = v;
    else if (k == "--id")
      f.id = v;
    else if (k == "--entity")
      f.entity = v;
    else if (k == "--count")
      f.count = std::atoi(v);
    else if (k == "--interval-ms")
      f.interval_ms = std::atoi(v);
    else if (k == "--timeout-ms")
      f.timeout_ms = std::atoi(v);
    else
      return Usage(("unknown flag " + k).c_str());
  }
  if (f.id.empty()) return Usage("--id is required (the MQTT client id)");
  if (f.count < 0 || f.interval_ms < 0 || f.timeout_ms <= 0)
    return Usage("--count, --interval-ms ≥ 0; --timeout-ms > 0");

  mqttspec::ClientOptions o;
  o.server_uri = f.uri;
  o.client_id = f.id;  // also the sensor's name in its rows
  o.request_timeout = std::chrono::milliseconds(f.timeout_ms);
  o.on_connection = [](const ConnectionEvent& e) { Print("# " + Describe(e)); };
  mqttspec::Client client(o);
  client.Start();  // connects in the background; the first Create waits in the queue meanwhile

  // The value: a slow sine with a random walk on top, like a temperature.
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<double> step(0.0, 0.05);
  double drift = 0;

  int acknowledged = 0;
  const auto start = Clock::now();
  for (int i = 0; i < f.count; ++i) {
    // A steady rate: reading i is due at start + i·interval, however long the last write took.
    std::this_thread::sleep_until(start + i * std::chrono::milliseconds(f.interval_ms));
    drift += step(rng);
    const double value = 20.0 + 5.0 * std::sin(i / 10.0) + drift;
    const mqttspec::Json reading =
        mqttspec::Json::Object({{"sensor", f.id}, {"value", value}, {"taken_at", NowIso8601()}});
    const mqttspec::Reply r = client.Create(f.entity, reading).get();  // waits for the answer
    const std::string what = "reading " + std::to_string(i + 1) + "/" + std::to_string(f.count);
    if (r) {
      ++acknowledged;
      Print(what + ": id " + r.data.Get("id").value_or(mqttspec::Json()).text());
    } else {
      // r.error.committed: the service said the write took effect although the answer is an error.
      Print(what + ": error " + r.error.code + ": " + r.error.message +
            (r.error.committed ? " (committed)" : ""));
    }
  }
  client.Stop();
  Print("# " + std::to_string(acknowledged) + " of " + std::to_string(f.count) + " acknowledged");
  return acknowledged == f.count ? 0 : 1;
}
