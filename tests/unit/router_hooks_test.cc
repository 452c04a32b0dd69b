// The Router with hooks: each hook point's effect on what is written, read, answered, notified.
//
// On SQLite in memory; RouterHooksTest (hooks_fixtures.h) compares what the client is answered
// with what a Router without hooks reads.

#include <gtest/gtest.h>
#include <mqttspec/plugin.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/unit/hooks_fixtures.h"

namespace mqttspec::server {
namespace {

using hooktest::RouterHooksTest;

// A test hook written as a void lambda (gtest's ASSERT_ needs a function returning void): it
// always continues.
template <class F>
HookFn Continuing(F f) {
  return [f](HookContext& ctx) {
    f(ctx);
    return HookResult::kContinue;
  };
}

TEST_F(RouterHooksTest, BeforeCreateAbortWritesNothingAndAnswersForbiddenWithItsMessage) {
  hooks_.Register(HookType::kBeforeCreate, [](HookContext& ctx) {
    if (ctx.GetField("name") == std::optional<Value>(Value{std::string("Mallory")}))
      return ctx.Abort("Mallory may not sign up");
    return HookResult::kContinue;
  });
  auto d = Send(R"({"id":"c1","operation":"create","entity":"users","data":{"name":"Mallory"}})");
  EXPECT_EQ(CodeOf(d), "forbidden");
  EXPECT_EQ(MessageOf(d), "Mallory may not sign up");
  EXPECT_STREQ(d["id"].GetString(), "c1");
  EXPECT_EQ(StoredUsers(), 0);
  // A batch: the second record is refused, so none is written.
  auto b = Send(R"({"id":"c2","operation":"create","entity":"users",
                   "data":[{"name":"Ann"},{"name":"Mallory"},{"name":"Bob"}]})");
  EXPECT_EQ(CodeOf(b), "forbidden");
  EXPECT_EQ(StoredUsers(), 0);
  // What the hook lets through is written.
  EXPECT_EQ(
      CodeOf(Send(R"({"id":"c3","operation":"create","entity":"users","data":{"name":"Ann"}})")),
      "success");
  EXPECT_EQ(StoredUsers(), 1);
}

TEST_F(RouterHooksTest, AStopInAnAfterHookOfAWriteIsReportedAsCommittedNeverAsForbidden) {
  // Issue 13: an After hook cannot undo a committed write; a plain forbidden would tell the client
  // that nothing happened.
  for (HookType t : {HookType::kAfterCreate, HookType::kAfterUpdate, HookType::kAfterDelete})
    hooks_.Register(t, [](HookContext& ctx) { return ctx.Abort("audit trail unavailable"); });
  auto c = Send(R"({"id":"c","operation":"create","entity":"users","data":{"name":"Ann"}})");
  EXPECT_EQ(CodeOf(c), "hook_error");
  EXPECT_EQ(MessageOf(c), "audit trail unavailable (the create was committed)");
  ASSERT_TRUE(c["error"].HasMember("committed"));
  EXPECT_TRUE(c["error"]["committed"].GetBool());
  EXPECT_EQ(StoredUsers(), 1);
  auto u = Send(
      R"({"id":"u","operation":"update","entity":"users","record_id":1,"data":{"name":"Bea"}})");
  EXPECT_EQ(MessageOf(u), "audit trail unavailable (the update was committed)");
  EXPECT_TRUE(u["error"]["committed"].GetBool());
  auto d = Send(R"({"id":"d","operation":"delete","entity":"users","record_id":1})");
  EXPECT_EQ(MessageOf(d), "audit trail unavailable (the delete was committed)");
  EXPECT_TRUE(d["error"]["committed"].GetBool());
  EXPECT_EQ(StoredUsers(), 0) << "the delete happened";
  // A read's After hook stop is an ordinary refusal: nothing was written.
  hooks_.Register(HookType::kAfterRead, [](HookContext& ctx) { return ctx.Abort("hidden"); });
  auto r = Send(R"({"id":"r","operation":"read","entity":"users"})");
  EXPECT_EQ(CodeOf(r), "forbidden");
  EXPECT_FALSE(r["error"].HasMember("committed"));
}

TEST_F(RouterHooksTest, AStopWithoutAbortIsForbiddenAndAnAfterHookMayHideAWrittenRow) {
  hooks_.Register(HookType::kBeforeDelete, [](HookContext&) { return HookResult::kStop; });
  hooks_.Register(HookType::kAfterUpdate, [](HookContext& ctx) {
    ctx.result()->clear();  // hide the row: the update stands, the answer says null
    return HookResult::kContinue;
  });
  int64_t id = Seed("ann", "t1");
  auto d = Send(R"({"id":"d","operation":"delete","entity":"users","record_id":)" +
                std::to_string(id) + "}");
  EXPECT_EQ(CodeOf(d), "forbidden");
  EXPECT_EQ(MessageOf(d), "refused by a hook");
  EXPECT_EQ(StoredUsers(), 1);
  auto u = Send(R"({"id":"u","operation":"update","entity":"users","record_id":)" +
                std::to_string(id) + R"(,"data":{"name":"bea"}})");
  EXPECT_EQ(CodeOf(u), "success");
  EXPECT_TRUE(u["data"].IsNull());
}

TEST_F(RouterHooksTest, BeforeHookAbortWithAProtocolCodeAnswersThatCodeAndWritesNothing) {
  int64_t id = Seed("Ann", "t1");
  hooks_.Register(HookType::kBeforeUpdate,
                  [](HookContext& ctx) { return ctx.Abort("name is taken", "conflict"); });
  hooks_.Register(HookType::kBeforeDelete,
                  [](HookContext& ctx) { return ctx.Abort("no such thing", "i_am_not_a_code"); });
  auto u = Send(R"({"id":"u","operation":"update","entity":"users","record_id":)" +
                std::to_string(id) + R"(,"data":{"name":"Bob"}})");
  EXPECT_EQ(CodeOf(u), "conflict");
  EXPECT_EQ(MessageOf(u), "name is taken");
  auto del = Send(R"({"id":"d","operation":"delete","entity":"users","record_id":)" +
                  std::to_string(id) + "}");
  EXPECT_EQ(CodeOf(del), "forbidden");
  EXPECT_EQ(MessageOf(del), "no such thing");
  auto truth = Truth(R"({"id":"r","operation":"read","entity":"users","record_id":)" +
                     std::to_string(id) + "}");
  ASSERT_EQ(CodeOf(truth), "success");
  EXPECT_STREQ(truth["data"]["name"].GetString(), "Ann");
}

TEST_F(RouterHooksTest, ThrowingHookAnswersHookErrorAndTheNextRequestStillWorks) {
  hooks_.Register(HookType::kBeforeCreate, [](HookContext& ctx) {
    if (ctx.GetField("name") == std::optional<Value>(Value{std::string("boom")}))
      throw std::runtime_error("database password is hunter2");
    return HookResult::kContinue;
  });
  auto d = Send(R"({"id":"c1","operation":"create","entity":"users","data":{"name":"boom"}})");
  EXPECT_EQ(CodeOf(d), "hook_error");
  EXPECT_STREQ(d["id"].GetString(), "c1");
  EXPECT_EQ(MessageOf(d).find("hunter2"), std::string::npos) << MessageOf(d);
  EXPECT_EQ(StoredUsers(), 0);
  auto next = Send(R"({"id":"c2","operation":"create","entity":"users","data":{"name":"fine"}})");
  EXPECT_EQ(CodeOf(next), "success");
  EXPECT_EQ(CodeOf(Send(R"({"id":"r","operation":"read","entity":"users"})")), "success");
  EXPECT_EQ(StoredUsers(), 1);
}

TEST_F(RouterHooksTest, AfterReadMayChangeAndRemoveTheRowsTheClientGets) {
  Seed("ann", "t1", 30);
  Seed("kid", "t1", 12);
  Seed("bob", "t1", 40);
  hooks_.Register(HookType::kAfterRead, Continuing([](HookContext& ctx) {
                    auto cols = ctx.result_columns();
                    size_t name = std::find(cols.begin(), cols.end(), "name") - cols.begin();
                    size_t age = std::find(cols.begin(), cols.end(), "age") - cols.begin();
                    ASSERT_LT(name, cols.size());
                    ASSERT_LT(age, cols.size());
                    auto& rows = *ctx.result();
                    std::erase_if(rows,
                                  [&](const Row& r) { return std::get<int64_t>(r[age]) < 18; });
                    for (auto& r : rows) std::get<std::string>(r[name]) += " (adult)";
                  }));
  auto d = Send(R"({"id":"l","operation":"read","entity":"users"})");
  ASSERT_EQ(CodeOf(d), "success");
  EXPECT_EQ(Names(d), (std::vector<std::string>{"ann (adult)", "bob (adult)"}));
  EXPECT_EQ(d["metadata"]["count"].GetInt64(), 2);
  // The stored rows are untouched.
  EXPECT_EQ(Names(Truth(R"({"id":"l","operation":"read","entity":"users"})")),
            (std::vector<std::string>{"ann", "kid", "bob"}));
}

TEST_F(RouterHooksTest, AfterReadRemovingTheRowOfAByKeyReadAnswersNotFound) {
  int64_t ann = Seed("ann", "t1");
  int64_t kid = Seed("kid", "t1", 12);
  hooks_.Register(HookType::kAfterRead, [](HookContext& ctx) {
    auto cols = ctx.result_columns();
    size_t age = std::find(cols.begin(), cols.end(), "age") - cols.begin();
    if (age == cols.size()) return HookResult::kContinue;
    std::erase_if(*ctx.result(), [&](const Row& r) { return std::get<int64_t>(r[age]) < 18; });
    return HookResult::kContinue;
  });
  auto r = Send(R"({"id":"r","operation":"read","entity":"users","record_id":)" +
                std::to_string(kid) + "}");
  EXPECT_EQ(CodeOf(r), "not_found");
  auto ok = Send(R"({"id":"r","operation":"read","entity":"users","record_id":)" +
                 std::to_string(ann) + "}");
  ASSERT_EQ(CodeOf(ok), "success");
  EXPECT_STREQ(ok["data"]["name"].GetString(), "ann");
}

TEST_F(RouterHooksTest, AfterCreateAndAfterUpdateMayChangeTheAnswerButNotTheStoredRow) {
  auto redact = Continuing([](HookContext& ctx) {
    auto cols = ctx.result_columns();
    size_t tenant = std::find(cols.begin(), cols.end(), "tenant") - cols.begin();
    ASSERT_LT(tenant, cols.size());
    for (auto& r : *ctx.result()) r[tenant] = Value{std::string("***")};
  });
  hooks_.Register(HookType::kAfterCreate, redact);
  hooks_.Register(HookType::kAfterUpdate, redact);
  auto c = Send(
      R"({"id":"c","operation":"create","entity":"users","data":{"name":"Ann","tenant":"t1"}})");
  ASSERT_EQ(CodeOf(c), "success");
  EXPECT_STREQ(c["data"]["tenant"].GetString(), "***");
  int64_t id = c["data"]["id"].GetInt64();
  auto u = Send(R"({"id":"u","operation":"update","entity":"users","record_id":)" +
                std::to_string(id) + R"(,"data":{"age":31}})");
  ASSERT_EQ(CodeOf(u), "success");
  EXPECT_STREQ(u["data"]["tenant"].GetString(), "***");
  EXPECT_EQ(u["data"]["age"].GetInt64(), 31);
  auto truth = Truth(R"({"id":"r","operation":"read","entity":"users","record_id":)" +
                     std::to_string(id) + "}");
  EXPECT_STREQ(truth["data"]["tenant"].GetString(), "t1");
}

TEST_F(RouterHooksTest, BeforeCreateAndBeforeUpdateMayChangeWhatIsWritten) {
  hooks_.Register(HookType::kBeforeCreate, [](HookContext& ctx) {
    ctx.SetField("tenant", Value{std::string("stamped")});
    ctx.RemoveField("age");
    return HookResult::kContinue;
  });
  hooks_.Register(HookType::kBeforeUpdate, [](HookContext& ctx) {
    ctx.SetField("score", Value{std::string("9.5")});
    return HookResult::kContinue;
  });
  auto c = Send(R"({"id":"c","operation":"create","entity":"users",
                   "data":{"name":"Ann","tenant":"mine","age":30}})");
  ASSERT_EQ(CodeOf(c), "success");
  EXPECT_STREQ(c["data"]["tenant"].GetString(), "stamped");
  EXPECT_TRUE(c["data"]["age"].IsNull());
  int64_t id = c["data"]["id"].GetInt64();
  auto u = Send(R"({"id":"u","operation":"update","entity":"users","record_id":)" +
                std::to_string(id) + R"(,"data":{"name":"Bea"}})");
  ASSERT_EQ(CodeOf(u), "success");
  auto truth = Truth(R"({"id":"r","operation":"read","entity":"users","record_id":)" +
                     std::to_string(id) + "}");
  EXPECT_STREQ(truth["data"]["tenant"].GetString(), "stamped");
  EXPECT_STREQ(truth["data"]["name"].GetString(), "Bea");
  EXPECT_DOUBLE_EQ(truth["data"]["score"].GetDouble(), 9.5);
}

