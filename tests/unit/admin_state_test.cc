// What the admin API reads and the metrics endpoint serves: Metrics counts requests by front,
// operation and code with a cumulative histogram and renders the Prometheus text format; Events
// delivers only what a watcher asked for and drops a watcher that falls behind without blocking
// the publisher; Subscriptions::List / Cancel; Clients::List counts requests and keeps the
// connection time; RenderFilters writes the protocol's filters array back from the parsed form;
// HookRegistry::List names the plugin.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <thread>

#include "hooks/hook_registry.h"
#include "protocol/render.h"
#include "server/clients.h"
#include "server/events.h"
#include "server/metrics.h"
#include "server/subscriptions.h"
#include "tests/unit/test_builders.h"

namespace mqttspec::server {
namespace {

using namespace mqttspec::testing;  // NOLINT: the shared test builders
using adapters::Logic;
using adapters::Op;
using registry::FieldType;

double Find(const std::vector<Metrics::Sample>& samples, const std::string& name,
            std::vector<std::pair<std::string, std::string>> labels) {
  for (const auto& s : samples)
    if (s.name == name && s.labels == labels) return s.value;
  return -1;
}

TEST(Metrics, CountsByFrontOperationAndCodeWithACumulativeHistogram) {
  Metrics m;
  m.RecordRequest("mqtt", "read", "ok", 0.0002);
  m.RecordRequest("mqtt", "read", "ok", 0.003);
  m.RecordRequest("grpc", "read", "not_found", 7);
  m.RecordRequest("mqtt", "create", "unavailable", 0.001);
  Metrics::Gauges g;
  g.clients_connected = 3;
  g.queue_depth = 2;
  auto s = m.Collect(g);
  EXPECT_EQ(Find(s, "mqttspec_requests_total",
                 {{"front", "mqtt"}, {"operation", "read"}, {"code", "ok"}}),
            2);
  EXPECT_EQ(Find(s, "mqttspec_requests_total",
                 {{"front", "grpc"}, {"operation", "read"}, {"code", "not_found"}}),
            1);
  EXPECT_EQ(Find(s, "mqttspec_request_duration_seconds_bucket",
                 {{"operation", "read"}, {"le", "0.00025"}}),
            1);
  EXPECT_EQ(Find(s, "mqttspec_request_duration_seconds_bucket",
                 {{"operation", "read"}, {"le", "0.005"}}),
            2);
  EXPECT_EQ(Find(s, "mqttspec_request_duration_seconds_bucket",
                 {{"operation", "read"}, {"le", "5"}}),
            2);
  EXPECT_EQ(Find(s, "mqttspec_request_duration_seconds_bucket",
                 {{"operation", "read"}, {"le", "+Inf"}}),
            3);
  EXPECT_EQ(Find(s, "mqttspec_request_duration_seconds_count", {{"operation", "read"}}), 3);
  EXPECT_NEAR(Find(s, "mqttspec_request_duration_seconds_sum", {{"operation", "read"}}), 7.0032,
              1e-6);
  EXPECT_EQ(Find(s, "mqttspec_database_errors_total", {}), 1);
  EXPECT_EQ(Find(s, "mqttspec_clients_connected", {}), 3);
  EXPECT_EQ(Find(s, "mqttspec_queue_depth", {}), 2);
}

TEST(Metrics, PrometheusTextHasHelpTypeAndEscapedLabels) {
  Metrics m;
  m.RecordRequest("mqtt", "re\"ad\\\n", "ok", 0.001);
  const std::string text = Metrics::Prometheus(m.Collect({}));
  EXPECT_NE(text.find("# TYPE mqttspec_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE mqttspec_request_duration_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("operation=\"re\\\"ad\\\\\\n\""), std::string::npos) << text;
  EXPECT_NE(text.find("mqttspec_subscriptions 0\n"), std::string::npos);
  // Every sample line belongs to the family declared just above it.
  EXPECT_LT(text.find("# TYPE mqttspec_queue_depth gauge"), text.find("mqttspec_queue_depth 0"));
}

TEST(Metrics, ConcurrentRecordingLosesNothing) {
  Metrics m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&m, t] {
      for (int i = 0; i < 5000; ++i)
        m.RecordRequest("mqtt", i % 2 ? "read" : "create", t % 2 ? "ok" : "conflict", 0.001);
    });
  for (auto& t : threads) t.join();
  auto s = m.Collect({});
  double total = 0;
  for (const auto& x : s)
    if (x.name == "mqttspec_requests_total") total += x.value;
  EXPECT_EQ(total, 20000);
}

