// The device twin (docs/protocol.md §13) below the MQTT layer: its topics, JSON equality, the
// Router's handling of app updates, device reports and gets on a real SQLite file — including
// concurrent writers of one key, which must never lose a version or leave in_sync wrong.
#include "registry/twin.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "adapters/sqlite_database.h"
#include "common/time_util.h"
#include "hooks/hook_registry.h"
#include "server/config.h"
#include "server/router.h"
#include "server/topics.h"

namespace mqttspec::server {
namespace {

using protocol::Request;

TEST(TwinTopics, ReportsAndGetAreParsedOthersAreNot) {
  auto r = ParseTwinTopic("spec", "spec/d1/twin/reports/software_version");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, TwinTopic::Kind::kReport);
  EXPECT_EQ(r->device, "d1");
  EXPECT_EQ(r->key, "software_version");
  auto g = ParseTwinTopic("spec", "spec/d1/twin/get");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->kind, TwinTopic::Kind::kGet);
  EXPECT_EQ(g->device, "d1");
  for (const char* bad :
       {"spec/d1/twin/requests/k", "spec/d1/twin/reports/", "spec/d1/twin/reports/a/b",
        "spec/d1/twin/get/x", "spec/d1/twin", "spec//twin/get", "spec/d1/request",
        "other/d1/twin/get", "spec/d1/twin/reports/a+b", "spec/a+b/twin/get", "spec"})
    EXPECT_FALSE(ParseTwinTopic("spec", bad)) << bad;
  EXPECT_EQ(TwinRequestTopic("spec", "d1", "k"), "spec/d1/twin/requests/k");
  EXPECT_TRUE(IsValidTwinKey(std::string(128, 'k')));
  EXPECT_FALSE(IsValidTwinKey(std::string(129, 'k')));
  EXPECT_FALSE(IsValidTwinKey(""));
}

TEST(TwinJson, EqualAsJsonValues) {
  using registry::JsonValuesEqual;
  auto j = [](const char* text) { return Value{std::string(text)}; };
  EXPECT_TRUE(JsonValuesEqual(j(R"({"a":1,"b":[1,2]})"), j(R"({ "b" : [1, 2], "a" : 1.0 })")));
  EXPECT_FALSE(JsonValuesEqual(j(R"({"a":1})"), j(R"({"a":1,"b":null})")));
  EXPECT_FALSE(JsonValuesEqual(j("[1,2]"), j("[2,1]")));
  EXPECT_FALSE(JsonValuesEqual(j(R"("1")"), j("1")));
  EXPECT_TRUE(JsonValuesEqual(Value{}, Value{}));
  EXPECT_TRUE(JsonValuesEqual(Value{}, j("null")));
  EXPECT_FALSE(JsonValuesEqual(Value{}, j("{}")));
}

TEST(TwinTime, NowAfterIsStrictlyLater) {
  const std::string future = "2999-01-01T00:00:00.999Z";
  EXPECT_EQ(NowIso8601After(future), "2999-01-01T00:00:01.000Z");
  std::string t;
  for (int i = 0; i < 1000; ++i) {  // far more than one per millisecond
    std::string next = NowIso8601After(t);
    ASSERT_GT(next, t);
    t = next;
  }
  EXPECT_EQ(MillisFromIso8601("1970-01-01T00:00:01.500Z"), 1500);
  EXPECT_FALSE(MillisFromIso8601("1970-01-01T00:00:01Z"));
}

class TwinRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("twin_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    adapters::SqliteOptions o;
    o.path = (dir_ / "db.sqlite").string();
    o.synchronous_full = false;
    auto db = adapters::SqliteDatabase::Open(o);
    ASSERT_TRUE(db.ok()) << db.error().message;
    db_ = std::move(db).value();
    auto twin = registry::TwinModel();
    ASSERT_TRUE(twin);
    ASSERT_TRUE(models_.Register(twin).ok());
    ASSERT_TRUE(db_->Migrate(*twin).ok());
    router_ = std::make_unique<Router>(models_, *db_, RouterOptions{});
  }
  void TearDown() override {
    router_.reset();
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  static rapidjson::Document Json(const std::string& text) {
    rapidjson::Document d;
    d.Parse(text.c_str());
    EXPECT_FALSE(d.HasParseError()) << text;
    return d;
  }

  // An app's update of d/k's request; the answer's JSON and the outcome.
  rapidjson::Document SetRequest(const std::string& app, const std::string& id,
                                 const std::string& request_json, Router::Outcome* out = nullptr,
                                 const std::string& extra = "") {
    ClientInfo info{app, "", "", {}};
    return Json(router_->Handle(info,
                                R"({"operation":"update","schema":"mqttspec","entity":"twin",)"
                                R"("record_id":")" +
                                    id + R"(","data":{"request":)" + request_json + extra + "}}",
                                out));
  }

  std::string Report(const std::string& device, const std::string& key, const std::string& payload,
                     Router::Outcome* out = nullptr) {
    ClientInfo info{device, "", "", {}};
    Router::TwinMessage m{Request::Origin::kTwinReport, key,
                          "spec/" + device + "/twin/reports/" + key};
    return router_->HandleTwin(info, m, payload, out);
  }

  std::string Get(const std::string& device, const std::string& payload, Router::Outcome* out) {
    ClientInfo info{device, "", "", {}};
    Router::TwinMessage m{Request::Origin::kTwinGet, "", "spec/" + device + "/twin/get"};
    return router_->HandleTwin(info, m, payload, out);
  }

  rapidjson::Document Row(const std::string& id) {
    ClientInfo info{"reader", "", "", {}};
    auto d = Json(router_->Handle(
        info,
        R"({"operation":"read","schema":"mqttspec","entity":"twin","record_id":")" + id + R"("})"));
    EXPECT_TRUE(d["success"].GetBool()) << id;
    return d;
  }

  std::filesystem::path dir_;
  registry::ModelRegistry models_;
  std::unique_ptr<adapters::SqliteDatabase> db_;
  std::unique_ptr<Router> router_;
};

