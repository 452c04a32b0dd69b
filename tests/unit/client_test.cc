// The client SDK's pure parts: Backoff, Json, the wire format it writes and reads, and the port
// of a server URI. (Its behaviour against a real service: tests/integration/test_client_sdk.py.)
#include "mqttspec/client.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <limits>

#include "client/nodelay.h"
#include "client/wire.h"
#include "mqttspec/backoff.h"

namespace mqttspec::client {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, DelayStaysWithinBaseAndTheGrowingCeiling) {
  const Backoff b{milliseconds(100), 2.0, milliseconds(5000)};
  EXPECT_EQ(b.Ceiling(0), milliseconds(100));
  EXPECT_EQ(b.Ceiling(1), milliseconds(200));
  EXPECT_EQ(b.Ceiling(3), milliseconds(800));
  EXPECT_EQ(b.Ceiling(6), milliseconds(5000));      // capped
  EXPECT_EQ(b.Ceiling(10000), milliseconds(5000));  // no overflow
  for (int attempt = 0; attempt < 12; ++attempt) {
    EXPECT_EQ(b.Delay(attempt, 0.0), milliseconds(100)) << attempt;  // never below base
    EXPECT_EQ(b.Delay(attempt, 1.0), b.Ceiling(attempt)) << attempt;
    for (int i = 0; i < 50; ++i) {
      const auto d = b.Delay(attempt);
      EXPECT_GE(d, milliseconds(100));
      EXPECT_LE(d, b.Ceiling(attempt));
    }
  }
}

TEST(BackoffTest, DelayDependsOnItsArgument) {
  // The seed's client library ignored its attempt number; ours is a function of it.
  const Backoff b{milliseconds(10), 3.0, milliseconds(100000)};
  EXPECT_LT(b.Delay(1, 0.5), b.Delay(2, 0.5));
  EXPECT_LT(b.Delay(2, 0.5), b.Delay(4, 0.5));
  EXPECT_EQ(b.Delay(3, 0.25), b.Delay(3, 0.25));  // stateless
}

TEST(BackoffTest, NonsenseParametersStillGiveBoundedDelays) {
  const Backoff b{milliseconds(50), 0.5, milliseconds(10)};  // factor < 1, cap < base
  EXPECT_EQ(b.Ceiling(5), milliseconds(50));
  EXPECT_EQ(b.Delay(5, 0.9), milliseconds(50));
  EXPECT_EQ(b.Delay(2, -3.0), milliseconds(50));
}

TEST(JsonTest, ScalarsObjectsAndArraysRenderAsJson) {
  EXPECT_EQ(Json().text(), "null");
  EXPECT_EQ(Json(true).text(), "true");
  EXPECT_EQ(Json(42).text(), "42");
  EXPECT_EQ(Json(-7LL).text(), "-7");
  EXPECT_EQ(Json(2.5).text(), "2.5");
  EXPECT_EQ(Json(std::numeric_limits<double>::infinity()).text(), "null");
  EXPECT_EQ(Json("a\"b\n").text(), R"("a\"b\n")");
  EXPECT_EQ(Json::Object({{"n", "x"}, {"v", 1}, {"o", Json::Array({1, "two", nullptr})}}).text(),
            R"({"n":"x","v":1,"o":[1,"two",null]})");
}

TEST(JsonTest, ParseAndAccessors) {
  auto j = Json::Parse(R"( {"id": 5, "name": "x", "ok": false, "t": 1.5, "a": [1, 2]} )");
  ASSERT_TRUE(j);
  EXPECT_EQ(j->text(), R"({"id":5,"name":"x","ok":false,"t":1.5,"a":[1,2]})");
  EXPECT_EQ(j->Get("id")->AsInt(), 5);
  EXPECT_EQ(j->Get("name")->AsString(), "x");
  EXPECT_EQ(j->Get("ok")->AsBool(), false);
  EXPECT_EQ(j->Get("t")->AsDouble(), 1.5);
  EXPECT_FALSE(j->Get("t")->AsInt());
  EXPECT_FALSE(j->Get("missing"));
  EXPECT_EQ(j->Get("a")->Elements().size(), 2u);
  EXPECT_EQ(j->Get("a")->At(1)->AsInt(), 2);
  EXPECT_EQ(j->Keys(), (std::vector<std::string>{"id", "name", "ok", "t", "a"}));
  EXPECT_FALSE(Json::Parse("{bad"));
  EXPECT_FALSE(Json::Parse(""));
}