Event Request(std::string client, std::string entity) {
  Event e;
  e.kind = "request";
  e.client_id = std::move(client);
  e.schema = "public";
  e.entity = std::move(entity);
  return e;
}

TEST(Events, AWatcherGetsOnlyWhatItsFilterAsks) {
  Events events;
  EXPECT_FALSE(events.active());
  auto all = events.Watch({});
  auto mine = events.Watch({"request", "c1", "public.users"});
  EXPECT_TRUE(events.active());
  events.Publish(Request("c1", "users"));
  events.Publish(Request("c2", "users"));
  events.Publish(Request("c1", "orders"));
  Event change;
  change.kind = "change";
  change.schema = "public";
  change.entity = "users";
  events.Publish(change);
  std::vector<Event> got;
  EXPECT_TRUE(all->Next(&got, std::chrono::milliseconds(0)));
  EXPECT_EQ(got.size(), 4u);
  got.clear();
  EXPECT_TRUE(mine->Next(&got, std::chrono::milliseconds(0)));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].client_id, "c1");
  EXPECT_EQ(got[0].entity, "users");
  events.Unwatch(all);
  events.Unwatch(mine);
  EXPECT_FALSE(events.active());
}

TEST(Events, ASlowWatcherIsDroppedAndTheOthersKeepTheirs) {
  Events events;
  auto slow = events.Watch({});
  auto fast = events.Watch({});
  std::vector<Event> got;
  for (size_t i = 0; i < Events::kWatchCapacity + 10; ++i) {
    events.Publish(Request("c", "users"));
    if (i % 100 == 0) (void)fast->Next(&got, std::chrono::milliseconds(0));
  }
  EXPECT_TRUE(fast->Next(&got, std::chrono::milliseconds(0)));
  EXPECT_EQ(got.size(), Events::kWatchCapacity + 10);
  std::vector<Event> slow_got;
  EXPECT_FALSE(slow->Next(&slow_got, std::chrono::milliseconds(0))) << "dropped";
  EXPECT_EQ(slow_got.size(), Events::kWatchCapacity);
  // The dropped watcher is off the list: publishing no longer touches it.
  events.Publish(Request("c", "users"));
  slow_got.clear();
  EXPECT_FALSE(slow->Next(&slow_got, std::chrono::milliseconds(0)));
  EXPECT_TRUE(slow_got.empty());
}

