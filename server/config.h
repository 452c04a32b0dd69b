#pragma once
// Config: the daemon's YAML configuration (PROTOCOL.md §Configuration). Every key is optional and
// defaults as documented there; an unknown key or a value of the wrong type is an error that names
// the key ("broker.port: expected an integer").

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/error.h"
#include "registry/model.h"

namespace mqttspec::server {

struct BrokerConfig {
  std::string mode = "embedded";  // embedded | external
  std::string host = "127.0.0.1";
  int port = 1883;
  int websocket_port = 0;
  std::string mosquitto = "mosquitto";
  std::string data_dir = "./mqttspec-data";
  bool allow_anonymous = true;
  std::string password_file;
  std::string url = "tcp://127.0.0.1:1883";
  std::string client_id = "mqttspec-server";
  std::string username;
  std::string password;
  std::string shared_group;
};

struct QosConfig {
  int request = 1, response = 1, notification = 1;
};

struct DatabaseConfig {
  std::string driver = "sqlite";  // sqlite | postgres
  std::string path = "mqttspec.db";
  std::string synchronous = "full";  // full | normal
  std::string url;
  int pool_size = 8;
  bool migrate = true;
};

struct PluginConfig {
  std::string path;
  std::map<std::string, std::string> options;  // scalar options as text
};

struct AdminConfig {
  std::string listen = "127.0.0.1:50051";
  std::string token;
};

struct LimitsConfig {
  int64_t max_payload_bytes = 262144;
  int64_t max_rows = 1000;
  int max_filters = 64;
  int max_subscriptions_per_client = 100;
  int query_timeout_ms = 5000;
  double requests_per_second_per_client = 0;  // 0 = unlimited
  int dedup_window_s = 60;
};

struct Config {
  BrokerConfig broker;
  std::string topic_prefix = "spec";
  QosConfig qos;
  DatabaseConfig database;
  std::vector<registry::ModelPtr> models;
  std::vector<std::string> introspect;
  std::vector<PluginConfig> plugins;
  AdminConfig admin;
  LimitsConfig limits;
  std::string log_level = "info";
  int workers = 0;  // worker threads; 0 = number of cores (at least 2)
};

// Parses YAML text. Errors carry code invalid_value and a message naming the key.
Result<Config> ParseConfig(const std::string& yaml_text);

// Reads and parses a file.
Result<Config> LoadConfig(const std::string& path);

}  // namespace mqttspec::server