TEST_F(RouterHooksTest, BeforeCreateHookMaySupplyARequiredField) {
  // accounts.owner is required (not nullable, no default); the hook fills it in from the
  // client, as an auth or tenant hook would.
  hooks_.Register(HookType::kBeforeCreate, [](HookContext& ctx) {
    if (ctx.entity() == "accounts") ctx.SetField("owner", Value{ctx.client().id});
    return HookResult::kContinue;
  });
  auto c = Send(R"({"id":"c","operation":"create","entity":"accounts","data":{"label":"x"}})");
  ASSERT_EQ(CodeOf(c), "success") << MessageOf(c);
  EXPECT_STREQ(c["data"]["owner"].GetString(), "c1");
}

TEST_F(RouterHooksTest, BeforeCreateHookRemovingARequiredFieldIsRefusedAsInvalidValue) {
  hooks_.Register(HookType::kBeforeCreate, [](HookContext& ctx) {
    ctx.RemoveField("owner");
    return HookResult::kContinue;
  });
  auto c = Send(
      R"({"id":"c","operation":"create","entity":"accounts","data":{"owner":"o","label":"x"}})");
  EXPECT_EQ(CodeOf(c), "invalid_value") << MessageOf(c);
  auto truth = Truth(R"({"id":"n","operation":"read","entity":"accounts"})");
  EXPECT_EQ(truth["metadata"]["total"].GetInt64(), 0);
}

