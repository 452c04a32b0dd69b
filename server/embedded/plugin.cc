// mqttspec_mosquitto.so: the whole service hosted inside Mosquitto 2.0 (plugin API v5).
//
//   plugin /path/to/mqttspec_mosquitto.so
//   plugin_opt_config /path/to/mqttspec.yaml
//   plugin_opt_broker_auth broker|plugin     (optional, default broker)
//
// Who has the last word on a CONNECT: with `broker` (the default, for hand-written broker
// configurations) the plugin only refuses what it must refuse (client ids that would break topic
// isolation, BeforeConnect hooks) and then defers, so the broker's own password_file /
// allow_anonymous decide — loading the plugin never weakens a broker's authentication. With
// `plugin` (what mqttspecd writes), the YAML's broker.allow_anonymous decides, and
// broker.password_file (which mqttspecd also writes into the broker's configuration) is checked by
// the broker.
//
// Requests are taken from the MESSAGE event, run on the worker pool (never on the broker thread)
// and answered from the TICK event on the broker thread (see mosquitto_transport.h for how the
// broker is woken). ACL_CHECK isolates clients (acl.h); BASIC_AUTH refuses client ids that would
// break topic isolation and applies allow_anonymous. Only the three entry points are exported
// (-fvisibility=hidden and a version script), and no C++ exception crosses a callback.

// clang-format off
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>
// clang-format on
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/config.h"
#include "server/core.h"
#include "server/embedded/acl.h"
#include "server/embedded/mosquitto_transport.h"
#include "server/grpc/grpc_front.h"
#include "server/grpc/metrics_http.h"
#include "server/mqtt_front.h"
#include "server/service.h"
#include "server/topics.h"

