#include "server/metrics.h"

#include <fmt/format.h>

#include <cmath>
#include <mutex>

namespace mqttspec::server {

std::atomic<uint64_t>& Metrics::Counter(std::string_view front, std::string_view operation,
                                        std::string_view code) {
  std::string key;
  key.reserve(front.size() + operation.size() + code.size() + 2);
  key.append(front).append(1, '\0').append(operation).append(1, '\0').append(code);
  {
    std::shared_lock lock(mu_);
    if (auto it = requests_.find(key); it != requests_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = requests_[key];
  if (!slot) slot = std::make_unique<std::atomic<uint64_t>>(0);
  return *slot;
}

Metrics::Histogram& Metrics::HistogramOf(std::string_view operation) {
  {
    std::shared_lock lock(mu_);
    if (auto it = durations_.find(operation); it != durations_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = durations_[std::string(operation)];
  if (!slot) slot = std::make_unique<Histogram>();
  return *slot;
}

void Metrics::RecordRequest(std::string_view front, std::string_view operation,
                            std::string_view code, double seconds) {
  Counter(front, operation, code).fetch_add(1, std::memory_order_relaxed);
  Histogram& h = HistogramOf(operation);
  size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  h.buckets[b].fetch_add(1, std::memory_order_relaxed);
  h.count.fetch_add(1, std::memory_order_relaxed);
  h.sum_ns.fetch_add(static_cast<uint64_t>(std::llround(seconds * 1e9)),
                     std::memory_order_relaxed);
  if (code == "unavailable" || code == "timeout" || code == "internal")
    database_errors_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<Metrics::Sample> Metrics::Collect(const Gauges& g) const {
  std::vector<Sample> out;
  std::shared_lock lock(mu_);
  for (const auto& [key, n] : requests_) {
    const size_t a = key.find('\0'), b = key.find('\0', a + 1);
    out.push_back({"mqttspec_requests_total",
                   {{"front", key.substr(0, a)},
                    {"operation", key.substr(a + 1, b - a - 1)},
                    {"code", key.substr(b + 1)}},
                   static_cast<double>(n->load(std::memory_order_relaxed))});
  }
  for (const auto& [op, h] : durations_) {
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= kBuckets.size(); ++b) {
      cumulative += h->buckets[b].load(std::memory_order_relaxed);
      out.push_back({"mqttspec_request_duration_seconds_bucket",
                     {{"operation", op},
                      {"le", b < kBuckets.size() ? fmt::format("{}", kBuckets[b]) : "+Inf"}},
                     static_cast<double>(cumulative)});
    }
    out.push_back({"mqttspec_request_duration_seconds_sum",
                   {{"operation", op}},
                   static_cast<double>(h->sum_ns.load(std::memory_order_relaxed)) / 1e9});
    out.push_back({"mqttspec_request_duration_seconds_count",
                   {{"operation", op}},
                   static_cast<double>(h->count.load(std::memory_order_relaxed))});
  }
  out.push_back({"mqttspec_clients_connected", {}, g.clients_connected});
  out.push_back({"mqttspec_subscriptions", {}, g.subscriptions});
  out.push_back({"mqttspec_notifications_total", {}, g.notifications_total});
  out.push_back({"mqttspec_queue_depth", {}, g.queue_depth});
  out.push_back({"mqttspec_database_errors_total",
                 {},
                 static_cast<double>(database_errors_.load(std::memory_order_relaxed))});
  return out;
}

namespace {

struct Family {
  std::string_view name, type, help;
};
constexpr Family kFamilies[] = {
    {"mqttspec_requests_total", "counter", "Requests answered, by front, operation and code."},
    {"mqttspec_request_duration_seconds", "histogram",
     "Time from taking a request to its answer, by operation."},
    {"mqttspec_clients_connected", "gauge", "Clients with a live connection (embedded mode)."},
    {"mqttspec_subscriptions", "gauge", "Subscriptions in force."},
    {"mqttspec_notifications_total", "counter", "Change notifications sent."},
    {"mqttspec_queue_depth", "gauge", "Requests taken and not yet answered."},
    {"mqttspec_database_errors_total", "counter",
     "Requests answered unavailable, timeout or internal."},
};

// A label value escaped as the text format wants (backslash, quote, newline).
std::string Escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string Metrics::Prometheus(const std::vector<Sample>& samples) {
  std::string out;
  for (const Family& f : kFamilies) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
    for (const Sample& s : samples) {
      // A histogram's series carry a suffix (_bucket, _sum, _count).
      if (s.name.compare(0, f.name.size(), f.name) != 0) continue;
      std::string_view rest = std::string_view(s.name).substr(f.name.size());
      if (!rest.empty() && !(f.type == "histogram" &&
                             (rest == "_bucket" || rest == "_sum" || rest == "_count")))
        continue;
      out += s.name;
      if (!s.labels.empty()) {
        out += '{';
        for (size_t i = 0; i < s.labels.size(); ++i) {
          if (i) out += ',';
          out += fmt::format("{}=\"{}\"", s.labels[i].first, Escape(s.labels[i].second));
        }
        out += '}';
      }
      out += fmt::format(" {}\n", s.value);
    }
  }
  return out;
}

}  // namespace mqttspec::server
