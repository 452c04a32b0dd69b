// HookRegistry: order, priority, entity scoping, abort and exceptions of the hooks it runs.

#include "hooks/hook_registry.h"

#include <gtest/gtest.h>
#include <mqttspec/plugin.h>

#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hooks/hook_context.h"
#include "protocol/limits.h"
#include "tests/unit/hooks_fixtures.h"

namespace mqttspec::server {
namespace {

using hooks::HookRegistry;
using hooks::RequestHookContext;
using hooktest::CodeName;
using protocol::ParseLimits;

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

}  // namespace
}  // namespace mqttspec::server
