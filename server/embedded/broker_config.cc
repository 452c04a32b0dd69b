#include "server/embedded/broker_config.h"

#include <fmt/format.h>

namespace mqttspec::server::embedded {

std::string RenderMosquittoConf(const Config& c, const BrokerFiles& f) {
  const BrokerConfig& b = c.broker;
  std::string out;
  out +=
      "# Written by mqttspecd for embedded mode at every start; edit the mqttspec YAML instead.\n";
  out += "per_listener_settings false\n";  // with true, TICK never fires: answers would stall
  out += "set_tcp_nodelay true\n";         // without it each QoS 1 round trip costs ~40 ms
  // Listener options follow their `listener` line. max_connections is counted per listener.
  const std::string per_listener =
      b.max_connections > 0 ? fmt::format("max_connections {}\n", b.max_connections) : "";
  const TlsConfig& t = b.tls;
  auto tls = [&] {
    std::string o = fmt::format("certfile {}\nkeyfile {}\n", t.cert_file, t.key_file);
    if (!t.ca_file.empty()) o += fmt::format("cafile {}\n", t.ca_file);
    o += fmt::format("require_certificate {}\n", t.require_certificate ? "true" : "false");
    if (t.use_identity_as_username) o += "use_identity_as_username true\n";
    return o;
  };
  if (b.port > 0) out += fmt::format("listener {} {}\n", b.port, b.host) + per_listener;
  if (b.websocket_port > 0) {
    out += fmt::format("listener {} {}\nprotocol websockets\n", b.websocket_port, b.host) +
           per_listener;
  }
  if (t.enabled) {
    out += fmt::format("listener {} {}\n", t.port, b.host) + per_listener + tls();
    if (t.websocket_port > 0) {
      out += fmt::format("listener {} {}\nprotocol websockets\n", t.websocket_port, b.host) +
             per_listener + tls();
    }
  }
  out += fmt::format("max_keepalive {}\n", b.max_keepalive);
  out += fmt::format("max_queued_messages {}\n", c.limits.max_queued_messages);
  out += fmt::format("allow_anonymous {}\n", b.allow_anonymous ? "true" : "false");
  if (!b.password_file.empty()) out += fmt::format("password_file {}\n", b.password_file);
  out += "persistence true\n";
  out += fmt::format("persistence_location {}/\n", f.data_dir);
  out += "autosave_interval 60\n";
  out += "log_dest stderr\n";
  out += "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n";
  if (f.run_as_root) out += "user root\n";
  out += fmt::format("plugin {}\n", f.plugin_path);
  if (!f.config_path.empty()) out += fmt::format("plugin_opt_config {}\n", f.config_path);
  out += "plugin_opt_broker_auth plugin\n";  // the YAML's allow_anonymous / password_file rule
  return out;
}

}  // namespace mqttspec::server::embedded
