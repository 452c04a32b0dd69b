// Router tests: real SQLite in memory, requests as JSON text, responses checked field by field.
#include "server/router.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <thread>

#include "adapters/sqlite_database.h"
#include "protocol/render.h"
#include "server/config.h"

namespace mqttspec::server {
namespace {

constexpr const char* kModels = R"(
models:
  - name: public.users
    primary_key: id
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: name, type: text, nullable: false}
      - {name: email, type: text, unique: true}
      - {name: status, type: text, default: active}
      - {name: created_at, type: timestamp, default: now}
  - name: iot.readings
    primary_key: id
    fields:
      - {name: id, type: text}
      - {name: value, type: real}
      - {name: ok, type: boolean, default: "true"}
      - {name: meta, type: json}
  - name: public.ledger
    client_access: read_only
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: note, type: text}
  - name: public.secrets
    client_access: none
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: note, type: text}
)";

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = ParseConfig(kModels);
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    adapters::SqliteOptions options;  // in memory: one connection, no readers
    options.path = ":memory:";
    options.synchronous_full = false;
    options.readers = 0;
    auto db = adapters::SqliteDatabase::Open(options);
    ASSERT_TRUE(db.ok());
    db_ = std::move(db).value();
    for (auto& m : cfg.value().models) {
      ASSERT_TRUE(models_.Register(m).ok());
      ASSERT_TRUE(db_->Migrate(*m).ok());
    }
    RouterOptions o;
    o.max_payload_bytes = 4096;
    router_ = std::make_unique<Router>(models_, *db_, o);
  }

  rapidjson::Document Send(const std::string& payload, const std::string& client = "c1") {
    ClientInfo info{client, "", "", {}};
    std::string out = router_->Handle(info, payload);
    rapidjson::Document d;
    d.Parse(out.c_str());
    EXPECT_FALSE(d.HasParseError()) << out;
    return d;
  }

  std::string ErrorCodeOf(const std::string& payload) {
    auto d = Send(payload);
    if (!d.HasMember("success") || d["success"].GetBool()) return "success";
    return d["error"]["code"].GetString();
  }

  int64_t CountUsers() {
    auto d = Send(R"({"id":"n","operation":"read","entity":"users"})");
    return d["metadata"]["total"].GetInt64();
  }

  registry::ModelRegistry models_;
  std::unique_ptr<adapters::SqliteDatabase> db_;
  std::unique_ptr<Router> router_;
};

TEST_F(RouterTest, CreateReturnsStoredRowWithGeneratedKeyAndDefaults) {
  auto d = Send(R"({"id":"m1","type":"request","operation":"create","schema":"public",
                   "entity":"users","data":{"name":"Ann","email":"ann@x.io"}})");
  EXPECT_STREQ(d["id"].GetString(), "m1");
  EXPECT_STREQ(d["type"].GetString(), "response");
  ASSERT_TRUE(d["success"].GetBool());
  EXPECT_EQ(d["data"]["id"].GetInt64(), 1);
  EXPECT_STREQ(d["data"]["status"].GetString(), "active");
  EXPECT_EQ(std::string(d["data"]["created_at"].GetString()).size(), 24u);
  EXPECT_TRUE(d.HasMember("timestamp"));
}

TEST_F(RouterTest, ReadUpdateDeleteByRecordIdOrPrimaryKeyInData) {
  Send(R"({"id":"c","operation":"create","entity":"users","data":{"name":"Ann"}})");
  auto r = Send(R"({"id":"r","operation":"read","entity":"users","record_id":"1"})");
  ASSERT_TRUE(r["success"].GetBool());
  EXPECT_STREQ(r["data"]["name"].GetString(), "Ann");
  auto u =
      Send(R"({"id":"u","operation":"update","entity":"users","data":{"id":1,"status":"off"}})");
  ASSERT_TRUE(u["success"].GetBool());
  EXPECT_STREQ(u["data"]["status"].GetString(), "off");
  EXPECT_STREQ(u["data"]["name"].GetString(), "Ann");  // untouched
  auto del = Send(R"({"id":"d","operation":"delete","entity":"users","data":{"id":1}})");
  ASSERT_TRUE(del["success"].GetBool());
  EXPECT_TRUE(del["data"]["deleted"].GetBool());
  EXPECT_EQ(del["data"]["id"].GetInt64(), 1);
  EXPECT_EQ(ErrorCodeOf(R"({"id":"r2","operation":"read","entity":"users","record_id":1})"),
            "not_found");
  EXPECT_EQ(
      ErrorCodeOf(
          R"({"id":"u2","operation":"update","entity":"users","record_id":1,"data":{"name":"x"}})"),
      "not_found");
  EXPECT_EQ(ErrorCodeOf(R"({"id":"d2","operation":"delete","entity":"users","record_id":1})"),
            "not_found");
}