TEST_F(TwinRouterTest, RequestCreatesCountsVersionsAndIsDeliveredOnlyWhenItChanges) {
  Router::Outcome out;
  auto d = SetRequest("app", "d1/fw", R"({"version":"2.0"})", &out);
  ASSERT_TRUE(d["success"].GetBool());
  EXPECT_EQ(d["data"]["version"].GetInt64(), 1);
  EXPECT_FALSE(d["data"]["in_sync"].GetBool());
  EXPECT_STREQ(d["data"]["device_id"].GetString(), "d1");
  EXPECT_STREQ(d["data"]["key"].GetString(), "fw");
  ASSERT_EQ(out.deliveries.size(), 1u);
  EXPECT_EQ(out.deliveries[0].device, "d1");
  EXPECT_EQ(out.deliveries[0].key, "fw");
  EXPECT_EQ(out.deliveries[0].payload, R"({"version":"2.0"})");
  EXPECT_EQ(out.deliveries[0].version, 1);

  Router::Outcome same;
  d = SetRequest("app", "d1/fw", R"({ "version" : "2.0" })", &same);
  EXPECT_EQ(d["data"]["version"].GetInt64(), 1);
  EXPECT_TRUE(same.deliveries.empty());

  Router::Outcome next;
  d = SetRequest("app", "d1/fw", R"({"version":"2.1"})", &next);
  EXPECT_EQ(d["data"]["version"].GetInt64(), 2);
  ASSERT_EQ(next.deliveries.size(), 1u);
  EXPECT_EQ(next.deliveries[0].version, 2);
}

TEST_F(TwinRouterTest, ReportsSetInSyncAndOnlyAChangedValueMovesReportedAt) {
  SetRequest("app", "d1/fw", R"({"v":2})");
  ASSERT_EQ(Report("d1", "fw", R"({"v":1})"), "");
  auto row = Row("d1/fw");
  EXPECT_FALSE(row["data"]["in_sync"].GetBool());
  const std::string first = row["data"]["reported_at"].GetString();
  ASSERT_EQ(Report("d1", "fw", R"({"v":2.0})"), "");
  row = Row("d1/fw");
  EXPECT_TRUE(row["data"]["in_sync"].GetBool());
  const std::string second = row["data"]["reported_at"].GetString();
  EXPECT_GT(second, first);  // strictly, even within one millisecond
  ASSERT_EQ(Report("d1", "fw", R"({"v":2})"), "");
  row = Row("d1/fw");
  EXPECT_EQ(std::string(row["data"]["reported_at"].GetString()), second);
  EXPECT_EQ(row["data"]["version"].GetInt64(), 1);  // reports leave the request's version
}

TEST_F(TwinRouterTest, AReportIsOneValueAndCannotSetOtherFields) {
  // A payload crafted to close "report" and add fields is invalid JSON, and changes nothing.
  auto err = Json(Report("d1", "k", R"(1},"request":{"x":1)"));
  EXPECT_STREQ(err["error"]["code"].GetString(), "invalid_json");
  ClientInfo info{"app", "", "", {}};
  auto none = Json(router_->Handle(
      info, R"({"operation":"read","schema":"mqttspec","entity":"twin","record_id":"d1/k"})"));
  EXPECT_STREQ(none["error"]["code"].GetString(), "not_found");
  ASSERT_EQ(Report("d1", "k", " 1 \n"), "");  // whitespace around the value is fine
  EXPECT_EQ(Row("d1/k")["data"]["report"].GetInt(), 1);
  // An object with members named like fields stays inside the report.
  ASSERT_EQ(Report("d1", "k", R"({"request":{"x":1},"version":99})"), "");
  auto row = Row("d1/k");
  EXPECT_TRUE(row["data"]["request"].IsNull());
  EXPECT_EQ(row["data"]["version"].GetInt64(), 0);
  EXPECT_EQ(row["data"]["report"]["version"].GetInt(), 99);
  // an app may not set the report
  auto d = SetRequest("app", "d1/k", "1", nullptr, R"(,"report":2)");
  EXPECT_STREQ(d["error"]["code"].GetString(), "invalid_message");
}

