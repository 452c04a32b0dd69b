#pragma once
// The wait before the next attempt to reach the broker: exponential back-off with full jitter
// over [min_s, min(max_s, min_s · 2^attempt)], so the first retry waits between min_s and
// 2 · min_s, and many instances that lost the same broker do not come back in lockstep. Never
// below min_s (no tight loop), never above max_s. Pure, so it can be tested.

#include <algorithm>
#include <cmath>

#include "server/config.h"

namespace mqttspec::server {

// `attempt` counts failed attempts so far (1 after the first failure); `unit` is uniform in [0, 1).
inline double ReconnectDelay(const ReconnectConfig& r, int attempt, double unit) {
  const double cap = std::min(r.max_s, r.min_s * std::exp2(std::clamp(attempt, 1, 62)));
  return r.min_s + (std::max(cap, r.min_s) - r.min_s) * std::clamp(unit, 0.0, 1.0);
}

}  // namespace mqttspec::server