TEST_F(RouterHooksTest, HookAddingABadFilterOrFieldFailsTheRequestWithThatErrorAndWritesNothing) {
  Seed("ann", "t1");
  hooks_.Register(HookType::kBeforeRead, [](HookContext& ctx) {
    ctx.AddFilter("tenant\" OR 1=1 --", "eq", {Value{std::string("x")}});
    return HookResult::kContinue;
  });
  hooks_.Register(HookType::kBeforeCreate, [](HookContext& ctx) {
    ctx.SetField("age", Value{std::string("old")});
    return HookResult::kContinue;
  });
  hooks_.Register(HookType::kBeforeDelete, [](HookContext& ctx) {
    ctx.AddFilter("age", "eq", {Value{std::string("x")}});
    return HookResult::kContinue;
  });
  EXPECT_EQ(CodeOf(Send(R"({"id":"r","operation":"read","entity":"users"})")), "unknown_column");
  EXPECT_EQ(CodeOf(Send(R"({"id":"r","operation":"read","entity":"users","record_id":1})")),
            "unknown_column");
  EXPECT_EQ(CodeOf(Send(R"({"id":"c","operation":"create","entity":"users","data":{"name":"B"}})")),
            "invalid_value");
  EXPECT_EQ(CodeOf(Send(R"({"id":"d","operation":"delete","entity":"users","record_id":1})")),
            "invalid_value");
  EXPECT_EQ(StoredUsers(), 1);
}

