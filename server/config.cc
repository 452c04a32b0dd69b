#include "server/config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "registry/coerce.h"
#include "registry/model_builder.h"

namespace mqttspec::server {
namespace {

using registry::Field;

// A config error: thrown inside the parser only, turned into an Error at its edge.
struct ConfigError {
  std::string message;
};

[[noreturn]] void Fail(const std::string& key, const std::string& what) {
  throw ConfigError{fmt::format("{}: {}", key, what)};
}

std::string Join(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

// Walks a mapping, rejecting keys it does not know.
void ForEachKey(
    const YAML::Node& node, const std::string& path,
    const std::map<std::string, std::function<void(const YAML::Node&, const std::string&)>>&
        handlers) {
  if (!node || node.IsNull()) return;
  if (!node.IsMap()) Fail(path.empty() ? "config" : path, "expected a mapping");
  for (const auto& kv : node) {
    // A mapping or a list as a key is valid YAML; it is no key of ours.
    if (!kv.first.IsScalar()) Fail(path.empty() ? "config" : path, "keys must be strings");
    std::string key = kv.first.Scalar();
    auto it = handlers.find(key);
    std::string full = Join(path, key);
    if (it == handlers.end()) {
      std::string known;
      for (const auto& [k, h] : handlers) known += (known.empty() ? "" : ", ") + k;
      Fail(full, fmt::format("unknown key (known: {})", known));
    }
    it->second(kv.second, full);
  }
}

void NeedScalar(const YAML::Node& n, const std::string& key, const char* what) {
  if (!n.IsScalar()) Fail(key, fmt::format("expected {}", what));
}

std::string Str(const YAML::Node& n, const std::string& key) {
  if (n.IsNull()) return "";
  NeedScalar(n, key, "a string");
  return n.Scalar();
}

int64_t Int(const YAML::Node& n, const std::string& key, int64_t lo, int64_t hi) {
  NeedScalar(n, key, "an integer");
  int64_t v;
  if (!YAML::convert<int64_t>::decode(n, v)) Fail(key, "expected an integer");
  if (v < lo || v > hi) Fail(key, fmt::format("must be between {} and {}", lo, hi));
  return v;
}

double Real(const YAML::Node& n, const std::string& key) {
  NeedScalar(n, key, "a number");
  double v;
  if (!YAML::convert<double>::decode(n, v) || v < 0) Fail(key, "expected a number >= 0");
  return v;
}

bool Bool(const YAML::Node& n, const std::string& key) {
  NeedScalar(n, key, "true or false");
  bool v;
  if (!YAML::convert<bool>::decode(n, v)) Fail(key, "expected true or false");
  return v;
}

std::string OneOf(const YAML::Node& n, const std::string& key, std::set<std::string> allowed) {
  std::string v = Str(n, key);
  if (!allowed.count(v)) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : " | ") + a;
    Fail(key, fmt::format("'{}' is not one of {}", v, list));
  }
  return v;
}

registry::FieldSpec ParseField(const YAML::Node& n, const std::string& key) {
  registry::FieldSpec f;
  f.auto_increment = false;  // the configuration says it explicitly
  ForEachKey(n, key,
             {{"name", [&](auto& v, auto& k) { f.name = Str(v, k); }},
              {"type",
               [&](auto& v, auto& k) {
                 f.type = Str(v, k);
                 if (!registry::ParseFieldType(f.type))
                   Fail(k, "expected integer | real | text | boolean | timestamp | json");
               }},
              {"nullable", [&](auto& v, auto& k) { f.nullable = Bool(v, k); }},
              {"unique", [&](auto& v, auto& k) { f.unique = Bool(v, k); }},
              {"primary_key", [&](auto& v, auto& k) { f.primary = Bool(v, k); }},
              {"auto_increment", [&](auto& v, auto& k) { f.auto_increment = Bool(v, k); }},
              {"index", [&](auto& v, auto& k) { f.indexed = Bool(v, k); }},
              {"default", [&](auto& v, auto& k) { f.default_text = Str(v, k); }}});
  if (f.name.empty()) Fail(key + ".name", "is required");
  if (f.type.empty()) Fail(key + ".type", "is required");
  return f;
}

registry::ModelPtr ParseModel(const YAML::Node& n, const std::string& key, bool& triggers) {
  registry::ModelSpec spec;
  std::string name;
  triggers = false;
  ForEachKey(n, key,
             {{"name", [&](auto& v, auto& k) { name = Str(v, k); }},
              {"capture",
               [&](auto& v, auto& k) {
                 triggers = OneOf(v, k, {"service", "triggers"}) == "triggers";
               }},
              {"primary_key", [&](auto& v, auto& k) { spec.primary_key = Str(v, k); }},
              {"client_access",
               [&](auto& v, auto& k) {
                 spec.client_access =
                     *registry::ParseClientAccess(OneOf(v, k, {"read_write", "read_only", "none"}));
               }},
              {"fields", [&](auto& v, auto& k) {
                 if (!v.IsSequence()) Fail(k, "expected a list of fields");
                 for (size_t i = 0; i < v.size(); ++i)
                   spec.fields.push_back(ParseField(v[i], fmt::format("{}[{}]", k, i)));
               }}});
  if (name.empty()) Fail(key + ".name", "is required (schema.entity or entity)");
  spec.entity = name;
  if (auto dot = name.find('.'); dot != std::string::npos) {
    spec.schema = name.substr(0, dot);
    spec.entity = name.substr(dot + 1);
  }
  auto model = registry::BuildModel(spec);
  if (!model.ok()) {
    const std::string& m = model.error().message;  // "fields.<f>.default: …" names a sub-key
    if (m.rfind("fields.", 0) == 0) throw ConfigError{key + "." + m};
    Fail(key, m);
  }
  return std::move(model).value();
}

void ParseTls(const YAML::Node& n, const std::string& key, TlsConfig& t) {
  if (!n || n.IsNull()) return;
  t.enabled = true;
  ForEachKey(
      n, key,
      {{"port", [&](auto& v, auto& k) { t.port = static_cast<int>(Int(v, k, 1, 65535)); }},
       {"websocket_port",
        [&](auto& v, auto& k) { t.websocket_port = static_cast<int>(Int(v, k, 0, 65535)); }},
       {"cert_file", [&](auto& v, auto& k) { t.cert_file = Str(v, k); }},
       {"key_file", [&](auto& v, auto& k) { t.key_file = Str(v, k); }},
       {"ca_file", [&](auto& v, auto& k) { t.ca_file = Str(v, k); }},
       {"require_certificate", [&](auto& v, auto& k) { t.require_certificate = Bool(v, k); }},
       {"use_identity_as_username",
        [&](auto& v, auto& k) { t.use_identity_as_username = Bool(v, k); }},
       {"verify", [&](auto& v, auto& k) { t.verify = Bool(v, k); }}});
}

// Embedded mode: the listeners must make sense together (the files are checked at start-up).
void CheckEmbeddedListeners(const BrokerConfig& b, const std::string& key) {
  const TlsConfig& t = b.tls;
  if (b.port == 0 && !t.enabled) Fail(key + ".port", "0 (no plain listener) needs broker.tls");
  if (!t.enabled) return;
  if (t.cert_file.empty()) Fail(key + ".tls.cert_file", "is required for the TLS listener");
  if (t.key_file.empty()) Fail(key + ".tls.key_file", "is required for the TLS listener");
  if (t.require_certificate && t.ca_file.empty())
    Fail(key + ".tls.ca_file", "is required when require_certificate is true");
  if (t.use_identity_as_username && !t.require_certificate)
    Fail(key + ".tls.use_identity_as_username", "needs require_certificate: true");
  std::set<int> ports;
  for (auto [name, port] : {std::pair{"port", b.port},
                            {"websocket_port", b.websocket_port},
                            {"tls.port", t.port},
                            {"tls.websocket_port", t.websocket_port}}) {
    if (port == 0) continue;
    if (!ports.insert(port).second)
      Fail(key + "." + name, fmt::format("{} is already used by another listener", port));
  }
}

bool IsTlsUrl(const std::string& url) {
  for (const char* scheme : {"ssl://", "mqtts://", "wss://"}) {
    if (url.rfind(scheme, 0) == 0) return true;
  }
  return false;
}

void CheckExternalTls(const BrokerConfig& b, const std::string& key) {
  const TlsConfig& t = b.tls;
  if (t.enabled && !IsTlsUrl(b.url))
    Fail(key + ".tls",
         fmt::format("is set, but broker.url '{}' is not ssl://, mqtts:// or wss://", b.url));
  if (t.cert_file.empty() != t.key_file.empty())
    Fail(key + (t.cert_file.empty() ? ".tls.cert_file" : ".tls.key_file"),
         "a client certificate needs both cert_file and key_file");
}

// What scale-out needs, checked across sections.
void CheckCluster(const Config& c) {
  const bool pg = c.database.driver == "postgres";
  if (!c.capture.empty() && !pg)
    Fail("models",
         fmt::format("capture: triggers ({}) needs database.driver postgres", c.capture.front()));
  if ((!c.capture.empty() || c.cluster.enabled) && !c.changes.enabled)
    Fail("changes.enabled", c.cluster.enabled ? "must be true with cluster.enabled"
                                              : "must be true with capture: triggers");
  if (c.cluster.enabled && !pg) Fail("cluster.enabled", "needs database.driver postgres");
  if (c.cluster.enabled && c.broker.mode != "external")
    Fail("cluster.enabled", "needs broker.mode external (instances share a broker)");
  if (c.broker.partition_count > 1) {
    if (c.broker.mode != "external") Fail("broker.partition", "needs broker.mode external");
    if (!c.broker.shared_group.empty())
      Fail("broker.partition",
           "and broker.shared_group exclude each other (partitions: every instance subscribes "
           "to every request)");
    if (!c.cluster.enabled) Fail("broker.partition", "needs cluster.enabled");
  }
}

// One function a top-level section; each rejects keys it does not know (ForEachKey).

void ParseBroker(const YAML::Node& n, const std::string& p, Config& c) {
  auto& b = c.broker;
  ForEachKey(
      n, p,
      {{"mode",
        [&](auto& v, auto& k) {
          b.mode = OneOf(v, k, {"embedded", "external"});
        }},
       {"host", [&](auto& v, auto& k) { b.host = Str(v, k); }},
       {"port", [&](auto& v, auto& k) { b.port = static_cast<int>(Int(v, k, 0, 65535)); }},
       {"websocket_port",
        [&](auto& v, auto& k) { b.websocket_port = static_cast<int>(Int(v, k, 0, 65535)); }},
       {"mosquitto", [&](auto& v, auto& k) { b.mosquitto = Str(v, k); }},
       {"allocator",
        [&](auto& v, auto& k) {
          b.allocator = OneOf(v, k, {"tcmalloc", "system"});
        }},
       {"data_dir", [&](auto& v, auto& k) { b.data_dir = Str(v, k); }},
       {"allow_anonymous", [&](auto& v, auto& k) { b.allow_anonymous = Bool(v, k); }},
       {"password_file", [&](auto& v, auto& k) { b.password_file = Str(v, k); }},
       {"url", [&](auto& v, auto& k) { b.url = Str(v, k); }},
       {"client_id", [&](auto& v, auto& k) { b.client_id = Str(v, k); }},
       {"username", [&](auto& v, auto& k) { b.username = Str(v, k); }},
       {"password", [&](auto& v, auto& k) { b.password = Str(v, k); }},
       {"shared_group", [&](auto& v, auto& k) { b.shared_group = Str(v, k); }},
       {"partition",
        [&](auto& v, auto& k) {
          ForEachKey(v, k,
                     {{"index",
                       [&](auto& x, auto& kk) {
                         b.partition_index = static_cast<int>(Int(x, kk, 0, kMaxPartitions - 1));
                       }},
                      {"count", [&](auto& x, auto& kk) {
                         b.partition_count = static_cast<int>(Int(x, kk, 1, kMaxPartitions));
                       }}});
          if (b.partition_index >= b.partition_count)
            Fail(k + ".index", fmt::format("must be less than count ({})", b.partition_count));
        }},
       {"max_connections",
        [&](auto& v, auto& k) { b.max_connections = static_cast<int>(Int(v, k, 0, 10000000)); }},
       {"max_keepalive",
        [&](auto& v, auto& k) { b.max_keepalive = static_cast<int>(Int(v, k, 10, 65535)); }},
       {"clean_session", [&](auto& v, auto& k) { b.clean_session = Bool(v, k); }},
       {"session_expiry_s",
        [&](auto& v, auto& k) { b.session_expiry_s = Int(v, k, 0, 4294967295LL); }},
       {"keepalive_s",
        [&](auto& v, auto& k) { b.keepalive_s = static_cast<int>(Int(v, k, 5, 65535)); }},
       {"connect_timeout_s",
        [&](auto& v, auto& k) { b.connect_timeout_s = static_cast<int>(Int(v, k, 1, 3600)); }},
       {"reconnect",
        [&](auto& v, auto& k) {
          ForEachKey(v, k,
                     {{"min_s", [&](auto& x, auto& kk) { b.reconnect.min_s = Real(x, kk); }},
                      {"max_s", [&](auto& x, auto& kk) { b.reconnect.max_s = Real(x, kk); }}});
          if (b.reconnect.min_s < 0.1) Fail(k + ".min_s", "must be at least 0.1");
          if (b.reconnect.max_s < b.reconnect.min_s)
            Fail(k + ".max_s", "must not be less than min_s");
        }},
       {"tls", [&](auto& v, auto& k) { ParseTls(v, k, b.tls); }}});
  if (b.mode == "embedded") CheckEmbeddedListeners(b, p);
  if (b.mode == "external") CheckExternalTls(b, p);
}

void ParseQos(const YAML::Node& n, const std::string& p, Config& c) {
  ForEachKey(
      n, p,
      {{"request", [&](auto& v, auto& k) { c.qos.request = static_cast<int>(Int(v, k, 0, 2)); }},
       {"response", [&](auto& v, auto& k) { c.qos.response = static_cast<int>(Int(v, k, 0, 2)); }},
       {"notification",
        [&](auto& v, auto& k) { c.qos.notification = static_cast<int>(Int(v, k, 0, 2)); }}});
}

void ParseDatabase(const YAML::Node& n, const std::string& p, Config& c) {
  auto& d = c.database;
  ForEachKey(
      n, p,
      {{"driver",
        [&](auto& v, auto& k) {
          d.driver = OneOf(v, k, {"sqlite", "postgres"});
        }},
       {"path", [&](auto& v, auto& k) { d.path = Str(v, k); }},
       {"synchronous",
        [&](auto& v, auto& k) {
          d.synchronous = OneOf(v, k, {"full", "normal"});
        }},
       {"url", [&](auto& v, auto& k) { d.url = Str(v, k); }},
       {"pool_size", [&](auto& v, auto& k) { d.pool_size = static_cast<int>(Int(v, k, 1, 1024)); }},
       {"migrate", [&](auto& v, auto& k) { d.migrate = Bool(v, k); }},
       {"group_commit", [&](auto& v, auto& k) {
          ForEachKey(v, k,
                     {{"max_rows",
                       [&](auto& x, auto& kk) {
                         d.group_commit_max_rows = static_cast<int>(Int(x, kk, 1, 100000));
                       }},
                      {"max_ms", [&](auto& x, auto& kk) {
                         d.group_commit_max_ms = static_cast<int>(Int(x, kk, 1, 10000));
                       }}});
        }}});
}

void ParseHooks(const YAML::Node& n, const std::string& p, Config& c) {
  ForEachKey(n, p, {{"plugins", [&](auto& v, auto& k) {
                       if (v.IsNull()) return;
                       if (!v.IsSequence()) Fail(k, "expected a list of plugins");
                       for (size_t i = 0; i < v.size(); ++i) {
                         PluginConfig pc;
                         std::string pk = fmt::format("{}[{}]", k, i);
                         ForEachKey(v[i], pk,
                                    {{"path", [&](auto& x, auto& kk) { pc.path = Str(x, kk); }},
                                     {"options", [&](auto& x, auto& kk) {
                                        if (x.IsNull()) return;
                                        if (!x.IsMap()) Fail(kk, "expected a mapping");
                                        for (const auto& o : x)
                                          pc.options[o.first.Scalar()] =
                                              Str(o.second, kk + "." + o.first.Scalar());
                                      }}});
                         if (pc.path.empty()) Fail(pk + ".path", "is required");
                         c.plugins.push_back(std::move(pc));
                       }
                     }}});
}

void ParseAdmin(const YAML::Node& n, const std::string& p, Config& c) {
  ForEachKey(n, p,
             {{"listen", [&](auto& v, auto& k) { c.admin.listen = Str(v, k); }},
              {"token", [&](auto& v, auto& k) { c.admin.token = Str(v, k); }},
              {"metrics_listen",
               [&](auto& v, auto& k) {
                 c.admin.metrics_listen = Str(v, k);
                 const std::string& a = c.admin.metrics_listen;
                 const size_t colon = a.rfind(':');
                 const std::string port = colon == std::string::npos ? "" : a.substr(colon + 1);
                 if (!a.empty() && (colon == 0 || port.empty() || port.size() > 5 ||
                                    port.find_first_not_of("0123456789") != std::string::npos ||
                                    std::stoi(port) > 65535))
                   Fail(k, "must be HOST:PORT (e.g. 127.0.0.1:9464) or \"\" (off)");
               }},
              {"tls", [&](auto& v, auto& k) {
                 if (!v || v.IsNull()) return;
                 auto& t = c.admin.tls;
                 t.enabled = true;
                 ForEachKey(v, k,
                            {{"cert_file", [&](auto& x, auto& kk) { t.cert_file = Str(x, kk); }},
                             {"key_file", [&](auto& x, auto& kk) { t.key_file = Str(x, kk); }},
                             {"ca_file", [&](auto& x, auto& kk) { t.ca_file = Str(x, kk); }}});
                 if (t.cert_file.empty()) Fail(k + ".cert_file", "is required");
                 if (t.key_file.empty()) Fail(k + ".key_file", "is required");
               }}});
}

void ParseLimits(const YAML::Node& n, const std::string& p, Config& c) {
  auto& l = c.limits;
  ForEachKey(
      n, p,
      {{"max_payload_bytes",
        [&](auto& v, auto& k) { l.max_payload_bytes = Int(v, k, 64, 268435455); }},
       {"max_rows", [&](auto& v, auto& k) { l.max_rows = Int(v, k, 1, 1000000); }},
       {"max_filters",
        [&](auto& v, auto& k) { l.max_filters = static_cast<int>(Int(v, k, 1, 10000)); }},
       {"max_subscriptions_per_client",
        [&](auto& v, auto& k) {
          l.max_subscriptions_per_client = static_cast<int>(Int(v, k, 0, 1000000));
        }},
       {"query_timeout_ms",
        [&](auto& v, auto& k) { l.query_timeout_ms = static_cast<int>(Int(v, k, 1, 3600000)); }},
       {"requests_per_second_per_client",
        [&](auto& v, auto& k) { l.requests_per_second_per_client = Real(v, k); }},
       {"dedup_window_s",
        [&](auto& v, auto& k) { l.dedup_window_s = static_cast<int>(Int(v, k, 0, 86400)); }},
       {"max_queued_messages", [&](auto& v, auto& k) {
          l.max_queued_messages = static_cast<int>(Int(v, k, 1, 10000000));
        }}});
}

void ParseChanges(const YAML::Node& n, const std::string& p, Config& c) {
  ForEachKey(
      n, p,
      {{"enabled", [&](auto& v, auto& k) { c.changes.enabled = Bool(v, k); }},
       {"retention_s", [&](auto& v, auto& k) { c.changes.retention_s = Int(v, k, 1, 315360000); }},
       {"max_rows", [&](auto& v, auto& k) { c.changes.max_rows = Int(v, k, 1, 1000000000000); }},
       {"replay_rate",
        [&](auto& v, auto& k) {
          c.changes.replay_rate = static_cast<double>(Int(v, k, 0, 100000000));
        }},
       {"replay_burst",
        [&](auto& v, auto& k) { c.changes.replay_burst = Int(v, k, 1, 1000000); }}});
}

void ParseCluster(const YAML::Node& n, const std::string& p, Config& c) {
  ForEachKey(n, p,
             {{"enabled", [&](auto& v, auto& k) { c.cluster.enabled = Bool(v, k); }},
              {"instance_id",
               [&](auto& v, auto& k) {
                 c.cluster.instance_id = Str(v, k);
                 if (c.cluster.instance_id.empty() || c.cluster.instance_id.size() > 128)
                   Fail(k, "must be 1 to 128 characters");
               }},
              {"lease_ms", [&](auto& v, auto& k) { c.cluster.lease_ms = Int(v, k, 100, 3600000); }},
              {"heartbeat_ms",
               [&](auto& v, auto& k) { c.cluster.heartbeat_ms = Int(v, k, 10, 600000); }}});
  if (c.cluster.heartbeat_ms * 2 > c.cluster.lease_ms)
    Fail(p + ".heartbeat_ms",
         fmt::format("must be at most half of lease_ms ({})", c.cluster.lease_ms));
}

Config Parse(const YAML::Node& root) {
  Config c;
  ForEachKey(
      root, "",
      {{"broker", [&](auto& n, auto& p) { ParseBroker(n, p, c); }},
       {"topics",
        [&](auto& n, auto& p) {
          ForEachKey(n, p, {{"prefix", [&](auto& v, auto& k) {
                               c.topic_prefix = Str(v, k);
                               if (c.topic_prefix.empty() ||
                                   c.topic_prefix.find_first_of("+#") != std::string::npos)
                                 Fail(k, "must be a non-empty topic level without + or #");
                             }}});
        }},
       {"qos", [&](auto& n, auto& p) { ParseQos(n, p, c); }},
       {"database", [&](auto& n, auto& p) { ParseDatabase(n, p, c); }},
       {"models",
        [&](auto& n, auto& p) {
          if (n.IsNull()) return;
          if (!n.IsSequence()) Fail(p, "expected a list of models");
          for (size_t i = 0; i < n.size(); ++i) {
            bool triggers = false;
            c.models.push_back(ParseModel(n[i], fmt::format("{}[{}]", p, i), triggers));
            if (triggers) c.capture.push_back(c.models.back()->qualified_name());
          }
        }},
       {"introspect",
        [&](auto& n, auto& p) {
          if (n.IsNull()) return;
          if (!n.IsSequence()) Fail(p, "expected a list of schema names");
          for (size_t i = 0; i < n.size(); ++i)
            c.introspect.push_back(Str(n[i], fmt::format("{}[{}]", p, i)));
        }},
       {"hooks", [&](auto& n, auto& p) { ParseHooks(n, p, c); }},
       {"admin", [&](auto& n, auto& p) { ParseAdmin(n, p, c); }},
       {"limits", [&](auto& n, auto& p) { ParseLimits(n, p, c); }},
       {"changes", [&](auto& n, auto& p) { ParseChanges(n, p, c); }},
       {"cluster", [&](auto& n, auto& p) { ParseCluster(n, p, c); }},
       {"twin",
        [&](auto& n, auto& p) {
          ForEachKey(n, p, {{"enabled", [&](auto& v, auto& k) { c.twin.enabled = Bool(v, k); }}});
        }},
       {"log",
        [&](auto& n, auto& p) {
          ForEachKey(
              n, p,
              {{"level", [&](auto& v, auto& k) {
                  c.log_level = OneOf(v, k, {"trace", "debug", "info", "warn", "error", "off"});
                }}});
        }},
       {"workers", [&](auto& v, auto& k) { c.workers = static_cast<int>(Int(v, k, 0, 256)); }}});
  if (c.database.driver == "postgres" && c.database.url.empty())
    Fail("database.url", "is required when database.driver is postgres");
  CheckCluster(c);
  return c;
}

}  // namespace

Result<Config> ParseConfig(const std::string& text) {
  try {
    YAML::Node root = YAML::Load(text);
    return Parse(root);
  } catch (const ConfigError& e) {
    return MakeError(ErrorCode::kInvalidValue, e.message);
  } catch (const YAML::Exception& e) {
    return MakeError(ErrorCode::kInvalidValue, fmt::format("YAML syntax: {}", e.what()));
  }
}

Result<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return MakeError(ErrorCode::kInvalidValue, fmt::format("cannot read {}", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto config = ParseConfig(ss.str());
  if (!config.ok()) return config;
  // Hook plugins belong with the configuration that names them: a relative path is relative to
  // the file's directory, whatever the working directory (the embedded broker's differs).
  const std::filesystem::path dir = std::filesystem::absolute(path).parent_path();
  for (PluginConfig& plugin : config.value().plugins) {
    if (std::filesystem::path(plugin.path).is_relative())
      plugin.path = (dir / plugin.path).lexically_normal().string();
  }
  return config;
}

}  // namespace mqttspec::server
