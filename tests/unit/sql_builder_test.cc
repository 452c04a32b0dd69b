// SqlBuilder: exact SQL text and bound parameters for SQLite (`?`, "users" / "<schema>_<entity>")
// and PostgreSQL (`$n`, "public"."users", ILIKE). Values are always parameters, never SQL text.

#include "adapters/sql_builder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "registry/model.h"
#include "tests/unit/test_builders.h"
#include "tests/unit/value_printer.h"

namespace mqttspec::adapters {
namespace {

using namespace mqttspec::testing;  // NOLINT: the shared test builders

using registry::Field;
using registry::FieldType;
using registry::Model;
using registry::ModelPtr;

// public.users: the fields' indexes are used throughout.
enum UserField { kId = 0, kName, kEmail, kAge, kScore, kActive, kCreatedAt, kMeta };

ModelPtr Users() {
  Field id = MakeField("id", FieldType::kInteger);
  id.auto_increment = true;
  auto m = Model::Create(
      "public", "users",
      {id, MakeField("name", FieldType::kText, /*nullable=*/false),
       MakeField("email", FieldType::kText, true, /*unique=*/true),
       MakeField("age", FieldType::kInteger), MakeField("score", FieldType::kReal),
       MakeField("active", FieldType::kBoolean), MakeField("created_at", FieldType::kTimestamp),
       MakeField("meta", FieldType::kJson)},
      "id");
  EXPECT_TRUE(m.ok());
  return m.value();
}

ModelPtr BlogPosts() {
  auto m = Model::Create(
      "blog", "posts", {MakeField("slug", FieldType::kText), MakeField("title", FieldType::kText)},
      "slug");
  EXPECT_TRUE(m.ok());
  return m.value();
}

const char* kAllUserColumns =
    R"("id", "name", "email", "age", "score", "active", "created_at", "meta")";

ReadQuery Query(ModelPtr model, FilterList filters = {}, std::vector<SortKey> sort = {},
                std::vector<int> columns = {kId, kName}, int64_t limit = 20, int64_t offset = 0) {
  ReadQuery q;
  q.model = std::move(model);
  q.filters = std::move(filters);
  q.sort = std::move(sort);
  q.columns = std::move(columns);
  q.limit = limit;
  q.offset = offset;
  return q;
}

void ExpectStatement(const Statement& st, const std::string& sql,
                     const std::vector<Value>& params) {
  EXPECT_EQ(st.sql, sql);
  EXPECT_TRUE(st.params == params) << "params " << Show(st.params) << ", expected " << Show(params);
}

const SqlBuilder kSqlite(Dialect::kSqlite);
const SqlBuilder kPostgres(Dialect::kPostgres);

// --- identifiers --------------------------------------------------------------------------------

TEST(SqlBuilderTest, QuoteWrapsInDoubleQuotesAndDoublesEmbeddedQuotes) {
  EXPECT_EQ(kSqlite.Quote("users"), R"("users")");
  EXPECT_EQ(kSqlite.Quote(R"(we"ird)"), R"("we""ird")");
  EXPECT_EQ(kPostgres.Quote(R"(a""b)"), R"("a""""b")");
  EXPECT_EQ(kPostgres.Quote(""), R"("")");
}

TEST(SqlBuilderTest, SqliteTableIsEntityForPublicAndSchemaUnderscoreEntityOtherwise) {
  EXPECT_EQ(kSqlite.Table(*Users()), R"("users")");
  EXPECT_EQ(kSqlite.Table(*BlogPosts()), R"("blog_posts")");
}

TEST(SqlBuilderTest, PostgresTableIsSchemaQualified) {
  EXPECT_EQ(kPostgres.Table(*Users()), R"("public"."users")");
  EXPECT_EQ(kPostgres.Table(*BlogPosts()), R"("blog"."posts")");
}

// --- LIKE escaping ------------------------------------------------------------------------------

TEST(SqlBuilderTest, EscapeLikeEscapesPercentUnderscoreAndBackslash) {
  EXPECT_EQ(SqlBuilder::EscapeLike("100%"), R"(100\%)");
  EXPECT_EQ(SqlBuilder::EscapeLike("a_b"), R"(a\_b)");
  EXPECT_EQ(SqlBuilder::EscapeLike(R"(c:\dir)"), R"(c:\\dir)");
  EXPECT_EQ(SqlBuilder::EscapeLike(R"(%_\)"), R"(\%\_\\)");
}

TEST(SqlBuilderTest, EscapeLikeLeavesOtherTextAlone) {
  EXPECT_EQ(SqlBuilder::EscapeLike(""), "");
  EXPECT_EQ(SqlBuilder::EscapeLike("plain text*?[]'\""), "plain text*?[]'\"");
}

// --- every operator, both dialects --------------------------------------------------------------

struct OpCase {
  const char* name;
  FilterNode node;
  const char* sqlite_where;  // the condition, as it appears after WHERE
  const char* postgres_where;
  std::vector<Value> params;
};

std::vector<OpCase> OpCases() {
  return {
      {"eq", Cond(kAge, Op::kEq, {I(30)}), R"(("age" = ?))", R"(("age" = $1))", {I(30)}},
      {"neq", Cond(kAge, Op::kNeq, {I(30)}), R"(("age" <> ?))", R"(("age" <> $1))", {I(30)}},
      {"gt", Cond(kAge, Op::kGt, {I(30)}), R"(("age" > ?))", R"(("age" > $1))", {I(30)}},
      {"gte", Cond(kAge, Op::kGte, {I(30)}), R"(("age" >= ?))", R"(("age" >= $1))", {I(30)}},
      {"lt",
       Cond(kScore, Op::kLt, {Value{1.5}}),
       R"(("score" < ?))",
       R"(("score" < $1))",
       {Value{1.5}}},
      {"lte",
       Cond(kCreatedAt, Op::kLte, {S("2026-11-22T10:00:00.000Z")}),
       R"(("created_at" <= ?))",
       R"(("created_at" <= $1))",
       {S("2026-11-22T10:00:00.000Z")}},
      {"like",
       Cond(kName, Op::kLike, {S("Al%")}),
       R"(("name" LIKE ? ESCAPE '\'))",
       R"(("name" LIKE $1 ESCAPE '\'))",
       {S("Al%")}},
      {"ilike",
       Cond(kName, Op::kIlike, {S("al%")}),
       R"((lower("name") LIKE lower(?) ESCAPE '\'))",
       R"(("name" ILIKE $1 ESCAPE '\'))",
       {S("al%")}},
      {"in",
       Cond(kAge, Op::kIn, {I(1), I(2), I(3)}),
       R"(("age" IN (?, ?, ?)))",
       R"(("age" IN ($1, $2, $3)))",
       {I(1), I(2), I(3)}},
      {"in_one",
       Cond(kName, Op::kIn, {S("a")}),
       R"(("name" IN (?)))",
       R"(("name" IN ($1)))",
       {S("a")}},
      {"in_empty", Cond(kAge, Op::kIn, {}), "(1 = 0)", "(1 = 0)", {}},
      {"not_in",
       Cond(kAge, Op::kNotIn, {I(1), I(2)}),
       R"(("age" NOT IN (?, ?)))",
       R"(("age" NOT IN ($1, $2)))",
       {I(1), I(2)}},
      {"not_in_empty",
       Cond(kAge, Op::kNotIn, {}),
       R"((("age" IS NOT NULL)))",
       R"((("age" IS NOT NULL)))",
       {}},
      {"between",
       Cond(kAge, Op::kBetween, {I(18), I(65)}),
       R"(("age" BETWEEN ? AND ?))",
       R"(("age" BETWEEN $1 AND $2))",
       {I(18), I(65)}},
      {"is_null",
       Cond(kEmail, Op::kIsNull, {}),
       R"(("email" IS NULL))",
       R"(("email" IS NULL))",
       {}},
      {"is_not_null",
       Cond(kEmail, Op::kIsNotNull, {}),
       R"(("email" IS NOT NULL))",
       R"(("email" IS NOT NULL))",
       {}},
      {"contains",
       Cond(kName, Op::kContains, {S("li")}),
       R"(("name" LIKE ? ESCAPE '\'))",
       R"(("name" LIKE $1 ESCAPE '\'))",
       {S("%li%")}},
      {"contains_escapes",
       Cond(kName, Op::kContains, {S(R"(50%_off\)")}),
       R"(("name" LIKE ? ESCAPE '\'))",
       R"(("name" LIKE $1 ESCAPE '\'))",
       {S(R"(%50\%\_off\\%)")}},
      {"starts_with",
       Cond(kName, Op::kStartsWith, {S("Al")}),
       R"(("name" LIKE ? ESCAPE '\'))",
       R"(("name" LIKE $1 ESCAPE '\'))",
       {S("Al%")}},
      {"starts_with_escapes",
       Cond(kName, Op::kStartsWith, {S("a_b%")}),
       R"(("name" LIKE ? ESCAPE '\'))",
       R"(("name" LIKE $1 ESCAPE '\'))",
       {S(R"(a\_b\%%)")}},
      {"eq_bool",
       Cond(kActive, Op::kEq, {Value{true}}),
       R"(("active" = ?))",
       R"(("active" = $1))",
       {Value{true}}},
      {"eq_json_text",
       Cond(kMeta, Op::kEq, {S(R"({"a":1})")}),
       R"(("meta" = ?))",
       R"(("meta" = $1))",
       {S(R"({"a":1})")}},
  };
}

class SqlOperatorTest : public ::testing::TestWithParam<OpCase> {};

TEST_P(SqlOperatorTest, SqliteCountHasExactWhereAndParams) {
  const OpCase& c = GetParam();
  ReadQuery q = Query(Users(), {c.node});
  ExpectStatement(kSqlite.Count(q),
                  std::string(R"(SELECT COUNT(*) FROM "users" WHERE )") + c.sqlite_where, c.params);
}

TEST_P(SqlOperatorTest, PostgresCountHasExactWhereAndParams) {
  const OpCase& c = GetParam();
  ReadQuery q = Query(Users(), {c.node});
  ExpectStatement(kPostgres.Count(q),
                  std::string(R"(SELECT COUNT(*) FROM "public"."users" WHERE )") + c.postgres_where,
                  c.params);
}

TEST_P(SqlOperatorTest, SqliteSelectPutsFilterParamsBeforeLimitAndOffset) {
  const OpCase& c = GetParam();
  ReadQuery q = Query(Users(), {c.node}, {}, {kId, kName}, 10, 30);
  std::vector<Value> params = c.params;
  params.push_back(I(10));
  params.push_back(I(30));
  ExpectStatement(kSqlite.Select(q),
                  std::string(R"(SELECT "id", "name" FROM "users" WHERE )") + c.sqlite_where +
                      R"( ORDER BY "id" ASC LIMIT ? OFFSET ?)",
                  params);
}

TEST_P(SqlOperatorTest, PostgresSelectNumbersLimitAndOffsetAfterFilterParams) {
  const OpCase& c = GetParam();
  ReadQuery q = Query(Users(), {c.node}, {}, {kId, kName}, 10, 30);
  std::vector<Value> params = c.params;
  params.push_back(I(10));
  params.push_back(I(30));
  const size_t n = c.params.size();
  ExpectStatement(kPostgres.Select(q),
                  std::string(R"(SELECT "id", "name" FROM "public"."users" WHERE )") +
                      c.postgres_where + R"( ORDER BY "id" ASC LIMIT $)" + std::to_string(n + 1) +
                      " OFFSET $" + std::to_string(n + 2),
                  params);
}

INSTANTIATE_TEST_SUITE_P(EveryOperator, SqlOperatorTest, ::testing::ValuesIn(OpCases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(SqlBuilderTest, OperatorTableCoversEveryOperator) {
  std::vector<bool> seen(15, false);
  for (const OpCase& c : OpCases()) seen[static_cast<size_t>(c.node.cond.op)] = true;
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_TRUE(seen[i]) << "no SQL case for operator " << OpName(static_cast<Op>(i));
  }
}

TEST(SqlBuilderTest, ParseOpAndOpNameRoundTripForEveryWireName) {
  for (const char* name : {"eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "in", "not_in",
                           "between", "is_null", "is_not_null", "contains", "starts_with"}) {
    auto op = ParseOp(name);
    ASSERT_TRUE(op.has_value()) << name;
    EXPECT_EQ(OpName(*op), name);
  }
  EXPECT_FALSE(ParseOp("EQ"));
  EXPECT_FALSE(ParseOp("regex"));
  EXPECT_FALSE(ParseOp(""));
}

// --- values never reach SQL text ----------------------------------------------------------------

TEST(SqlBuilderTest, ValuesNeverAppearInSqlTextOfAnyStatement) {
  const std::string evil = R"(x'); DROP TABLE users; --")";
  const int64_t magic = 987654321;
  auto users = Users();
  std::vector<FilterNode> nodes;
  for (Op op : {Op::kEq, Op::kNeq, Op::kGt, Op::kGte, Op::kLt, Op::kLte, Op::kLike, Op::kIlike,
                Op::kContains, Op::kStartsWith}) {
    nodes.push_back(Cond(kName, op, {Value{evil}}));
  }
  nodes.push_back(Cond(kName, Op::kIn, {Value{evil}, Value{evil}}));
  nodes.push_back(Cond(kName, Op::kNotIn, {Value{evil}}));
  nodes.push_back(Cond(kName, Op::kBetween, {Value{evil}, Value{evil}}));
  nodes.push_back(Cond(kAge, Op::kEq, {I(magic)}));
  FilterList all_ors;
  for (FilterNode n : nodes) {
    n.logic = Logic::kOr;
    all_ors.push_back(n);
  }
  Record record = {{kName, Value{evil}}, {kAge, I(magic)}};
  const WriteTag tag{evil, evil, evil, magic};  // the record of a write (WriteTag)
  for (const SqlBuilder* b : {&kSqlite, &kPostgres}) {
    ReadQuery q = Query(users, all_ors, {{kAge, true, Nulls::kDefault}}, {kId}, magic, magic);
    std::vector<Statement> statements = {
        b->Select(q),
        b->Count(q),
        b->SelectByKey(*users, Value{evil}, {kId}, all_ors),
        b->Insert(*users, record),
        b->Update(*users, Value{evil}, record, all_ors),
        b->Delete(*users, Value{evil}, all_ors),
        b->RecordWrite(tag, evil),
        b->WithRecord(b->Insert(*users, record), *users, tag),
        b->FindWrite(evil, evil, magic),
        b->ListWrites(magic, evil, evil, static_cast<size_t>(magic)),
        b->TrimWrites(magic, magic),
    };
    if (b == &kPostgres) {
      for (bool log : {false, true})
        statements.push_back(
            b->UpdateInOne(*users, Value{evil}, record, all_ors, log, magic, &tag));
    }
    for (const Statement& st : statements) {
      EXPECT_EQ(st.sql.find("DROP"), std::string::npos) << st.sql;
      EXPECT_EQ(st.sql.find(std::to_string(magic)), std::string::npos) << st.sql;
      std::string rest = st.sql;  // the only string literal allowed is the ESCAPE character
      for (size_t p; (p = rest.find(R"('\')")) != std::string::npos;) rest.erase(p, 3);
      EXPECT_EQ(rest.find('\''), std::string::npos) << "a string literal in SQL: " << st.sql;
      EXPECT_FALSE(st.params.empty()) << st.sql;
    }
  }
}

TEST(SqlBuilderTest, PostgresPlaceholdersCountUpOnePerParam) {
  auto users = Users();
  FilterList filters = {Cond(kName, Op::kIn, {S("a"), S("b")}),
                        Cond(kAge, Op::kBetween, {I(1), I(2)}, Logic::kOr),
                        Cond(kEmail, Op::kIsNull, {}), Cond(kScore, Op::kGt, {Value{0.5}})};
  Statement st = kPostgres.Select(Query(users, filters));
  ASSERT_EQ(st.params.size(), 7u);
  for (size_t i = 1; i <= 7; ++i) {
    EXPECT_NE(st.sql.find("$" + std::to_string(i)), std::string::npos) << i << ": " << st.sql;
  }
  EXPECT_EQ(st.sql.find("$8"), std::string::npos) << st.sql;
  EXPECT_EQ(st.sql.find('?'), std::string::npos) << st.sql;
  // A write with its record in one statement: the record's four values follow the write's.
  Statement rec = kPostgres.WithRecord(kPostgres.Insert(*users, {{kName, S("a")}}), *users,
                                       WriteTag{"c", "r", "d", 1});
  ASSERT_EQ(rec.params.size(), 5u);
  EXPECT_NE(rec.sql.find("$5::bigint"), std::string::npos) << rec.sql;
  EXPECT_EQ(rec.sql.find("$6"), std::string::npos) << rec.sql;
  // An update in one statement: key and scope (b), the new values (w), the log's four values,
  // the record's four.
  const WriteTag tag{"c", "r", "d", 1};
  Statement up = kPostgres.UpdateInOne(*users, I(7), {{kName, S("b")}},
                                       {Cond(kAge, Op::kGt, {I(1)})}, true, 5, &tag);
  ASSERT_EQ(up.params.size(), 11u);
  EXPECT_NE(up.sql.find("$11::bigint"), std::string::npos) << up.sql;
  EXPECT_EQ(up.sql.find("$12"), std::string::npos) << up.sql;
  EXPECT_NE(up.sql.find("FOR UPDATE"), std::string::npos) << up.sql;
}

TEST(SqlBuilderTest, SqlitePlaceholdersAreQuestionMarksOnly) {
  auto users = Users();
  FilterList filters = {Cond(kName, Op::kIn, {S("a"), S("b")}),
                        Cond(kAge, Op::kBetween, {I(1), I(2)}, Logic::kOr)};
  Statement st = kSqlite.Select(Query(users, filters));
  EXPECT_EQ(std::count(st.sql.begin(), st.sql.end(), '?'),
            static_cast<std::ptrdiff_t>(st.params.size()));
  EXPECT_EQ(st.sql.find('$'), std::string::npos) << st.sql;
}

// --- AND / OR precedence and groups -------------------------------------------------------------

TEST(SqlBuilderTest, FirstNodeLogicIsIgnored) {
  ReadQuery q = Query(Users(), {Cond(kAge, Op::kEq, {I(1)}, Logic::kOr)});
  EXPECT_EQ(kSqlite.Count(q).sql, R"(SELECT COUNT(*) FROM "users" WHERE ("age" = ?))");
}

TEST(SqlBuilderTest, FlatListJoinsEachNodeToThePreviousOneWithItsLogic) {
  // a OR b AND c: with SQL precedence this is a OR (b AND c).
  ReadQuery q =
      Query(Users(), {Cond(kName, Op::kEq, {S("a")}), Cond(kEmail, Op::kEq, {S("b")}, Logic::kOr),
                      Cond(kAge, Op::kEq, {I(3)}, Logic::kAnd)});
  ExpectStatement(kSqlite.Count(q),
                  R"(SELECT COUNT(*) FROM "users" WHERE ("name" = ?) OR ("email" = ?) AND )"
                  R"(("age" = ?))",
                  {S("a"), S("b"), I(3)});
  ExpectStatement(kPostgres.Count(q),
                  R"(SELECT COUNT(*) FROM "public"."users" WHERE ("name" = $1) OR )"
                  R"(("email" = $2) AND ("age" = $3))",
                  {S("a"), S("b"), I(3)});
}

TEST(SqlBuilderTest, GroupIsParenthesizedAsOneNode) {
  // name = x AND (age < 18 OR age > 65)
  ReadQuery q = Query(Users(), {Cond(kName, Op::kEq, {S("x")}),
                                Group(Logic::kAnd, {Cond(kAge, Op::kLt, {I(18)}),
                                                    Cond(kAge, Op::kGt, {I(65)}, Logic::kOr)})});
  ExpectStatement(kSqlite.Count(q),
                  R"(SELECT COUNT(*) FROM "users" WHERE ("name" = ?) AND (("age" < ?) OR )"
                  R"(("age" > ?)))",
                  {S("x"), I(18), I(65)});
  ExpectStatement(kPostgres.Count(q),
                  R"(SELECT COUNT(*) FROM "public"."users" WHERE ("name" = $1) AND )"
                  R"((("age" < $2) OR ("age" > $3)))",
                  {S("x"), I(18), I(65)});
}

TEST(SqlBuilderTest, NestedGroupsKeepTheirOwnParentheses) {
  // (a = 1 OR (b = 2 AND (c IS NULL OR c = 3))) OR d = 4
  FilterList inner = {Cond(kEmail, Op::kIsNull, {}), Cond(kEmail, Op::kEq, {S("c")}, Logic::kOr)};
  FilterList middle = {Cond(kAge, Op::kEq, {I(2)}), Group(Logic::kAnd, inner)};
  FilterList outer = {Cond(kName, Op::kEq, {S("a")}), Group(Logic::kOr, middle)};
  ReadQuery q =
      Query(Users(), {Group(Logic::kAnd, outer), Cond(kScore, Op::kEq, {Value{4.0}}, Logic::kOr)});
  ExpectStatement(
      kSqlite.Count(q),
      R"(SELECT COUNT(*) FROM "users" WHERE (("name" = ?) OR (("age" = ?) AND (("email" IS NULL))"
      R"( OR ("email" = ?)))) OR ("score" = ?))",
      {S("a"), I(2), S("c"), Value{4.0}});
  ExpectStatement(
      kPostgres.Count(q),
      R"(SELECT COUNT(*) FROM "public"."users" WHERE (("name" = $1) OR (("age" = $2) AND )"
      R"((("email" IS NULL) OR ("email" = $3)))) OR ("score" = $4))",
      {S("a"), I(2), S("c"), Value{4.0}});
}

TEST(SqlBuilderTest, GroupAfterOrBindsAsOneOperand) {
  // a = 1 OR (b = 2 AND c = 3) AND d = 4
  ReadQuery q =
      Query(Users(), {Cond(kAge, Op::kEq, {I(1)}),
                      Group(Logic::kOr, {Cond(kAge, Op::kEq, {I(2)}), Cond(kAge, Op::kEq, {I(3)})}),
                      Cond(kAge, Op::kEq, {I(4)})});
  EXPECT_EQ(kSqlite.Count(q).sql,
            R"(SELECT COUNT(*) FROM "users" WHERE ("age" = ?) OR (("age" = ?) AND ("age" = ?)))"
            R"( AND ("age" = ?))");
}

TEST(SqlBuilderTest, EmptyGroupIsTrue) {
  ReadQuery q = Query(Users(), {Group(Logic::kAnd, {}), Cond(kAge, Op::kEq, {I(1)})});
  ExpectStatement(kSqlite.Count(q), R"(SELECT COUNT(*) FROM "users" WHERE (1 = 1) AND ("age" = ?))",
                  {I(1)});
}

TEST(SqlBuilderTest, NoFiltersMeansNoWhere) {
  ExpectStatement(kSqlite.Count(Query(Users())), R"(SELECT COUNT(*) FROM "users")", {});
  ExpectStatement(kPostgres.Count(Query(Users())), R"(SELECT COUNT(*) FROM "public"."users")", {});
}

// --- SELECT, sort, pagination -------------------------------------------------------------------

TEST(SqlBuilderTest, SelectWithoutSortOrdersByPrimaryKey) {
  ReadQuery q = Query(Users(), {}, {}, {kName, kEmail, kId}, 50, 100);
  ExpectStatement(kSqlite.Select(q),
                  R"(SELECT "name", "email", "id" FROM "users" ORDER BY "id" ASC LIMIT ? )"
                  R"(OFFSET ?)",
                  {I(50), I(100)});
  ExpectStatement(kPostgres.Select(q),
                  R"(SELECT "name", "email", "id" FROM "public"."users" ORDER BY "id" ASC )"
                  R"(LIMIT $1 OFFSET $2)",
                  {I(50), I(100)});
}

TEST(SqlBuilderTest, SelectUsesSchemaPrefixedTableOnSqlite) {
  ReadQuery q = Query(BlogPosts(), {}, {}, {0, 1});
  EXPECT_EQ(kSqlite.Select(q).sql,
            R"(SELECT "slug", "title" FROM "blog_posts" ORDER BY "slug" ASC LIMIT ? OFFSET ?)");
  EXPECT_EQ(kPostgres.Select(q).sql,
            R"(SELECT "slug", "title" FROM "blog"."posts" ORDER BY "slug" COLLATE "C" ASC )"
            R"(LIMIT $1 OFFSET $2)");  // a text key orders byte-wise, as on SQLite
}

struct SortCase {
  const char* name;
  std::vector<SortKey> sort;
  const char* order_by;
};

class SqlSortTest : public ::testing::TestWithParam<SortCase> {};

// The same order on both dialects; PostgreSQL spells out byte-wise (C) collation for text keys,
// which is SQLite's default, so both sort text identically.
TEST_P(SqlSortTest, OrderByIsTheSameOnBothDialects) {
  const SortCase& c = GetParam();
  ReadQuery q = Query(Users(), {}, c.sort);
  EXPECT_EQ(kSqlite.Select(q).sql, std::string(R"(SELECT "id", "name" FROM "users" ORDER BY )") +
                                       c.order_by + " LIMIT ? OFFSET ?");
  std::string pg_order = c.order_by;
  for (const char* text_key : {R"("name" )", R"("email" )"}) {
    for (size_t at = pg_order.find(text_key); at != std::string::npos;
         at = pg_order.find(text_key, at + 1)) {
      pg_order.insert(at + std::strlen(text_key), R"(COLLATE "C" )");
    }
  }
  EXPECT_EQ(kPostgres.Select(q).sql,
            std::string(R"(SELECT "id", "name" FROM "public"."users" ORDER BY )") + pg_order +
                " LIMIT $1 OFFSET $2");
}

TEST(SqlBuilderTest, IndexedFieldsGetAnIndexUniqueAndPrimaryOnesAlreadyHaveOne) {
  Field id = MakeField("id", FieldType::kInteger);
  Field grp = MakeField("grp", FieldType::kInteger);
  grp.indexed = true;
  Field name = MakeField("name", FieldType::kText);
  name.indexed = true;
  Field email = MakeField("email", FieldType::kText, true, /*unique=*/true);
  email.indexed = true;
  auto m = registry::Model::Create("iot", "items", {id, grp, name, email}, "id").value();
  EXPECT_EQ(kSqlite.CreateIndexes(*m),
            (std::vector<std::string>{
                R"(CREATE INDEX IF NOT EXISTS "iot_items_grp_idx" ON "iot_items" ("grp"))",
                R"(CREATE INDEX IF NOT EXISTS "iot_items_name_idx" ON "iot_items" ("name"))"}));
  EXPECT_EQ(
      kPostgres.CreateIndexes(*m),
      (std::vector<std::string>{
          R"(CREATE INDEX IF NOT EXISTS "iot_items_grp_idx" ON "iot"."items" ("grp"))",
          R"(CREATE INDEX IF NOT EXISTS "iot_items_name_idx" ON "iot"."items" ("name" COLLATE "C"))"}));
}

TEST(SqlBuilderTest, PostgresComparesAndSortsTextByteWiseLikeSqlite) {
  FilterList f;
  f.push_back(Cond(kName, Op::kGt, {Value{std::string("m")}}));
  f.push_back(Cond(kName, Op::kBetween, {Value{std::string("a")}, Value{std::string("c")}}));
  f.push_back(Cond(kName, Op::kEq, {Value{std::string("x")}}));
  ReadQuery q = Query(Users(), f, {{kName, false, Nulls::kDefault}});
  const std::string pg = kPostgres.Select(q).sql;
  EXPECT_NE(pg.find(R"(("name" COLLATE "C" > $1))"), std::string::npos) << pg;
  EXPECT_NE(pg.find(R"(("name" COLLATE "C" BETWEEN $2 AND $3))"), std::string::npos) << pg;
  EXPECT_NE(pg.find(R"(("name" = $4))"), std::string::npos) << pg;  // equality needs no collation
  EXPECT_NE(pg.find(R"(ORDER BY "name" COLLATE "C" ASC NULLS LAST)"), std::string::npos) << pg;
  EXPECT_EQ(kSqlite.Select(q).sql.find("COLLATE"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Sorts, SqlSortTest,
    ::testing::Values(
        // NULL is the largest value by default: ascending puts it last, descending first.
        SortCase{"AscDefaultsToNullsLastThenKey",
                 {{kAge, false, Nulls::kDefault}},
                 R"("age" ASC NULLS LAST, "id" ASC)"},
        SortCase{"DescDefaultsToNullsFirstThenKey",
                 {{kAge, true, Nulls::kDefault}},
                 R"("age" DESC NULLS FIRST, "id" ASC)"},
        SortCase{"AscWithNullsFirst",
                 {{kAge, false, Nulls::kFirst}},
                 R"("age" ASC NULLS FIRST, "id" ASC)"},
        SortCase{"DescWithNullsLast",
                 {{kAge, true, Nulls::kLast}},
                 R"("age" DESC NULLS LAST, "id" ASC)"},
        SortCase{"AscWithExplicitNullsLast",
                 {{kAge, false, Nulls::kLast}},
                 R"("age" ASC NULLS LAST, "id" ASC)"},
        SortCase{"DescWithExplicitNullsFirst",
                 {{kAge, true, Nulls::kFirst}},
                 R"("age" DESC NULLS FIRST, "id" ASC)"},
        SortCase{"SeveralKeysInOrderThenPrimaryKey",
                 {{kActive, true, Nulls::kDefault},
                  {kName, false, Nulls::kDefault},
                  {kCreatedAt, false, Nulls::kFirst}},
                 R"("active" DESC NULLS FIRST, "name" ASC NULLS LAST, "created_at" ASC NULLS )"
                 R"(FIRST, "id" ASC)"},
        SortCase{"SortByPrimaryKeyNeedsNoTiebreak",
                 {{kId, true, Nulls::kDefault}},
                 R"("id" DESC NULLS FIRST)"},
        SortCase{"PrimaryKeyAmongKeysNeedsNoTiebreak",
                 {{kAge, false, Nulls::kDefault}, {kId, false, Nulls::kDefault}},
                 R"("age" ASC NULLS LAST, "id" ASC NULLS LAST)"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(SqlBuilderTest, CountIgnoresSortLimitAndOffset) {
  ReadQuery q =
      Query(Users(), {Cond(kAge, Op::kGt, {I(1)})}, {{kAge, true, Nulls::kDefault}}, {kId}, 5, 10);
  ExpectStatement(kSqlite.Count(q), R"(SELECT COUNT(*) FROM "users" WHERE ("age" > ?))", {I(1)});
}

// --- by key, insert, update, delete -------------------------------------------------------------

TEST(SqlBuilderTest, SelectByKeyWithoutScope) {
  auto users = Users();
  ExpectStatement(kSqlite.SelectByKey(*users, I(7), {kId, kName}, {}),
                  R"(SELECT "id", "name" FROM "users" WHERE "id" = ?)", {I(7)});
  ExpectStatement(kPostgres.SelectByKey(*users, I(7), {kEmail}, {}),
                  R"(SELECT "email" FROM "public"."users" WHERE "id" = $1)", {I(7)});
}

TEST(SqlBuilderTest, SelectByKeyScopeWithOrCannotWidenTheKeyMatch) {
  auto users = Users();
  FilterList scope = {Cond(kName, Op::kEq, {S("a")}), Cond(kName, Op::kEq, {S("b")}, Logic::kOr)};
  ExpectStatement(kSqlite.SelectByKey(*users, I(7), {kId}, scope),
                  R"(SELECT "id" FROM "users" WHERE "id" = ? AND (("name" = ?) OR ("name" = ?)))",
                  {I(7), S("a"), S("b")});
  ExpectStatement(kPostgres.SelectByKey(*users, I(7), {kId}, scope),
                  R"(SELECT "id" FROM "public"."users" WHERE "id" = $1 AND (("name" = $2) OR )"
                  R"(("name" = $3)))",
                  {I(7), S("a"), S("b")});
}

TEST(SqlBuilderTest, InsertListsGivenColumnsAndReturnsAllFields) {
  auto users = Users();
  Record r = {{kName, S("Ann")}, {kEmail, S("ann@example.com")}, {kAge, Value{}}};
  ExpectStatement(kSqlite.Insert(*users, r),
                  std::string(R"(INSERT INTO "users" ("name", "email", "age") VALUES (?, ?, ?) )") +
                      "RETURNING " + kAllUserColumns,
                  {S("Ann"), S("ann@example.com"), Value{}});
  ExpectStatement(
      kPostgres.Insert(*users, r),
      std::string(R"(INSERT INTO "public"."users" ("name", "email", "age") VALUES ($1, $2, $3) )") +
          "RETURNING " + kAllUserColumns,
      {S("Ann"), S("ann@example.com"), Value{}});
}

TEST(SqlBuilderTest, InsertOfEmptyRecordUsesDefaultValues) {
  auto users = Users();
  ExpectStatement(kSqlite.Insert(*users, {}),
                  std::string(R"(INSERT INTO "users" DEFAULT VALUES RETURNING )") + kAllUserColumns,
                  {});
  ExpectStatement(
      kPostgres.Insert(*users, {}),
      std::string(R"(INSERT INTO "public"."users" DEFAULT VALUES RETURNING )") + kAllUserColumns,
      {});
}

TEST(SqlBuilderTest, UpdateSetsOnlyGivenFieldsThenBindsKey) {
  auto users = Users();
  Record changes = {{kName, S("Bob")}, {kActive, Value{false}}};
  ExpectStatement(kSqlite.Update(*users, I(3), changes, {}),
                  std::string(R"(UPDATE "users" SET "name" = ?, "active" = ? WHERE "id" = ? )") +
                      "RETURNING " + kAllUserColumns,
                  {S("Bob"), Value{false}, I(3)});
  ExpectStatement(
      kPostgres.Update(*users, I(3), changes, {}),
      std::string(R"(UPDATE "public"."users" SET "name" = $1, "active" = $2 WHERE "id" = $3 )") +
          "RETURNING " + kAllUserColumns,
      {S("Bob"), Value{false}, I(3)});
}

TEST(SqlBuilderTest, UpdateWithScopeAddsParenthesizedScope) {
  auto users = Users();
  Record changes = {{kAge, I(40)}};
  FilterList scope = {Cond(kEmail, Op::kEq, {S("me@x")}),
                      Cond(kActive, Op::kEq, {Value{true}}, Logic::kOr)};
  ExpectStatement(
      kSqlite.Update(*users, I(3), changes, scope),
      std::string(R"(UPDATE "users" SET "age" = ? WHERE "id" = ? AND (("email" = ?) )") +
          R"(OR ("active" = ?)) RETURNING )" + kAllUserColumns,
      {I(40), I(3), S("me@x"), Value{true}});
  ExpectStatement(kPostgres.Update(*users, I(3), changes, scope),
                  std::string(R"(UPDATE "public"."users" SET "age" = $1 WHERE "id" = $2 AND )") +
                      R"((("email" = $3) OR ("active" = $4)) RETURNING )" + kAllUserColumns,
                  {I(40), I(3), S("me@x"), Value{true}});
}

TEST(SqlBuilderTest, DeleteByKeyReturnsAllFields) {
  auto users = Users();
  ExpectStatement(kSqlite.Delete(*users, I(9), {}),
                  std::string(R"(DELETE FROM "users" WHERE "id" = ? RETURNING )") + kAllUserColumns,
                  {I(9)});
  ExpectStatement(
      kPostgres.Delete(*users, I(9), {}),
      std::string(R"(DELETE FROM "public"."users" WHERE "id" = $1 RETURNING )") + kAllUserColumns,
      {I(9)});
}

TEST(SqlBuilderTest, DeleteWithScopeAddsParenthesizedScope) {
  auto users = Users();
  FilterList scope = {Cond(kAge, Op::kGte, {I(18)})};
  ExpectStatement(
      kSqlite.Delete(*users, I(9), scope),
      std::string(R"(DELETE FROM "users" WHERE "id" = ? AND (("age" >= ?)) RETURNING )") +
          kAllUserColumns,
      {I(9), I(18)});
  ExpectStatement(
      kPostgres.Delete(*users, I(9), scope),
      std::string(
          R"(DELETE FROM "public"."users" WHERE "id" = $1 AND (("age" >= $2)) RETURNING )") +
          kAllUserColumns,
      {I(9), I(18)});
}

TEST(SqlBuilderTest, TextPrimaryKeyOnSchemaTable) {
  auto posts = BlogPosts();
  ExpectStatement(kSqlite.Delete(*posts, S("hello"), {}),
                  R"(DELETE FROM "blog_posts" WHERE "slug" = ? RETURNING "slug", "title")",
                  {S("hello")});
  ExpectStatement(kPostgres.Delete(*posts, S("hello"), {}),
                  R"(DELETE FROM "blog"."posts" WHERE "slug" = $1 RETURNING "slug", "title")",
                  {S("hello")});
}

// --- CREATE TABLE -------------------------------------------------------------------------------

TEST(SqlBuilderTest, SqliteCreateTableColumnDefinitions) {
  EXPECT_EQ(kSqlite.CreateTable(*Users()),
            R"(CREATE TABLE IF NOT EXISTS "users" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, )"
            R"("name" TEXT NOT NULL, "email" TEXT UNIQUE, "age" INTEGER, "score" REAL, )"
            R"("active" INTEGER, "created_at" TEXT, "meta" TEXT))");
}

TEST(SqlBuilderTest, PostgresCreateTableColumnDefinitions) {
  EXPECT_EQ(kPostgres.CreateTable(*Users()),
            R"(CREATE TABLE IF NOT EXISTS "public"."users" ("id" BIGINT GENERATED BY DEFAULT AS )"
            R"(IDENTITY PRIMARY KEY, "name" TEXT NOT NULL, "email" TEXT UNIQUE, "age" BIGINT, )"
            R"("score" DOUBLE PRECISION, "active" BOOLEAN, "created_at" TIMESTAMPTZ, )"
            R"("meta" JSONB))");
}

TEST(SqlBuilderTest, CreateTableForNonAutoIncrementKeyOnSchemaTable) {
  EXPECT_EQ(kSqlite.CreateTable(*BlogPosts()),
            R"(CREATE TABLE IF NOT EXISTS "blog_posts" ("slug" TEXT PRIMARY KEY, "title" TEXT))");
  EXPECT_EQ(kPostgres.CreateTable(*BlogPosts()),
            R"(CREATE TABLE IF NOT EXISTS "blog"."posts" ("slug" TEXT PRIMARY KEY, )"
            R"("title" TEXT))");
}

TEST(SqlBuilderTest, ColumnDefinitionCombinesNotNullAndUnique) {
  Field f = MakeField("code", FieldType::kText, /*nullable=*/false, /*unique=*/true);
  EXPECT_EQ(kSqlite.ColumnDefinition(f), R"("code" TEXT NOT NULL UNIQUE)");
  EXPECT_EQ(kPostgres.ColumnDefinition(f), R"("code" TEXT NOT NULL UNIQUE)");
}

TEST(SqlBuilderTest, ColumnDefinitionOfIntegerKeyWithoutAutoIncrement) {
  auto m = Model::Create("public", "t", {MakeField("k", FieldType::kInteger)}, "k");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(kSqlite.ColumnDefinition(m.value()->primary()), R"("k" INTEGER PRIMARY KEY)");
  EXPECT_EQ(kPostgres.ColumnDefinition(m.value()->primary()), R"("k" BIGINT PRIMARY KEY)");
}

TEST(SqlBuilderTest, ColumnDefinitionPerTypeAndDialect) {
  struct Case {
    FieldType type;
    const char* sqlite;
    const char* postgres;
  };
  for (const Case& c :
       {Case{FieldType::kInteger, "INTEGER", "BIGINT"},
        Case{FieldType::kReal, "REAL", "DOUBLE PRECISION"}, Case{FieldType::kText, "TEXT", "TEXT"},
        Case{FieldType::kBoolean, "INTEGER", "BOOLEAN"},
        Case{FieldType::kTimestamp, "TEXT", "TIMESTAMPTZ"},
        Case{FieldType::kJson, "TEXT", "JSONB"}}) {
    Field f = MakeField("c", c.type);
    EXPECT_EQ(kSqlite.ColumnDefinition(f), std::string(R"("c" )") + c.sqlite);
    EXPECT_EQ(kPostgres.ColumnDefinition(f), std::string(R"("c" )") + c.postgres);
  }
}

}  // namespace
}  // namespace mqttspec::adapters
