// SqliteDatabase: what only SQLite has — the database file (created, reopened, refused when it
// is not a database), schema-prefixed table names, tables created outside the service, readers
// on their own connections, the interrupt-based query timeout and how values are stored. What
// every adapter must do alike (operators, NULLs, sorting, paging, writes, conflicts, migrations)
// is in database_conformance_test.cc, which runs on SQLite files and :memory: too.

#include "adapters/sqlite_database.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "registry/model.h"
#include "tests/unit/test_builders.h"
#include "tests/unit/users_fixture.h"
#include "tests/unit/value_printer.h"

namespace mqttspec::adapters {
namespace {

using namespace mqttspec::testing;  // NOLINT: the shared test builders

using registry::Field;
using registry::FieldType;
using registry::Model;
using registry::ModelPtr;

// --- helpers ------------------------------------------------------------------------------------

std::vector<int> AllColumns() {
  std::vector<int> cols;
  for (size_t i = 0; i < kUserFieldCount; ++i) cols.push_back(static_cast<int>(i));
  return cols;
}

std::string MakeTempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "mqttspec_unit_XXXXXX").string();
  char* dir = mkdtemp(tmpl.data());
  EXPECT_NE(dir, nullptr);
  return dir ? std::string(dir) : std::string();
}

// Runs plain SQL on a database file with the sqlite3 API, bypassing the adapter.
void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

// The rows of `sql` on a database file, each value as SQLite's typeof() and text: "integer:1".
std::vector<std::vector<std::string>> RawRows(const std::string& path, const std::string& sql) {
  std::vector<std::vector<std::string>> out;
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return out;
  sqlite3_stmt* st = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      static const char* kTypes[] = {"?", "integer", "real", "text", "blob", "null"};
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
      row.push_back(std::string(kTypes[sqlite3_column_type(st, c)]) + ":" + (text ? text : ""));
    }
    out.push_back(std::move(row));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// Names of the tables in a database file.
std::vector<std::string> RawTables(const std::string& path) {
  std::vector<std::string> out;
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) return out;
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", -1,
                     &st, nullptr);
  while (st && sqlite3_step(st) == SQLITE_ROW) {
    out.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

std::unique_ptr<SqliteDatabase> MustOpen(const SqliteOptions& options) {
  auto db = SqliteDatabase::Open(options);
  EXPECT_TRUE(db.ok()) << (db.ok() ? "" : db.error().message);
  return db.ok() ? std::move(db).value() : nullptr;
}

// --- file-only behaviour ------------------------------------------------------------------------

class SqliteFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    path_ = dir_ + "/file.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  SqliteOptions Options() const {
    SqliteOptions o;
    o.path = path_;
    o.readers = 2;
    return o;
  }

  std::string dir_, path_;
};

TEST_F(SqliteFileTest, OpenCreatesTheFile) {
  auto db = MustOpen(Options());
  ASSERT_NE(db, nullptr);
  EXPECT_TRUE(std::filesystem::exists(path_));
}

TEST_F(SqliteFileTest, OpenOfUnreachablePathIsUnavailableWithoutThePath) {
  SqliteOptions o = Options();
  o.path = dir_ + "/no/such/dir/x.db";
  auto db = SqliteDatabase::Open(o);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(db.error().message.find(dir_), std::string::npos) << db.error().message;
}

TEST_F(SqliteFileTest, OpenOfFileThatIsNotADatabaseIsUnavailable) {
  {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::string junk(8192, 'j');
    std::fwrite(junk.data(), 1, junk.size(), f);
    std::fclose(f);
  }
  auto db = SqliteDatabase::Open(Options());
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(db.error().message.find(dir_), std::string::npos) << db.error().message;
}

TEST_F(SqliteFileTest, MigrateNamesSchemaTablesSchemaUnderscoreEntity) {
  auto db = MustOpen(Options());
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Migrate(*Users()).ok());
  auto posts = MustModel("blog", "posts", {AutoId(), MakeField("t", FieldType::kText)}, "id");
  ASSERT_TRUE(db->Migrate(*posts).ok());
  auto tables = RawTables(path_);
  EXPECT_NE(std::find(tables.begin(), tables.end(), "users"), tables.end());
  EXPECT_NE(std::find(tables.begin(), tables.end(), "blog_posts"), tables.end());
}

