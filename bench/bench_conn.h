#pragma once
// The MQTT connections of mqttspec_bench (the echo baseline and the load generator): Conn, one
// libmosquitto client that subscribes to one filter as soon as it is connected and hands every
// message to its handler, and Loop, the one thread that drives all connections with poll(), so
// the load generator costs the same in every setup.
//
// Every connection sets TCP_NODELAY. Any failure (refused connection or subscription, lost
// connection, read or write error) is fatal: Die().

#include <mosquitto.h>
#include <poll.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "bench_common.h"

namespace bench {

struct Conn;
using MessageHandler = void (*)(Conn&, const mosquitto_message&);

struct Conn {
  mosquitto* m = nullptr;
  int index = 0;
  std::string client_id;
  std::string request_topic;
  std::string response_topic;
  std::string subscribe_filter;
  int qos = 0;
  bool connected = false;
  bool subscribed = false;
  int inflight = 0;
  MessageHandler handler = nullptr;
  void* owner = nullptr;
};

// Creates c.m and connects it to host:port. Once connected it subscribes to c.subscribe_filter
// at c.qos (c.connected, then c.subscribed turn true); messages go to c.handler.
void Connect(Conn& c, const std::string& host, int port);

// One thread, all connections: poll, read every complete packet waiting, write what callbacks
// queued. Publishing from a callback only queues the packet in libmosquitto; it is written here
// right after the read, without another poll.
class Loop {
 public:
  explicit Loop(std::vector<Conn>& conns) : conns_(conns), fds_(conns.size()) {}

  // One poll() of every connection (at most timeout_ms), then their reads and writes.
  void Pump(int timeout_ms);

  // Flushes packets queued outside a callback (mosquitto_publish then writes at once anyway).
  void Flush();

  // Pumps until pred() or the deadline; false on timeout.
  template <class Pred>
  bool Until(Pred pred, double seconds) {
    int64_t deadline = NowNs() + static_cast<int64_t>(seconds * 1e9);
    while (!pred()) {
      int64_t left = deadline - NowNs();
      if (left <= 0) return false;
      Pump(static_cast<int>(std::min<int64_t>(left / 1'000'000 + 1, 100)));
    }
    return true;
  }

 private:
  std::vector<Conn>& conns_;
  std::vector<pollfd> fds_;
  int64_t last_misc_ = 0;
};

}  // namespace bench
