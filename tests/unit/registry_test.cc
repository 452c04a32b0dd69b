// Model validation (identifiers, primary key, auto_increment, duplicate fields) and the
// ModelRegistry (register / find / duplicates).

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "registry/model.h"
#include "registry/model_registry.h"
#include "tests/unit/test_builders.h"

namespace mqttspec::registry {
namespace {

using namespace mqttspec::testing;  // NOLINT: the shared test builders

Field IdField() {
  Field f = MakeField("id", FieldType::kInteger);
  f.auto_increment = true;
  return f;
}

std::vector<Field> UserFields() {
  Field name = MakeField("name");
  name.nullable = false;
  Field email = MakeField("email");
  email.unique = true;
  return {IdField(), name, email, MakeField("age", FieldType::kInteger)};
}

ModelPtr MustCreate(std::string schema, std::string entity, std::vector<Field> fields,
                    std::string pk = "id") {
  auto m = Model::Create(std::move(schema), std::move(entity), std::move(fields), std::move(pk));
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? m.value() : nullptr;
}

void ExpectInvalid(const Result<ModelPtr>& r) {
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidValue);
  EXPECT_FALSE(r.error().message.empty());
}

// --- IsIdentifier -------------------------------------------------------------------------------

TEST(IsIdentifierTest, AcceptsLettersDigitsAndUnderscoreNotStartingWithDigit) {
  EXPECT_TRUE(IsIdentifier("users"));
  EXPECT_TRUE(IsIdentifier("_private"));
  EXPECT_TRUE(IsIdentifier("Blog_Posts2"));
  EXPECT_TRUE(IsIdentifier("a"));
  EXPECT_TRUE(IsIdentifier("_"));
}

TEST(IsIdentifierTest, RejectsEmptyLeadingDigitAndPunctuation) {
  for (const char* bad : {"", "1users", "user-name", "user name", "user.name", "users;",
                          "\"users\"", "users'", "na$me", "naïve", "a\tb", "a/b", "*"}) {
    EXPECT_FALSE(IsIdentifier(bad)) << "accepted '" << bad << "'";
  }
}

TEST(IsIdentifierTest, AcceptsAtMost63Characters) {
  EXPECT_TRUE(IsIdentifier(std::string(63, 'a')));
  EXPECT_FALSE(IsIdentifier(std::string(64, 'a')));
}

TEST(IsIdentifierTest, RejectsEmbeddedNul) {
  EXPECT_FALSE(IsIdentifier(std::string_view("ab\0cd", 5)));
}

// --- FieldType names ----------------------------------------------------------------------------

TEST(FieldTypeTest, NamesRoundTrip) {
  for (FieldType t : {FieldType::kInteger, FieldType::kReal, FieldType::kText, FieldType::kBoolean,
                      FieldType::kTimestamp, FieldType::kJson}) {
    auto parsed = ParseFieldType(FieldTypeName(t));
    ASSERT_TRUE(parsed.has_value()) << FieldTypeName(t);
    EXPECT_EQ(*parsed, t);
  }
  EXPECT_EQ(FieldTypeName(FieldType::kInteger), "integer");
  EXPECT_EQ(FieldTypeName(FieldType::kReal), "real");
  EXPECT_EQ(FieldTypeName(FieldType::kText), "text");
  EXPECT_EQ(FieldTypeName(FieldType::kBoolean), "boolean");
  EXPECT_EQ(FieldTypeName(FieldType::kTimestamp), "timestamp");
  EXPECT_EQ(FieldTypeName(FieldType::kJson), "json");
}

TEST(FieldTypeTest, ParseRejectsUnknownNames) {
  EXPECT_FALSE(ParseFieldType("varchar"));
  EXPECT_FALSE(ParseFieldType("Integer"));
  EXPECT_FALSE(ParseFieldType(""));
}

// --- Model::Create ------------------------------------------------------------------------------

TEST(ModelTest, CreateKeepsSchemaEntityAndFieldsInOrder) {
  auto m = MustCreate("public", "users", UserFields());
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->schema(), "public");
  EXPECT_EQ(m->entity(), "users");
  EXPECT_EQ(m->qualified_name(), "public.users");
  ASSERT_EQ(m->fields().size(), 4u);
  EXPECT_EQ(m->field(0).name, "id");
  EXPECT_EQ(m->field(1).name, "name");
  EXPECT_EQ(m->field(2).name, "email");
  EXPECT_EQ(m->field(3).name, "age");
  EXPECT_FALSE(m->field(1).nullable);
  EXPECT_TRUE(m->field(2).unique);
}

TEST(ModelTest, PrimaryKeyNamedByArgumentIsMarkedPrimaryAndNotNullable) {
  std::vector<Field> fields = {MakeField("name"), MakeField("code")};
  auto m = MustCreate("public", "countries", fields, "code");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->primary_index(), 1u);
  EXPECT_EQ(m->primary().name, "code");
  EXPECT_TRUE(m->field(1).primary);
  EXPECT_FALSE(m->field(1).nullable);
  EXPECT_FALSE(m->field(0).primary);
  EXPECT_TRUE(m->field(0).nullable);
}