// SQLite has no schemas and folds the case of table names: blog.posts and public.blog_posts, or
// public.Users and public.users, would be one table — two models reading and writing each
// other's rows. The second model to migrate onto a table is refused; the same model again is not.
TEST_F(SqliteFileTest, TwoModelsOnOneTableAreRefusedNamingBoth) {
  auto db = MustOpen(Options());
  ASSERT_NE(db, nullptr);
  auto posts = MustModel("blog", "posts", {AutoId(), MakeField("t", FieldType::kText)}, "id");
  auto flat = MustModel("public", "blog_posts", {AutoId(), MakeField("x", FieldType::kText)}, "id");
  auto upper = MustModel("public", "Blog_Posts", {AutoId()}, "id");
  ASSERT_TRUE(db->Migrate(*posts).ok());
  ASSERT_TRUE(db->Migrate(*posts).ok());  // the same model again (a restart's migrate)
  for (const auto& other : {flat, upper}) {
    auto st = db->Migrate(*other);
    ASSERT_FALSE(st.ok()) << other->qualified_name();
    EXPECT_EQ(st.error().code, ErrorCode::kInvalidValue);
    EXPECT_NE(st.error().message.find("blog.posts"), std::string::npos) << st.error().message;
    EXPECT_NE(st.error().message.find(other->qualified_name()), std::string::npos)
        << st.error().message;
  }
  // The table was left as it was: the other model's field was not added.
  EXPECT_EQ(RawRows(path_, "SELECT name FROM pragma_table_info('blog_posts')"),
            (std::vector<std::vector<std::string>>{{"text:id"}, {"text:t"}}));
}

TEST_F(SqliteFileTest, TableNamesArePrefixedBySchemaExceptPublic) {
  auto db = MustOpen(Options());
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(db->TableName(*Users()), "users");
  auto posts = MustModel("blog", "posts", {AutoId()}, "id");
  EXPECT_EQ(db->TableName(*posts), "blog_posts");
}

// How values sit in the file: booleans as 0/1, timestamps as ISO 8601 text, JSON as its text
// (clients see true/false, the timestamp and the JSON value on every database).
TEST_F(SqliteFileTest, StoresBooleansAsIntegersAndTimestampsAndJsonAsText) {
  auto db = MustOpen(Options());
  ASSERT_NE(db, nullptr);
  auto users = Users();
  ASSERT_TRUE(db->Migrate(*users).ok());
  auto created = db->Create(*users, {{{kName, S("T")},
                                      {kAge, I(7)},
                                      {kScore, D(2.0)},
                                      {kActive, B(true)},
                                      {kCreatedAt, S("2026-11-22T10:00:00.000Z")},
                                      {kMeta, S(R"({"b":1,"a":[2]})")}}});
  ASSERT_TRUE(created.ok()) << created.error().message;
  const Row& r = created.value()[0];
  EXPECT_TRUE(r[kActive] == I(1)) << "booleans come back as 0/1: " << Show(r);
  EXPECT_TRUE(r[kMeta] == S(R"({"b":1,"a":[2]})")) << "JSON keeps its text: " << Show(r);
  EXPECT_EQ(RawRows(path_, "SELECT age, score, active, created_at, meta, email FROM users"),
            (std::vector<std::vector<std::string>>{{"integer:7", "real:2.0", "integer:1",
                                                    "text:2026-11-22T10:00:00.000Z",
                                                    R"(text:{"b":1,"a":[2]})", "null:"}}));
}

TEST_F(SqliteFileTest, MemoryDatabasesAreSeparate) {
  SqliteOptions o;
  o.path = ":memory:";
  auto a = MustOpen(o);
  auto b = MustOpen(o);
  ASSERT_TRUE(a && b);
  auto users = Users();
  ASSERT_TRUE(a->Migrate(*users).ok());
  ASSERT_TRUE(b->Migrate(*users).ok());
  ASSERT_TRUE(a->Create(*users, SeedRecords()).ok());
  ReadQuery q;
  q.model = users;
  q.columns = {kId};
  q.limit = 10;
  auto ra = a->Read(q);
  auto rb = b->Read(q);
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(ra.value().total, 5);
  EXPECT_EQ(rb.value().total, 0);
}