TEST_F(RouterTest, ListReadReportsMetadataAndCapsLimit) {
  Send(
      R"({"id":"c","operation":"create","entity":"users","data":[{"name":"A"},{"name":"B"},{"name":"C"}]})");
  auto d = Send(R"({"id":"l","operation":"read","entity":"users",
                   "options":{"limit":2,"offset":1,"sort":[{"column":"name","direction":"DESC"}]}})");
  ASSERT_TRUE(d["success"].GetBool());
  ASSERT_EQ(d["data"].Size(), 2u);
  EXPECT_STREQ(d["data"][0]["name"].GetString(), "B");
  EXPECT_EQ(d["metadata"]["total"].GetInt64(), 3);
  EXPECT_EQ(d["metadata"]["count"].GetInt64(), 2);
  EXPECT_EQ(d["metadata"]["limit"].GetInt64(), 2);
  EXPECT_EQ(d["metadata"]["offset"].GetInt64(), 1);
  auto big =
      Send(R"({"id":"l","operation":"read","entity":"users","options":{"limit":1000000000000}})");
  EXPECT_EQ(big["metadata"]["limit"].GetInt64(), 1000);
}

TEST_F(RouterTest, SchemaOtherThanPublicAndEveryFieldTypeRoundTrip) {
  auto d = Send(R"({"id":"c","operation":"create","schema":"iot","entity":"readings",
                   "data":{"id":"r1","value":"2.5","meta":{"a":[1,2]}}})");
  ASSERT_TRUE(d["success"].GetBool()) << d["error"]["message"].GetString();
  EXPECT_DOUBLE_EQ(d["data"]["value"].GetDouble(), 2.5);
  EXPECT_TRUE(d["data"]["ok"].GetBool());
  EXPECT_EQ(d["data"]["meta"]["a"][1].GetInt(), 2);
  auto m = Send(R"({"id":"m","operation":"meta","schema":"iot","entity":"readings"})");
  EXPECT_STREQ(m["data"]["table"].GetString(), "iot_readings");
  EXPECT_STREQ(m["data"]["primary_key"].GetString(), "id");
  EXPECT_EQ(m["data"]["columns"].Size(), 4u);
  EXPECT_STREQ(m["data"]["columns"][2]["default"].GetString(), "true");
}

TEST_F(RouterTest, RepeatedWriteWithSameIdAndPayloadIsAppliedOnce) {
  const std::string create =
      R"({"id":"same","operation":"create","entity":"users","data":{"name":"Once"}})";
  auto first = Send(create);
  auto second = Send(create);
  EXPECT_EQ(first["data"]["id"].GetInt64(), second["data"]["id"].GetInt64());
  EXPECT_EQ(CountUsers(), 1);
  EXPECT_EQ(router_->stats().dedup_hits, 1u);
  // Another client with the same id is a different request.
  ClientInfo other{"c2", "", "", {}};
  router_->Handle(other, create);
  EXPECT_EQ(CountUsers(), 2);
  // Same id, different payload: applied.
  Send(R"({"id":"same","operation":"create","entity":"users","data":{"name":"Twice"}})");
  EXPECT_EQ(CountUsers(), 3);
}