TEST_F(TwinRouterTest, ErrorsNameTheTopic) {
  Router::Outcome out;
  auto d = Json(Report("d1", "k", "{bad", &out));
  EXPECT_STREQ(d["error"]["code"].GetString(), "invalid_json");
  EXPECT_EQ(std::string(d["error"]["message"].GetString()).rfind("spec/d1/twin/reports/k: ", 0),
            0u);
  EXPECT_EQ(out.code, "invalid_json");
  for (const char* bad : {R"({"keys":["a"]})", "[1]", R"(["a/b"])", R"("a")"}) {
    d = Json(Get("d1", bad, &out));
    EXPECT_STREQ(d["error"]["code"].GetString(), "invalid_message") << bad;
    EXPECT_EQ(std::string(d["error"]["message"].GetString()).rfind("spec/d1/twin/get: ", 0), 0u);
  }
}

TEST_F(TwinRouterTest, GetDeliversTheDevicesOwnRequestsOnly) {
  SetRequest("app", "d1/a", R"("A")");
  SetRequest("app", "d1/b", R"("B1")");
  SetRequest("app", "d1/b", R"("B2")");
  SetRequest("app", "d2/a", R"("other device")");
  Report("d1", "c", "3");  // a key without a request
  Router::Outcome out;
  ASSERT_EQ(Get("d1", R"(["a","b","c","missing","a"])", &out), "");
  std::set<std::tuple<std::string, std::string, std::string, int64_t>> got;
  for (const auto& d : out.deliveries) got.insert({d.device, d.key, d.payload, d.version});
  EXPECT_EQ(got, (std::set<std::tuple<std::string, std::string, std::string, int64_t>>{
                     {"d1", "a", R"("A")", 1}, {"d1", "b", R"("B2")", 2}}));
  Router::Outcome none;
  ASSERT_EQ(Get("d1", "[]", &none), "");
  EXPECT_TRUE(none.deliveries.empty());
}

TEST_F(TwinRouterTest, ExpectedVersionMismatchIsAConflictAndChangesNothing) {
  auto d = SetRequest("app", "d1/k", "1", nullptr, R"(,"expected_version":1)");
  EXPECT_STREQ(d["error"]["code"].GetString(), "conflict");
  ClientInfo info{"app", "", "", {}};
  auto missing = Json(router_->Handle(
      info, R"({"operation":"read","schema":"mqttspec","entity":"twin","record_id":"d1/k"})"));
  EXPECT_STREQ(missing["error"]["code"].GetString(), "not_found");
  d = SetRequest("app", "d1/k", "1", nullptr, R"(,"expected_version":0)");
  EXPECT_EQ(d["data"]["version"].GetInt64(), 1);
  d = SetRequest("app", "d1/k", "2", nullptr, R"(,"expected_version":0)");
  EXPECT_STREQ(d["error"]["code"].GetString(), "conflict");
  EXPECT_EQ(Row("d1/k")["data"]["request"].GetInt(), 1);
  d = SetRequest("app", "d1/k", "2", nullptr, R"(,"expected_version":1)");
  EXPECT_EQ(d["data"]["version"].GetInt64(), 2);
}

