#include "server/embedded/broker_config.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace mqttspec::server::embedded
