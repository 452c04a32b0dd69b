// Hook pipeline tests: the HookRegistry (order, priority, entity scoping, abort, exceptions), the
// RequestHookContext (filters and fields a hook adds go through the client-input checks), the
// Router with real hooks on SQLite in memory (each hook point's effect on what is written, read,
// answered and notified), the Service's connect/disconnect hooks, and the plugin loader.
//
// This file doubles as the source of the loader's test plugins: built as a MODULE library with
// MQTTSPEC_TEST_PLUGIN_<kind> defined (kind: ok, wrong_abi, no_entry_points, init_false,
// init_throws), only the plugin part below is compiled. The tests find the plugins in
// $MQTTSPEC_TEST_PLUGIN_DIR, else in the directory compiled in as MQTTSPEC_TEST_PLUGIN_DIR.

#if defined(MQTTSPEC_TEST_PLUGIN_ok) || defined(MQTTSPEC_TEST_PLUGIN_wrong_abi) ||               \
    defined(MQTTSPEC_TEST_PLUGIN_no_entry_points) || defined(MQTTSPEC_TEST_PLUGIN_init_false) || \
    defined(MQTTSPEC_TEST_PLUGIN_init_throws)

// ------------------------------------------------------------------------------- test plugins

#include <mqttspec/plugin.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#if defined(MQTTSPEC_TEST_PLUGIN_no_entry_points)
// A shared library that is not an mqttspec plugin: it exports functions, but not the two entry
// points (the names are near misses on purpose).
MQTTSPEC_PLUGIN_EXPORT int mqttspec_plugin_version() { return MQTTSPEC_PLUGIN_ABI_VERSION; }
MQTTSPEC_PLUGIN_EXPORT bool mqttspec_plugin_start() { return true; }
#else
MQTTSPEC_PLUGIN_EXPORT int mqttspec_plugin_abi_version() {
#if defined(MQTTSPEC_TEST_PLUGIN_wrong_abi)
  return MQTTSPEC_PLUGIN_ABI_VERSION + 1;  // built "for another mqttspec"
#else
  return MQTTSPEC_PLUGIN_ABI_VERSION;
#endif
}

MQTTSPEC_PLUGIN_EXPORT bool mqttspec_plugin_init(mqttspec::PluginHost& host,
                                                 const mqttspec::PluginOptions& options) {
#if defined(MQTTSPEC_TEST_PLUGIN_init_throws)
  (void)host;
  (void)options;
  throw std::runtime_error("the test plugin refuses to start");
#elif defined(MQTTSPEC_TEST_PLUGIN_init_false)
  (void)options;
  host.Log("error", "hooks_test_plugin_init_false: refusing to start");
  return false;
#else
  // ok (and wrong_abi, whose init must never be called): a BeforeCreate hook that sets the field
  // named by option `field` to option `value` ("$username": the client's username, as hooks see
  // it). Without both options, init fails.
  // Option init_log: a file that gets one line per init ("init <pid>"), to count them.
  if (auto log = options.find("init_log"); log != options.end()) {
    if (FILE* f = std::fopen(log->second.c_str(), "a")) {
      std::fprintf(f, "init %d\n", static_cast<int>(getpid()));
      std::fclose(f);
    }
  }
  auto field = options.find("field");
  auto value = options.find("value");
  if (field == options.end() || value == options.end()) {
    host.Log("error", "hooks_test_plugin: options 'field' and 'value' are required");
    return false;
  }
  host.RegisterHook(mqttspec::HookType::kBeforeCreate, [f = field->second, v = value->second](
                                                           mqttspec::HookContext& ctx) {
    ctx.SetField(f, mqttspec::Value{v == "$username" ? ctx.client().username : v});
    return mqttspec::HookResult::kContinue;
  });
  return true;
#endif
}
#endif

#else  // the tests

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "adapters/sqlite_database.h"
#include "hooks/hook_context.h"
#include "hooks/hook_registry.h"
#include "hooks/plugin_host.h"
#include "hooks/plugin_loader.h"
#include "server/config.h"
#include "server/core.h"
#include "server/mqtt_front.h"
#include "server/router.h"
#include "server/service.h"
#include "server/subscriptions.h"
#include "tests/unit/fakes.h"
#include "value_printer.h"

#ifndef MQTTSPEC_TEST_PLUGIN_DIR
#define MQTTSPEC_TEST_PLUGIN_DIR ""
#endif