// A write redelivered after the service restarted (a fresh Router: its dedup cache is empty)
// must not be applied again: the database's record of the first answers it.
TEST_F(RouterTest, AWriteAppliedBeforeARestartIsAnsweredFromItsRecordAndNotAppliedAgain) {
  const std::string create =
      R"({"id":"w1","operation":"create","entity":"users","data":{"name":"Once"}})";
  const std::string batch =
      R"({"id":"w2","operation":"create","entity":"users","data":[{"name":"B1"},{"name":"B2"}]})";
  auto created = Send(create);
  auto created_batch = Send(batch);
  ASSERT_TRUE(created["success"].GetBool());
  const int64_t id = created["data"]["id"].GetInt64();
  const std::string update = R"({"id":"w3","operation":"update","entity":"users","record_id":)" +
                             std::to_string(id) + R"(,"data":{"status":"moved"}})";
  const std::string del = R"({"id":"w4","operation":"delete","entity":"users","record_id":)" +
                          std::to_string(created_batch["data"][1]["id"].GetInt64()) + "}";
  ASSERT_TRUE(Send(update)["success"].GetBool());
  ASSERT_TRUE(Send(del)["success"].GetBool());
  ASSERT_EQ(CountUsers(), 2);
  // A conflict writes nothing, so nothing is recorded: its repeat runs (and fails) again.
  const std::string clash =
      R"({"id":"w5","operation":"create","entity":"users","data":{"name":"X","email":"e@x"}})";
  Send(R"({"id":"w0","operation":"create","entity":"users","data":{"name":"Y","email":"e@x"}})");
  EXPECT_EQ(ErrorCodeOf(clash), "conflict");

  RouterOptions o;
  o.max_payload_bytes = 4096;
  router_ = std::make_unique<Router>(models_, *db_, o);  // the restart
  auto again = Send(create);
  ASSERT_TRUE(again["success"].GetBool());
  EXPECT_EQ(again["data"]["id"].GetInt64(), id);
  EXPECT_STREQ(again["data"]["status"].GetString(), "moved");  // the row as it is now
  auto batch_again = Send(batch);
  ASSERT_TRUE(batch_again["data"].IsArray());
  ASSERT_EQ(batch_again["data"].Size(), 2u);
  EXPECT_EQ(batch_again["data"][0]["id"].GetInt64(), created_batch["data"][0]["id"].GetInt64());
  EXPECT_TRUE(batch_again["data"][1].IsNull());  // deleted since
  auto update_again = Send(update);
  ASSERT_TRUE(update_again["success"].GetBool());
  EXPECT_EQ(update_again["data"]["id"].GetInt64(), id);
  EXPECT_TRUE(Send(del)["success"].GetBool());
  EXPECT_EQ(CountUsers(), 3);  // Once, B1, Y: nothing applied twice
  EXPECT_EQ(router_->stats().dedup_hits, 4u);
  EXPECT_EQ(ErrorCodeOf(clash), "conflict");
  // The same request id with other bytes is another write.
  Send(R"({"id":"w1","operation":"create","entity":"users","data":{"name":"Other"}})");
  EXPECT_EQ(CountUsers(), 4);
  // ... and its record replaced the first one's.
  router_ = std::make_unique<Router>(models_, *db_, o);
  Send(R"({"id":"w1","operation":"create","entity":"users","data":{"name":"Other"}})");
  Send(create);  // the first payload again: no longer recorded, so applied
  EXPECT_EQ(CountUsers(), 5);
}

// A recorded write is answered again only if the request is still allowed: here the model became
// closed to clients (client_access: none) across the restart — its rows must not be shown.
TEST_F(RouterTest, AWriteRepeatedAfterARestartIsRefusedWhenTheModelIsNoLongerOpenToClients) {
  const std::string create =
      R"({"id":"w1","operation":"create","entity":"users","data":{"name":"Once"}})";
  ASSERT_TRUE(Send(create)["success"].GetBool());
  std::string closed_yaml = kModels;  // the same models, users now closed to clients
  const std::string users = "  - name: public.users\n";
  closed_yaml.replace(closed_yaml.find(users), users.size(), users + "    client_access: none\n");
  auto closed = ParseConfig(closed_yaml);
  ASSERT_TRUE(closed.ok()) << closed.error().message;
  registry::ModelRegistry restarted;
  ASSERT_TRUE(restarted.Register(closed.value().models.front()).ok());
  Router router(restarted, *db_, RouterOptions{});
  ClientInfo info{"c1", "", "", {}};
  rapidjson::Document d;
  d.Parse(router.Handle(info, create).c_str());
  ASSERT_TRUE(d.HasMember("error"));
  EXPECT_STREQ(d["error"]["code"].GetString(), "forbidden");
  EXPECT_FALSE(d.HasMember("data") && d["data"].IsObject());
  EXPECT_EQ(router.stats().dedup_hits, 1u);  // recognised, not applied, not shown
  EXPECT_EQ(CountUsers(), 1);
}

