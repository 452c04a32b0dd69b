#pragma once
// Metrics: the service's figures, served as Prometheus text on admin.metrics_listen (GET /metrics)
// and as samples through the admin API (GetMetrics) — one Collect for both, so they never differ.
// The workers count every answered request (RecordRequest: by front, operation and code, and its
// duration in a histogram by operation); the gauges and the notification count are read from
// their owners when collected (Gauges).
//   mqttspec_requests_total{front,operation,code}   counter
//   mqttspec_request_duration_seconds{operation}    histogram (from Submit to the answer)
//   mqttspec_clients_connected                       gauge
//   mqttspec_subscriptions                           gauge
//   mqttspec_notifications_total                     counter
//   mqttspec_queue_depth                             gauge (requests taken, not yet answered)
//   mqttspec_database_errors_total                   counter (answers unavailable/timeout/internal)
// Thread-safety: all methods from any thread. A request takes a shared lock and atomic adds; a
// series seen for the first time takes the lock exclusively once.

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mqttspec::server {

class Metrics {
 public:
  void RecordRequest(std::string_view front, std::string_view operation, std::string_view code,
                     double seconds);

  struct Gauges {
    double clients_connected = 0, subscriptions = 0, queue_depth = 0, notifications_total = 0;
  };
  struct Sample {
    std::string name;
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;
  };
  std::vector<Sample> Collect(const Gauges& gauges) const;

  // Samples in the Prometheus text exposition format (version 0.0.4), with HELP and TYPE lines.
  static std::string Prometheus(const std::vector<Sample>& samples);

  static constexpr std::array<double, 15> kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1,     2.5,   5};

 private:
  struct Histogram {
    std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets{};  // last: +Inf
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_ns{0};
  };
  std::atomic<uint64_t>& Counter(std::string_view front, std::string_view operation,
                                 std::string_view code);
  Histogram& HistogramOf(std::string_view operation);

  mutable std::shared_mutex mu_;  // guards the maps (not the atomics in them)
  // key: front '\0' operation '\0' code
  std::map<std::string, std::unique_ptr<std::atomic<uint64_t>>, std::less<>> requests_;
  std::map<std::string, std::unique_ptr<Histogram>, std::less<>> durations_;
  std::atomic<uint64_t> database_errors_{0};
};

}  // namespace mqttspec::server