namespace mqttspec::server {
namespace {

using hooks::AbortState;
using hooks::CorePluginHost;
using hooks::HookRegistry;
using hooks::RequestHookContext;
using protocol::ParseLimits;

// A test hook written as a void lambda (gtest's ASSERT_ needs a function returning void): it
// always continues.
template <class F>
HookFn Continuing(F f) {
  return [f](HookContext& ctx) {
    f(ctx);
    return HookResult::kContinue;
  };
}

std::string CodeName(const Error& e) { return std::string(ErrorCodeName(e.code)); }

// ------------------------------------------------------------------------------- HookRegistry

// A context without a model, as connect hooks get.
struct BareContext {
  ClientInfo client{"c1", "", "", {}};
  ParseLimits limits;
  RequestHookContext ctx{client, "read", nullptr, nullptr, limits};
};

Status RunOn(const HookRegistry& registry, HookType type, std::string_view entity) {
  BareContext b;
  b.ctx.set_type(type);
  return registry.Run(type, entity, b.ctx, b.ctx.state());
}

TEST(HookRegistryTest, HooksRunInRegistrationOrder) {
  HookRegistry registry;
  std::string trace;
  for (char c : std::string("abcde"))
    registry.Register(HookType::kBeforeRead, [&trace, c](HookContext&) {
      trace += c;
      return HookResult::kContinue;
    });
  ASSERT_TRUE(RunOn(registry, HookType::kBeforeRead, "public.users").ok());
  EXPECT_EQ(trace, "abcde");
  EXPECT_EQ(registry.count(), 5u);
  EXPECT_TRUE(registry.Has(HookType::kBeforeRead));
  EXPECT_FALSE(registry.Has(HookType::kAfterRead));
}

TEST(HookRegistryTest, LowerPriorityRunsFirstAndEqualPrioritiesKeepRegistrationOrder) {
  HookRegistry registry;
  std::string trace;
  auto add = [&](char c, int priority) {
    registry.Register(
        HookType::kBeforeCreate,
        [&trace, c](HookContext&) {
          trace += c;
          return HookResult::kContinue;
        },
        HookOptions{priority, ""});
  };
  add('a', 0);
  add('b', 10);
  add('c', -5);
  add('d', 0);
  add('e', 10);
  add('f', -5);
  add('g', 0);
  ASSERT_TRUE(RunOn(registry, HookType::kBeforeCreate, "public.users").ok());
  EXPECT_EQ(trace, "cfadgbe");
  trace.clear();  // and the same again: the order is stable from run to run
  ASSERT_TRUE(RunOn(registry, HookType::kBeforeCreate, "public.users").ok());
  EXPECT_EQ(trace, "cfadgbe");
}

TEST(HookRegistryTest, HooksOfOtherTypesDoNotRun) {
  HookRegistry registry;
  int ran = 0;
  registry.Register(HookType::kAfterRead, [&](HookContext&) {
    ++ran;
    return HookResult::kContinue;
  });
  ASSERT_TRUE(RunOn(registry, HookType::kBeforeRead, "public.users").ok());
  EXPECT_EQ(ran, 0);
}

TEST(HookRegistryTest, EntityScopedHookRunsOnlyForItsModelAndBareNamesMeanPublic) {
  HookRegistry registry;
  std::vector<std::string> ran;
  auto add = [&](std::string scope) {
    registry.Register(
        HookType::kBeforeRead,
        [&ran, scope](HookContext&) {
          ran.push_back(scope.empty() ? "*" : scope);
          return HookResult::kContinue;
        },
        HookOptions{0, scope});
  };
  add("users");
  add("public.users");
  add("iot.readings");
  add("");
  ASSERT_TRUE(RunOn(registry, HookType::kBeforeRead, "public.users").ok());
  EXPECT_EQ(ran, (std::vector<std::string>{"users", "public.users", "*"}));
  ran.clear();
  ASSERT_TRUE(RunOn(registry, HookType::kBeforeRead, "iot.readings").ok());
  EXPECT_EQ(ran, (std::vector<std::string>{"iot.readings", "*"}));
  ran.clear();
  ASSERT_TRUE(RunOn(registry, HookType::kBeforeRead, "public.orders").ok());
  EXPECT_EQ(ran, (std::vector<std::string>{"*"}));
  ran.clear();
  ASSERT_TRUE(RunOn(registry, HookType::kBeforeRead, "").ok());  // no model: unscoped only
  EXPECT_EQ(ran, (std::vector<std::string>{"*"}));
  ran.clear();
  // "users" in another schema is another model.
  ASSERT_TRUE(RunOn(registry, HookType::kBeforeRead, "iot.users").ok());
  EXPECT_EQ(ran, (std::vector<std::string>{"*"}));
}

TEST(HookRegistryTest, AbortStopsTheLaterHooksAndYieldsForbiddenWithItsMessage) {
  HookRegistry registry;
  bool later = false;
  registry.Register(HookType::kBeforeDelete,
                    [](HookContext& ctx) { return ctx.Abort("admins only"); });
  registry.Register(HookType::kBeforeDelete, [&](HookContext&) {
    later = true;
    return HookResult::kContinue;
  });
  auto st = RunOn(registry, HookType::kBeforeDelete, "public.users");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(CodeName(st.error()), "forbidden");
  EXPECT_EQ(st.error().message, "admins only");
  EXPECT_FALSE(later);
}

TEST(HookRegistryTest, AbortWithAProtocolCodeYieldsThatCodeAndAnUnknownCodeYieldsForbidden) {
  const std::pair<const char*, const char*> cases[] = {
      {"not_found", "not_found"},
      {"conflict", "conflict"},
      {"invalid_value", "invalid_value"},
      {"rate_limited", "rate_limited"},
      {"forbidden", "forbidden"},
      {"teapot", "forbidden"},
      {"", "forbidden"},
      {"NOT_FOUND", "forbidden"},
  };
  for (const auto& [code, expected] : cases) {
    HookRegistry registry;
    registry.Register(HookType::kBeforeRead, [code = std::string(code)](HookContext& ctx) {
      return ctx.Abort("nope", code);
    });
    auto st = RunOn(registry, HookType::kBeforeRead, "public.users");
    ASSERT_FALSE(st.ok()) << code;
    EXPECT_EQ(CodeName(st.error()), expected) << code;
    EXPECT_EQ(st.error().message, "nope") << code;
  }
}

TEST(HookRegistryTest, AbortWithoutMessageStillExplainsItself) {
  HookRegistry registry;
  registry.Register(HookType::kBeforeRead, [](HookContext& ctx) { return ctx.Abort(""); });
  auto st = RunOn(registry, HookType::kBeforeRead, "public.users");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(CodeName(st.error()), "forbidden");
  EXPECT_FALSE(st.error().message.empty());
}

TEST(HookRegistryTest, ThrowingHookYieldsHookErrorWithoutItsTextAndSkipsLaterHooks) {
  for (int variant = 0; variant < 2; ++variant) {
    HookRegistry registry;
    bool later = false;
    registry.Register(HookType::kBeforeUpdate, [variant](HookContext&) {
      if (variant == 0) throw std::runtime_error("secret detail at /etc/shadow");
      throw 42;  // not a std::exception
      return HookResult::kContinue;
    });
    registry.Register(HookType::kBeforeUpdate, [&](HookContext&) {
      later = true;
      return HookResult::kContinue;
    });
    auto st = RunOn(registry, HookType::kBeforeUpdate, "public.users");
    ASSERT_FALSE(st.ok()) << variant;
    EXPECT_EQ(CodeName(st.error()), "hook_error") << variant;
    EXPECT_EQ(st.error().message.find("secret"), std::string::npos) << st.error().message;
    EXPECT_EQ(st.error().message.find("/etc"), std::string::npos) << st.error().message;
    EXPECT_FALSE(later) << variant;
  }
}

TEST(HookRegistryTest, HookTypeNamesCoverAllSeventeenTypes) {
  std::set<std::string> names;
  for (int t = 0; t < kHookTypeCount; ++t)
    names.insert(std::string(hooks::HookTypeName(static_cast<HookType>(t))));
  EXPECT_EQ(names.size(), 17u);
  EXPECT_EQ(hooks::HookTypeName(HookType::kBeforeHandle), "BeforeHandle");
  EXPECT_EQ(hooks::HookTypeName(HookType::kAfterUnsubscribe), "AfterUnsubscribe");
}

// -------------------------------------------------------------------------- RequestHookContext

constexpr const char* kModels = R"(
models:
  - name: public.users
    primary_key: id
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: name, type: text, nullable: false}
      - {name: tenant, type: text}
      - {name: age, type: integer}
      - {name: score, type: real}
  - name: public.accounts
    primary_key: id
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: owner, type: text, nullable: false}
      - {name: label, type: text}
  - name: iot.readings
    primary_key: id
    fields:
      - {name: id, type: text}
      - {name: value, type: real}
)";

class ModelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = ParseConfig(kModels);
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    for (auto& m : cfg.value().models) ASSERT_TRUE(models_.Register(m).ok());
    users_ = models_.Find("public", "users");
    ASSERT_TRUE(users_);
  }
  int Field(std::string_view name) { return users_->FindField(name); }

  registry::ModelRegistry models_;
  registry::ModelPtr users_;
  ParseLimits limits_;
  ClientInfo client_{"c1", "", "", {}};
};

using RequestHookContextTest = ModelsTest;

TEST_F(RequestHookContextTest, AddFilterAppendsACheckedAndCoercedCondition) {
  RequestHookContext ctx(client_, "read", users_, nullptr, limits_);
  adapters::FilterList filters;
  ctx.BindFilters(&filters);
  ASSERT_TRUE(ctx.AddFilter("age", "gte", {Value{std::string("18")}}));  // text → integer
  ASSERT_TRUE(ctx.AddFilter("tenant", "in", {Value{std::string("a")}, Value{std::string("b")}}));
  ASSERT_TRUE(ctx.AddFilter("score", "is_null", {}));
  ASSERT_EQ(filters.size(), 3u);
  EXPECT_FALSE(filters[0].is_group);
  EXPECT_EQ(filters[0].cond.field, Field("age"));
  EXPECT_EQ(filters[0].cond.op, adapters::Op::kGte);
  ASSERT_EQ(filters[0].cond.values.size(), 1u);
  EXPECT_EQ(filters[0].cond.values[0], Value{int64_t{18}}) << Show(filters[0].cond.values[0]);
  EXPECT_EQ(filters[1].cond.op, adapters::Op::kIn);
  EXPECT_EQ(filters[1].cond.values.size(), 2u);
  EXPECT_EQ(filters[1].logic, adapters::Logic::kAnd);
  EXPECT_EQ(filters[2].cond.op, adapters::Op::kIsNull);
  EXPECT_FALSE(ctx.state().failed());
}