TEST_F(RouterHooksTest, SettingAFieldOutsideACreateOrUpdateIsAHookError) {
  Seed("ann", "t1");
  hooks_.Register(HookType::kBeforeRead, [](HookContext& ctx) {
    ctx.SetField("name", Value{std::string("x")});
    return HookResult::kContinue;
  });
  EXPECT_EQ(CodeOf(Send(R"({"id":"r","operation":"read","entity":"users"})")), "hook_error");
}

TEST_F(RouterHooksTest, BeforeReadFilterNarrowsListAndByKeyReads) {
  int64_t a1 = Seed("a1", "A");
  int64_t b1 = Seed("b1", "B");
  Seed("a2", "A");
  IsolateTenants();
  client_.metadata["tenant"] = "A";
  auto list = Send(R"({"id":"l","operation":"read","entity":"users"})");
  ASSERT_EQ(CodeOf(list), "success");
  EXPECT_EQ(Names(list), (std::vector<std::string>{"a1", "a2"}));
  EXPECT_EQ(list["metadata"]["total"].GetInt64(), 2);
  // Client filters cannot widen it, not even with a top-level OR.
  auto widen = Send(R"({"id":"w","operation":"read","entity":"users","options":{"filters":[
      {"column":"tenant","operator":"eq","value":"B"},
      {"column":"name","operator":"eq","value":"b1","logic_operator":"OR"}]}})");
  ASSERT_EQ(CodeOf(widen), "success");
  EXPECT_EQ(Names(widen), std::vector<std::string>{});
  auto own = Send(R"({"id":"k","operation":"read","entity":"users","record_id":)" +
                  std::to_string(a1) + "}");
  ASSERT_EQ(CodeOf(own), "success");
  EXPECT_STREQ(own["data"]["name"].GetString(), "a1");
  EXPECT_EQ(CodeOf(Send(R"({"id":"k","operation":"read","entity":"users","record_id":)" +
                        std::to_string(b1) + "}")),
            "not_found");
}