namespace mqttspec::server::embedded {
namespace {

// A connection's life as the plugin sees it. 2.0.11 has no CONNECT event: BASIC_AUTH sees the
// attempt, but with a password_file the broker decides after us. So a connection counts as
// established at its first ACL or MESSAGE event (which only authorised clients produce), and only
// established connections' disconnects end sessions: a refused CONNECT that borrows a client's id
// cannot touch that client's subscriptions.
struct Connection {
  std::shared_ptr<ClientInfo> client;  // id, username, metadata set by BeforeConnect hooks
  bool clean = true;
  bool established = false;
  bool refused = false;  // refused after CONNECT (see Established): denied everything, kicked
};

struct Plugin {
  mosquitto_plugin_id_t* id = nullptr;
  std::unordered_map<const mosquitto*, Connection> connections;  // broker thread only
  Config config;
  std::string prefix;
  std::unique_ptr<Core> core;
  MosquittoTransport transport;
  std::unique_ptr<NotificationRoutes> routes;  // gRPC Subscribe streams, else `transport`
  std::unique_ptr<Service> service;
  std::unique_ptr<MqttFront> front;
  std::unique_ptr<GrpcFront> grpc;        // admin.listen; on gRPC's threads
  std::unique_ptr<MetricsHttp> metrics;  // admin.metrics_listen; on its own threads
  bool first_tick = true;
  bool plugin_decides_auth = false;  // plugin_opt_broker_auth plugin
  std::vector<std::string> to_kick;  // client ids to disconnect at the next TICK
};

std::string Str(const char* s) { return s ? std::string(s) : std::string(); }

// Mosquitto 2.0.11 exits with the value a plugin's init returns (src/mosquitto.c returns it from
// main), so these keep mqttspecd's exit-code rule inside the broker it execs: 2 for a
// configuration error (a refused hook plugin, a model), 1 for a runtime failure. As broker
// error codes they read MOSQ_ERR_PROTOCOL and MOSQ_ERR_NOMEM; only the number matters here.
constexpr int kExitConfigError = MOSQ_ERR_PROTOCOL;
constexpr int kExitFailure = MOSQ_ERR_NOMEM;
static_assert(kExitConfigError == 2 && kExitFailure == 1);

// Marks the connection established on its first authorised event; false when it may do nothing.
// A connection can arrive without BASIC_AUTH: on a TLS listener with use_identity_as_username the
// broker takes the certificate's CN as the username and skips authentication (handle_connect.c).
// Its client id check and BeforeConnect hooks run here instead, at its first event; a refused
// one is denied everything and disconnected at the next TICK (kicking a client inside its own
// packet's callback is not safe).
bool Established(Plugin& p, const mosquitto* client) {
  auto it = p.connections.find(client);
  if (it == p.connections.end()) {
    auto info = std::make_shared<ClientInfo>();
    info->id = Str(mosquitto_client_id(client));
    info->username = Str(mosquitto_client_username(client));
    Connection c{info, mosquitto_client_clean_session(client), false, false};
    if (!IsValidClientId(info->id) || IsReservedClientId(info->id)) {
      c.refused = true;
    } else if (auto st = p.service->Authenticate(*info); !st.ok()) {
      spdlog::info("refusing client '{}': {}", info->id, st.error().message);
      c.refused = true;
    }
    if (c.refused) p.to_kick.push_back(info->id);
    it = p.connections.emplace(client, std::move(c)).first;
  }
  Connection& c = it->second;
  if (c.refused) return false;
  if (!c.established) {
    c.established = true;
    p.service->OnClientConnected(c.client, c.clean);
  }
  return true;
}

int OnMessage(Plugin* p, void* event_data) {
  auto* ev = static_cast<mosquitto_evt_message*>(event_data);
  if (!Established(*p, ev->client)) return MOSQ_ERR_ACL_DENIED;
  if (!ev->topic || !p->front->Takes(ev->topic)) return MOSQ_ERR_SUCCESS;
  {
    InboundMessage in;
    in.topic = ev->topic;
    in.payload.assign(static_cast<const char*>(ev->payload), ev->payloadlen);
    in.username = Str(mosquitto_client_username(ev->client));
    char* response_topic = nullptr;
    if (mosquitto_property_read_string(ev->properties, MQTT_PROP_RESPONSE_TOPIC, &response_topic,
                                       false)) {
      in.response_topic = response_topic;
      mosquitto_free(response_topic);
    }
    void* corr = nullptr;
    uint16_t corr_len = 0;
    if (mosquitto_property_read_binary(ev->properties, MQTT_PROP_CORRELATION_DATA, &corr, &corr_len,
                                       false)) {
      in.correlation_data.assign(static_cast<const char*>(corr), corr_len);
      mosquitto_free(corr);
    }
    p->front->OnMessage(std::move(in));
  }
  // Routed on normally, but ACL_CHECK denies every READ of such a topic: consumed.
  return MOSQ_ERR_SUCCESS;
}

// The broker's MQTT listener ports (those in its epoll set; WebSocket ones are libwebsockets').
std::vector<int> ListenerPorts(const BrokerConfig& b) {
  std::vector<int> ports;
  if (b.port > 0) ports.push_back(b.port);
  if (b.tls.enabled && b.tls.port > 0) ports.push_back(b.tls.port);
  return ports;
}

int OnTick(Plugin* p, void*) {
  if (p->first_tick) {
    p->first_tick = false;
    if (std::getenv("MQTTSPEC_NO_EVENTFD")) {  // for measuring what the wake-up buys
      spdlog::warn("MQTTSPEC_NO_EVENTFD set: answers leave on the broker's tick only");
    } else if (p->transport.InstallWake(ListenerPorts(p->config.broker))) {
      spdlog::info("answers leave through the eventfd wake-up in the broker's epoll set");
    } else {
      spdlog::warn(
          "broker epoll set not found: answers leave on the broker's tick only "
          "(up to 100 ms late)");
    }
  }
  p->transport.Drain();
  for (const std::string& id : p->to_kick) mosquitto_kick_client_by_clientid(id.c_str(), false);
  p->to_kick.clear();
  return MOSQ_ERR_SUCCESS;
}

int OnAclCheck(Plugin* p, void* event_data) {
  auto* ev = static_cast<mosquitto_evt_acl_check*>(event_data);
  const char* id = mosquitto_client_id(ev->client);
  if (!id || !ev->topic) return MOSQ_ERR_ACL_DENIED;
  if (!Established(*p, ev->client)) return MOSQ_ERR_ACL_DENIED;
  Access access;
  switch (ev->access) {
    case MOSQ_ACL_READ: access = Access::kRead; break;
    case MOSQ_ACL_WRITE: access = Access::kWrite; break;
    case MOSQ_ACL_SUBSCRIBE: access = Access::kSubscribe; break;
    case MOSQ_ACL_UNSUBSCRIBE: access = Access::kUnsubscribe; break;
    default: return MOSQ_ERR_ACL_DENIED;
  }
  return AclAllows(p->prefix, id, access, ev->topic) ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}

int OnBasicAuth(Plugin* p, void* event_data) {
  auto* ev = static_cast<mosquitto_evt_basic_auth*>(event_data);
  const char* id = mosquitto_client_id(ev->client);
  if (!id || !IsValidClientId(id)) {
    spdlog::warn("refusing client id '{}': it may not contain '/', '+' or '#'", Str(id));
    return MOSQ_ERR_AUTH;
  }
  if (IsReservedClientId(id)) {
    spdlog::warn("refusing client id '{}': ids starting with grpc: belong to the gRPC front", id);
    return MOSQ_ERR_AUTH;
  }
  if (p->plugin_decides_auth && !ev->username && !p->config.broker.allow_anonymous)
    return MOSQ_ERR_AUTH;
  auto client = std::make_shared<ClientInfo>();
  client->id = id;
  client->username = Str(ev->username);
  client->password = Str(ev->password);
  // BeforeConnect hooks (e.g. a JWT check) decide here, on the broker thread: 2.0.11 cannot
  // complete an authentication later.
  if (auto st = p->service->Authenticate(*client); !st.ok()) {
    spdlog::info("refusing client '{}': {}", client->id, st.error().message);
    return MOSQ_ERR_AUTH;
  }
  p->connections[ev->client] =
      Connection{std::move(client), mosquitto_client_clean_session(ev->client), false};
  // A plugin's SUCCESS ends the broker's checks (MOSQUITTO.md §1): give it only when the plugin
  // is the authority and no password file is to be checked.
  if (p->plugin_decides_auth && p->config.broker.password_file.empty()) return MOSQ_ERR_SUCCESS;
  return MOSQ_ERR_PLUGIN_DEFER;
}

int OnDisconnect(Plugin* p, void* event_data) {
  auto* ev = static_cast<mosquitto_evt_disconnect*>(event_data);
  auto it = p->connections.find(ev->client);
  if (it == p->connections.end()) return MOSQ_ERR_SUCCESS;
  if (it->second.established) p->service->OnClientDisconnected(it->second.client, it->second.clean);
  p->connections.erase(it);
  return MOSQ_ERR_SUCCESS;
}

// The callback Mosquitto calls: runs `F` and turns any exception into `on_error` (a C++ exception
// must never unwind into the broker's C code). For MESSAGE, an error return would disconnect the
// client, so a failure there drops the request and keeps the connection.
template <int (*F)(Plugin*, void*), int on_error>
int Guarded(int, void* event_data, void* userdata) noexcept {
  try {
    return F(static_cast<Plugin*>(userdata), event_data);
  } catch (const std::exception& e) {
    spdlog::error("broker callback failed: {}", e.what());
  } catch (...) {
    spdlog::error("broker callback failed");
  }
  return on_error;
}

// One table of what the plugin registers, used to register and unregister alike.
struct Registration {
  int event;
  MOSQ_FUNC_generic_callback callback;
};
constexpr Registration kCallbacks[] = {
    {MOSQ_EVT_MESSAGE, Guarded<OnMessage, MOSQ_ERR_SUCCESS>},
    {MOSQ_EVT_TICK, Guarded<OnTick, MOSQ_ERR_SUCCESS>},
    {MOSQ_EVT_ACL_CHECK, Guarded<OnAclCheck, MOSQ_ERR_ACL_DENIED>},
    {MOSQ_EVT_BASIC_AUTH, Guarded<OnBasicAuth, MOSQ_ERR_AUTH>},
    {MOSQ_EVT_DISCONNECT, Guarded<OnDisconnect, MOSQ_ERR_SUCCESS>},
};

// plugin_opt_config (the YAML; none: the defaults) and plugin_opt_broker_auth (broker | plugin,
// default broker). False, logged, on any other option or value.
bool ReadPluginOptions(const mosquitto_opt* opts, int opt_count, std::string& config_path,
                       std::string& broker_auth) {
  broker_auth = "broker";
  for (int i = 0; i < opt_count; ++i) {
    if (std::strcmp(opts[i].key, "config") == 0) {
      config_path = opts[i].value;
    } else if (std::strcmp(opts[i].key, "broker_auth") == 0) {
      broker_auth = opts[i].value;
    } else {
      mosquitto_log_printf(MOSQ_LOG_ERR,
                           "mqttspec: unknown option plugin_opt_%s (known: config, broker_auth)",
                           opts[i].key);
      return false;
    }
  }
  if (broker_auth != "broker" && broker_auth != "plugin") {
    mosquitto_log_printf(MOSQ_LOG_ERR, "mqttspec: plugin_opt_broker_auth must be broker or plugin");
    return false;
  }
  return true;
}

// The service from p.config: the core (database, models, hooks), the notification routes, the
// service and its fronts (MQTT, gRPC, metrics). MOSQ_ERR_SUCCESS, or the exit code (logged).
int StartServing(Plugin& p) {
  auto core = Core::Create(p.config);
  if (!core.ok()) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "mqttspec: %s", core.error().message.c_str());
    return core.error().code == mqttspec::ErrorCode::kInvalidValue ? kExitConfigError
                                                                   : kExitFailure;
  }
  p.core = std::move(core).value();
  p.routes = std::make_unique<NotificationRoutes>(p.config.topic_prefix, p.transport);
  p.service = std::make_unique<Service>(p.config, *p.core, *p.routes);
  p.front = std::make_unique<MqttFront>(p.config, *p.service, p.transport);
  auto grpc = GrpcFront::Start(p.config, *p.service, *p.routes, p.transport);
  if (!grpc.ok()) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "mqttspec: %s", grpc.error().message.c_str());
    return kExitFailure;
  }
  p.grpc = std::move(grpc).value();
  auto metrics = MetricsHttp::Start(p.config, *p.service);
  if (!metrics.ok()) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "mqttspec: %s", metrics.error().message.c_str());
    return kExitFailure;
  }
  p.metrics = std::move(metrics).value();
  return MOSQ_ERR_SUCCESS;
}

}  // namespace
}  // namespace mqttspec::server::embedded

