#include "server/config.h"

#include <gtest/gtest.h>

namespace mqttspec::server {
namespace {

TEST(Config, EmptyTextGivesTheDocumentedDefaults) {
  auto c = ParseConfig("");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c.value().broker.mode, "embedded");
  EXPECT_EQ(c.value().broker.port, 1883);
  EXPECT_EQ(c.value().broker.url, "tcp://127.0.0.1:1883");
  EXPECT_EQ(c.value().topic_prefix, "spec");
  EXPECT_EQ(c.value().qos.response, 1);
  EXPECT_EQ(c.value().database.driver, "sqlite");
  EXPECT_EQ(c.value().database.synchronous, "full");
  EXPECT_EQ(c.value().limits.max_payload_bytes, 262144);
  EXPECT_EQ(c.value().limits.max_rows, 1000);
  EXPECT_EQ(c.value().limits.max_filters, 64);
  EXPECT_EQ(c.value().limits.dedup_window_s, 60);
  EXPECT_EQ(c.value().admin.listen, "127.0.0.1:50051");
  EXPECT_TRUE(c.value().changes.enabled);
  EXPECT_EQ(c.value().changes.retention_s, 86400);
  EXPECT_EQ(c.value().changes.max_rows, 1000000);
  EXPECT_EQ(c.value().changes.replay_rate, 20000);
  EXPECT_EQ(c.value().changes.replay_burst, 500);
}

TEST(Config, ChangesSectionParses) {
  auto c = ParseConfig(
      "changes: {enabled: false, retention_s: 60, max_rows: 10, replay_rate: 0, "
      "replay_burst: 50}");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c.value().changes.enabled);
  EXPECT_EQ(c.value().changes.retention_s, 60);
  EXPECT_EQ(c.value().changes.max_rows, 10);
  EXPECT_EQ(c.value().changes.replay_rate, 0);
  EXPECT_EQ(c.value().changes.replay_burst, 50);
}

TEST(Config, ClusterSectionsParse) {
  auto c = ParseConfig(R"(
broker: {mode: external, partition: {index: 2, count: 3}}
database: {driver: postgres, url: "postgresql://x@h/db"}
cluster: {enabled: true, instance_id: node-2, lease_ms: 2000, heartbeat_ms: 250}
models:
  - {name: public.devices, capture: triggers, fields: [{name: id, type: integer}]}
  - {name: public.rooms, capture: service, fields: [{name: id, type: integer}]}
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c.value().broker.partition_index, 2);
  EXPECT_EQ(c.value().broker.partition_count, 3);
  EXPECT_TRUE(c.value().cluster.enabled);
  EXPECT_EQ(c.value().cluster.instance_id, "node-2");
  EXPECT_EQ(c.value().cluster.lease_ms, 2000);
  EXPECT_EQ(c.value().cluster.heartbeat_ms, 250);
  EXPECT_EQ(c.value().capture, std::vector<std::string>{"public.devices"});
  auto d = ParseConfig("");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d.value().cluster.enabled);
  EXPECT_EQ(d.value().cluster.lease_ms, 3000);
  EXPECT_EQ(d.value().cluster.heartbeat_ms, 500);
  EXPECT_EQ(d.value().broker.partition_count, 1);
  EXPECT_TRUE(d.value().capture.empty());
}

TEST(Config, ProtocolExampleParses) {
  auto c = ParseConfig(R"(
broker: {mode: external, url: "tcp://broker:1883", shared_group: g1}
topics: {prefix: myapp}
qos: {request: 0, response: 1, notification: 2}
database: {driver: sqlite, path: /tmp/x.db, synchronous: normal, pool_size: 4, migrate: false,
           group_commit: {max_rows: 64, max_ms: 3}}
models:
  - name: public.users
    primary_key: id
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: name, type: text, nullable: false}
      - {name: email, type: text, unique: true}
      - {name: status, type: text, default: active}
      - {name: created_at, type: timestamp, default: now}
hooks:
  plugins:
    - {path: ./libaudit_log.so, options: {table: audit}}
limits: {max_rows: 50, requests_per_second_per_client: 2.5}
log: {level: debug}
)");
  ASSERT_TRUE(c.ok()) << c.error().message;
  const Config& cfg = c.value();
  EXPECT_EQ(cfg.broker.mode, "external");
  EXPECT_EQ(cfg.broker.shared_group, "g1");
  EXPECT_EQ(cfg.topic_prefix, "myapp");
  EXPECT_EQ(cfg.qos.notification, 2);
  EXPECT_FALSE(cfg.database.migrate);
  EXPECT_EQ(cfg.database.group_commit_max_rows, 64);
  EXPECT_EQ(cfg.database.group_commit_max_ms, 3);
  ASSERT_EQ(cfg.models.size(), 1u);
  const auto& m = *cfg.models[0];
  EXPECT_EQ(m.schema(), "public");
  EXPECT_EQ(m.entity(), "users");
  EXPECT_EQ(m.primary().name, "id");
  EXPECT_TRUE(m.primary().auto_increment);
  EXPECT_FALSE(m.field(1).nullable);
  EXPECT_TRUE(m.field(2).unique);
  ASSERT_TRUE(m.field(3).default_value.has_value());
  EXPECT_EQ(std::get<std::string>(m.field(3).default_value->literal), "active");
  EXPECT_TRUE(m.field(4).default_value->now);
  ASSERT_EQ(cfg.plugins.size(), 1u);
  EXPECT_EQ(cfg.plugins[0].options.at("table"), "audit");
  EXPECT_EQ(cfg.limits.max_rows, 50);
  EXPECT_DOUBLE_EQ(cfg.limits.requests_per_second_per_client, 2.5);
}