TEST_F(RouterHooksTest, HookFilterNarrowsEveryRowWhenTheClientsFiltersHaveATopLevelOr) {
  // Stored: A in tenant t2, B and C in t1. Client asks name = A OR name = B; the hook adds
  // tenant = t1. Only B may come back (without grouping, SQL precedence would let A through).
  Seed("A", "t2");
  Seed("B", "t1");
  Seed("C", "t1");
  IsolateTenants();
  client_.metadata["tenant"] = "t1";
  auto d = Send(R"({"id":"o","operation":"read","entity":"users","options":{"filters":[
      {"column":"name","operator":"eq","value":"A"},
      {"column":"name","operator":"eq","value":"B","logic_operator":"OR"}]}})");
  ASSERT_EQ(CodeOf(d), "success");
  EXPECT_EQ(Names(d), (std::vector<std::string>{"B"}));
}

TEST_F(RouterHooksTest, BeforeUpdateFilterProtectsOtherTenantsRows) {
  int64_t a = Seed("a", "A");
  int64_t b = Seed("b", "B");
  IsolateTenants();
  client_.metadata["tenant"] = "A";
  auto other = Send(R"({"id":"u","operation":"update","entity":"users","record_id":)" +
                    std::to_string(b) + R"(,"data":{"name":"pwned"}})");
  EXPECT_EQ(CodeOf(other), "not_found");
  auto truth = Truth(R"({"id":"r","operation":"read","entity":"users","record_id":)" +
                     std::to_string(b) + "}");
  EXPECT_STREQ(truth["data"]["name"].GetString(), "b");
  auto own = Send(R"({"id":"u","operation":"update","entity":"users","record_id":)" +
                  std::to_string(a) + R"(,"data":{"name":"a2"}})");
  ASSERT_EQ(CodeOf(own), "success");
  EXPECT_STREQ(own["data"]["name"].GetString(), "a2");
}

TEST_F(RouterHooksTest, BeforeDeleteFilterProtectsOtherTenantsRows) {
  int64_t a = Seed("a", "A");
  int64_t b = Seed("b", "B");
  IsolateTenants();
  client_.metadata["tenant"] = "A";
  EXPECT_EQ(CodeOf(Send(R"({"id":"d","operation":"delete","entity":"users","record_id":)" +
                        std::to_string(b) + "}")),
            "not_found");
  EXPECT_EQ(StoredUsers(), 2);
  EXPECT_EQ(CodeOf(Send(R"({"id":"d","operation":"delete","entity":"users","record_id":)" +
                        std::to_string(a) + "}")),
            "success");
  EXPECT_EQ(StoredUsers(), 1);
  EXPECT_EQ(Names(Truth(R"({"id":"l","operation":"read","entity":"users"})")),
            std::vector<std::string>{"b"});
}

