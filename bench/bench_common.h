#pragma once
// What both benchmark programs (mqttspec_bench, mqttspec_pq_baseline) need: a clock, fatal
// errors, "--key value" arguments and percentiles.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

inline const char* program_name = "bench";  // set by main, prefixes fatal errors

[[noreturn]] inline void Die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stderr, "%s: ", program_name);
  std::vfprintf(stderr, fmt, ap);
  std::fprintf(stderr, "\n");
  va_end(ap);
  std::exit(1);
}

struct Args {
  std::map<std::string, std::string> kv;
  std::string Get(const std::string& k, const std::string& def = "") const {
    auto it = kv.find(k);
    return it == kv.end() ? def : it->second;
  }
  long Int(const std::string& k, long def) const {
    auto it = kv.find(k);
    if (it == kv.end()) return def;
    char* end = nullptr;
    long v = std::strtol(it->second.c_str(), &end, 10);
    if (!end || *end) Die("--%s: expected an integer, got '%s'", k.c_str(), it->second.c_str());
    return v;
  }
  double Real(const std::string& k, double def) const {
    auto it = kv.find(k);
    return it == kv.end() ? def : std::atof(it->second.c_str());
  }
};

// argv[first…] as "--key value" pairs.
inline Args ParseArgs(int argc, char** argv, int first) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s.rfind("--", 0) != 0 || i + 1 >= argc)
      Die("bad argument '%s' (options are --key value)", s.c_str());
    a.kv[s.substr(2)] = argv[++i];
  }
  return a;
}

// The q-quantile of latencies in ns, in µs (sorts `v`).
inline double Percentile(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  if (k > 0) --k;
  return static_cast<double>(v[std::min(k, v.size() - 1)]) / 1000.0;
}

}  // namespace bench
