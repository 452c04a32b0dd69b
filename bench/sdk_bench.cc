// mqttspec_sdk_bench: read-by-key through the C++ client SDK (include/mqttspec/client.h), the
// workload `mqttspec_bench run --workloads read` drives with raw libmosquitto, so bench/run_sdk.sh
// can put the two side by side in one run: the SDK's overhead per request.
//
//   mqttspec_sdk_bench --port P --rows ROWS [--warmup N] [--samples N] [--latency-s S]
//                      [--tput-requests N] [--tput-s S] [--inflight N] [--out FILE] [--label L]
//                      [--mqtt-version 0|4|5]
//
// p50/p99 at 1 in flight (future per request), then throughput with N in flight on the one
// connection (callback form, each answer sending the next request). Appends one line in mqttspec_bench's TSV format (setup "sdk").
#include <mqttspec/client.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "bench_common.h"

using bench::Die;
using bench::NowNs;

namespace {

struct Phase {
  int64_t n = 0, errors = 0;
  double rps = 0, p50 = 0, p99 = 0;
  std::string first_error;
};

Phase Latency(mqttspec::Client& c, int64_t rows, int64_t samples, double seconds,
              std::mt19937_64& rng) {
  Phase p;
  std::vector<int64_t> lat;
  const int64_t end = NowNs() + static_cast<int64_t>(seconds * 1e9);
  std::uniform_int_distribution<int64_t> key(1, rows);
  while (p.n < samples && NowNs() < end) {
    const int64_t t0 = NowNs();
    mqttspec::Reply r = c.Read("items", mqttspec::Json(key(rng))).get();
    lat.push_back(NowNs() - t0);
    ++p.n;
    if (!r.ok && p.errors++ == 0) p.first_error = r.error.code + ": " + r.error.message;
  }
  p.p50 = bench::Percentile(lat, 0.50);
  p.p99 = bench::Percentile(lat, 0.99);
  return p;
}

// `inflight` chains of requests: each answer's callback (on the SDK's dispatcher thread) sends
// the chain's next request — the asynchronous pattern the callback form is for.
Phase Throughput(mqttspec::Client& c, int64_t rows, int64_t requests, double seconds,
                 int inflight, std::mt19937_64& rng) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<int64_t> lat;
    std::mt19937_64 rng;
    int64_t sent = 0, errors = 0, requests = 0, end = 0, rows = 0;
    int chains = 0;
    std::string first_error;
    mqttspec::Client* c = nullptr;
    void Next() {  // REQUIRES: mu held
      if (sent >= requests || NowNs() >= end) {
        if (--chains == 0) cv.notify_all();
        return;
      }
      ++sent;
      const int64_t key = std::uniform_int_distribution<int64_t>(1, rows)(rng);
      const int64_t t0 = NowNs();
      c->Read("items", mqttspec::Json(key), [this, t0](mqttspec::Reply r) {
        std::lock_guard lock(mu);
        lat.push_back(NowNs() - t0);
        if (!r.ok && errors++ == 0) first_error = r.error.code + ": " + r.error.message;
        Next();
      });
    }
  } st;
  st.rng.seed(rng());
  st.requests = requests;
  st.rows = rows;
  st.c = &c;
  st.lat.reserve(static_cast<size_t>(requests));
  const int64_t start = NowNs();
  st.end = start + static_cast<int64_t>(seconds * 1e9);
  std::unique_lock lock(st.mu);
  st.chains = inflight;
  for (int i = 0; i < inflight; ++i) st.Next();
  st.cv.wait(lock, [&] { return st.chains == 0; });
  Phase p;
  const double secs = static_cast<double>(NowNs() - start) / 1e9;
  p.n = static_cast<int64_t>(st.lat.size());
  p.errors = st.errors;
  p.first_error = st.first_error;
  p.rps = static_cast<double>(p.n) / secs;
  p.p50 = bench::Percentile(st.lat, 0.50);
  p.p99 = bench::Percentile(st.lat, 0.99);
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  bench::program_name = "mqttspec_sdk_bench";
  bench::Args a = bench::ParseArgs(argc, argv, 1);
  const std::string port = a.Get("port", "");
  if (port.empty()) Die("--port is required");
  const int64_t rows = std::stoll(a.Get("rows", "10000"));
  const int64_t warmup = std::stoll(a.Get("warmup", "500"));
  const int64_t samples = std::stoll(a.Get("samples", "5000"));
  const double latency_s = std::stod(a.Get("latency-s", "3"));
  const int64_t tput_requests = std::stoll(a.Get("tput-requests", "20000"));
  const double tput_s = std::stod(a.Get("tput-s", "3"));
  const int inflight = std::stoi(a.Get("inflight", "16"));
  const std::string label = a.Get("label", "-");

  mqttspec::ClientOptions o;
  o.server_uri = "tcp://127.0.0.1:" + port;
  o.client_id = "sdkbench-" + std::to_string(std::random_device{}() % 1000000);
  o.mqtt_version = std::stoi(a.Get("mqtt-version", "0"));  // 0: 5, else 3.1.1 if refused
  mqttspec::Client c(o);
  c.Start();
  if (!c.WaitConnected(std::chrono::seconds(10)))
    Die("not connected to 127.0.0.1:%s", port.c_str());
  std::mt19937_64 rng(42);
  Latency(c, rows, warmup, latency_s, rng);
  Phase lat = Latency(c, rows, samples, latency_s, rng);
  Throughput(c, rows, std::min<int64_t>(1000, tput_requests), tput_s, inflight, rng);
  Phase tput = Throughput(c, rows, tput_requests, tput_s, inflight, rng);
  c.Stop();

  FILE* out = stdout;
  const std::string out_path = a.Get("out", "");
  if (!out_path.empty() && !(out = std::fopen(out_path.c_str(), "a")))
    Die("cannot open %s", out_path.c_str());
  std::fprintf(out, "sdk\t1\tread-by-key\t%lld\t%.1f\t%.1f\t%lld\t%.0f\t%.1f\t%.1f\t%lld\t0\t%s\n",
               (long long)lat.n, lat.p50, lat.p99, (long long)tput.n, tput.rps, tput.p50, tput.p99,
               (long long)(lat.errors + tput.errors), label.c_str());
  std::fprintf(stderr,
               "sdk            qos1 read-by-key  1 in flight: p50 %7.1f µs p99 %7.1f µs (n=%lld) | "
               "1×%d in flight: %8.0f req/s p50 %7.1f µs p99 %7.1f µs (n=%lld)%s\n",
               lat.p50, lat.p99, (long long)lat.n, inflight, tput.rps, tput.p50, tput.p99,
               (long long)tput.n, lat.errors + tput.errors ? " ERRORS" : "");
  if (lat.errors + tput.errors)
    std::fprintf(stderr, "  first error: %s\n",
                 (lat.first_error.empty() ? tput.first_error : lat.first_error).c_str());
  return lat.errors + tput.errors ? 1 : 0;
}
