#include "server/embedded/broker_config.h"

#include <gtest/gtest.h>

#include "server/external/backoff.h"

namespace mqttspec::server::embedded {
namespace {

BrokerFiles Files() {
  return BrokerFiles{"/opt/mqttspec/lib/mqttspec_mosquitto.so", "/etc/mqttspec/mqttspec.yaml",
                     "/var/lib/mqttspec", false};
}

bool Has(const std::string& conf, const std::string& line) {
  return conf.find(line + "\n") != std::string::npos;
}

TEST(BrokerConfig, DefaultsGiveOneListenerPersistenceAndThePlugin) {
  auto cfg = ParseConfig("");
  ASSERT_TRUE(cfg.ok());
  std::string conf = RenderMosquittoConf(cfg.value(), Files());
  EXPECT_TRUE(Has(conf, "per_listener_settings false"));
  EXPECT_TRUE(Has(conf, "set_tcp_nodelay true"));
  EXPECT_TRUE(Has(conf, "listener 1883 127.0.0.1"));
  EXPECT_TRUE(Has(conf, "allow_anonymous true"));
  EXPECT_TRUE(Has(conf, "persistence true"));
  EXPECT_TRUE(Has(conf, "persistence_location /var/lib/mqttspec/"));
  EXPECT_TRUE(Has(conf, "plugin /opt/mqttspec/lib/mqttspec_mosquitto.so"));
  EXPECT_TRUE(Has(conf, "plugin_opt_config /etc/mqttspec/mqttspec.yaml"));
  EXPECT_TRUE(Has(conf, "plugin_opt_broker_auth plugin"));
  EXPECT_FALSE(Has(conf, "user root"));
  EXPECT_EQ(conf.find("protocol websockets"), std::string::npos);
  EXPECT_EQ(conf.find("password_file"), std::string::npos);
  // plugin_opt_ lines must follow their plugin line.
  EXPECT_LT(conf.find("plugin /opt"), conf.find("plugin_opt_config"));
}

TEST(BrokerConfig, WebSocketsPasswordsAndRoot) {
  auto cfg = ParseConfig(
      "broker: {host: 0.0.0.0, port: 1884, websocket_port: 9001, allow_anonymous: false, "
      "password_file: /etc/mqttspec/passwd}");
  ASSERT_TRUE(cfg.ok());
  BrokerFiles f = Files();
  f.run_as_root = true;
  f.config_path = "";
  std::string conf = RenderMosquittoConf(cfg.value(), f);
  EXPECT_TRUE(Has(conf, "listener 1884 0.0.0.0"));
  EXPECT_TRUE(Has(conf, "listener 9001 0.0.0.0\nprotocol websockets"));
  EXPECT_TRUE(Has(conf, "allow_anonymous false"));
  EXPECT_TRUE(Has(conf, "password_file /etc/mqttspec/passwd"));
  EXPECT_TRUE(Has(conf, "user root"));
  EXPECT_EQ(conf.find("plugin_opt_config"), std::string::npos);
}

TEST(BrokerConfig, TlsListenersBesideOrInsteadOfThePlainOne) {
  auto cfg = ParseConfig(
      "broker: {port: 0, websocket_port: 9001, max_connections: 500, max_keepalive: 120,\n"
      "  tls: {port: 8883, websocket_port: 9443, cert_file: /c/server.pem, key_file: /c/key.pem,\n"
      "        ca_file: /c/ca.pem, require_certificate: true, use_identity_as_username: true}}\n"
      "limits: {max_queued_messages: 50}");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  std::string conf = RenderMosquittoConf(cfg.value(), Files());
  EXPECT_EQ(conf.find("listener 0 "), std::string::npos) << conf;
  EXPECT_EQ(conf.find("listener 1883"), std::string::npos) << conf;
  const std::string tls =
      "max_connections 500\ncertfile /c/server.pem\nkeyfile /c/key.pem\ncafile /c/ca.pem\n"
      "require_certificate true\nuse_identity_as_username true";
  EXPECT_TRUE(Has(conf, "listener 9001 127.0.0.1\nprotocol websockets\nmax_connections 500"));
  EXPECT_TRUE(Has(conf, "listener 8883 127.0.0.1\n" + tls)) << conf;
  EXPECT_TRUE(Has(conf, "listener 9443 127.0.0.1\nprotocol websockets\n" + tls)) << conf;
  EXPECT_TRUE(Has(conf, "max_keepalive 120"));
  EXPECT_TRUE(Has(conf, "max_queued_messages 50"));
}

TEST(BrokerConfig, DefaultsForTheBrokerSettings) {
  auto cfg = ParseConfig("");
  ASSERT_TRUE(cfg.ok());
  std::string conf = RenderMosquittoConf(cfg.value(), Files());
  EXPECT_EQ(conf.find("max_connections"), std::string::npos);  // 0 = unlimited
  EXPECT_TRUE(Has(conf, "max_keepalive 65535"));
  EXPECT_TRUE(Has(conf, "max_queued_messages 1000"));
  EXPECT_EQ(conf.find("certfile"), std::string::npos);
}

TEST(BrokerConfig, ListenerCombinationsThatCannotWorkAreRefusedNamingTheKey) {
  auto error = [](const std::string& yaml) {
    auto cfg = ParseConfig(yaml);
    return cfg.ok() ? std::string("accepted") : cfg.error().message;
  };
  EXPECT_EQ(error("broker: {port: 0}"), "broker.port: 0 (no plain listener) needs broker.tls");
  EXPECT_EQ(error("broker: {tls: {key_file: /k}}"),
            "broker.tls.cert_file: is required for the TLS listener");
  EXPECT_EQ(error("broker: {tls: {cert_file: /c, key_file: /k, require_certificate: true}}"),
            "broker.tls.ca_file: is required when require_certificate is true");
  EXPECT_EQ(error("broker: {tls: {cert_file: /c, key_file: /k, use_identity_as_username: true}}"),
            "broker.tls.use_identity_as_username: needs require_certificate: true");
  EXPECT_EQ(error("broker: {tls: {port: 1883, cert_file: /c, key_file: /k}}"),
            "broker.tls.port: 1883 is already used by another listener");
  EXPECT_EQ(error("broker: {tls: {cert_file: /c, key_file: /k, colour: red}}").substr(0, 28),
            "broker.tls.colour: unknown k");
  EXPECT_EQ(error("broker: {mode: external, url: 'tcp://h:1883', tls: {ca_file: /ca}}"),
            "broker.tls: is set, but broker.url 'tcp://h:1883' is not ssl://, mqtts:// or wss://");
  EXPECT_EQ(error("broker: {mode: external, url: 'ssl://h:8883', tls: {cert_file: /c}}"),
            "broker.tls.key_file: a client certificate needs both cert_file and key_file");
  EXPECT_EQ(error("broker: {mode: external, url: 'ssl://h:8883', tls: {ca_file: /ca}}"),
            "accepted");
  EXPECT_EQ(error("broker: {reconnect: {min_s: 5, max_s: 2}}"),
            "broker.reconnect.max_s: must not be less than min_s");
  EXPECT_EQ(error("broker: {reconnect: {min_s: 0}}"),
            "broker.reconnect.min_s: must be at least 0.1");
  EXPECT_EQ(error("limits: {max_queued_messages: 0}"),
            "limits.max_queued_messages: must be between 1 and 10000000");
}

TEST(BrokerConfig, ExternalConnectionDefaults) {
  auto cfg = ParseConfig("");
  ASSERT_TRUE(cfg.ok());
  const BrokerConfig& b = cfg.value().broker;
  EXPECT_FALSE(b.clean_session);
  EXPECT_EQ(b.keepalive_s, 30);
  EXPECT_EQ(b.connect_timeout_s, 10);
  EXPECT_DOUBLE_EQ(b.reconnect.min_s, 1);
  EXPECT_DOUBLE_EQ(b.reconnect.max_s, 30);
  EXPECT_FALSE(b.tls.enabled);
  EXPECT_TRUE(b.tls.verify);
}

TEST(Reconnect, FullJitterWithinMinAndAGrowingCap) {
  ReconnectConfig r{1.0, 30.0};
  // mqttspec::Backoff, millisecond resolution.
  EXPECT_DOUBLE_EQ(ReconnectDelay(r, 1, 0.0), 1.0);  // never below min_s: no tight loop
  EXPECT_NEAR(ReconnectDelay(r, 1, 0.999999), 1.0 + 0.999999, 0.001);
  EXPECT_DOUBLE_EQ(ReconnectDelay(r, 3, 0.5), 1.0 + (8.0 - 1.0) * 0.5);
  EXPECT_DOUBLE_EQ(ReconnectDelay(r, 10, 1.0), 30.0);  // capped at max_s
  EXPECT_DOUBLE_EQ(ReconnectDelay(r, 1000, 0.25), 1.0 + 29.0 * 0.25);
  ReconnectConfig same{2.0, 2.0};
  EXPECT_DOUBLE_EQ(ReconnectDelay(same, 5, 0.7), 2.0);
}

}  // namespace
}  // namespace mqttspec::server::embedded