TEST_F(RouterHooksTest, BeforeSubscribeFilterIsPartOfTheSubscription) {
  IsolateTenants();
  client_.metadata["tenant"] = "A";
  auto plain = Send(R"({"id":"s","type":"subscription","operation":"subscribe","entity":"users"})");
  ASSERT_EQ(CodeOf(plain), "success");
  // With a top-level OR in the client's own filters, the hook's condition still applies to all.
  auto wide = Send(R"({"id":"s2","type":"subscription","operation":"subscribe","entity":"users",
      "options":{"filters":[{"column":"name","operator":"eq","value":"x"},
                            {"column":"name","operator":"eq","value":"y","logic_operator":"OR"}]}})");
  ASSERT_EQ(CodeOf(wide), "success");
  ASSERT_EQ(subs_->size(), 2u);
  EXPECT_TRUE(subs_->Match(*users_, UserRow(1, "x", "B")).empty());
  EXPECT_TRUE(subs_->Match(*users_, UserRow(2, "y", "B")).empty());
  EXPECT_TRUE(subs_->Match(*users_, UserRow(3, "z", "B")).empty());
  auto own = subs_->Match(*users_, UserRow(4, "x", "A"));
  EXPECT_EQ(own.size(), 2u);
  auto own_z = subs_->Match(*users_, UserRow(5, "z", "A"));
  ASSERT_EQ(own_z.size(), 1u);
  EXPECT_EQ(own_z[0]->id, plain["data"]["subscription_id"].GetString());
}

TEST_F(RouterHooksTest, BeforeSubscribeAbortOrAfterSubscribeFailureLeavesNoSubscription) {
  hooks_.Register(HookType::kBeforeSubscribe, [](HookContext& ctx) {
    if (ctx.client().metadata["may_subscribe"] != "yes")
      return ctx.Abort("no subscriptions for you");
    return HookResult::kContinue;
  });
  hooks_.Register(HookType::kAfterSubscribe, [](HookContext& ctx) {
    if (ctx.client().metadata["after"] == "throw") throw std::runtime_error("after failed");
    return HookResult::kContinue;
  });
  const std::string sub =
      R"({"id":"s","type":"subscription","operation":"subscribe","entity":"users"})";
  EXPECT_EQ(CodeOf(Send(sub)), "forbidden");
  EXPECT_EQ(subs_->size(), 0u);
  client_.metadata["may_subscribe"] = "yes";
  client_.metadata["after"] = "throw";
  EXPECT_EQ(CodeOf(Send(sub)), "hook_error");
  EXPECT_EQ(subs_->size(), 0u);
  client_.metadata["after"] = "";
  EXPECT_EQ(CodeOf(Send(sub)), "success");
  EXPECT_EQ(subs_->size(), 1u);
}

TEST_F(RouterHooksTest, BeforeUnsubscribeAbortKeepsTheSubscription) {
  hooks_.Register(HookType::kBeforeUnsubscribe,
                  [](HookContext& ctx) { return ctx.Abort("you stay subscribed"); });
  auto s = Send(R"({"id":"s","type":"subscription","operation":"subscribe","entity":"users"})");
  ASSERT_EQ(CodeOf(s), "success");
  std::string id = s["data"]["subscription_id"].GetString();
  auto u = Send(R"({"id":"u","type":"subscription","operation":"unsubscribe","subscription_id":")" +
                id + "\"}");
  EXPECT_EQ(CodeOf(u), "forbidden");
  EXPECT_EQ(subs_->size(), 1u);
}

TEST_F(RouterHooksTest, EntityScopedHooksRunOnlyForTheirModel) {
  std::vector<std::string> ran;
  hooks_.Register(
      HookType::kBeforeRead,
      [&](HookContext&) {
        ran.push_back("users");
        return HookResult::kContinue;
      },
      HookOptions{0, "users"});
  hooks_.Register(
      HookType::kBeforeRead,
      [&](HookContext&) {
        ran.push_back("public.users");
        return HookResult::kContinue;
      },
      HookOptions{0, "public.users"});
  hooks_.Register(
      HookType::kBeforeRead,
      [&](HookContext&) {
        ran.push_back("iot.readings");
        return HookResult::kContinue;
      },
      HookOptions{0, "iot.readings"});
  hooks_.Register(HookType::kBeforeRead, [&](HookContext&) {
    ran.push_back("*");
    return HookResult::kContinue;
  });
  ASSERT_EQ(CodeOf(Send(R"({"id":"r","operation":"read","entity":"users"})")), "success");
  EXPECT_EQ(ran, (std::vector<std::string>{"users", "public.users", "*"}));
  ran.clear();
  ASSERT_EQ(CodeOf(Send(R"({"id":"r","operation":"read","schema":"iot","entity":"readings"})")),
            "success");
  EXPECT_EQ(ran, (std::vector<std::string>{"iot.readings", "*"}));
  ran.clear();
  ASSERT_EQ(CodeOf(Send(R"({"id":"r","operation":"read","entity":"accounts"})")), "success");
  EXPECT_EQ(ran, (std::vector<std::string>{"*"}));
}

