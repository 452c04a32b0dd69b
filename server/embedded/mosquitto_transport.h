#pragma once
// MosquittoTransport: the Transport of embedded mode. Workers hand it answers from any thread;
// only the broker thread may call Mosquitto's publish function (MOSQUITTO.md §2), so answers wait
// in a queue and the broker thread drains it (Drain, called from the plugin's TICK event).
//
// Waking the broker. Its idle loop sleeps in epoll_wait for up to 100 ms and 2.0.11 has no
// supported wake-up. At the first TICK we look for the broker's epoll descriptor (the
// anon_inode:[eventpoll] in /proc/self/fd whose fdinfo lists a socket listening on one of the
// broker's MQTT ports — gRPC's own epoll sets are in the same process) and add an eventfd to it, its data.ptr pointing at a
// zeroed block: the broker's dispatch ignores an event whose context identity is 0, but
// epoll_wait returns and the same loop iteration's TICK drains the queue. Workers write the
// eventfd only when no wake is pending (an atomic flag), so wakes coalesce. Level-triggered, so no
// wake-up is lost. Measured (bench/RESULTS.md): an answer leaves within tens of microseconds
// instead of up to 100 ms. If the descriptor is not found (another Mosquitto build), answers go
// out on TICK alone (up to 100 ms late) and the log says so.
// Thread-safety: Publish and Kick from any thread; Drain and InstallWake on the broker thread only.

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "server/transport.h"

namespace mqttspec::server {

class MosquittoTransport : public Transport {
 public:
  MosquittoTransport();
  ~MosquittoTransport() override;

  void Publish(OutboundMessage message) override;
  // Queued like an answer; the broker thread disconnects the client at the next Drain.
  bool Kick(const std::string& client_id) override;

  // Broker thread: publishes everything queued. Returns how many were published.
  size_t Drain();

  // Broker thread, once the main loop runs (first TICK): sets up the eventfd wake in the epoll
  // set that watches the broker's MQTT listeners (`listener_ports`; other epoll sets in the
  // process, such as gRPC's, are not the broker's). Returns false (and answers go out on TICK
  // only) when that set is not found.
  bool InstallWake(const std::vector<int>& listener_ports);
  bool wake_installed() const { return event_fd_ >= 0 && epoll_fd_ >= 0; }

  uint64_t published() const { return published_.load(); }
  uint64_t failed() const { return failed_.load(); }

 private:
  void Wake();

  std::mutex mu_;  // guards queue_, kicks_
  std::vector<OutboundMessage> queue_;
  std::vector<std::string> kicks_;
  std::vector<OutboundMessage> draining_;  // broker thread only: reused buffer
  std::atomic<bool> wake_pending_{false};
  int event_fd_ = -1;
  int epoll_fd_ = -1;
  std::atomic<uint64_t> published_{0}, failed_{0};
};

}  // namespace mqttspec::server
