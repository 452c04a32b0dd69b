#pragma once
// mqttspec::Backoff — how long to wait before the next attempt to reach a broker.
//
// Exponential back-off with full jitter: the wait before attempt n+1 (after n failed attempts)
// is drawn uniformly from [base, min(cap, base · factor^n)]. It is never below `base`, so a
// client that fails at once still cannot spin, and never above `cap`; the jitter keeps many
// clients that lost the same broker from coming back in lockstep.
//
// Delay is stateless: it depends on its arguments only (the random draw is passed in, or taken
// from a thread-local generator), so it can be tested and shared. Used by the client SDK
// (mqttspec/client.h) and by mqttspecd's own reconnect loop in external mode.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

namespace mqttspec {

struct Backoff {
  std::chrono::milliseconds base{100};   // the shortest wait, and the first ceiling
  double factor = 2.0;                   // growth of the ceiling per failed attempt (≥ 1)
  std::chrono::milliseconds cap{30000};  // the longest wait

  // The ceiling of the wait after `attempt` failed attempts (attempt ≥ 0).
  std::chrono::milliseconds Ceiling(int attempt) const {
    const double b = static_cast<double>(std::max<int64_t>(base.count(), 0));
    const double c = static_cast<double>(std::max<int64_t>(cap.count(), base.count()));
    const double f = std::max(factor, 1.0);
    const double grown = b * std::pow(f, std::clamp(attempt, 0, 1000));
    return std::chrono::milliseconds(static_cast<int64_t>(std::min(c, std::max(b, grown))));
  }

  // The wait after `attempt` failed attempts; `unit` is a uniform draw from [0, 1).
  std::chrono::milliseconds Delay(int attempt, double unit) const {
    const int64_t lo = std::max<int64_t>(base.count(), 0);
    const int64_t hi = Ceiling(attempt).count();
    const double u = std::clamp(unit, 0.0, 1.0);
    return std::chrono::milliseconds(lo + static_cast<int64_t>(static_cast<double>(hi - lo) * u));
  }

  // The same with a draw from this thread's generator.
  std::chrono::milliseconds Delay(int attempt) const {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return Delay(attempt, std::uniform_real_distribution<double>(0.0, 1.0)(rng));
  }
};

}  // namespace mqttspec
