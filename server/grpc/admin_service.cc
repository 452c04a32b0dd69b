#include "server/grpc/admin_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "common/time_util.h"
#include "hooks/hook_registry.h"
#include "protocol/json_read.h"
#include "protocol/render.h"
#include "server/grpc/call_auth.h"

namespace mqttspec::server {

namespace av1 = mqttspec::admin::v1;

namespace {

constexpr size_t kMaxName = 256;  // longest name or id echoed back in an error, in bytes

std::string Echo(const std::string& s) { return protocol::Echo(s, kMaxName); }

}  // namespace

AdminService::AdminService(const Config& config, server::Service& service, Transport& broker,
                           const HealthState& health)
    : config_(config),
      service_(service),
      core_(service.core()),
      broker_(broker),
      health_(health),
      started_(std::chrono::steady_clock::now()) {}

grpc::Status AdminService::GetStatus(grpc::ServerContext* c, const av1::GetStatusRequest*,
                                     av1::Status* out) {
  if (auto st = CheckAdmin(*c, config_.admin.token); !st.ok()) return st;
  out->set_version(MQTTSPEC_VERSION);
  out->set_mode(config_.broker.mode);
  out->set_uptime_seconds(static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
          .count()));
  out->set_database_ok(health_.database_ok.load());
  out->set_broker_ok(health_.broker_ok.load());
  out->set_clients_connected(core_.clients().connected_count());
  out->set_subscriptions(core_.subscriptions().size());
  out->set_models(core_.models().All().size());
  out->set_database(config_.database.driver);
  return grpc::Status::OK;
}