TEST_F(RequestHookContextTest, AddFilterRefusesUnknownAndInjectedColumnsAndAddsNothing) {
  for (const char* column :
       {"nope", "name; DROP TABLE users", "name\" OR 1=1 --", "users.name", "", "NAME"}) {
    RequestHookContext ctx(client_, "read", users_, nullptr, limits_);
    adapters::FilterList filters;
    ctx.BindFilters(&filters);
    EXPECT_FALSE(ctx.AddFilter(column, "eq", {Value{std::string("x")}})) << column;
    EXPECT_TRUE(filters.empty()) << column;
    ASSERT_TRUE(ctx.state().failed()) << column;
    EXPECT_EQ(CodeName(ctx.state().error()), "unknown_column") << column;
  }
}

TEST_F(RequestHookContextTest, AddFilterRefusesBadValuesAndOperatorsAndAddsNothing) {
  struct Case {
    const char* column;
    const char* op;
    std::vector<Value> values;
    const char* code;
  };
  const Case cases[] = {
      {"age", "eq", {Value{std::string("abc")}}, "invalid_value"},
      {"age", "eq", {Value{std::string("1 OR 1=1")}}, "invalid_value"},
      {"age", "in", {Value{int64_t{1}}, Value{std::string("x")}}, "invalid_value"},
      {"age", "eq", {Value{2.5}}, "invalid_value"},
      {"name", "eq", {Value{int64_t{5}}}, "invalid_value"},
      {"age", "between", {Value{int64_t{1}}}, "invalid_filter"},
      {"age", "like", {Value{std::string("1%")}}, "invalid_filter"},
      {"name", "regex", {Value{std::string("a")}}, "invalid_filter"},
      {"name", "eq; DROP TABLE users", {Value{std::string("a")}}, "invalid_filter"},
  };
  for (const auto& c : cases) {
    RequestHookContext ctx(client_, "read", users_, nullptr, limits_);
    adapters::FilterList filters;
    ctx.BindFilters(&filters);
    EXPECT_FALSE(ctx.AddFilter(c.column, c.op, c.values)) << c.column << " " << c.op;
    EXPECT_TRUE(filters.empty()) << c.column << " " << c.op;
    ASSERT_TRUE(ctx.state().failed()) << c.column << " " << c.op;
    EXPECT_EQ(CodeName(ctx.state().error()), c.code)
        << c.column << " " << c.op << ": " << ctx.state().error().message;
  }
}

TEST_F(RequestHookContextTest, AddFilterGroupsATopLevelOrSoTheConditionNarrowsEveryRow) {
  // name = 'A' OR name = 'B'  +  tenant = 't1'  →  (name = 'A' OR name = 'B') AND tenant = 't1'
  RequestHookContext ctx(client_, "read", users_, nullptr, limits_);
  adapters::FilterList filters(2);
  filters[0].cond = {Field("name"), adapters::Op::kEq, {Value{std::string("A")}}};
  filters[1].logic = adapters::Logic::kOr;
  filters[1].cond = {Field("name"), adapters::Op::kEq, {Value{std::string("B")}}};
  ctx.BindFilters(&filters);
  ASSERT_TRUE(ctx.AddFilter("tenant", "eq", {Value{std::string("t1")}}));
  ASSERT_EQ(filters.size(), 2u);
  ASSERT_TRUE(filters[0].is_group);
  ASSERT_EQ(filters[0].children.size(), 2u);
  EXPECT_EQ(filters[0].children[1].logic, adapters::Logic::kOr);
  EXPECT_FALSE(filters[1].is_group);
  EXPECT_EQ(filters[1].logic, adapters::Logic::kAnd);
  EXPECT_EQ(filters[1].cond.field, Field("tenant"));
}

TEST_F(RequestHookContextTest, AddFilterToAnAndOnlyListJustAppends) {
  RequestHookContext ctx(client_, "read", users_, nullptr, limits_);
  adapters::FilterList filters(1);
  filters[0].cond = {Field("name"), adapters::Op::kEq, {Value{std::string("A")}}};
  ctx.BindFilters(&filters);
  ASSERT_TRUE(ctx.AddFilter("tenant", "eq", {Value{std::string("t1")}}));
  ASSERT_EQ(filters.size(), 2u);
  EXPECT_FALSE(filters[0].is_group);
  EXPECT_EQ(filters[1].logic, adapters::Logic::kAnd);
}

TEST_F(RequestHookContextTest, AddFilterWhereTheOperationHasNoFiltersIsAHookError) {
  RequestHookContext ctx(client_, "create", users_, nullptr, limits_);
  adapters::Record data;
  ctx.BindData(&data);
  EXPECT_FALSE(ctx.AddFilter("tenant", "eq", {Value{std::string("t1")}}));
  ASSERT_TRUE(ctx.state().failed());
  EXPECT_EQ(CodeName(ctx.state().error()), "hook_error");
}

