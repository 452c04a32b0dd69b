#pragma once
// The Mosquitto configuration mqttspecd writes for embedded mode (under broker.data_dir, rewritten
// at every start): the listeners on broker.host (plain MQTT on port, WebSocket on websocket_port,
// MQTT over TLS on tls.port and WebSocket over TLS on tls.websocket_port, each when configured),
// the broker settings (max_connections, max_keepalive, limits.max_queued_messages), persistence on,
// TCP_NODELAY on, per_listener_settings off (TICK never fires with it on), and our plugin with our
// configuration. deploy/mosquitto.embedded.conf is the documented template.

#include <string>

#include "server/config.h"

namespace mqttspec::server::embedded {

struct BrokerFiles {
  std::string plugin_path;   // absolute path of mqttspec_mosquitto.so
  std::string config_path;   // absolute path of the mqttspec YAML ("" = defaults)
  std::string data_dir;      // absolute broker.data_dir
  bool run_as_root = false;  // keep root instead of dropping to user mosquitto
};

std::string RenderMosquittoConf(const Config& config, const BrokerFiles& files);

}  // namespace mqttspec::server::embedded