grpc::Status AdminService::ListClients(grpc::ServerContext* c, const av1::ListClientsRequest*,
                                       av1::ListClientsResponse* out) {
  if (auto st = CheckAdmin(*c, config_.admin.token); !st.ok()) return st;
  auto clients = core_.clients().List();
  std::sort(clients.begin(), clients.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  for (const auto& s : clients) {
    av1::Client* cl = out->add_clients();
    cl->set_client_id(s.id);
    cl->set_username(s.username);
    cl->set_connected_at(Iso8601FromMillis(s.since_ms));
    cl->set_subscriptions(core_.subscriptions().count(s.id));
    cl->set_requests(s.requests);
    cl->set_connected(s.connected);
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::KickClient(grpc::ServerContext* c, const av1::KickClientRequest* r,
                                      av1::KickClientResponse*) {
  if (auto st = CheckAdmin(*c, config_.admin.token); !st.ok()) return st;
  if (config_.broker.mode != "embedded")
    return {grpc::StatusCode::FAILED_PRECONDITION,
            "external mode: the broker is not mqttspec's, so it cannot disconnect a client "
            "(use the broker's own administration)"};
  if (!core_.clients().connected(r->client_id()))
    return {grpc::StatusCode::NOT_FOUND,
            fmt::format("no connected client '{}'", Echo(r->client_id()))};
  if (!broker_.Kick(r->client_id()))
    return {grpc::StatusCode::FAILED_PRECONDITION, "this broker connection cannot kick clients"};
  return grpc::Status::OK;
}

grpc::Status AdminService::ListSubscriptions(grpc::ServerContext* c,
                                             const av1::ListSubscriptionsRequest* r,
                                             av1::ListSubscriptionsResponse* out) {
  if (auto st = CheckAdmin(*c, config_.admin.token); !st.ok()) return st;
  for (const SubscriptionPtr& sub : core_.subscriptions().List(r->client_id(), r->entity())) {
    av1::Subscription* s = out->add_subscriptions();
    s->set_subscription_id(sub->id);
    s->set_client_id(sub->client_id);
    s->set_schema(sub->model->schema());
    s->set_entity(sub->model->entity());
    s->set_filters_json(protocol::RenderFilters(*sub->model, sub->filters));
    s->set_seq(sub->seq.load(std::memory_order_relaxed));
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::CancelSubscription(grpc::ServerContext* c,
                                              const av1::CancelSubscriptionRequest* r,
                                              av1::CancelSubscriptionResponse*) {
  if (auto st = CheckAdmin(*c, config_.admin.token); !st.ok()) return st;
  auto sub = core_.subscriptions().Cancel(r->subscription_id());
  if (!sub.ok()) return {grpc::StatusCode::NOT_FOUND, sub.error().message};
  return grpc::Status::OK;
}

void AdminService::FillModel(const registry::Model& m, av1::Model* out) const {
  out->set_name(m.qualified_name());
  out->set_table(core_.database().TableName(m));
  out->set_primary_key(m.primary().name);
  out->set_client_access(std::string(registry::ClientAccessName(m.client_access())));
  for (const registry::Field& f : m.fields()) {
    av1::Field* pf = out->add_fields();
    pf->set_name(f.name);
    pf->set_type(std::string(registry::FieldTypeName(f.type)));
    pf->set_nullable(f.nullable);
    pf->set_unique(f.unique);
    pf->set_primary(f.primary);
    pf->set_auto_increment(f.auto_increment);
    pf->set_indexed(f.indexed);
    if (f.default_value) pf->set_default_value(f.default_value->display);
  }
}

grpc::Status AdminService::ListModels(grpc::ServerContext* c, const av1::ListModelsRequest*,
                                      av1::ListModelsResponse* out) {
  if (auto st = CheckAdmin(*c, config_.admin.token); !st.ok()) return st;
  auto models = core_.models().All();
  std::sort(models.begin(), models.end(), [](const auto& a, const auto& b) {
    return a->qualified_name() < b->qualified_name();
  });
  for (const auto& m : models) FillModel(*m, out->add_models());
  return grpc::Status::OK;
}

grpc::Status AdminService::GetModel(grpc::ServerContext* c, const av1::GetModelRequest* r,
                                    av1::Model* out) {
  if (auto st = CheckAdmin(*c, config_.admin.token); !st.ok()) return st;
  const std::string& name = r->name();
  const size_t dot = name.find('.');
  registry::ModelPtr m = dot == std::string::npos
                             ? core_.models().Find("public", name)
                             : core_.models().Find(std::string_view(name).substr(0, dot),
                                                   std::string_view(name).substr(dot + 1));
  if (!m) return {grpc::StatusCode::NOT_FOUND, fmt::format("no model '{}'", Echo(name))};
  FillModel(*m, out);
  return grpc::Status::OK;
}

grpc::Status AdminService::ListHooks(grpc::ServerContext* c, const av1::ListHooksRequest*,
                                     av1::ListHooksResponse* out) {
  if (auto st = CheckAdmin(*c, config_.admin.token); !st.ok()) return st;
  for (const auto& h : core_.hooks().List()) {
    av1::Hook* ph = out->add_hooks();
    ph->set_hook(std::string(hooks::HookTypeName(h.type)));
    ph->set_plugin(h.plugin);
    ph->set_entity(h.entity);
    ph->set_priority(h.priority);
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::GetMetrics(grpc::ServerContext* c, const av1::GetMetricsRequest*,
                                      av1::Metrics* out) {
  if (auto st = CheckAdmin(*c, config_.admin.token); !st.ok()) return st;
  for (const Metrics::Sample& s : service_.CollectMetrics()) {
    av1::Sample* ps = out->add_samples();
    ps->set_name(s.name);
    for (const auto& [k, v] : s.labels) (*ps->mutable_labels())[k] = v;
    ps->set_value(s.value);
  }
  return grpc::Status::OK;
}

grpc::Status AdminService::WatchEvents(grpc::ServerContext* c, const av1::WatchEventsRequest* r,
                                       grpc::ServerWriter<av1::Event>* writer) {
  if (auto st = CheckAdmin(*c, config_.admin.token); !st.ok()) return st;
  static const char* const kKinds[] = {"", "request", "change", "connect", "disconnect"};
  if (std::find(std::begin(kKinds), std::end(kKinds), r->kind()) == std::end(kKinds))
    return {grpc::StatusCode::INVALID_ARGUMENT,
            fmt::format("unknown kind '{}' (known: request, change, connect, disconnect)",
                        Echo(r->kind()))};
  Events& events = service_.events();
  auto watch = events.Watch(EventFilter{r->kind(), r->client_id(), r->entity()});
  // Headers go out now, so a client knows the watch is in place before any event.
  writer->SendInitialMetadata();
  grpc::Status result = grpc::Status::OK;
  std::vector<Event> batch;
  while (!c->IsCancelled() && !stopping_.load()) {
    batch.clear();
    const bool alive = watch->Next(&batch, std::chrono::milliseconds(200));
    bool written = true;
    for (const Event& e : batch) {
      av1::Event pe;
      pe.set_kind(e.kind);
      pe.set_timestamp(Iso8601FromMillis(e.time_ms));
      pe.set_client_id(e.client_id);
      pe.set_schema(e.schema);
      pe.set_entity(e.entity);
      pe.set_operation(e.operation);
      pe.set_code(e.code);
      pe.set_duration_ms(e.duration_ms);
      pe.set_record_id(e.record_id);
      pe.set_front(e.front);
      if (!writer->Write(pe)) {
        written = false;
        break;
      }
    }
    if (!written) break;
    if (!alive) {
      result = {grpc::StatusCode::RESOURCE_EXHAUSTED,
                fmt::format("the watcher fell {} events behind and was dropped",
                            Events::kWatchCapacity)};
      break;
    }
  }
  events.Unwatch(watch);
  if (result.ok() && stopping_.load())
    result = {grpc::StatusCode::UNAVAILABLE, "the service is stopping"};
  return result;
}

}  // namespace mqttspec::server
