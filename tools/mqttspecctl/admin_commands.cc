// The Admin commands of mqttspecctl: one function per command, its table layout beside it, and
// their registration with CLI11 at the end.

#include <fmt/core.h>

#include <array>
#include <atomic>
#include <map>
#include <memory>

#include "tools/mqttspecctl/commands.h"
#include "tools/mqttspecctl/interrupts.h"
#include "tools/mqttspecctl/output.h"

namespace mqttspec::ctl {

namespace {

using AdminStub = admin_api::Admin::Stub;

// "schema.entity", or the entity alone when the schema is not given.
std::string QualifiedName(const std::string& schema, const std::string& entity) {
  return schema.empty() ? entity : schema + "." + entity;
}

std::string OrAll(const std::string& text) { return text.empty() ? "*" : text; }

void PrintStatus(const admin_api::Status& status) {
  PrintFields({{"version", status.version()},
               {"mode", status.mode()},
               {"uptime_seconds", Cell(status.uptime_seconds())},
               {"database", status.database()},
               {"database_ok", Cell(status.database_ok())},
               {"broker_ok", Cell(status.broker_ok())},
               {"clients_connected", Cell(status.clients_connected())},
               {"subscriptions", Cell(status.subscriptions())},
               {"models", Cell(status.models())}});
}

void PrintClients(const admin_api::ListClientsResponse& response) {
  Table table({"client", "username", "connected", "since", "subscriptions", "requests"});
  for (const auto& c : response.clients()) {
    table.AddRow({c.client_id(), c.username(), Cell(c.connected()), c.connected_at(),
                  Cell(c.subscriptions()), Cell(c.requests())});
  }
  table.Print();
}

void PrintSubscriptions(const admin_api::ListSubscriptionsResponse& response) {
  Table table({"id", "client", "entity", "seq", "filters"});
  for (const auto& s : response.subscriptions()) {
    table.AddRow({s.subscription_id(), s.client_id(), QualifiedName(s.schema(), s.entity()),
                  Cell(s.seq()), s.filters_json()});
  }
  table.Print();
}

void PrintModels(const admin_api::ListModelsResponse& response) {
  Table table({"name", "table", "key", "fields", "access"});
  for (const auto& m : response.models()) {
    table.AddRow(
        {m.name(), m.table(), m.primary_key(), Cell(uint64_t(m.fields_size())), m.client_access()});
  }
  table.Print();
}

void PrintModel(const admin_api::Model& model) {
  PrintFields({{"name", model.name()},
               {"table", model.table()},
               {"primary_key", model.primary_key()},
               {"client_access", model.client_access()}});
  fmt::print("\n");
  Table table(
      {"field", "type", "primary", "nullable", "unique", "auto_increment", "indexed", "default"});
  for (const auto& f : model.fields()) {
    table.AddRow({f.name(), f.type(), Cell(f.primary()), Cell(f.nullable()), Cell(f.unique()),
                  Cell(f.auto_increment()), Cell(f.indexed()), f.default_value()});
  }
  table.Print();
}

void PrintHooks(const admin_api::ListHooksResponse& response) {
  Table table({"hook", "plugin", "entity", "priority"});
  for (const auto& h : response.hooks()) {
    table.AddRow({h.hook(), h.plugin(), OrAll(h.entity()), std::to_string(h.priority())});
  }
  table.Print();
}

// Labels as Prometheus writes them: k="v",… (sorted by name: a map has no order of its own).
std::string Labels(const google::protobuf::Map<std::string, std::string>& labels) {
  std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  std::string out;
  for (const auto& [name, value] : sorted) {
    out += fmt::format("{}{}=\"{}\"", out.empty() ? "" : ",", name, value);
  }
  return out;
}

void PrintMetrics(const admin_api::Metrics& metrics) {
  Table table({"name", "labels", "value"});
  for (const auto& s : metrics.samples()) {
    table.AddRow({s.name(), Labels(s.labels()), Cell(s.value())});
  }
  table.Print();
}

// Watch prints as events arrive, so its columns have fixed widths (wider cells push right).
constexpr std::array<size_t, 9> kEventWidths = {24, 10, 20, 16, 9, 14, 9, 8, 0};

void PrintEventHeader() {
  fmt::print("{}\n", FormatRow({"TIME", "KIND", "CLIENT", "ENTITY", "OPERATION", "CODE", "DURATION",
                                "RECORD", "FRONT"},
                               kEventWidths));
  std::fflush(stdout);
}

void PrintEvent(const admin_api::Event& e) {
  std::string duration = e.kind() == "request" ? fmt::format("{:.1f}ms", e.duration_ms()) : "";
  fmt::print("{}\n", FormatRow({e.timestamp(), e.kind(), e.client_id(),
                                QualifiedName(e.schema(), e.entity()), e.operation(), e.code(),
                                duration, e.record_id(), e.front()},
                               kEventWidths));
  std::fflush(stdout);
}

int Status(Session& s) { return s.Show(&AdminStub::GetStatus, {}, PrintStatus); }

int Clients(Session& s) { return s.Show(&AdminStub::ListClients, {}, PrintClients); }

int Kick(Session& s, const std::string& client_id) {
  admin_api::KickClientRequest request;
  request.set_client_id(client_id);
  return s.Show(&AdminStub::KickClient, request, [&](const admin_api::KickClientResponse&) {
    fmt::print("client \"{}\" disconnected\n", client_id);
  });
}

int Subscriptions(Session& s, const admin_api::ListSubscriptionsRequest& request) {
  return s.Show(&AdminStub::ListSubscriptions, request, PrintSubscriptions);
}

int Unsubscribe(Session& s, const std::string& subscription_id) {
  admin_api::CancelSubscriptionRequest request;
  request.set_subscription_id(subscription_id);
  return s.Show(&AdminStub::CancelSubscription, request,
                [&](const admin_api::CancelSubscriptionResponse&) {
                  fmt::print("subscription \"{}\" cancelled\n", subscription_id);
                });
}

int Models(Session& s) { return s.Show(&AdminStub::ListModels, {}, PrintModels); }

int Model(Session& s, const std::string& name) {
  admin_api::GetModelRequest request;
  request.set_name(name);
  return s.Show(&AdminStub::GetModel, request, PrintModel);
}

int Hooks(Session& s) { return s.Show(&AdminStub::ListHooks, {}, PrintHooks); }

int Metrics(Session& s) { return s.Show(&AdminStub::GetMetrics, {}, PrintMetrics); }

// Streams events until the daemon ends the stream or Ctrl-C/SIGTERM (then exit 0).
int Watch(Session& s, const admin_api::WatchEventsRequest& request) {
  if (int rc = s.Connect()) return rc;
  grpc::ClientContext ctx;
  s.PrepareContext(ctx, /*deadline=*/false);
  std::atomic<bool> interrupted{false};
  ScopedInterruptHandler on_interrupt([&] {
    interrupted = true;
    ctx.TryCancel();
  });
  auto stream = s.admin().WatchEvents(&ctx, request);
  if (!s.json()) PrintEventHeader();
  admin_api::Event event;
  while (stream->Read(&event)) {
    if (!s.json()) {
      PrintEvent(event);
    } else if (!PrintJson(event)) {
      ctx.TryCancel();  // ends the stream; Finish reports it
    }
  }
  grpc::Status status = stream->Finish();
  if (interrupted || status.ok()) return kExitOk;
  return s.Report({status, Session::ProtocolCode(ctx)});
}

}  // namespace

void AddAdminCommands(CLI::App& app, std::vector<Command>& commands) {
  commands.push_back(
      {app.add_subcommand("status", "the service's version, mode and health"), Status});
  commands.push_back(
      {app.add_subcommand("clients", "the clients seen, and if connected"), Clients});

  auto kick_id = std::make_shared<std::string>();
  auto* kick = app.add_subcommand("kick", "disconnect a client (embedded mode)");
  kick->add_option("ID", *kick_id, "client id")->required();
  commands.push_back({kick, [kick_id](Session& s) { return Kick(s, *kick_id); }});

  auto subs_request = std::make_shared<admin_api::ListSubscriptionsRequest>();
  auto* subs = app.add_subcommand("subs", "the live subscriptions");
  subs->add_option_function<std::string>(
      "--client", [subs_request](const std::string& v) { subs_request->set_client_id(v); },
      "only this client's");
  subs->add_option_function<std::string>(
      "--entity", [subs_request](const std::string& v) { subs_request->set_entity(v); },
      "only on this entity (entity or schema.entity)");
  commands.push_back(
      {subs, [subs_request](Session& s) { return Subscriptions(s, *subs_request); }});

  auto unsub_id = std::make_shared<std::string>();
  auto* unsub = app.add_subcommand("unsub", "end a subscription");
  unsub->add_option("ID", *unsub_id, "subscription id")->required();
  commands.push_back({unsub, [unsub_id](Session& s) { return Unsubscribe(s, *unsub_id); }});

  commands.push_back({app.add_subcommand("models", "the models served"), Models});

  auto model_name = std::make_shared<std::string>();
  auto* model = app.add_subcommand("model", "one model and its fields");
  model->add_option("NAME", *model_name, "entity or schema.entity")->required();
  commands.push_back({model, [model_name](Session& s) { return Model(s, *model_name); }});

  commands.push_back({app.add_subcommand("hooks", "the hooks registered"), Hooks});
  commands.push_back({app.add_subcommand("metrics", "the service's figures"), Metrics});

  auto watch_request = std::make_shared<admin_api::WatchEventsRequest>();
  auto* watch = app.add_subcommand("watch", "print events as they happen, until Ctrl-C");
  watch
      ->add_option_function<std::string>(
          "--kind", [watch_request](const std::string& v) { watch_request->set_kind(v); },
          "only events of this kind")
      ->check(CLI::IsMember({"request", "change", "connect", "disconnect"}));
  watch->add_option_function<std::string>(
      "--client", [watch_request](const std::string& v) { watch_request->set_client_id(v); },
      "only this client's");
  watch->add_option_function<std::string>(
      "--entity", [watch_request](const std::string& v) { watch_request->set_entity(v); },
      "only on this entity (entity or schema.entity)");
  commands.push_back({watch, [watch_request](Session& s) { return Watch(s, *watch_request); }});
}

}  // namespace mqttspec::ctl
