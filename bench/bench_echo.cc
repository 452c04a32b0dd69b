// mqttspec_bench echo: the bare-broker baseline of bench/run.sh. Subscribes to
// <prefix>/+/request and republishes every payload, unchanged and at the QoS it came with, to
// <prefix>/<client>/response: an MQTT round trip with no database, to compare the service with.
// --loop lib (default): libmosquitto's own loop, as a stock client would run it; --loop poll:
// the load generator's Loop (bench_conn.h).

#include <mosquitto.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "bench_common.h"
#include "bench_conn.h"
#include "mqttspec_bench.h"

namespace bench {
namespace {

void EchoHandler(Conn& c, const mosquitto_message& msg) {
  std::string_view topic(msg.topic);
  constexpr std::string_view kSuffix = "/request";
  if (topic.size() <= kSuffix.size() || topic.substr(topic.size() - kSuffix.size()) != kSuffix)
    return;
  std::string out(topic.substr(0, topic.size() - kSuffix.size()));
  out += "/response";
  int rc =
      mosquitto_publish(c.m, nullptr, out.c_str(), msg.payloadlen, msg.payload, msg.qos, false);
  if (rc != MOSQ_ERR_SUCCESS) Die("echo publish: %s", mosquitto_strerror(rc));
}

}  // namespace

int RunEcho(const Args& a) {
  std::vector<Conn> conns(1);
  Conn& c = conns[0];
  c.client_id = a.Get("client-id", "bench-echo");
  c.qos = static_cast<int>(a.Int("qos", 0));
  c.subscribe_filter = a.Get("prefix", "spec") + "/+/request";
  c.handler = EchoHandler;
  Connect(c, a.Get("host", "127.0.0.1"), static_cast<int>(a.Int("port", 1883)));
  const std::string how = a.Get("loop", "lib");
  if (how == "lib") {
    // The stock client: libmosquitto's own loop (select() per packet, a socketpair wake per
    // publish from the callback).
    std::fprintf(stderr,
                 "mqttspec_bench echo: republishing %s at QoS %d (mosquitto_loop_forever)\n",
                 c.subscribe_filter.c_str(), c.qos);
    int rc = mosquitto_loop_forever(c.m, -1, 1);
    Die("echo: loop ended: %s", mosquitto_strerror(rc));
  }
  if (how != "poll") Die("--loop: lib or poll");
  Loop loop(conns);
  if (!loop.Until([&] { return c.subscribed; }, 10)) Die("echo: no SUBACK within 10 s");
  std::fprintf(stderr, "mqttspec_bench echo: republishing %s at QoS %d (poll loop)\n",
               c.subscribe_filter.c_str(), c.qos);
  for (;;) loop.Pump(1000);
}

}  // namespace bench