TEST_F(RequestHookContextTest, SetFieldCoercesToTheFieldsType) {
  RequestHookContext ctx(client_, "create", users_, nullptr, limits_);
  adapters::Record data{{Field("name"), Value{std::string("Ann")}}};
  ctx.BindData(&data);
  ASSERT_TRUE(ctx.SetField("age", Value{std::string("42")}));
  ASSERT_TRUE(ctx.SetField("score", Value{int64_t{3}}));
  ASSERT_TRUE(ctx.SetField("tenant", Value{std::string("t1")}));
  EXPECT_EQ(ctx.GetField("age"), std::optional<Value>(Value{int64_t{42}}));
  EXPECT_EQ(ctx.GetField("score"), std::optional<Value>(Value{3.0}));
  EXPECT_EQ(ctx.GetField("tenant"), std::optional<Value>(Value{std::string("t1")}));
  // Setting a field again replaces its value instead of assigning it twice.
  ASSERT_TRUE(ctx.SetField("name", Value{std::string("Bea")}));
  EXPECT_EQ(ctx.GetField("name"), std::optional<Value>(Value{std::string("Bea")}));
  EXPECT_EQ(data.size(), 4u);
  ctx.RemoveField("tenant");
  EXPECT_FALSE(ctx.HasField("tenant"));
  EXPECT_TRUE(ctx.HasField("age"));
  EXPECT_FALSE(ctx.state().failed());
}

TEST_F(RequestHookContextTest, SetFieldRefusesUnknownFieldsAndValuesThatDoNotFit) {
  struct Case {
    const char* field;
    Value value;
    const char* code;
  };
  const Case cases[] = {
      {"nope", Value{std::string("x")}, "unknown_column"},
      {"name; DROP TABLE users", Value{std::string("x")}, "unknown_column"},
      {"age", Value{std::string("forty")}, "invalid_value"},
      {"age", Value{2.5}, "invalid_value"},
      {"name", Value{int64_t{5}}, "invalid_value"},
      {"name", Value{}, "invalid_value"},  // not nullable
  };
  for (const auto& c : cases) {
    RequestHookContext ctx(client_, "create", users_, nullptr, limits_);
    adapters::Record data{{Field("name"), Value{std::string("Ann")}}};
    ctx.BindData(&data);
    EXPECT_FALSE(ctx.SetField(c.field, c.value)) << c.field << " " << Show(c.value);
    ASSERT_EQ(data.size(), 1u) << c.field;
    EXPECT_EQ(data[0].value, Value{std::string("Ann")}) << c.field;
    ASSERT_TRUE(ctx.state().failed()) << c.field;
    EXPECT_EQ(CodeName(ctx.state().error()), c.code)
        << c.field << " " << Show(c.value) << ": " << ctx.state().error().message;
  }
}

TEST_F(RequestHookContextTest, DescribesTheModelToHooks) {
  adapters::FilterList filters;
  std::optional<Value> key = Value{int64_t{7}};
  RequestHookContext ctx(client_, "update", users_, &key, limits_);
  EXPECT_EQ(ctx.operation(), "update");
  EXPECT_EQ(ctx.schema(), "public");
  EXPECT_EQ(ctx.entity(), "users");
  ASSERT_NE(ctx.record_id(), nullptr);
  EXPECT_EQ(*ctx.record_id(), Value{int64_t{7}});
  const ModelInfo* m = ctx.model();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->primary_key, "id");
  ASSERT_EQ(m->fields.size(), 5u);
  EXPECT_EQ(m->fields[0].name, "id");
  EXPECT_TRUE(m->fields[0].primary);
  EXPECT_EQ(m->fields[1].type, "text");
  EXPECT_FALSE(m->fields[1].nullable);
  EXPECT_EQ(m->fields[3].type, "integer");
  EXPECT_EQ(m->fields[4].type, "real");
}

// ------------------------------------------------------------------------ Router with hooks

class RouterHooksTest : public ModelsTest {
 protected:
  void SetUp() override {
    ModelsTest::SetUp();
    auto db = adapters::SqliteDatabase::Open({":memory:", false, 0, 5000});
    ASSERT_TRUE(db.ok());
    db_ = std::move(db).value();
    for (const auto& name : {"users", "accounts"})
      ASSERT_TRUE(db_->Migrate(*models_.Find("public", name)).ok());
    ASSERT_TRUE(db_->Migrate(*models_.Find("iot", "readings")).ok());
    subs_ = std::make_unique<Subscriptions>("spec", 100);
    router_ = std::make_unique<Router>(models_, *db_, RouterOptions{}, subs_.get(), &hooks_);
    plain_ = std::make_unique<Router>(models_, *db_, RouterOptions{});  // sees the truth
  }

