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

// broker.tls. Embedded mode: an MQTT-over-TLS listener on `port` (and a WebSocket-over-TLS one on
// `websocket_port`) with the server's cert_file/key_file; ca_file checks client certificates.
// External mode: how the service's connection to an ssl:// broker is made (ca_file, cert_file,
// key_file, verify). All files are PEM.
struct TlsConfig {
  bool enabled = false;  // true when the configuration has a broker.tls section
  int port = 8883;
  int websocket_port = 0;
  std::string cert_file;
  std::string key_file;
  std::string ca_file;
  bool require_certificate = false;
  bool use_identity_as_username = false;
  bool verify = true;
};

struct ReconnectConfig {
  double min_s = 1;   // the first retry waits between min_s and 2 × min_s
  double max_s = 30;  // no wait is longer
};

inline constexpr int kMaxPartitions = 64;  // broker.partition.count

struct BrokerConfig {
  std::string mode = "embedded";  // embedded | external
  // embedded: the broker's listeners and settings
  std::string host = "127.0.0.1";
  int port = 1883;  // 0 = no plain MQTT listener (then broker.tls is required)
  int websocket_port = 0;
  std::string mosquitto = "mosquitto";
  // both modes: the malloc of the process that serves (server/allocator.h): "tcmalloc"
  // (gperftools' tcmalloc_minimal, preloaded into the broker mqttspecd execs, or into mqttspecd
  // itself in external mode) or "system" (glibc's).
  std::string allocator = "tcmalloc";
  std::string data_dir = "./mqttspec-data";
  bool allow_anonymous = true;
  std::string password_file;
  int max_connections = 0;    // 0 = unlimited
  int max_keepalive = 65535;  // seconds; MQTT 5 clients asking for more (or 0) get this
  // external: the service's own connection
  std::string url = "tcp://127.0.0.1:1883";
  std::string client_id = "mqttspec-server";
  std::string username;
  std::string password;
  std::string shared_group;
  // Static partitioning of clients over instances (partition.count > 1; docs/cluster.md): every
  // instance subscribes to every request and answers those of the clients whose partition
  // (PartitionOf) it holds — its own index, and those it adopted from dead instances.
  int partition_index = 0;
  int partition_count = 1;
  bool clean_session = false;  // false: requests sent while the service is away wait for it
  int64_t session_expiry_s = 86400;
  int keepalive_s = 30;
  int connect_timeout_s = 10;
  ReconnectConfig reconnect;
  // both
  TlsConfig tls;
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
  // Group commit (adapters/group_commit.h): a shared transaction holds at most max_rows rows and
  // takes no further write once it has run max_ms.
  int group_commit_max_rows = 1000;
  int group_commit_max_ms = 10;
};

struct PluginConfig {
  std::string path;
  std::map<std::string, std::string> options;  // scalar options as text
};

// admin.tls: the gRPC server's certificate and key (PEM); with ca_file, callers need a client
// certificate signed by it.
struct AdminTlsConfig {
  bool enabled = false;  // an admin.tls section is present
  std::string cert_file, key_file, ca_file;
};

struct AdminConfig {
  std::string listen = "127.0.0.1:50051";
  std::string token;
  std::string metrics_listen;  // HOST:PORT of GET /metrics (Prometheus); "" = off
  AdminTlsConfig tls;
};

struct LimitsConfig {
  int64_t max_payload_bytes = 262144;
  int64_t max_rows = 1000;
  int max_filters = 64;
  int max_subscriptions_per_client = 100;
  int query_timeout_ms = 5000;
  double requests_per_second_per_client = 0;  // 0 = unlimited
  int dedup_window_s = 60;
  int max_queued_messages = 1000;  // embedded: per client, QoS 1/2 beyond the in-flight window
};

// The change log (adapters/database.h ChangeLogOptions): every committed write appends a row;
// a trim riding in the writes keeps at most retention_s seconds and max_rows rows.
struct ChangesConfig {
  bool enabled = true;
  int64_t retention_s = 86400;
  int64_t max_rows = 1000000;
  // A resume's replay pace (server/change_feed.h ReplayPace): notifications per second, 0 =
  // unpaced, and at most this many at once.
  double replay_rate = 20000;
  int64_t replay_burst = 500;
};

// Several instances over one PostgreSQL (docs/cluster.md): each follows the shared change log
// (server/log_follower.h) and keeps its subscriptions in the database under a lease
// (server/cluster.h), which a surviving instance adopts when the lease runs out.
struct ClusterConfig {
  bool enabled = false;
  std::string instance_id;  // "" = <hostname>-<pid>
  int64_t lease_ms = 3000;
  int64_t heartbeat_ms = 500;
};

// The device twin (docs/protocol.md §13): the built-in model mqttspec.twin, migrated like the
// declared models, and the twin topics of every device.
struct TwinConfig {
  bool enabled = true;
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
  ChangesConfig changes;
  ClusterConfig cluster;
  TwinConfig twin;
  // Models (qualified names) with `capture: triggers`: others' writes are logged by a trigger.
  std::vector<std::string> capture;
  std::string log_level = "info";
  int workers = 0;  // worker threads; 0 = number of cores (at least 2)
};

// Parses YAML text. Errors carry code invalid_value and a message naming the key.
Result<Config> ParseConfig(const std::string& yaml_text);

// Reads and parses a file. Relative hooks.plugins paths are resolved against the file's directory.
Result<Config> LoadConfig(const std::string& path);

}  // namespace mqttspec::server