// Two apps change the request and the device reports, all at once on one key, through two
// Routers on two connections to one database file — two instances: every change of the request
// counts in version (none lost to a concurrent read-modify-write; within one Router the writes
// of a key take turns, across the two only the compare-and-set keeps them apart), and at the end
// in_sync says whether the stored request and report are equal.
TEST_F(TwinRouterTest, ConcurrentWritersNeverLoseAVersionOrLeaveInSyncWrong) {
  adapters::SqliteOptions o;
  o.path = (dir_ / "db.sqlite").string();
  o.synchronous_full = false;
  auto second_db = adapters::SqliteDatabase::Open(o);
  ASSERT_TRUE(second_db.ok()) << second_db.error().message;
  Router second(models_, *second_db.value(), RouterOptions{});
  constexpr int kEach = 60;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int app = 0; app < 2; ++app) {
    threads.emplace_back([&, app] {
      ClientInfo info{"app" + std::to_string(app), "", "", {}};
      Router& via = app == 0 ? *router_ : second;
      for (int i = 0; i < kEach; ++i) {  // every value distinct
        auto d = Json(via.Handle(info, R"({"operation":"update","schema":"mqttspec",)"
                                       R"("entity":"twin","record_id":"d1/k","data":{"request":)" +
                                           std::to_string(app * 1000 + i) + "}}"));
        if (!d["success"].GetBool()) ++failures;
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < kEach; ++i)
      if (!Report("d1", "k", std::to_string(i % 2 ? 1000 + i : i)).empty()) ++failures;
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto row = Row("d1/k");
  EXPECT_EQ(row["data"]["version"].GetInt64(), 2 * kEach);
  EXPECT_EQ(row["data"]["in_sync"].GetBool(), row["data"]["request"] == row["data"]["report"]);
  // The last report makes it unambiguous: equal to the request → in sync.
  const std::string request = std::to_string(row["data"]["request"].GetInt());
  ASSERT_EQ(Report("d1", "k", request), "");
  EXPECT_TRUE(Row("d1/k")["data"]["in_sync"].GetBool());
}

// Hooks run for twin operations like for any update (docs/protocol.md §13): BeforeUpdate on
// mqttspec.twin sees the device's report as an update by the device, may change the value, may
// refuse it — and an equal report again is no update, so runs no After hook.
TEST_F(TwinRouterTest, HooksSeeReportsAsUpdatesByTheDevice) {
  hooks::HookRegistry hooks;
  std::vector<std::string> seen;
  int after = 0;
  hooks.Register(
      HookType::kBeforeUpdate,
      [&](HookContext& ctx) {
        auto report = ctx.GetField("report");
        seen.push_back(ctx.client().id + " " + std::string(ctx.operation()) + " " +
                       (report && std::holds_alternative<std::string>(*report)
                            ? std::get<std::string>(*report)
                            : "-"));
        if (ctx.client().id == "mallory") return ctx.Abort("not a device of ours");
        if (auto request = ctx.GetField("request"))  // the app's request, rounded by policy
          (void)ctx.SetField("request", Value{std::string(R"({"version":"2.0","policy":1})")});
        return HookResult::kContinue;
      },
      HookOptions{0, "mqttspec.twin"});
  hooks.Register(HookType::kAfterUpdate, [&](HookContext&) {
    ++after;
    return HookResult::kContinue;
  });
  router_ = std::make_unique<Router>(models_, *db_, RouterOptions{}, nullptr, &hooks);

  Router::Outcome out;
  auto d = SetRequest("app", "d1/fw", R"({"version":"2.0"})", &out);
  ASSERT_TRUE(d["success"].GetBool());
  EXPECT_EQ(d["data"]["request"]["policy"].GetInt(), 1);
  ASSERT_EQ(out.deliveries.size(), 1u);
  EXPECT_EQ(out.deliveries[0].payload, R"({"version":"2.0","policy":1})");
  ASSERT_EQ(Report("d1", "fw", R"({"version":"2.0","policy":1})"), "");
  EXPECT_TRUE(Row("d1/fw")["data"]["in_sync"].GetBool());
  ASSERT_EQ(Report("d1", "fw", R"({"policy":1,"version":"2.0"})"), "");  // equal: no update
  auto refused = Json(Report("mallory", "fw", "1"));
  EXPECT_STREQ(refused["error"]["code"].GetString(), "forbidden");
  EXPECT_STREQ(refused["error"]["message"].GetString(),
               "spec/mallory/twin/reports/fw: not a device of ours");
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "app update -", R"(d1 update {"version":"2.0","policy":1})",
                      R"(d1 update {"policy":1,"version":"2.0"})", "mallory update 1"}));
  EXPECT_EQ(after, 2);  // the app's update and the first report
}

TEST(TwinConfig, EnabledByDefaultAndSwitchable) {
  auto c = ParseConfig("{}");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c.value().twin.enabled);
  c = ParseConfig("twin: {enabled: false}");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c.value().twin.enabled);
  c = ParseConfig("twin: {enabled: maybe}");
  EXPECT_FALSE(c.ok());
  c = ParseConfig("twin: {enable: true}");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("twin.enable"), std::string::npos) << c.error().message;
}

TEST(TwinModelTest, ItsSchemaIsReservedForOthers) {
  auto twin = registry::TwinModel();
  ASSERT_TRUE(twin);
  EXPECT_TRUE(registry::IsTwin(*twin));
  EXPECT_EQ(twin->primary().name, "id");
  auto mine = registry::Model::Create("mqttspec", "twin", twin->fields(), "id");
  EXPECT_FALSE(mine.ok());
}

}  // namespace
}  // namespace mqttspec::server