  rapidjson::Document Parse(const std::string& out) {
    rapidjson::Document d;
    d.Parse(out.c_str());
    EXPECT_FALSE(d.HasParseError()) << out;
    return d;
  }
  // Through the router with hooks, as client_ (whose metadata persists between requests).
  rapidjson::Document Send(const std::string& payload) {
    return Parse(router_->Handle(client_, payload));
  }
  // Through a router without hooks: what is really stored.
  rapidjson::Document Truth(const std::string& payload) {
    ClientInfo admin{"admin", "", "", {}};
    return Parse(plain_->Handle(admin, payload));
  }
  static std::string CodeOf(const rapidjson::Document& d) {
    if (!d.IsObject() || !d.HasMember("success")) return "?";
    if (d["success"].GetBool()) return "success";
    return d["error"]["code"].GetString();
  }
  std::string MessageOf(const rapidjson::Document& d) {
    return d.HasMember("error") ? d["error"]["message"].GetString() : "";
  }
  int64_t StoredUsers() {
    auto d = Truth(R"({"id":"n","operation":"read","entity":"users"})");
    return d["metadata"]["total"].GetInt64();
  }
  // Creates a user through the plain router; returns its id.
  int64_t Seed(const std::string& name, const std::string& tenant, int age = 30) {
    auto d = Truth(R"({"id":"s","operation":"create","entity":"users","data":{"name":")" + name +
                   R"(","tenant":")" + tenant + R"(","age":)" + std::to_string(age) + "}}");
    EXPECT_TRUE(d["success"].GetBool());
    return d["data"]["id"].GetInt64();
  }
  static std::vector<std::string> Names(const rapidjson::Document& d) {
    std::vector<std::string> out;
    if (!d.HasMember("data") || !d["data"].IsArray()) return out;
    for (const auto& r : d["data"].GetArray()) out.push_back(r["name"].GetString());
    return out;
  }
  // A hook that narrows every read / update / delete / subscribe to the client's tenant.
  void IsolateTenants() {
    auto narrow = [](HookContext& ctx) {
      if (ctx.entity() != "users") return HookResult::kContinue;
      ctx.AddFilter("tenant", "eq", {Value{ctx.client().metadata["tenant"]}});
      return HookResult::kContinue;
    };
    for (auto t : {HookType::kBeforeRead, HookType::kBeforeUpdate, HookType::kBeforeDelete,
                   HookType::kBeforeSubscribe})
      hooks_.Register(t, narrow);
  }
  Row UserRow(int64_t id, const std::string& name, const std::string& tenant) {
    return Row{Value{id}, Value{name}, Value{tenant}, Value{int64_t{30}}, Value{}};
  }

  HookRegistry hooks_;
  std::unique_ptr<adapters::SqliteDatabase> db_;
  std::unique_ptr<Subscriptions> subs_;
  std::unique_ptr<Router> router_, plain_;
};

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

// ----------------------------------------------------------------------- every hook type fires

class ServiceHooksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto cfg = ParseConfig(R"(
models:
  - name: things
    fields: [{name: id, type: integer, auto_increment: true}, {name: n, type: integer}]
)");
    ASSERT_TRUE(cfg.ok()) << cfg.error().message;
    config_ = cfg.value();
    config_.workers = 2;
    config_.database.path = ":memory:";
    auto core = Core::Create(config_);
    ASSERT_TRUE(core.ok()) << core.error().message;
    core_ = std::move(core).value();
    service_ = std::make_unique<Service>(config_, *core_, publisher_);
    front_ = std::make_unique<MqttFront>(config_, *service_, publisher_);
  }

  // Sends a request as `client` and returns its answer (response or pong, by request id).
  rapidjson::Document Request(const std::string& client, const std::string& id,
                              const std::string& body) {
    InboundMessage m;
    m.topic = "spec/" + client + "/request";
    m.payload = R"({"id":")" + id + "\"," + body + "}";
    front_->OnMessage(std::move(m));
    service_->Drain();
    std::lock_guard l(publisher_.mu);
    for (const auto& out : publisher_.sent) {
      rapidjson::Document d;
      d.Parse(out.payload.c_str());
      if (!d.HasParseError() && d.IsObject() && d.HasMember("id") && d["id"].IsString() &&
          id == d["id"].GetString())
        return d;
    }
    ADD_FAILURE() << "no answer to " << id;
    return rapidjson::Document();
  }

  Config config_;
  std::unique_ptr<Core> core_;
  RecordingTransport publisher_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<MqttFront> front_;
};

bool Succeeded(const rapidjson::Document& d) {
  return d.IsObject() && d.HasMember("success") && d["success"].GetBool();
}