TEST(DedupCacheTest, CompleteOnlyAWindowAfterItBeganAndNotAfterForgettingForCapacity) {
  DedupCache fresh(60, 10);
  EXPECT_FALSE(fresh.Complete());  // an earlier run may have answered writes of the last minute
  DedupCache zero(0, 2);
  EXPECT_TRUE(zero.Complete());
  DedupCache small(1, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_TRUE(small.Complete());
  small.Remember("a", "p", "r");
  small.Remember("b", "p", "r");
  EXPECT_TRUE(small.Complete());
  small.Remember("c", "p", "r");  // "a" forgotten for capacity within its window
  EXPECT_FALSE(small.Complete());
  EXPECT_FALSE(small.Find("a", "p"));
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_TRUE(small.Complete());
}

TEST(RecordedKeysTest, KnowsEachHashUntilItsRecordExpiresAndSaysMaybeOnceItForgot) {
  const int64_t t = 1'000'000;
  RecordedKeys keys(60'000);
  const uint64_t a = RecordedKeys::Hash("c1", "r1"), b = RecordedKeys::Hash("c1", "r2");
  EXPECT_NE(a, b);
  EXPECT_NE(RecordedKeys::Hash("c1", "r1"), RecordedKeys::Hash("c1r", "1"));
  EXPECT_FALSE(keys.MayContain(a, t));
  keys.Add(a, t + 60'000, t);
  for (int i = 0; i < 5000; ++i)
    keys.Add(RecordedKeys::Hash("c", std::to_string(i)), t + 60'000 + i * 10, t);
  keys.Add(b, t + 120'000, t);
  EXPECT_EQ(keys.size(), 5002u);
  EXPECT_TRUE(keys.MayContain(a, t));  // in a sealed slice
  EXPECT_TRUE(keys.MayContain(b, t));  // in the open one
  EXPECT_TRUE(keys.MayContain(RecordedKeys::Hash("c", "4321"), t + 60'000));
  EXPECT_FALSE(keys.MayContain(RecordedKeys::Hash("c", "5000"), t));
  EXPECT_FALSE(keys.MayContain(RecordedKeys::Hash("c2", "r1"), t));
  // Expired records are forgotten, a slice at a time (slices of 3.75 s for a 60 s window).
  EXPECT_TRUE(keys.MayContain(a, t + 62'000));  // its slice lasts till t + 63.75 s
  EXPECT_FALSE(keys.MayContain(a, t + 64'000));
  EXPECT_TRUE(keys.MayContain(b, t + 64'000));
  EXPECT_LT(keys.size(), 5002u);
  EXPECT_FALSE(keys.MayContain(b, t + 124'000));
  EXPECT_EQ(keys.size(), 0u);

  // Beyond its capacity it forgets the oldest slice, and answers "maybe" until that slice's
  // records have expired.
  RecordedKeys small(16'000, 3);  // slices of 1 s
  small.Add(a, t + 1000, t);
  small.Add(b, t + 5000, t);
  small.Add(RecordedKeys::Hash("c", "x"), t + 9000, t);
  EXPECT_FALSE(small.MayContain(RecordedKeys::Hash("c", "y"), t));
  small.Add(RecordedKeys::Hash("c", "z"), t + 13'000, t);  // a's slice goes
  EXPECT_EQ(small.size(), 3u);
  EXPECT_TRUE(small.MayContain(RecordedKeys::Hash("c", "y"), t));
  EXPECT_TRUE(small.MayContain(RecordedKeys::Hash("c", "y"), t + 2000));  // a's slice: till t+2000
  EXPECT_FALSE(small.MayContain(RecordedKeys::Hash("c", "y"), t + 2001));
  EXPECT_TRUE(small.MayContain(b, t + 2001));
  small.UnknownUntil(t + 4000);
  EXPECT_TRUE(small.MayContain(RecordedKeys::Hash("c", "y"), t + 3000));

  // Adding drops what expired, also when nobody asks (the answers in memory may be complete
  // for hours): the hashes do not pile up to the capacity.
  RecordedKeys steady(1000);
  for (int s = 0; s < 100; ++s) {
    for (int i = 0; i < 100; ++i)
      steady.Add(RecordedKeys::Hash("c", std::to_string(s * 100 + i)), t + s * 1000 + 1000,
                 t + s * 1000);
  }
  EXPECT_LE(steady.size(), 400u);
}

// After a restart the service reads which writes it recorded: only a repeat of one of those is
// looked up in the database; the other writes of the first window are not.
TEST_F(RouterTest, AfterARestartOnlyPossibleRepeatsAreLookedUpInTheDatabase) {
  const std::string create =
      R"({"id":"w1","operation":"create","entity":"users","data":{"name":"Once"}})";
  ASSERT_TRUE(Send(create)["success"].GetBool());
  EXPECT_EQ(router_->stats().record_lookups, 1u);  // this Router never read the records
  RouterOptions o;
  o.max_payload_bytes = 4096;
  router_ = std::make_unique<Router>(models_, *db_, o);  // the restart
  ASSERT_TRUE(router_->LoadRecordedWrites().ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Send(R"({"id":"n)" + std::to_string(i) +
                     R"(","operation":"create","entity":"users","data":{"name":"New"}})")["success"]
                    .GetBool());
  }
  EXPECT_EQ(router_->stats().record_lookups, 0u);
  ASSERT_TRUE(Send(create)["success"].GetBool());  // the repeat: looked up, answered, not applied
  EXPECT_EQ(router_->stats().record_lookups, 1u);
  EXPECT_EQ(router_->stats().dedup_hits, 1u);
  EXPECT_EQ(CountUsers(), 21);
  // A write of this run, forgotten by a small DedupCache, is still known to have a record.
  o.dedup_capacity = 1;
  router_ = std::make_unique<Router>(models_, *db_, o);
  ASSERT_TRUE(router_->LoadRecordedWrites().ok());
  const std::string other =
      R"({"id":"w2","operation":"create","entity":"users","data":{"name":"Two"}})";
  ASSERT_TRUE(Send(other)["success"].GetBool());
  Send(R"({"id":"w3","operation":"create","entity":"users","data":{"name":"Three"}})");
  ASSERT_TRUE(Send(other)["success"].GetBool());
  EXPECT_EQ(router_->stats().dedup_hits, 1u);
  EXPECT_EQ(CountUsers(), 23);
}

// Several instances writing records to one database (cluster.enabled): a client's retry may
// reach another instance than the one that applied it — with its dedup cache complete for long
// — and must not be applied twice there. Two Routers on one database play the two instances.
TEST_F(RouterTest, WithSharedRecordsARetryOnAnotherInstanceIsNotAppliedTwice) {
  const std::string create =
      R"({"id":"x1","operation":"create","entity":"users","data":{"name":"Once"}})";
  RouterOptions shared;
  shared.dedup_window_s = 1;  // its cache is complete after a second
  shared.records_shared = true;
  RouterOptions alone = shared;
  alone.records_shared = false;
  Router other(models_, *db_, shared), sole(models_, *db_, alone);
  ASSERT_TRUE(sole.LoadRecordedWrites().ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  ASSERT_TRUE(Send(create)["success"].GetBool());  // applied by the first instance (window 60 s)
  ClientInfo info{"c1", "", "", {}};
  rapidjson::Document d;
  d.Parse(other.Handle(info, create).c_str());  // the retry, on the other instance
  ASSERT_TRUE(d["success"].GetBool());
  EXPECT_EQ(other.stats().dedup_hits, 1u);
  EXPECT_EQ(CountUsers(), 1);
  // A sole writer knows the records are all its own: it does not look. (Shown with a Router
  // that is not the only writer here, to make the difference visible.)
  sole.Handle(info, create);
  EXPECT_EQ(sole.stats().record_lookups, 0u);
  EXPECT_EQ(CountUsers(), 2);
}

TEST_F(RouterTest, BadRequestsGetTheirErrorCodeAndWriteNothing) {
  Send(R"({"id":"c","operation":"create","entity":"users","data":{"name":"A","email":"a@x"}})");
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "invalid_json"},
      {"[1,2]", "invalid_message"},
      {R"({"id":{},"operation":"read","entity":"users"})", "invalid_message"},
      {R"({"id":"x","type":"weird","operation":"read","entity":"users"})", "invalid_message"},
      {R"({"id":"x","operation":"drop","entity":"users"})", "invalid_operation"},
      {R"({"id":"x","operation":"read","entity":"nope"})", "model_not_found"},
      {R"({"id":"x","operation":"read","entity":"users; DROP TABLE users"})", "model_not_found"},
      {R"({"id":"x","operation":"read","entity":"users","options":{"filters":[{"column":"x\" OR 1=1","operator":"eq","value":1}]}})",
       "unknown_column"},
      {R"({"id":"x","operation":"read","entity":"users","options":{"filters":[{"column":"name","operator":"regex","value":"a"}]}})",
       "invalid_filter"},
      {R"({"id":"x","operation":"read","entity":"users","options":{"filters":[{"column":"id","operator":"like","value":"1%"}]}})",
       "invalid_filter"},
      {R"({"id":"x","operation":"read","entity":"users","options":{"filters":[{"column":"id","operator":"eq","value":"abc"}]}})",
       "invalid_value"},
      {R"({"id":"x","operation":"read","entity":"users","options":{"filters":[{"column":"name","operator":"like","value":"a\\"}]}})",
       "invalid_filter"},
      {R"({"id":"x","operation":"read","entity":"users","options":{"filters":[{"column":"id","operator":"between","value":[1]}]}})",
       "invalid_filter"},
      {R"({"id":"x","operation":"read","entity":"users","options":{"limit":-1}})",
       "invalid_option"},
      {R"({"id":"x","operation":"read","entity":"users","options":{"customOperators":[{"sql":"1=1"}]}})",
       "invalid_option"},
      {R"({"id":"x","operation":"read","entity":"users","options":{"sort":[{"column":"nope"}]}})",
       "unknown_column"},
      {R"({"id":"x","operation":"create","entity":"users","data":{"email":"b@x"}})",
       "invalid_value"},
      {R"({"id":"x","operation":"create","entity":"users","data":{"name":null}})", "invalid_value"},
      {R"({"id":"x","operation":"create","entity":"users","data":{"name":"B","nope":1}})",
       "unknown_column"},
      {R"({"id":"x","operation":"create","entity":"users","data":{"name":"B","email":"a@x"}})",
       "conflict"},
      {R"({"id":"x","operation":"create","entity":"users","data":[{"name":"B"},{"name":5}]})",
       "invalid_value"},
      {R"({"id":"x","operation":"update","entity":"users","data":{"name":"B"}})",
       "invalid_message"},
      {R"({"id":"x","operation":"update","entity":"users","record_id":1,"data":{"id":2}})",
       "invalid_value"},
      {R"({"id":"x","operation":"subscribe","type":"subscription","entity":"users"})",
       "invalid_operation"},
  };
  for (const auto& [payload, code] : cases) {
    EXPECT_EQ(ErrorCodeOf(payload), code) << payload;
  }
  EXPECT_EQ(CountUsers(), 1);
}

TEST_F(RouterTest, ErrorsEchoTheRequestId) {
  auto d = Send(R"({"id":42,"operation":"read","entity":"nope"})");
  EXPECT_EQ(d["id"].GetInt(), 42);
  auto e = Send("{{{");
  EXPECT_STREQ(e["id"].GetString(), "");
}

TEST_F(RouterTest, PayloadOverTheLimitIsRefusedUnparsed) {
  std::string big = R"({"id":"b","operation":"create","entity":"users","data":{"name":")" +
                    std::string(5000, 'x') + "\"}}";
  EXPECT_EQ(ErrorCodeOf(big), "payload_too_large");
  EXPECT_EQ(CountUsers(), 0);
}

TEST_F(RouterTest, DeeplyNestedJsonDoesNotCrash) {
  std::string deep(3000, '[');
  EXPECT_EQ(ErrorCodeOf(deep), "invalid_json");
  std::string groups = R"({"id":"g","operation":"read","entity":"users","options":{"filters":)";
  for (int i = 0; i < 20; ++i) groups += R"([{"filters":)";
  groups += "[]";
  for (int i = 0; i < 20; ++i) groups += "}]";
  groups += "}}";
  EXPECT_EQ(ErrorCodeOf(groups), "invalid_filter");
}

// jsonb (PostgreSQL) and text (SQLite) compare JSON differently: rather than differ, json fields
// are filtered by null-ness only and never sorted on.
TEST_F(RouterTest, JsonFieldsFilterByNullnessOnlyAndDoNotSort) {
  Send(
      R"({"id":"c","operation":"create","schema":"iot","entity":"readings","data":{"id":"r1","meta":{"a":1}}})");
  EXPECT_EQ(
      ErrorCodeOf(
          R"({"id":"x","operation":"read","schema":"iot","entity":"readings","options":{"filters":[{"column":"meta","operator":"eq","value":{"a":1}}]}})"),
      "invalid_filter");
  EXPECT_EQ(
      ErrorCodeOf(
          R"({"id":"x","operation":"read","schema":"iot","entity":"readings","options":{"sort":[{"column":"meta"}]}})"),
      "invalid_option");
  auto d = Send(
      R"({"id":"x","operation":"read","schema":"iot","entity":"readings","options":{"filters":[{"column":"meta","operator":"is_not_null"}]}})");
  ASSERT_TRUE(d["success"].GetBool());
  EXPECT_EQ(d["data"].Size(), 1u);
  // A JSON string holding \u0000 is refused too (jsonb cannot store it).
  EXPECT_EQ(
      ErrorCodeOf(
          R"({"id":"y","operation":"create","schema":"iot","entity":"readings","data":{"id":"r2","meta":{"k":"a\u0000b"}}})"),
      "invalid_value");
}

TEST_F(RouterTest, ClientAccessReadOnlyAndNoneAreForbiddenBeforeAnythingRuns) {
  // Rows put there by the host (a plugin's Insert) exist, whatever clients may do.
  for (const char* table : {"ledger", "secrets"}) {
    auto m = models_.Find("public", table);
    ASSERT_TRUE(m);
    ASSERT_TRUE(db_->Create(*m, {{{1, Value{std::string("by the host")}}}}).ok());
  }
  auto code = [&](const std::string& op, const std::string& entity, const std::string& rest) {
    return ErrorCodeOf(R"({"id":"x","type":")" +
                       std::string(op == "subscribe" ? "subscription" : "request") +
                       R"(","operation":")" + op + R"(","entity":")" + entity + "\"" + rest + "}");
  };
  const std::string by_key = R"(,"record_id":"1")";
  const std::string data = R"(,"data":{"note":"forged"})";
  EXPECT_EQ(code("read", "ledger", ""), "success");
  EXPECT_EQ(code("read", "ledger", by_key), "success");
  EXPECT_EQ(code("meta", "ledger", ""), "success");
  EXPECT_EQ(code("create", "ledger", data), "forbidden");
  EXPECT_EQ(code("update", "ledger", by_key + data), "forbidden");
  EXPECT_EQ(code("delete", "ledger", by_key), "forbidden");
  for (const char* op : {"read", "meta", "create", "update", "delete"}) {
    EXPECT_EQ(code(op, "secrets", std::string(op) == "create" ? data : by_key + data), "forbidden")
        << op;
  }
  auto d = Send(R"({"id":"x","operation":"read","entity":"secrets"})");
  EXPECT_STREQ(d["error"]["message"].GetString(), "public.secrets is not accessible to clients");
  d = Send(R"({"id":"x","operation":"delete","entity":"ledger","record_id":"1"})");
  EXPECT_STREQ(d["error"]["message"].GetString(), "public.ledger is read-only for clients");
  // Nothing changed.
  for (const char* table : {"ledger", "secrets"}) {
    auto m = models_.Find("public", table);
    adapters::ReadQuery q;
    q.model = m;
    q.columns = {0, 1};
    q.limit = 10;
    auto rows = db_->Read(q);
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows.value().rows.size(), 1u) << table;
  }
}

TEST_F(RouterTest, UnsupportedOrUnknownOptionsAreRefusedByName) {
  // Issue 13: a client paging by cursor would otherwise get page one again, forever.
  for (const char* option :
       {"cursor_forward", "cursor_backward", "fetch_row_number", "parameters"}) {
    auto d = Send(std::string(R"({"id":"x","operation":"read","entity":"users","options":{")") +
                  option + R"(":"abc"}})");
    ASSERT_TRUE(d.HasMember("error")) << option;
    EXPECT_STREQ(d["error"]["code"].GetString(), "invalid_option");
    EXPECT_EQ(std::string(d["error"]["message"].GetString()),
              std::string("option '") + option +
                  "' is not supported; page with limit and offset, sorted by a unique column");
    // Sent as "not used" (null or ""): tolerated.
    EXPECT_EQ(
        ErrorCodeOf(std::string(R"({"id":"x","operation":"read","entity":"users","options":{")") +
                    option + R"(":null,"limit":1}})"),
        "success")
        << option;
  }
  auto d = Send(R"({"id":"x","operation":"read","entity":"users","options":{"limt":5}})");
  EXPECT_STREQ(d["error"]["code"].GetString(), "invalid_option");
  EXPECT_STREQ(d["error"]["message"].GetString(),
               "option 'limt' is unknown (known: filters, sort, columns, omit_columns, limit, "
               "offset, since_change_seq)");
  EXPECT_EQ(
      ErrorCodeOf(
          R"({"id":"x","type":"subscription","operation":"subscribe","entity":"users","options":{"cursor_forward":"x"}})"),
      "invalid_option");
}

TEST_F(RouterTest, PingIsAnsweredWithPong) {
  auto d = Send(R"({"id":"p","type":"ping"})");
  EXPECT_STREQ(d["type"].GetString(), "pong");
  EXPECT_STREQ(d["id"].GetString(), "p");
  // The process's instance id: the same on every pong of this process.
  ASSERT_TRUE(d.HasMember("instance") && d["instance"].IsString());
  EXPECT_EQ(d["instance"].GetString(), protocol::ProcessInstance());
  EXPECT_EQ(Send(R"({"id":"q","type":"ping"})")["instance"].GetString(),
            protocol::ProcessInstance());
  EXPECT_EQ(protocol::ProcessInstance().size(), 16u);
}

TEST_F(RouterTest, ReadsCarryTheChangeSeqTheyStandAt) {
  auto empty = Send(R"({"id":"r0","operation":"read","entity":"users"})");
  EXPECT_EQ(empty["metadata"]["change_seq"].GetInt64(), 0);
  Send(R"({"id":"c1","operation":"create","entity":"users","data":{"name":"Ann"}})");
  Send(R"({"id":"c2","operation":"create","entity":"users","data":{"name":"Bo"}})");
  Send(R"({"id":"u","operation":"update","entity":"users","data":{"id":1,"status":"off"}})");
  auto list = Send(R"({"id":"r1","operation":"read","entity":"users"})");
  EXPECT_EQ(list["metadata"]["change_seq"].GetInt64(), 3);
  EXPECT_EQ(list["metadata"]["total"].GetInt64(), 2);
  auto one = Send(R"({"id":"r2","operation":"read","entity":"users","record_id":"2"})");
  ASSERT_TRUE(one["success"].GetBool());
  EXPECT_EQ(one["metadata"]["change_seq"].GetInt64(), 3);
  EXPECT_FALSE(one["metadata"].HasMember("total")) << "a single-record read has no list metadata";
}

TEST_F(RouterTest, SinceChangeSeqIsRefusedOutsideSubscribeAndWhenNotANonNegativeInteger) {
  auto d =
      Send(R"({"id":"x","operation":"read","entity":"users","options":{"since_change_seq":1}})");
  EXPECT_STREQ(d["error"]["code"].GetString(), "invalid_option");
  EXPECT_STREQ(d["error"]["message"].GetString(),
               "option 'since_change_seq' applies to subscribe only");
  for (const char* bad : {"-1", "\"5\"", "1.5", "true", "18446744073709551615"}) {
    auto e = Send(std::string(R"({"id":"x","type":"subscription","operation":"subscribe",)") +
                  R"("entity":"users","options":{"since_change_seq":)" + bad + "}}");
    EXPECT_STREQ(e["error"]["code"].GetString(), "invalid_option") << bad;
    EXPECT_STREQ(e["error"]["message"].GetString(),
                 "since_change_seq must be a non-negative integer")
        << bad;
  }
  EXPECT_EQ(
      ErrorCodeOf(
          R"({"id":"x","operation":"read","entity":"users","options":{"since_change_seq":null}})"),
      "success");
}

}  // namespace
}  // namespace mqttspec::server
