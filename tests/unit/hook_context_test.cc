// RequestHookContext: the filters and fields a hook adds go through the client-input checks.

#include "hooks/hook_context.h"

#include <gtest/gtest.h>
#include <mqttspec/plugin.h>

#include <optional>
#include <vector>

#include "adapters/query.h"
#include "tests/unit/hooks_fixtures.h"
#include "tests/unit/value_printer.h"

namespace mqttspec::server {
namespace {

using hooks::RequestHookContext;
using hooktest::CodeName;

using RequestHookContextTest = hooktest::ModelsTest;

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

}  // namespace
}  // namespace mqttspec::server