TEST_F(ServiceHooksTest, EveryHookTypeFiresWhereItShould) {
  std::mutex mu;
  std::map<HookType, int> count;
  std::map<HookType, std::vector<std::string> > operations;  // operation() each time
  std::vector<std::string> problems;
  for (int t = 0; t < kHookTypeCount; ++t) {
    const auto type = static_cast<HookType>(t);
    core_->hooks().Register(type, [&, type](HookContext& ctx) {
      std::lock_guard l(mu);
      ++count[type];
      operations[type].push_back(std::string(ctx.operation()));
      if (ctx.type() != type)
        problems.push_back(std::string(hooks::HookTypeName(type)) + " saw type " +
                           std::string(hooks::HookTypeName(ctx.type())));
      if (ctx.client().id != "dev1")
        problems.push_back(std::string(hooks::HookTypeName(type)) + " saw client " +
                           ctx.client().id);
      const bool has_model = !ctx.operation().empty() && ctx.operation() != "unsubscribe";
      if ((ctx.model() != nullptr) != has_model)
        problems.push_back(std::string(hooks::HookTypeName(type)) + " model presence wrong");
      return HookResult::kContinue;
    });
  }
  auto client = std::make_shared<ClientInfo>();
  client->id = "dev1";
  client->username = "user";
  client->password = "pw";
  ASSERT_TRUE(service_->Authenticate(*client).ok());
  service_->OnClientConnected(client, true);
  service_->Drain();

  ASSERT_TRUE(
      Succeeded(Request("dev1", "c", R"("operation":"create","entity":"things","data":{"n":1})")));
  ASSERT_TRUE(Succeeded(Request("dev1", "l", R"("operation":"read","entity":"things")")));
  ASSERT_TRUE(
      Succeeded(Request("dev1", "k", R"("operation":"read","entity":"things","record_id":1)")));
  auto sub =
      Request("dev1", "s", R"("type":"subscription","operation":"subscribe","entity":"things")");
  ASSERT_TRUE(Succeeded(sub));
  ASSERT_TRUE(Succeeded(Request(
      "dev1", "u", R"("operation":"update","entity":"things","record_id":1,"data":{"n":2})")));
  ASSERT_TRUE(Succeeded(Request(
      "dev1", "x",
      std::string(R"("type":"subscription","operation":"unsubscribe","subscription_id":")") +
          sub["data"]["subscription_id"].GetString() + "\"")));
  ASSERT_TRUE(
      Succeeded(Request("dev1", "d", R"("operation":"delete","entity":"things","record_id":1)")));
  ASSERT_TRUE(Succeeded(Request("dev1", "m", R"("operation":"meta","entity":"things")")));
  Request("dev1", "p", R"("type":"ping")");  // no hooks at all
  service_->OnClientDisconnected("dev1", true);
  service_->Drain();

  std::lock_guard l(mu);
  const std::map<HookType, int> expected = {
      {HookType::kBeforeConnect, 1},
      {HookType::kAfterConnect, 1},
      {HookType::kBeforeDisconnect, 1},
      {HookType::kAfterDisconnect, 1},
      // create, list read, by-key read, subscribe, update, delete, meta: the requests with a model
      {HookType::kBeforeHandle, 7},
      {HookType::kBeforeRead, 2},
      {HookType::kAfterRead, 2},
      {HookType::kBeforeCreate, 1},
      {HookType::kAfterCreate, 1},
      {HookType::kBeforeUpdate, 1},
      {HookType::kAfterUpdate, 1},
      {HookType::kBeforeDelete, 1},
      {HookType::kAfterDelete, 1},
      {HookType::kBeforeSubscribe, 1},
      {HookType::kAfterSubscribe, 1},
      {HookType::kBeforeUnsubscribe, 1},
      {HookType::kAfterUnsubscribe, 1},
  };
  ASSERT_EQ(expected.size(), 17u);
  for (const auto& [type, n] : expected) EXPECT_EQ(count[type], n) << hooks::HookTypeName(type);
  EXPECT_EQ(problems, std::vector<std::string>{});
  EXPECT_EQ(operations[HookType::kBeforeConnect], std::vector<std::string>{""});
  EXPECT_EQ(operations[HookType::kAfterDisconnect], std::vector<std::string>{""});
  EXPECT_EQ(operations[HookType::kBeforeRead], (std::vector<std::string>{"read", "read"}));
  EXPECT_EQ(operations[HookType::kAfterCreate], std::vector<std::string>{"create"});
  EXPECT_EQ(operations[HookType::kBeforeUpdate], std::vector<std::string>{"update"});
  EXPECT_EQ(operations[HookType::kAfterDelete], std::vector<std::string>{"delete"});
  EXPECT_EQ(operations[HookType::kBeforeSubscribe], std::vector<std::string>{"subscribe"});
  EXPECT_EQ(operations[HookType::kAfterUnsubscribe], std::vector<std::string>{"unsubscribe"});
  EXPECT_EQ(operations[HookType::kBeforeHandle],
            (std::vector<std::string>{"create", "read", "read", "subscribe", "update", "delete",
                                      "meta"}));
}

TEST_F(ServiceHooksTest, ConnectHooksSeeCredentialsAndTheirMetadataReachLaterRequests) {
  std::mutex mu;
  std::string password_at_connect = "unset", password_later = "unset", tenant_later, username_later;
  core_->hooks().Register(HookType::kBeforeConnect, [&](HookContext& ctx) {
    std::lock_guard l(mu);
    password_at_connect = ctx.client().password;
    ctx.client().metadata["tenant_id"] = "t-" + ctx.client().username;
    return HookResult::kContinue;
  });
  core_->hooks().Register(HookType::kBeforeRead, [&](HookContext& ctx) {
    std::lock_guard l(mu);
    password_later = ctx.client().password;
    tenant_later = ctx.client().metadata["tenant_id"];
    username_later = ctx.client().username;
    return HookResult::kContinue;
  });
  auto client = std::make_shared<ClientInfo>();
  client->id = "dev2";
  client->username = "alice";
  client->password = "s3cret";
  ASSERT_TRUE(service_->Authenticate(*client).ok());
  service_->OnClientConnected(client, true);
  ASSERT_TRUE(Succeeded(Request("dev2", "r", R"("operation":"read","entity":"things")")));
  std::lock_guard l(mu);
  EXPECT_EQ(password_at_connect, "s3cret");
  EXPECT_EQ(password_later, "");  // dropped once connected
  EXPECT_EQ(tenant_later, "t-alice");
  EXPECT_EQ(username_later, "alice");
}