TEST(EntityTest, QualifiedNamesSplitOnTheFirstDot) {
  Entity plain("users");
  EXPECT_EQ(plain.schema, "public");
  EXPECT_EQ(plain.name, "users");
  Entity q("app.sensors");
  EXPECT_EQ(q.schema, "app");
  EXPECT_EQ(q.name, "sensors");
  EXPECT_NE(wire::CheckEntity(Entity("")), "");
  EXPECT_EQ(wire::CheckEntity(q), "");
}

TEST(WireTest, RequestsFollowTheProtocolEnvelope) {
  Entity e("users");
  Json key(7);
  Json data = Json::Object({{"status", "x"}});
  wire::RequestParts p;
  p.operation = "update";
  p.entity = &e;
  p.record_id = &key;
  p.data = &data;
  rapidjson::Document d;
  d.Parse(wire::RenderRequest("n-1", p).c_str());
  ASSERT_FALSE(d.HasParseError());
  EXPECT_STREQ(d["id"].GetString(), "n-1");
  EXPECT_STREQ(d["type"].GetString(), "request");
  EXPECT_STREQ(d["operation"].GetString(), "update");
  EXPECT_STREQ(d["schema"].GetString(), "public");
  EXPECT_STREQ(d["entity"].GetString(), "users");
  EXPECT_EQ(d["record_id"].GetInt(), 7);
  EXPECT_STREQ(d["data"]["status"].GetString(), "x");
  EXPECT_FALSE(d.HasMember("options"));
}

TEST(WireTest, FiltersSortColumnsAndPaging) {
  ReadOptions o;
  o.filters.emplace_back("status", "eq", "active");
  o.filters.emplace_back("age", "gte", 18, "OR");
  o.filters.push_back(Filter::Group({{"name", "ilike", "a%"}, {"email", "is_null", nullptr}}));
  o.sort.push_back({"created_at", "desc", "last"});
  o.columns = {"id", "name"};
  o.limit = 20;
  o.offset = 40;
  EXPECT_EQ(
      wire::ReadOptionsJson(o),
      R"({"filters":[{"column":"status","operator":"eq","value":"active"},)"
      R"({"column":"age","operator":"gte","value":18,"logic_operator":"OR"},)"
      R"({"logic_operator":"AND","filters":[{"column":"name","operator":"ilike","value":"a%"},)"
      R"({"column":"email","operator":"is_null"}]}],)"
      R"("sort":[{"column":"created_at","direction":"desc","nulls":"last"}],)"
      R"("columns":["id","name"],"limit":20,"offset":40})");
  EXPECT_EQ(wire::ReadOptionsJson({}), "{}");
  EXPECT_EQ(wire::SubscribeOptionsJson({}, 12), R"({"since_change_seq":12})");
}

