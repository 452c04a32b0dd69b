#pragma once
// What the hook tests share: CodeName, ModelsTest and RouterHooksTest (a Router with hooks).
//
// RouterHooksTest runs on SQLite in memory; plugin_loader_test.cc builds PluginLoaderTest on it.

#include <gtest/gtest.h>
#include <mqttspec/plugin.h>
#include <rapidjson/document.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/sqlite_database.h"
#include "common/error.h"
#include "hooks/hook_registry.h"
#include "protocol/limits.h"
#include "registry/model_registry.h"
#include "server/config.h"
#include "server/router.h"
#include "server/subscriptions.h"

namespace mqttspec::server::hooktest {

// The name of an error's code, as the protocol spells it ("forbidden", "hook_error", ...).
inline std::string CodeName(const Error& e) { return std::string(ErrorCodeName(e.code)); }

// Three models: public.users and public.accounts (each with a required text field), iot.readings.
inline constexpr const char* kModels = R"(
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

// kModels registered in models_; users_ is public.users; client_ is client "c1".
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
  protocol::ParseLimits limits_;
  ClientInfo client_{"c1", "", "", {}};
};

// A Router with the fixture's hooks_ (router_) and one without hooks (plain_), on SQLite in memory
// with ModelsTest's models migrated.
class RouterHooksTest : public ModelsTest {
 protected:
  void SetUp() override {
    ModelsTest::SetUp();
    adapters::SqliteOptions options;  // in memory: one connection, no readers
    options.path = ":memory:";
    options.synchronous_full = false;
    options.readers = 0;
    auto db = adapters::SqliteDatabase::Open(options);
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

  hooks::HookRegistry hooks_;
  std::unique_ptr<adapters::SqliteDatabase> db_;
  std::unique_ptr<Subscriptions> subs_;
  std::unique_ptr<Router> router_, plain_;
};

}  // namespace mqttspec::server::hooktest
