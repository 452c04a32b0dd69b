#pragma once
// RateLimiter: limits.requests_per_second_per_client as a token bucket per client id. A bucket
// holds one second's worth of requests (at least one) and refills at the rate; a bucket idle long
// enough to be full again is dropped, so the table holds only recently active clients, however
// many ids it has seen.
// Thread-safety: all methods from any thread.

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mqttspec::server {

class RateLimiter {
 public:
  explicit RateLimiter(double per_second) : rate_(per_second) {}

  // True when `client` may send one more request now (always, with a rate of 0).
  bool Admit(const std::string& client);
  size_t tracked() const;  // clients with a bucket

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  const double rate_;
  mutable std::mutex mu_;  // guards buckets_ and last_prune_
  std::unordered_map<std::string, Bucket> buckets_;
  std::chrono::steady_clock::time_point last_prune_{};
};

}  // namespace mqttspec::server