using mqttspec::server::embedded::Plugin;

extern "C" {

__attribute__((visibility("default"))) int mosquitto_plugin_version(int count,
                                                                    const int* versions) {
  for (int i = 0; i < count; ++i) {
    if (versions[i] == 5) return 5;
  }
  return -1;
}

__attribute__((visibility("default"))) int mosquitto_plugin_init(mosquitto_plugin_id_t* id,
                                                                 void** userdata,
                                                                 struct mosquitto_opt* opts,
                                                                 int opt_count) {
  using namespace mqttspec::server;
  using namespace mqttspec::server::embedded;
  try {
    if (!spdlog::get("mqttspec")) {
      spdlog::set_default_logger(spdlog::stderr_color_mt("mqttspec"));
      spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e mqttspec %^%l%$ %v");
    }
    std::string config_path, broker_auth;
    if (!ReadPluginOptions(opts, opt_count, config_path, broker_auth)) return kExitConfigError;
    auto config = config_path.empty() ? ParseConfig("") : LoadConfig(config_path);
    if (!config.ok()) {
      mosquitto_log_printf(MOSQ_LOG_ERR, "mqttspec: configuration error: %s",
                           config.error().message.c_str());
      return kExitConfigError;
    }
    auto p = std::make_unique<Plugin>();
    p->id = id;
    p->config = std::move(config).value();
    p->prefix = p->config.topic_prefix;
    p->plugin_decides_auth = broker_auth == "plugin";
    spdlog::set_level(spdlog::level::from_str(p->config.log_level));
    if (int rc = StartServing(*p); rc != MOSQ_ERR_SUCCESS) return rc;
    Plugin* raw = p.get();
    int rc = MOSQ_ERR_SUCCESS;
    for (const auto& r : kCallbacks)
      rc |= mosquitto_callback_register(id, r.event, r.callback, nullptr, raw);
    if (rc != MOSQ_ERR_SUCCESS) {
      mosquitto_log_printf(MOSQ_LOG_ERR, "mqttspec: registering broker callbacks failed");
      return kExitFailure;
    }
    if (p->plugin_decides_auth && !p->config.broker.allow_anonymous &&
        p->config.broker.password_file.empty() &&
        !p->core->hooks().Has(mqttspec::HookType::kBeforeConnect)) {
      spdlog::warn(
          "broker.allow_anonymous is false but there is no broker.password_file and no "
          "BeforeConnect hook: any username with any password is accepted");
    }
    spdlog::info("mqttspec {} serving {}/+/request inside the broker", MQTTSPEC_VERSION, p->prefix);
    *userdata = p.release();
    return MOSQ_ERR_SUCCESS;
  } catch (const std::exception& e) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "mqttspec: start-up failed: %s", e.what());
    return MOSQ_ERR_UNKNOWN;
  }
}

__attribute__((visibility("default"))) int mosquitto_plugin_cleanup(void* userdata,
                                                                    struct mosquitto_opt*, int) {
  auto* p = static_cast<Plugin*>(userdata);
  if (!p) return MOSQ_ERR_SUCCESS;
  try {
    for (const auto& r : mqttspec::server::embedded::kCallbacks)
      mosquitto_callback_unregister(p->id, r.event, r.callback, nullptr);
    p->metrics.reset();
    p->grpc.reset();  // no new gRPC calls; those running are answered
    // The broker loop has ended: answers still being computed can no longer be published.
    p->service->Drain();
    auto s = p->service->stats();
    spdlog::info(
        "mqttspec stopped: answered {} of {} requests, {} messages published, {} refused "
        "by the broker",
        s.answered, s.taken, p->transport.published(), p->transport.failed());
  } catch (...) {
  }
  delete p;
  return MOSQ_ERR_SUCCESS;
}

}  // extern "C"