TEST(ModelTest, PrimaryKeyMayBeGivenByTheFieldFlagAlone) {
  Field code = MakeField("code");
  code.primary = true;
  auto m = MustCreate("public", "countries", {MakeField("name"), code}, "");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->primary_index(), 1u);
}

TEST(ModelTest, FlagAndArgumentNamingTheSameFieldIsOnePrimaryKey) {
  Field id = IdField();
  id.primary = true;
  auto m = MustCreate("public", "users", {id, MakeField("name")}, "id");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->primary_index(), 0u);
}

TEST(ModelTest, FindFieldReturnsIndexOrMinusOne) {
  auto m = MustCreate("public", "users", UserFields());
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->FindField("id"), 0);
  EXPECT_EQ(m->FindField("email"), 2);
  EXPECT_EQ(m->FindField("age"), 3);
  EXPECT_EQ(m->FindField("nme"), -1);
  EXPECT_EQ(m->FindField("Email"), -1);  // case-sensitive allow-list
  EXPECT_EQ(m->FindField(""), -1);
  EXPECT_EQ(m->FindField("email; DROP TABLE users"), -1);
}

TEST(ModelTest, CreateRejectsBadSchemaName) {
  ExpectInvalid(Model::Create("pub-lic", "users", UserFields(), "id"));
  ExpectInvalid(Model::Create("", "users", UserFields(), "id"));
  ExpectInvalid(Model::Create("1public", "users", UserFields(), "id"));
}

// The service's own tables (the record of writes) live in schema mqttspec, on SQLite as
// mqttspec_<entity>: no model may take those names.
TEST(ModelTest, CreateRejectsTheServicesOwnSchemaAndTableNames) {
  ExpectInvalid(Model::Create("mqttspec", "requests", UserFields(), "id"));
  ExpectInvalid(Model::Create("mqttspec", "users", UserFields(), "id"));
  ExpectInvalid(Model::Create("public", "mqttspec_requests", UserFields(), "id"));
  EXPECT_TRUE(Model::Create("public", "mqttspecs", UserFields(), "id").ok());
  EXPECT_TRUE(Model::Create("iot", "mqttspec_x", UserFields(), "id").ok());  // iot_mqttspec_x
}

TEST(ModelTest, CreateRejectsFieldNamesThatDifferOnlyInCase) {
  auto fields = UserFields();
  fields.push_back(MakeField("Email", FieldType::kText));
  auto m = Model::Create("public", "users", fields, "id");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.error().message.find("duplicate field 'Email'"), std::string::npos)
      << m.error().message;
}

TEST(ModelTest, CreateRejectsBadEntityName) {
  ExpectInvalid(Model::Create("public", "users;drop", UserFields(), "id"));
  ExpectInvalid(Model::Create("public", "", UserFields(), "id"));
  ExpectInvalid(Model::Create("public", "\"users\"", UserFields(), "id"));
  ExpectInvalid(Model::Create("public", std::string(64, 'u'), UserFields(), "id"));
}

TEST(ModelTest, CreateRejectsBadFieldName) {
  auto fields = UserFields();
  fields.push_back(MakeField("first name"));
  ExpectInvalid(Model::Create("public", "users", fields, "id"));

  fields = UserFields();
  fields.push_back(MakeField(""));
  ExpectInvalid(Model::Create("public", "users", fields, "id"));

  fields = UserFields();
  fields.push_back(MakeField("x\"y"));
  ExpectInvalid(Model::Create("public", "users", fields, "id"));
}

TEST(ModelTest, CreateRejectsModelWithoutFields) {
  ExpectInvalid(Model::Create("public", "users", {}, "id"));
}

TEST(ModelTest, CreateRejectsDuplicateFieldNames) {
  auto fields = UserFields();
  fields.push_back(MakeField("email"));
  ExpectInvalid(Model::Create("public", "users", fields, "id"));
}

TEST(ModelTest, CreateRejectsPrimaryKeyThatIsNotAField) {
  ExpectInvalid(Model::Create("public", "users", UserFields(), "user_id"));
}

TEST(ModelTest, CreateRejectsMissingPrimaryKey) {
  std::vector<Field> fields = {MakeField("name"), MakeField("email")};
  ExpectInvalid(Model::Create("public", "users", fields, ""));
}

TEST(ModelTest, CreateRejectsTwoFieldsFlaggedPrimary) {
  Field a = MakeField("a");
  a.primary = true;
  Field b = MakeField("b");
  b.primary = true;
  ExpectInvalid(Model::Create("public", "t", {a, b}, ""));
}

TEST(ModelTest, CreateRejectsFlaggedPrimaryBesidesTheNamedPrimaryKey) {
  Field code = MakeField("code");
  code.primary = true;
  ExpectInvalid(Model::Create("public", "t", {IdField(), code}, "id"));
}