TEST(Events, NextWakesWhenAnEventArrives) {
  Events events;
  auto w = events.Watch({});
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    events.Publish(Request("c", "users"));
  });
  std::vector<Event> got;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(w->Next(&got, std::chrono::seconds(10)));
  t.join();
  EXPECT_EQ(got.size(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

enum { kId = 0, kStatus, kN };

registry::ModelPtr Things(const std::string& entity = "things") {
  return MustModel("public", entity,
                   {MakeField("id", FieldType::kInteger), MakeField("status", FieldType::kText),
                    MakeField("n", FieldType::kInteger)},
                   "id");
}

TEST(SubscriptionsAdmin, ListFiltersByClientAndEntityAndCancelRemovesFromEveryIndex) {
  Subscriptions subs("spec", 100);
  auto things = Things(), other = Things("other");
  auto a = subs.Add("c1", things, {Cond(kStatus, Op::kEq, {S("x")})}).value();
  auto b = subs.Add("c2", things, {}).value();
  auto c = subs.Add("c1", other, {}).value();
  EXPECT_EQ(subs.List("", "").size(), 3u);
  EXPECT_EQ(subs.List("c1", "").size(), 2u);
  EXPECT_EQ(subs.List("", "things").size(), 2u);
  EXPECT_EQ(subs.List("", "public.things").size(), 2u);
  ASSERT_EQ(subs.List("c1", "other").size(), 1u);
  EXPECT_EQ(subs.List("c1", "other")[0]->id, c->id);
  EXPECT_TRUE(subs.List("nobody", "").empty());

  auto cancelled = subs.Cancel(a->id);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled.value()->client_id, "c1");
  EXPECT_FALSE(subs.Has(a->id));
  EXPECT_EQ(subs.count("c1"), 1u);
  // Off the eq index too: a matching row finds only b.
  auto matched = subs.Match(*things, Row{I(1), S("x"), kNull});
  ASSERT_EQ(matched.size(), 1u);
  EXPECT_EQ(matched[0]->id, b->id);
  EXPECT_EQ(subs.Cancel(a->id).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(subs.Cancel("").error().code, ErrorCode::kNotFound);
}

TEST(RenderFilters, WritesTheProtocolsFiltersArrayBack) {
  auto m = Things();
  adapters::FilterList f = {
      Cond(kStatus, Op::kIn, {S("a"), S("b")}),
      Cond(kN, Op::kBetween, {I(1), I(5)}, Logic::kOr),
      Group(Logic::kAnd, {Cond(kStatus, Op::kIsNull, {})}),
  };
  const std::string json = protocol::RenderFilters(*m, f);
  rapidjson::Document d;
  d.Parse(json.c_str());
  ASSERT_FALSE(d.HasParseError()) << json;
  ASSERT_TRUE(d.IsArray());
  ASSERT_EQ(d.Size(), 3u);
  EXPECT_STREQ(d[0]["column"].GetString(), "status");
  EXPECT_STREQ(d[0]["operator"].GetString(), "in");
  EXPECT_EQ(d[0]["value"].Size(), 2u);
  EXPECT_STREQ(d[1]["logic_operator"].GetString(), "OR");
  EXPECT_EQ(d[1]["value"][1].GetInt(), 5);
  EXPECT_TRUE(d[2].HasMember("filters"));
  EXPECT_STREQ(d[2]["filters"][0]["operator"].GetString(), "is_null");
  EXPECT_FALSE(d[2]["filters"][0].HasMember("value"));
  EXPECT_EQ(protocol::RenderFilters(*m, {}), "[]");
}

TEST(ClientsAdmin, ListCountsRequestsAndKeepsThoseThatRacedTheConnect) {
  Clients clients;
  clients.Get("dev1");  // a request before the connect was seen
  auto info = std::make_shared<ClientInfo>();
  info->id = "dev1";
  info->username = "alice";
  clients.Put(info);
  clients.Get("dev1");
  clients.Get("grpc:svc", "bob");
  auto list = clients.List();
  ASSERT_EQ(list.size(), 2u);
  std::sort(list.begin(), list.end(), [](auto& a, auto& b) { return a.id < b.id; });
  EXPECT_EQ(list[0].id, "dev1");
  EXPECT_EQ(list[0].username, "alice");
  EXPECT_EQ(list[0].requests, 2u);
  EXPECT_TRUE(list[0].connected);
  EXPECT_GT(list[0].since_ms, 0);
  EXPECT_EQ(list[1].username, "bob");
  EXPECT_FALSE(list[1].connected);
  EXPECT_EQ(clients.connected_count(), 1u);
  EXPECT_TRUE(clients.connected("dev1"));
  EXPECT_FALSE(clients.connected("grpc:svc"));
}

TEST(HookRegistryAdmin, ListNamesThePluginInRunningOrder) {
  hooks::HookRegistry r;
  auto noop = [](HookContext&) { return HookResult::kContinue; };
  r.Register(HookType::kAfterCreate, noop, {5, "users"}, "audit_log");
  r.Register(HookType::kAfterCreate, noop, {1, ""}, "rbac");
  r.Register(HookType::kBeforeConnect, noop, {}, "jwt_auth");
  auto list = r.List();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].type, HookType::kBeforeConnect);
  EXPECT_EQ(list[1].plugin, "rbac");
  EXPECT_EQ(list[2].plugin, "audit_log");
  EXPECT_EQ(list[2].entity, "public.users");
  EXPECT_EQ(list[2].priority, 5);
}

}  // namespace
}  // namespace mqttspec::server