TEST_F(ServiceHooksTest, BeforeConnectAbortOrThrowRefusesTheConnect) {
  core_->hooks().Register(HookType::kBeforeConnect, [](HookContext& ctx) {
    if (ctx.client().username == "eve") return ctx.Abort("eve is banned");
    if (ctx.client().username == "crash") throw std::runtime_error("boom");
    return HookResult::kContinue;
  });
  ClientInfo eve{"e1", "eve", "pw", {}};
  auto st = service_->Authenticate(eve);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(CodeName(st.error()), "forbidden");
  EXPECT_EQ(st.error().message, "eve is banned");
  ClientInfo crash{"e2", "crash", "pw", {}};
  auto st2 = service_->Authenticate(crash);
  ASSERT_FALSE(st2.ok());
  EXPECT_EQ(CodeName(st2.error()), "hook_error");
  ClientInfo ok{"e3", "bob", "pw", {}};
  EXPECT_TRUE(service_->Authenticate(ok).ok());
}

// ------------------------------------------------------------------------------ plugin loader

std::string TestPlugin(const std::string& kind) {
  const char* env = std::getenv("MQTTSPEC_TEST_PLUGIN_DIR");
  std::string dir = env && *env ? env : MQTTSPEC_TEST_PLUGIN_DIR;
  return dir + "/hooks_test_plugin_" + kind + ".so";
}

class PluginLoaderTest : public RouterHooksTest {
 protected:
  void SetUp() override {
    RouterHooksTest::SetUp();
    host_ = std::make_unique<CorePluginHost>(hooks_, models_, *db_, true);
  }
  // Loads the test plugin `kind`, which must exist (so a failure is the loader's verdict, not a
  // missing file).
  Status Load(const std::string& kind, const PluginOptions& options = {}) {
    std::string path = TestPlugin(kind);
    EXPECT_TRUE(std::filesystem::exists(path))
        << path << " is missing: build the hooks_test_plugin_* targets, or set "
        << "MQTTSPEC_TEST_PLUGIN_DIR";
    return hooks::LoadPlugin(path, options, *host_);
  }
  std::unique_ptr<CorePluginHost> host_;
  const PluginOptions options_{{"field", "tenant"}, {"value", "from-plugin"}};
};

TEST_F(PluginLoaderTest, AGoodPluginLoadsWithItsOptionsAndItsHooksRun) {
  auto st = Load("ok", options_);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_TRUE(hooks_.Has(HookType::kBeforeCreate));
  auto c = Send(R"({"id":"c","operation":"create","entity":"users","data":{"name":"Ann"}})");
  ASSERT_EQ(CodeOf(c), "success") << MessageOf(c);
  EXPECT_STREQ(c["data"]["tenant"].GetString(), "from-plugin");
}

TEST_F(PluginLoaderTest, WrongAbiVersionIsRefusedNamingThePathAndInitIsNotCalled) {
  auto st = Load("wrong_abi", options_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(TestPlugin("wrong_abi")), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("ABI"), std::string::npos) << st.error().message;
  EXPECT_EQ(hooks_.count(), 0u);
}

TEST_F(PluginLoaderTest, LibraryWithoutTheEntryPointsIsRefusedNamingThePath) {
  auto st = Load("no_entry_points", options_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(TestPlugin("no_entry_points")), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("mqttspec_plugin_init"), std::string::npos)
      << st.error().message;
}

TEST_F(PluginLoaderTest, InitReturningFalseIsRefusedNamingThePath) {
  auto st = Load("init_false", options_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(TestPlugin("init_false")), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("init"), std::string::npos) << st.error().message;
  // The good plugin without its required options: its init fails the same way.
  auto st2 = Load("ok");
  ASSERT_FALSE(st2.ok());
  EXPECT_NE(st2.error().message.find(TestPlugin("ok")), std::string::npos) << st2.error().message;
}

TEST_F(PluginLoaderTest, InitThrowingIsRefusedNamingThePathAndTheReason) {
  auto st = Load("init_throws", options_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(TestPlugin("init_throws")), std::string::npos)
      << st.error().message;
  EXPECT_NE(st.error().message.find("refuses to start"), std::string::npos) << st.error().message;
}

TEST_F(PluginLoaderTest, NonexistentOrNonLibraryFileIsRefusedNamingThePath) {
  const std::string missing = "/nonexistent/dir/libnot_there.so";
  auto st = hooks::LoadPlugin(missing, {}, *host_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find(missing), std::string::npos) << st.error().message;
  // A file that exists but is no shared library.
  const std::string not_elf = std::filesystem::temp_directory_path() /
                              ("hooks_test_not_a_library_" + std::to_string(::getpid()) + ".so");
  { std::ofstream(not_elf) << "this is not an ELF file\n"; }
  auto st2 = hooks::LoadPlugin(not_elf, {}, *host_);
  std::filesystem::remove(not_elf);
  ASSERT_FALSE(st2.ok());
  EXPECT_NE(st2.error().message.find(not_elf), std::string::npos) << st2.error().message;
  EXPECT_EQ(hooks_.count(), 0u);
}

}  // namespace
}  // namespace mqttspec::server

#endif  // the tests