TEST(ModelTest, AutoIncrementIsAllowedOnIntegerPrimaryKey) {
  auto m = MustCreate("public", "users", UserFields());
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->primary().auto_increment);
  EXPECT_EQ(m->primary().type, FieldType::kInteger);
}

TEST(ModelTest, CreateRejectsAutoIncrementOnNonPrimaryField) {
  auto fields = UserFields();
  fields[3].auto_increment = true;  // age: integer, not the key
  ExpectInvalid(Model::Create("public", "users", fields, "id"));
}

TEST(ModelTest, CreateRejectsAutoIncrementOnNonIntegerPrimaryKey) {
  Field code = MakeField("code", FieldType::kText);
  code.auto_increment = true;
  ExpectInvalid(Model::Create("public", "t", {code, MakeField("name")}, "code"));

  Field real = MakeField("k", FieldType::kReal);
  real.auto_increment = true;
  ExpectInvalid(Model::Create("public", "t", {real}, "k"));
}

TEST(ModelTest, MinimalModelWithOnlyAPrimaryKeyIsValid) {
  auto m = MustCreate("s", "e", {MakeField("k", FieldType::kInteger)}, "k");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->qualified_name(), "s.e");
}

// --- ModelRegistry ------------------------------------------------------------------------------

TEST(ModelRegistryTest, FindReturnsRegisteredModel) {
  ModelRegistry reg;
  auto users = MustCreate("public", "users", UserFields());
  ASSERT_TRUE(reg.Register(users).ok());
  EXPECT_EQ(reg.Find("public", "users"), users);
}

TEST(ModelRegistryTest, FindReturnsNullForUnknownModel) {
  ModelRegistry reg;
  EXPECT_EQ(reg.Find("public", "users"), nullptr);
  ASSERT_TRUE(reg.Register(MustCreate("public", "users", UserFields())).ok());
  EXPECT_EQ(reg.Find("public", "user"), nullptr);
  EXPECT_EQ(reg.Find("other", "users"), nullptr);
  EXPECT_EQ(reg.Find("Public", "users"), nullptr);
  EXPECT_EQ(reg.Find("", ""), nullptr);
}

TEST(ModelRegistryTest, RegisterRejectsDuplicateNameAndKeepsTheFirst) {
  ModelRegistry reg;
  auto first = MustCreate("public", "users", UserFields());
  auto second = MustCreate("public", "users", {MakeField("id", FieldType::kInteger)});
  ASSERT_TRUE(reg.Register(first).ok());
  Status st = reg.Register(second);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidValue);
  EXPECT_EQ(reg.Find("public", "users"), first);
  EXPECT_EQ(reg.All().size(), 1u);
}

TEST(ModelRegistryTest, SameEntityInDifferentSchemasAreDistinctModels) {
  ModelRegistry reg;
  auto a = MustCreate("public", "posts", UserFields());
  auto b = MustCreate("blog", "posts", UserFields());
  ASSERT_TRUE(reg.Register(a).ok());
  ASSERT_TRUE(reg.Register(b).ok());
  EXPECT_EQ(reg.Find("public", "posts"), a);
  EXPECT_EQ(reg.Find("blog", "posts"), b);
}

TEST(ModelRegistryTest, AllListsEveryRegisteredModel) {
  ModelRegistry reg;
  EXPECT_TRUE(reg.All().empty());
  auto a = MustCreate("public", "users", UserFields());
  auto b = MustCreate("public", "posts", UserFields());
  auto c = MustCreate("blog", "posts", UserFields());
  ASSERT_TRUE(reg.Register(a).ok());
  ASSERT_TRUE(reg.Register(b).ok());
  ASSERT_TRUE(reg.Register(c).ok());
  auto all = reg.All();
  ASSERT_EQ(all.size(), 3u);
  for (const auto& m : {a, b, c}) {
    EXPECT_NE(std::find(all.begin(), all.end(), m), all.end()) << m->qualified_name();
  }
}

TEST(ModelRegistryTest, FoundModelStaysValidAfterRegistryIsGone) {
  ModelPtr found;
  {
    ModelRegistry reg;
    ASSERT_TRUE(reg.Register(MustCreate("public", "users", UserFields())).ok());
    found = reg.Find("public", "users");
  }
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->qualified_name(), "public.users");
}

TEST(ModelRegistryTest, ConcurrentRegisterAndFindSeeEachModelOnce) {
  ModelRegistry reg;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string entity = "e" + std::to_string(i);  // every thread registers the same names
        auto m = Model::Create("s" + std::to_string(t % 2), entity,
                               {MakeField("id", FieldType::kInteger)}, "id");
        if (!m.ok()) {
          ++failures;
          continue;
        }
        (void)reg.Register(m.value());
        if (reg.Find("s" + std::to_string(t % 2), entity) == nullptr) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(reg.All().size(), static_cast<size_t>(2 * kPerThread));
}

}  // namespace
}  // namespace mqttspec::registry
