#pragma once
// The wait before the next attempt to reach the broker: mqttspec::Backoff (the client SDK's,
// include/mqttspec/backoff.h) with factor 2 over [min_s, max_s] — full jitter over
// [min_s, min(max_s, min_s · 2^attempt)], so the first retry waits between min_s and 2 · min_s,
// and many instances that lost the same broker do not come back in lockstep. Never below min_s
// (no tight loop), never above max_s; millisecond resolution. Pure, so it can be tested.

#include <algorithm>
#include <chrono>

#include "mqttspec/backoff.h"
#include "server/config.h"

namespace mqttspec::server {

// `attempt` counts failed attempts so far (1 after the first failure); `unit` is uniform in
// [0, 1). Seconds.
inline double ReconnectDelay(const ReconnectConfig& r, int attempt, double unit) {
  const auto ms = [](double s) {
    return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  };
  const Backoff b{ms(r.min_s), 2.0, ms(r.max_s)};
  return static_cast<double>(b.Delay(std::max(attempt, 1), unit).count()) / 1000.0;
}

}  // namespace mqttspec::server