TEST_F(RouterHooksTest, HooksSeeTheOperationModelRecordIdAndData) {
  int64_t id = Seed("ann", "t1");
  std::vector<std::string> seen;
  hooks_.Register(HookType::kBeforeUpdate, Continuing([&](HookContext& ctx) {
                    seen.push_back(std::string(ctx.operation()) + " " + std::string(ctx.schema()) +
                                   "." + std::string(ctx.entity()));
                    ASSERT_NE(ctx.model(), nullptr);
                    EXPECT_EQ(ctx.model()->entity, "users");
                    ASSERT_NE(ctx.record_id(), nullptr);
                    EXPECT_EQ(*ctx.record_id(), Value{id});
                    EXPECT_EQ(ctx.GetField("name"),
                              std::optional<Value>(Value{std::string("bea")}));
                    EXPECT_FALSE(ctx.HasField("tenant"));
                    EXPECT_EQ(ctx.result(), nullptr);  // nothing read yet
                    EXPECT_EQ(ctx.client().id, "c1");
                  }));
  hooks_.Register(
      HookType::kAfterUpdate, Continuing([&](HookContext& ctx) {
        ASSERT_NE(ctx.result(), nullptr);
        ASSERT_EQ(ctx.result()->size(), 1u);
        auto cols = ctx.result_columns();
        EXPECT_EQ(cols, (std::vector<std::string>{"id", "name", "tenant", "age", "score"}));
        EXPECT_EQ((*ctx.result())[0][1], Value{std::string("bea")});
        EXPECT_EQ((*ctx.result())[0][2], Value{std::string("t1")});
        seen.push_back("after");
      }));
  auto u = Send(R"({"id":"u","operation":"update","entity":"users","record_id":)" +
                std::to_string(id) + R"(,"data":{"name":"bea"}})");
  ASSERT_EQ(CodeOf(u), "success");
  EXPECT_EQ(seen, (std::vector<std::string>{"update public.users", "after"}));
}

TEST_F(RouterHooksTest, BatchCreateRunsCreateHooksOncePerRecord) {
  std::vector<std::string> before, after;
  hooks_.Register(HookType::kBeforeCreate, [&](HookContext& ctx) {
    before.push_back(std::get<std::string>(*ctx.GetField("name")));
    return HookResult::kContinue;
  });
  hooks_.Register(HookType::kAfterCreate, Continuing([&](HookContext& ctx) {
                    ASSERT_EQ(ctx.result()->size(), 1u);
                    after.push_back(std::get<std::string>((*ctx.result())[0][1]));
                  }));
  auto c = Send(
      R"({"id":"c","operation":"create","entity":"users","data":[{"name":"a"},{"name":"b"}]})");
  ASSERT_EQ(CodeOf(c), "success");
  EXPECT_EQ(before, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(after, (std::vector<std::string>{"a", "b"}));
}

TEST_F(RouterHooksTest, HooksMayReadAndWriteTheClientsMetadataAcrossRequests) {
  hooks_.Register(HookType::kBeforeHandle, [](HookContext& ctx) {
    auto& n = ctx.client().metadata["requests"];
    n = std::to_string(n.empty() ? 1 : std::stoi(n) + 1);
    return HookResult::kContinue;
  });
  for (int i = 0; i < 3; ++i) Send(R"({"id":"r","operation":"read","entity":"users"})");
  EXPECT_EQ(client_.metadata["requests"], "3");
}

}  // namespace
}  // namespace mqttspec::server
