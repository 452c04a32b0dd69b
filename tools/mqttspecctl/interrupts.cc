// The signal thread of mqttspecctl: sigwait() on SIGINT and SIGTERM, then the current handler.

#include "tools/mqttspecctl/interrupts.h"

#include <pthread.h>
#include <signal.h>

#include <cstdlib>
#include <mutex>
#include <thread>
#include <utility>

#include "tools/mqttspecctl/session.h"

namespace mqttspec::ctl {

namespace {

std::mutex& HandlerMutex() {
  static std::mutex mutex;
  return mutex;
}

// Guarded by HandlerMutex(). Empty = the default: exit at once, as if killed by the signal.
std::function<void()>& Handler() {
  static std::function<void()> handler;
  return handler;
}

void OnSignal() {
  std::lock_guard<std::mutex> lock(HandlerMutex());
  if (Handler()) {
    Handler()();
  } else {
    std::_Exit(kExitInterrupted);
  }
}

}  // namespace

void InstallInterrupts() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread([signals] {
    int signal = 0;
    while (sigwait(&signals, &signal) == 0) OnSignal();
  }).detach();
}

ScopedInterruptHandler::ScopedInterruptHandler(std::function<void()> handler) {
  std::lock_guard<std::mutex> lock(HandlerMutex());
  Handler() = std::move(handler);
}

ScopedInterruptHandler::~ScopedInterruptHandler() {
  std::lock_guard<std::mutex> lock(HandlerMutex());
  Handler() = nullptr;
}

}  // namespace mqttspec::ctl
