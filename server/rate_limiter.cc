#include "server/rate_limiter.h"

#include <algorithm>

namespace mqttspec::server {

bool RateLimiter::Admit(const std::string& client) {
  if (rate_ <= 0) return true;
  // At least one request: a rate below 1/s would otherwise refuse everything.
  const double burst = std::max(1.0, rate_);
  const auto full_after = std::chrono::duration<double>(burst / rate_);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (now - last_prune_ >= full_after) {  // a refilled bucket is the same as none
    last_prune_ = now;
    std::erase_if(buckets_, [&](const auto& kv) { return now - kv.second.last >= full_after; });
  }
  auto [it, inserted] = buckets_.try_emplace(client, Bucket{burst, now});
  Bucket& b = it->second;
  if (!inserted) {
    const double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst, b.tokens + elapsed * rate_);
    b.last = now;
  }
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

size_t RateLimiter::tracked() const {
  std::lock_guard lock(mu_);
  return buckets_.size();
}

}  // namespace mqttspec::server