TEST(WireTest, ParsesAnswersErrorsAndPongs) {
  std::string why;
  auto ok = wire::ParseIncoming(R"({"id":"a-1","type":"response","success":true,"data":[{"id":1}],)"
                                R"("metadata":{"total":1,"change_seq":9},"timestamp":"T"})",
                                &why);
  ASSERT_TRUE(ok) << why;
  EXPECT_EQ(ok->kind, wire::Incoming::Kind::kResponse);
  EXPECT_EQ(ok->id, "a-1");
  EXPECT_TRUE(ok->reply.ok);
  EXPECT_EQ(ok->reply.data.text(), R"([{"id":1}])");
  EXPECT_EQ(ok->reply.metadata.Get("change_seq")->AsInt(), 9);
  EXPECT_EQ(ok->reply.timestamp, "T");

  auto err = wire::ParseIncoming(R"({"id":5,"type":"response","success":false,)"
                                 R"("error":{"code":"hook_error","message":"m","committed":true}})",
                                 &why);
  ASSERT_TRUE(err);
  EXPECT_EQ(err->id, "5");  // a number id, as its text
  EXPECT_FALSE(err->reply.ok);
  EXPECT_EQ(err->reply.error.code, "hook_error");
  EXPECT_EQ(err->reply.error.message, "m");
  EXPECT_TRUE(err->reply.error.committed);

  auto pong = wire::ParseIncoming(R"({"id":"p","type":"pong","instance":"abc"})", &why);
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->kind, wire::Incoming::Kind::kPong);
  EXPECT_EQ(pong->instance, "abc");
  EXPECT_TRUE(pong->reply.ok);

  EXPECT_FALSE(wire::ParseIncoming("[1]", &why));
  EXPECT_FALSE(wire::ParseIncoming(R"({"type":"mystery"})", &why));
  EXPECT_NE(why.find("mystery"), std::string::npos);
}

TEST(WireTest, ParsesNotificationsMarkersAndResync) {
  std::string why;
  auto n = wire::ParseIncoming(
      R"({"type":"notification","operation":"update","subscription_id":"sub-1","schema":"public",)"
      R"("entity":"users","data":{"id":1},"match":false,"seq":3,"change_seq":44,"timestamp":"T"})",
      &why);
  ASSERT_TRUE(n) << why;
  EXPECT_EQ(n->kind, wire::Incoming::Kind::kNotification);
  EXPECT_EQ(n->subscription_id, "sub-1");
  EXPECT_EQ(n->note.operation, "update");
  EXPECT_FALSE(n->note.match);
  EXPECT_EQ(n->note.seq, 3u);
  EXPECT_TRUE(n->has_change_seq);
  EXPECT_EQ(n->note.change_seq, 44);
  EXPECT_EQ(n->note.row.text(), R"({"id":1})");

  auto live = wire::ParseIncoming(
      R"({"type":"notification","operation":"create","subscription_id":"s","data":{},"seq":1})",
      &why);
  ASSERT_TRUE(live);
  EXPECT_TRUE(live->note.match);
  EXPECT_FALSE(live->has_change_seq);  // the change log is off

  auto marker = wire::ParseIncoming(
      R"({"type":"notification","operation":"replay_complete","subscription_id":"s",)"
      R"("change_seq":50,"replayed":3})",
      &why);
  ASSERT_TRUE(marker);
  EXPECT_EQ(marker->replayed, 3);
  EXPECT_EQ(marker->note.seq, 0u);

  auto resync = wire::ParseIncoming(
      R"({"type":"notification","operation":"resync_required","subscription_id":"s",)"
      R"("change_seq":7,"error":{"code":"resync_required","message":"trimmed"}})",
      &why);
  ASSERT_TRUE(resync);
  EXPECT_EQ(resync->error.code, "resync_required");

  EXPECT_FALSE(wire::ParseIncoming(R"({"type":"notification","operation":"create"})", &why));
}

TEST(NoDelayTest, PortOfUri) {
  EXPECT_EQ(PortOfUri("tcp://127.0.0.1:1999"), 1999);
  EXPECT_EQ(PortOfUri("tcp://broker"), 1883);
  EXPECT_EQ(PortOfUri("ssl://broker"), 8883);
  EXPECT_EQ(PortOfUri("wss://h/mqtt"), 443);
  EXPECT_EQ(PortOfUri("ws://h:9001/mqtt"), 9001);
  EXPECT_EQ(PortOfUri("tcp://[::1]:1884"), 1884);
  EXPECT_EQ(PortOfUri("tcp://[::1]"), 1883);
}

}  // namespace
}  // namespace mqttspec::client