TEST_F(SqliteFileTest, MigrateAddsMissingColumnToTableCreatedOutsideTheService) {
  RawExec(path_,
          "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, "
          "email TEXT UNIQUE); INSERT INTO users (name, email) VALUES ('Legacy', 'l@x');");
  auto db = MustOpen(Options());
  ASSERT_NE(db, nullptr);
  auto users = Users();  // adds age, score, active, created_at, note, meta (all nullable)
  Status st = db->Migrate(*users);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto row = db->ReadByKey(*users, I(1), AllColumns(), {});
  ASSERT_TRUE(row.ok()) << row.error().message;
  ASSERT_TRUE(row.value().has_value());
  EXPECT_TRUE((*row.value())[kName] == S("Legacy"));
  EXPECT_TRUE(IsNull((*row.value())[kAge]));
  auto upd = db->Update(*users, I(1), {{kAge, I(50)}}, {});
  ASSERT_TRUE(upd.ok()) << upd.error().message;
  ASSERT_TRUE(upd.value().has_value());
  EXPECT_TRUE((*upd.value())[kAge] == I(50));
}

TEST_F(SqliteFileTest, RowsSurviveReopening) {
  auto users = Users();
  {
    auto db = MustOpen(Options());
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->Migrate(*users).ok());
    ASSERT_TRUE(db->Create(*users, SeedRecords()).ok());
  }
  SqliteOptions o = Options();
  o.synchronous_full = false;
  auto db = MustOpen(o);
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->Migrate(*users).ok());
  auto row = db->ReadByKey(*users, I(4), {kName}, {});
  ASSERT_TRUE(row.ok()) << row.error().message;
  ASSERT_TRUE(row.value().has_value());
  EXPECT_TRUE((*row.value())[0] == S("Carol"));
}

TEST_F(SqliteFileTest, ReadersSeeCommittedWritesImmediately) {
  auto db = MustOpen(Options());
  ASSERT_NE(db, nullptr);
  auto users = Users();
  ASSERT_TRUE(db->Migrate(*users).ok());
  ReadQuery q;
  q.model = users;
  q.columns = {kId};
  q.limit = 100;
  for (int i = 1; i <= 5; ++i) {
    ASSERT_TRUE(db->Create(*users, {{{kName, S("n")}}}).ok());
    auto r = db->Read(q);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r.value().total, i);
  }
}

TEST_F(SqliteFileTest, QueryRunningLongerThanTheTimeoutIsInterruptedWithTimeout) {
  auto users = Users();
  {
    SqliteOptions o = Options();
    o.synchronous_full = false;
    auto db = MustOpen(o);
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->Migrate(*users).ok());
    std::string pad(200, 'x');
    for (int batch = 0; batch < 60; ++batch) {
      std::vector<Record> records;
      for (int i = 0; i < 1000; ++i) {
        records.push_back({{kName, Value{pad + std::to_string(batch * 1000 + i)}}, {kAge, I(i)}});
      }
      auto r = db->Create(*users, records);
      ASSERT_TRUE(r.ok()) << r.error().message;
    }
  }
  SqliteOptions o = Options();
  o.query_timeout_ms = 1;
  auto db = MustOpen(o);
  ASSERT_NE(db, nullptr);
  // A full scan of 60,000 rows with lower() on each, sorted on an unindexed column, and counted.
  ReadQuery q;
  q.model = users;
  q.columns = {kId, kName};
  q.limit = 1000;
  q.filters = {Cond(kName, Op::kIlike, {S("%no such text%")}),
               Cond(kName, Op::kContains, {S("7")}, Logic::kOr)};
  q.sort = {{kName, true, Nulls::kDefault}};
  auto r = db->Read(q);
  ASSERT_FALSE(r.ok()) << "a read of 60,000 rows finished within 1 ms";
  EXPECT_EQ(r.error().code, ErrorCode::kTimeout) << r.error().message;
  EXPECT_EQ(r.error().message.find("SELECT"), std::string::npos) << r.error().message;
  // A cheap statement afterwards is not affected by the earlier interrupt.
  auto row = db->ReadByKey(*users, I(1), {kId}, {});
  ASSERT_TRUE(row.ok()) << row.error().message;
  EXPECT_TRUE(row.value().has_value());
}

}  // namespace
}  // namespace mqttspec::adapters