struct BadConfig {
  const char* yaml;
  const char* key_in_message;
};

class ConfigErrors : public ::testing::TestWithParam<BadConfig> {};

TEST_P(ConfigErrors, NameTheOffendingKey) {
  auto c = ParseConfig(GetParam().yaml);
  ASSERT_FALSE(c.ok()) << GetParam().yaml;
  EXPECT_NE(c.error().message.find(GetParam().key_in_message), std::string::npos)
      << c.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    All, ConfigErrors,
    ::testing::Values(
        BadConfig{"brokr: {}", "brokr"}, BadConfig{"broker: {prt: 1}", "broker.prt"},
        BadConfig{"broker: {port: abc}", "broker.port"},
        BadConfig{"broker: {port: 70000}", "broker.port"},
        BadConfig{"broker: {mode: cloud}", "broker.mode"}, BadConfig{"broker: [1, 2]", "broker"},
        BadConfig{"qos: {response: 3}", "qos.response"},
        BadConfig{"database: {driver: mysql}", "database.driver"},
        BadConfig{"database: {driver: postgres}", "database.url"},
        BadConfig{"database: {migrate: maybe}", "database.migrate"},
        BadConfig{"database: {group_commit: {max_rows: 0}}", "database.group_commit.max_rows"},
        BadConfig{"database: {group_commit: {max_ms: 0}}", "database.group_commit.max_ms"},
        BadConfig{"database: {group_commit: {rows: 5}}", "database.group_commit.rows"},
        BadConfig{"changes: {retention_s: 0}", "changes.retention_s"},
        BadConfig{"changes: {max_rows: 0}", "changes.max_rows"},
        BadConfig{"changes: {enabled: perhaps}", "changes.enabled"},
        BadConfig{"changes: {replay_rate: -1}", "changes.replay_rate"},
        BadConfig{"changes: {replay_burst: 0}", "changes.replay_burst"},
        BadConfig{"changes: {keep: 5}", "changes.keep"},
        BadConfig{"cluster: {enabled: true}", "cluster.enabled"},
        BadConfig{"cluster: {lease_ms: 1000, heartbeat_ms: 600}", "cluster.heartbeat_ms"},
        BadConfig{"cluster: {instance_id: ''}", "cluster.instance_id"},
        BadConfig{"cluster: {leases: 1}", "cluster.leases"},
        BadConfig{"database: {driver: postgres, url: u}\ncluster: {enabled: true}",
                  "broker.mode external"},
        BadConfig{"database: {driver: postgres, url: u}\nchanges: {enabled: false}\n"
                  "broker: {mode: external}\ncluster: {enabled: true}",
                  "changes.enabled"},
        BadConfig{"models: [{name: t, capture: triggers, fields: [{name: id, type: integer}]}]",
                  "capture: triggers"},
        BadConfig{"models: [{name: t, capture: always, fields: [{name: id, type: integer}]}]",
                  "models[0].capture"},
        BadConfig{"broker: {partition: {index: 3, count: 3}}", "broker.partition.index"},
        BadConfig{"broker: {partition: {count: 65}}", "broker.partition.count"},
        BadConfig{"broker: {mode: external, partition: {count: 2}}", "cluster.enabled"},
        BadConfig{"broker: {partition: {count: 2}}", "broker.mode external"},
        BadConfig{"database: {driver: postgres, url: u}\ncluster: {enabled: true}\n"
                  "broker: {mode: external, shared_group: g, partition: {count: 2}}",
                  "exclude each other"},
        BadConfig{"limits: {max_rows: -1}", "limits.max_rows"},
        BadConfig{"limits: {max_rows: [1]}", "limits.max_rows"},
        BadConfig{"topics: {prefix: 'a/#'}", "topics.prefix"},
        BadConfig{"models: {name: x}", "models"},
        BadConfig{"models: [{fields: [{name: id, type: integer}]}]", "models[0].name"},
        BadConfig{"models: [{name: t, fields: [{name: id, type: float}]}]",
                  "models[0].fields[0].type"},
        BadConfig{"models: [{name: t, fields: [{name: id}]}]", "models[0].fields[0].type"},
        BadConfig{"models: [{name: t, fields: [{name: id, type: integer, colour: red}]}]",
                  "colour"},
        BadConfig{"models: [{name: t, fields: [{name: n, type: integer, default: x}, {name: id, "
                  "type: integer}]}]",
                  "default"},
        BadConfig{"models: [{name: t, primary_key: nope, fields: [{name: id, type: integer}]}]",
                  "nope"},
        BadConfig{"models: [{name: 'bad name', fields: [{name: id, type: integer}]}]", "bad name"},
        BadConfig{"hooks: {plugins: [{options: {}}]}", "hooks.plugins[0].path"},
        BadConfig{"log: {level: loud}", "log.level"}, BadConfig{"broker: {port: 1\n  bad", "YAML"},
        BadConfig{"broker: {[a]: 1}", "broker: keys must be strings"},
        BadConfig{"? {a: 1}\n: 1", "config: keys must be strings"}));

}  // namespace
}  // namespace mqttspec::server
