#pragma once
// Ctrl-C (SIGINT) and SIGTERM for mqttspecctl: delivered to a thread of its own, which runs the
// current handler — by default exit with 130; `watch` installs one that cancels its stream, so
// it ends cleanly with exit 0. Signals go to that thread only because every other thread (gRPC's)
// inherits the blocked mask: REQUIRES: InstallInterrupts() before any other thread starts.

#include <functional>

namespace mqttspec::ctl {

void InstallInterrupts();

// Replaces the handler while it lives (the default comes back when it is destroyed). The
// handler runs on the signal thread; it is never running once the destructor has returned.
class ScopedInterruptHandler {
 public:
  explicit ScopedInterruptHandler(std::function<void()> handler);
  ~ScopedInterruptHandler();
  ScopedInterruptHandler(const ScopedInterruptHandler&) = delete;
  ScopedInterruptHandler& operator=(const ScopedInterruptHandler&) = delete;
};

}  // namespace mqttspec::ctl
