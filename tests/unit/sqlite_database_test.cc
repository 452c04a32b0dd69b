// SqliteDatabase against real SQLite databases: a file in a fresh temporary directory, and
// ":memory:". Most tests run on both (SqliteDatabaseTest is parameterized on the storage).

#include "adapters/sqlite_database.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "registry/model.h"
#include "tests/unit/value_printer.h"

namespace mqttspec::adapters {
namespace {

using registry::Field;
using registry::FieldType;
using registry::Model;
using registry::ModelPtr;

// --- helpers ------------------------------------------------------------------------------------

enum UserField { kId = 0, kName, kEmail, kAge, kScore, kActive, kCreatedAt, kNote, kMeta };
constexpr size_t kUserFieldCount = 9;

Field MakeField(std::string name, FieldType type, bool nullable = true, bool unique = false) {
  Field f;
  f.name = std::move(name);
  f.type = type;
  f.nullable = nullable;
  f.unique = unique;
  return f;
}

Field AutoId() {
  Field id = MakeField("id", FieldType::kInteger);
  id.auto_increment = true;
  return id;
}

ModelPtr MustModel(std::string schema, std::string entity, std::vector<Field> fields,
                   std::string pk) {
  auto m = Model::Create(std::move(schema), std::move(entity), std::move(fields), std::move(pk));
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? m.value() : nullptr;
}

ModelPtr Users() {
  return MustModel(
      "public", "users",
      {AutoId(), MakeField("name", FieldType::kText, /*nullable=*/false),
       MakeField("email", FieldType::kText, true, /*unique=*/true),
       MakeField("age", FieldType::kInteger), MakeField("score", FieldType::kReal),
       MakeField("active", FieldType::kBoolean), MakeField("created_at", FieldType::kTimestamp),
       MakeField("note", FieldType::kText), MakeField("meta", FieldType::kJson)},
      "id");
}

Value S(const char* s) { return Value{std::string(s)}; }
Value I(int64_t i) { return Value{i}; }
Value D(double d) { return Value{d}; }
Value B(bool b) { return Value{b}; }
const Value kNull{};

FilterNode Cond(int field, Op op, std::vector<Value> values, Logic logic = Logic::kAnd) {
  FilterNode n;
  n.logic = logic;
  n.cond.field = field;
  n.cond.op = op;
  n.cond.values = std::move(values);
  return n;
}

FilterNode Group(Logic logic, FilterList children) {
  FilterNode n;
  n.logic = logic;
  n.is_group = true;
  n.children = std::move(children);
  return n;
}

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

// The five seeded users (ids 1..5):
//   id name    email               age   score active created_at                 note
//   1  Alice   alice@example.com   30    1.5   true   2026-01-01T00:00:00.000Z  "50% off"
//   2  alice   alice2@example.com  25    2.0   false  2026-02-01T00:00:00.000Z  "5000 off"
//   3  Bob     NULL                NULL  NULL  true   NULL                      "a_b"
//   4  Carol   carol@example.com   40    -3.25 NULL   2025-12-31T23:59:59.999Z  "axb"
//   5  dave    dave@example.com    35    10.0  false  2026-03-01T00:00:00.000Z  NULL
std::vector<Record> SeedRecords() {
  return {
      {{kName, S("Alice")},
       {kEmail, S("alice@example.com")},
       {kAge, I(30)},
       {kScore, D(1.5)},
       {kActive, B(true)},
       {kCreatedAt, S("2026-01-01T00:00:00.000Z")},
       {kNote, S("50% off")}},
      {{kName, S("alice")},
       {kEmail, S("alice2@example.com")},
       {kAge, I(25)},
       {kScore, D(2.0)},
       {kActive, B(false)},
       {kCreatedAt, S("2026-02-01T00:00:00.000Z")},
       {kNote, S("5000 off")}},
      {{kName, S("Bob")}, {kEmail, kNull}, {kActive, B(true)}, {kNote, S("a_b")}},
      {{kName, S("Carol")},
       {kEmail, S("carol@example.com")},
       {kAge, I(40)},
       {kScore, D(-3.25)},
       {kCreatedAt, S("2025-12-31T23:59:59.999Z")},
       {kNote, S("axb")}},
      {{kName, S("dave")},
       {kEmail, S("dave@example.com")},
       {kAge, I(35)},
       {kScore, D(10.0)},
       {kActive, B(false)},
       {kCreatedAt, S("2026-03-01T00:00:00.000Z")}},
  };
}

class SqliteDatabaseTest : public ::testing::TestWithParam<bool> {
 protected:
  bool on_file() const { return GetParam(); }

  void SetUp() override {
    if (on_file()) {
      dir_ = MakeTempDir();
      path_ = dir_ + "/test.db";
    } else {
      path_ = ":memory:";
    }
    SqliteOptions o;
    o.path = path_;
    o.readers = 2;
    db_ = MustOpen(o);
    ASSERT_NE(db_, nullptr);
    users_ = Users();
    ASSERT_NE(users_, nullptr);
    Status st = db_->Migrate(*users_);
    ASSERT_TRUE(st.ok()) << st.error().message;
  }

  void TearDown() override {
    db_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void Seed() {
    auto rows = db_->Create(*users_, SeedRecords());
    ASSERT_TRUE(rows.ok()) << rows.error().message;
    ASSERT_EQ(rows.value().size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      ASSERT_TRUE(rows.value()[i][kId] == I(static_cast<int64_t>(i + 1))) << Show(rows.value()[i]);
    }
  }

  ReadQuery Query(FilterList filters = {}, std::vector<SortKey> sort = {}, int64_t limit = 100,
                  int64_t offset = 0, std::vector<int> columns = {kId}) {
    ReadQuery q;
    q.model = users_;
    q.filters = std::move(filters);
    q.sort = std::move(sort);
    q.columns = std::move(columns);
    q.limit = limit;
    q.offset = offset;
    return q;
  }

  // Ids of the rows matching `filters`, in the order read.
  std::vector<int64_t> Ids(FilterList filters, std::vector<SortKey> sort = {}) {
    auto r = db_->Read(Query(std::move(filters), std::move(sort)));
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<int64_t> ids;
    if (!r.ok()) return ids;
    for (const Row& row : r.value().rows) ids.push_back(std::get<int64_t>(row.at(0)));
    EXPECT_EQ(r.value().total, static_cast<int64_t>(ids.size()));
    return ids;
  }

  std::vector<int64_t> IdsWhere(FilterNode node) { return Ids({std::move(node)}); }

  std::optional<Row> ByKey(int64_t id) {
    auto r = db_->ReadByKey(*users_, I(id), AllColumns(), {});
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r.value() : std::nullopt;
  }

  int64_t Total() {
    auto r = db_->Read(Query());
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r.value().total : -1;
  }

  std::string dir_, path_;
  std::unique_ptr<SqliteDatabase> db_;
  ModelPtr users_;
};

using IdList = std::vector<int64_t>;

// --- create -------------------------------------------------------------------------------------

TEST_P(SqliteDatabaseTest, CreateReturnsStoredRowWithGeneratedKeyAndNullsForUnsetFields) {
  auto rows = db_->Create(*users_, {{{kName, S("Ann")}, {kAge, I(7)}}});
  ASSERT_TRUE(rows.ok()) << rows.error().message;
  ASSERT_EQ(rows.value().size(), 1u);
  const Row& r = rows.value()[0];
  ASSERT_EQ(r.size(), kUserFieldCount);
  EXPECT_TRUE(r[kId] == I(1)) << Show(r);
  EXPECT_TRUE(r[kName] == S("Ann")) << Show(r);
  EXPECT_TRUE(r[kAge] == I(7)) << Show(r);
  for (int f : {kEmail, kScore, kActive, kCreatedAt, kNote, kMeta}) {
    EXPECT_TRUE(IsNull(r[f])) << "field " << f << ": " << Show(r);
  }
}

TEST_P(SqliteDatabaseTest, CreateStoresEveryTypeAndReadsItBack) {
  Record rec = {{kName, S("Typed")},
                {kEmail, S("t@example.com")},
                {kAge, I(-9000000000LL)},
                {kScore, D(0.125)},
                {kActive, B(true)},
                {kCreatedAt, S("2026-11-22T10:00:00.000Z")},
                {kNote, S("it's \"quoted\"; DROP TABLE users; --")},
                {kMeta, S(R"({"a":[1,2]})")}};
  auto created = db_->Create(*users_, {rec});
  ASSERT_TRUE(created.ok()) << created.error().message;
  auto row = ByKey(1);
  ASSERT_TRUE(row.has_value());
  const Row& r = *row;
  EXPECT_TRUE(r == created.value()[0]) << Show(r) << " vs " << Show(created.value()[0]);
  EXPECT_TRUE(r[kAge] == I(-9000000000LL)) << Show(r);
  EXPECT_TRUE(r[kScore] == D(0.125)) << Show(r);
  EXPECT_TRUE(r[kActive] == I(1)) << "booleans are stored as 0/1: " << Show(r);
  EXPECT_TRUE(r[kCreatedAt] == S("2026-11-22T10:00:00.000Z")) << Show(r);
  EXPECT_TRUE(r[kNote] == S("it's \"quoted\"; DROP TABLE users; --")) << Show(r);
  EXPECT_TRUE(r[kMeta] == S(R"({"a":[1,2]})")) << Show(r);
  EXPECT_EQ(Total(), 1);
}

TEST_P(SqliteDatabaseTest, CreateKeepsTextWithEmbeddedNulAndUnicode) {
  std::string text = std::string("a\0b", 3) + " caf\xC3\xA9";
  auto created = db_->Create(*users_, {{{kName, Value{text}}}});
  ASSERT_TRUE(created.ok()) << created.error().message;
  auto row = ByKey(1);
  ASSERT_TRUE(row.has_value());
  EXPECT_TRUE((*row)[kName] == Value{text}) << Show(*row);
}

TEST_P(SqliteDatabaseTest, CreateBatchReturnsEveryRowInOrder) {
  Seed();
  EXPECT_EQ(Total(), 5);
  auto row = ByKey(4);
  ASSERT_TRUE(row.has_value());
  EXPECT_TRUE((*row)[kName] == S("Carol"));
  EXPECT_TRUE(IsNull((*row)[kActive]));
}

TEST_P(SqliteDatabaseTest, CreateWithUniqueViolationIsConflict) {
  Seed();
  auto r = db_->Create(*users_, {{{kName, S("X")}, {kEmail, S("alice@example.com")}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_EQ(r.error().message.find("INSERT"), std::string::npos) << r.error().message;
  EXPECT_EQ(Total(), 5);
}

TEST_P(SqliteDatabaseTest, CreateWithExistingPrimaryKeyIsConflict) {
  Seed();
  auto r = db_->Create(*users_, {{{kId, I(2)}, {kName, S("Dup")}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_EQ(Total(), 5);
}

TEST_P(SqliteDatabaseTest, CreateBatchWithUniqueViolationCreatesNothing) {
  Seed();
  std::vector<Record> batch = {
      {{kName, S("New1")}, {kEmail, S("new1@example.com")}},
      {{kName, S("New2")}, {kEmail, S("carol@example.com")}},  // taken
      {{kName, S("New3")}, {kEmail, S("new3@example.com")}},
  };
  auto r = db_->Create(*users_, batch);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_EQ(Total(), 5);
  EXPECT_TRUE(IdsWhere(Cond(kName, Op::kIn, {S("New1"), S("New2"), S("New3")})).empty());
  // The failed transaction left the writer usable.
  auto ok = db_->Create(*users_, {{{kName, S("After")}}});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(Total(), 6);
}

TEST_P(SqliteDatabaseTest, CreateBatchWithDuplicateInsideTheBatchCreatesNothing) {
  std::vector<Record> batch = {
      {{kName, S("A")}, {kEmail, S("same@example.com")}},
      {{kName, S("B")}, {kEmail, S("same@example.com")}},
  };
  auto r = db_->Create(*users_, batch);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  EXPECT_EQ(Total(), 0);
}

TEST_P(SqliteDatabaseTest, CreateWithoutRequiredFieldIsInvalidValue) {
  auto r = db_->Create(*users_, {{{kEmail, S("x@example.com")}}});  // name is NOT NULL
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidValue);
  EXPECT_EQ(Total(), 0);
}

TEST_P(SqliteDatabaseTest, CreateOfEmptyRecordUsesDefaultValues) {
  auto notes = MustModel("public", "notes", {AutoId(), MakeField("body", FieldType::kText)}, "id");
  ASSERT_TRUE(db_->Migrate(*notes).ok());
  auto r = db_->Create(*notes, {Record{}, Record{}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r.value().size(), 2u);
  EXPECT_TRUE(r.value()[0][0] == I(1)) << Show(r.value()[0]);
  EXPECT_TRUE(r.value()[1][0] == I(2)) << Show(r.value()[1]);
  EXPECT_TRUE(IsNull(r.value()[1][1]));
}

TEST_P(SqliteDatabaseTest, AutoIncrementKeysAreNotReusedAfterDelete) {
  Seed();
  auto del = db_->Delete(*users_, I(5), {});
  ASSERT_TRUE(del.ok() && del.value().has_value());
  auto r = db_->Create(*users_, {{{kName, S("Next")}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value()[0][kId] == I(6)) << Show(r.value()[0]);
}

// --- read: every operator -----------------------------------------------------------------------

TEST_P(SqliteDatabaseTest, ReadEqAndNeq) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kEq, {S("Alice")})), (IdList{1}));
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kEq, {I(40)})), (IdList{4}));
  EXPECT_EQ(IdsWhere(Cond(kActive, Op::kEq, {B(true)})), (IdList{1, 3}));
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kNeq, {I(30)})), (IdList{2, 4, 5}));
}

TEST_P(SqliteDatabaseTest, ReadComparisons) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kGt, {I(30)})), (IdList{4, 5}));
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kGte, {I(30)})), (IdList{1, 4, 5}));
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kLt, {I(30)})), (IdList{2}));
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kLte, {I(30)})), (IdList{1, 2}));
  EXPECT_EQ(IdsWhere(Cond(kScore, Op::kGt, {D(1.9)})), (IdList{2, 5}));
  EXPECT_EQ(IdsWhere(Cond(kScore, Op::kLt, {D(0.0)})), (IdList{4}));
  EXPECT_EQ(IdsWhere(Cond(kCreatedAt, Op::kGte, {S("2026-01-01T00:00:00.000Z")})),
            (IdList{1, 2, 5}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kGt, {S("Z")})), (IdList{2, 5}));  // binary text order
}

TEST_P(SqliteDatabaseTest, ReadInAndNotIn) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kIn, {I(25), I(40), I(99)})), (IdList{2, 4}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kIn, {S("Bob")})), (IdList{3}));
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kNotIn, {I(25), I(40)})), (IdList{1, 5}));
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kIn, {})), (IdList{}));
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kNotIn, {})), (IdList{1, 2, 4, 5}));
}

TEST_P(SqliteDatabaseTest, ReadBetweenIsInclusive) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kBetween, {I(25), I(35)})), (IdList{1, 2, 5}));
  EXPECT_EQ(IdsWhere(Cond(kCreatedAt, Op::kBetween,
                          {S("2026-01-01T00:00:00.000Z"), S("2026-02-15T00:00:00.000Z")})),
            (IdList{1, 2}));
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kBetween, {I(35), I(25)})), (IdList{}));
}

TEST_P(SqliteDatabaseTest, ReadIsNullAndIsNotNull) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kEmail, Op::kIsNull, {})), (IdList{3}));
  EXPECT_EQ(IdsWhere(Cond(kEmail, Op::kIsNotNull, {})), (IdList{1, 2, 4, 5}));
  EXPECT_EQ(IdsWhere(Cond(kActive, Op::kIsNull, {})), (IdList{4}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kIsNull, {})), (IdList{5}));
}

TEST_P(SqliteDatabaseTest, LikeIsCaseSensitive) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kLike, {S("Al%")})), (IdList{1}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kLike, {S("al%")})), (IdList{2}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kLike, {S("ALICE")})), (IdList{}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kLike, {S("_ob")})), (IdList{3}));
}

TEST_P(SqliteDatabaseTest, IlikeIsCaseInsensitive) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kIlike, {S("al%")})), (IdList{1, 2}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kIlike, {S("ALICE")})), (IdList{1, 2}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kIlike, {S("%O%")})), (IdList{3, 4}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kIlike, {S("D_VE")})), (IdList{5}));
}

TEST_P(SqliteDatabaseTest, LikeTreatsPercentAndUnderscoreAsWildcardsAndBackslashAsEscape) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kLike, {S("a_b")})), (IdList{3, 4}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kLike, {S("50%")})), (IdList{1, 2}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kLike, {S(R"(a\_b)")})), (IdList{3}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kLike, {S(R"(50\%%)")})), (IdList{1}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kIlike, {S(R"(A\_B)")})), (IdList{3}));
}

TEST_P(SqliteDatabaseTest, ContainsMatchesPercentAndUnderscoreLiterally) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kContains, {S("%")})), (IdList{1}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kContains, {S("_")})), (IdList{3}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kContains, {S("0% o")})), (IdList{1}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kContains, {S("0 o")})), (IdList{2}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kContains, {S("off")})), (IdList{1, 2}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kContains, {S("x")})), (IdList{4}));
}

TEST_P(SqliteDatabaseTest, ContainsIsCaseSensitive) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kContains, {S("lic")})), (IdList{1, 2}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kContains, {S("LIC")})), (IdList{}));
}

TEST_P(SqliteDatabaseTest, ContainsMatchesBackslashLiterally) {
  ASSERT_TRUE(
      db_->Create(*users_,
                  {{{kName, S(R"(c:\dir)")}}, {{kName, S("c:dir")}}, {{kName, S(R"(c:\\dir)")}}})
          .ok());
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kContains, {S(R"(:\d)")})), (IdList{1}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kContains, {S(R"(\\)")})), (IdList{3}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kStartsWith, {S(R"(c:\)")})), (IdList{1, 3}));
}

TEST_P(SqliteDatabaseTest, StartsWithMatchesLiteralPrefix) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kStartsWith, {S("50%")})), (IdList{1}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kStartsWith, {S("50")})), (IdList{1, 2}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kStartsWith, {S("a_")})), (IdList{3}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kStartsWith, {S("off")})), (IdList{}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kStartsWith, {S("A")})), (IdList{1}));
}

// --- NULL semantics -----------------------------------------------------------------------------

TEST_P(SqliteDatabaseTest, NeqNeverMatchesNullRows) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kNeq, {I(-1)})), (IdList{1, 2, 4, 5}));
  EXPECT_EQ(IdsWhere(Cond(kActive, Op::kNeq, {B(true)})), (IdList{2, 5}));
  EXPECT_EQ(IdsWhere(Cond(kEmail, Op::kNeq, {S("nobody")})), (IdList{1, 2, 4, 5}));
}

TEST_P(SqliteDatabaseTest, NotInNeverMatchesNullRows) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kNotIn, {I(-1)})), (IdList{1, 2, 4, 5}));
  EXPECT_EQ(IdsWhere(Cond(kActive, Op::kNotIn, {B(true)})), (IdList{2, 5}));
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kNotIn, {})), (IdList{1, 2, 4, 5}));
}

TEST_P(SqliteDatabaseTest, ComparisonsAndPatternsNeverMatchNullRows) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kLt, {I(1000)})), (IdList{1, 2, 4, 5}));
  EXPECT_EQ(IdsWhere(Cond(kAge, Op::kGt, {I(-1000)})), (IdList{1, 2, 4, 5}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kLike, {S("%")})), (IdList{1, 2, 3, 4}));
  EXPECT_EQ(IdsWhere(Cond(kNote, Op::kContains, {S("")})), (IdList{1, 2, 3, 4}));
}

TEST_P(SqliteDatabaseTest, EqWithNullValueMatchesNothing) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kEmail, Op::kEq, {kNull})), (IdList{}));
}

// --- logic --------------------------------------------------------------------------------------

TEST_P(SqliteDatabaseTest, AndBindsTighterThanOr) {
  Seed();
  // age = 25 OR age = 40 AND name = 'Carol'  →  2, 4
  EXPECT_EQ(Ids({Cond(kAge, Op::kEq, {I(25)}), Cond(kAge, Op::kEq, {I(40)}, Logic::kOr),
                 Cond(kName, Op::kEq, {S("Carol")})}),
            (IdList{2, 4}));
  // age = 25 OR age = 40 AND name = 'nobody'  →  2 (not "(25 or 40) and nobody" = nothing)
  EXPECT_EQ(Ids({Cond(kAge, Op::kEq, {I(25)}), Cond(kAge, Op::kEq, {I(40)}, Logic::kOr),
                 Cond(kName, Op::kEq, {S("nobody")})}),
            (IdList{2}));
  // name = 'nobody' AND age = 25 OR age = 40  →  4
  EXPECT_EQ(Ids({Cond(kName, Op::kEq, {S("nobody")}), Cond(kAge, Op::kEq, {I(25)}),
                 Cond(kAge, Op::kEq, {I(40)}, Logic::kOr)}),
            (IdList{4}));
}

TEST_P(SqliteDatabaseTest, GroupsOverridePrecedence) {
  Seed();
  // (age = 25 OR age = 40) AND active = false  →  2
  EXPECT_EQ(Ids({Group(Logic::kAnd,
                       {Cond(kAge, Op::kEq, {I(25)}), Cond(kAge, Op::kEq, {I(40)}, Logic::kOr)}),
                 Cond(kActive, Op::kEq, {B(false)})}),
            (IdList{2}));
  // name = 'Bob' OR (age >= 30 AND (active IS NULL OR score > 5))  →  3, 4, 5
  EXPECT_EQ(
      Ids({Cond(kName, Op::kEq, {S("Bob")}),
           Group(Logic::kOr, {Cond(kAge, Op::kGte, {I(30)}),
                              Group(Logic::kAnd, {Cond(kActive, Op::kIsNull, {}),
                                                  Cond(kScore, Op::kGt, {D(5)}, Logic::kOr)})})}),
      (IdList{3, 4, 5}));
}

TEST_P(SqliteDatabaseTest, ParamsWithSqlTextAreMatchedAsValues) {
  Seed();
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kEq, {S("x' OR '1'='1")})), (IdList{}));
  EXPECT_EQ(IdsWhere(Cond(kName, Op::kIn, {S("Bob'); DROP TABLE users; --")})), (IdList{}));
  EXPECT_EQ(Total(), 5);
}

// --- sort ---------------------------------------------------------------------------------------

TEST_P(SqliteDatabaseTest, AscendingSortPutsNullsLastByDefault) {
  Seed();
  EXPECT_EQ(Ids({}, {{kAge, false, Nulls::kDefault}}), (IdList{2, 1, 5, 4, 3}));
}

TEST_P(SqliteDatabaseTest, DescendingSortPutsNullsFirstByDefault) {
  Seed();
  EXPECT_EQ(Ids({}, {{kAge, true, Nulls::kDefault}}), (IdList{3, 4, 5, 1, 2}));
  EXPECT_EQ(Ids({}, {{kCreatedAt, true, Nulls::kDefault}}), (IdList{3, 5, 2, 1, 4}));
}

TEST_P(SqliteDatabaseTest, ExplicitNullsPlacementOverridesTheDefault) {
  Seed();
  EXPECT_EQ(Ids({}, {{kAge, false, Nulls::kFirst}}), (IdList{3, 2, 1, 5, 4}));
  EXPECT_EQ(Ids({}, {{kAge, true, Nulls::kLast}}), (IdList{4, 5, 1, 2, 3}));
}

TEST_P(SqliteDatabaseTest, TiesAreBrokenByPrimaryKey) {
  Seed();
  // active: 1→true 2→false 3→true 4→NULL 5→false
  EXPECT_EQ(Ids({}, {{kActive, false, Nulls::kDefault}}), (IdList{2, 5, 1, 3, 4}));
  EXPECT_EQ(Ids({}, {{kActive, true, Nulls::kDefault}}), (IdList{4, 1, 3, 2, 5}));
}

TEST_P(SqliteDatabaseTest, SortByTextIsBinaryOrder) {
  Seed();
  EXPECT_EQ(Ids({}, {{kName, false, Nulls::kDefault}}), (IdList{1, 3, 4, 2, 5}));
}

TEST_P(SqliteDatabaseTest, MultipleSortKeysApplyInOrder) {
  Seed();
  EXPECT_EQ(Ids({}, {{kActive, false, Nulls::kFirst}, {kAge, true, Nulls::kDefault}}),
            (IdList{4, 5, 2, 3, 1}));
}

TEST_P(SqliteDatabaseTest, NoSortOrdersByPrimaryKey) {
  ASSERT_TRUE(db_->Create(*users_, {{{kId, I(10)}, {kName, S("j")}},
                                    {{kId, I(3)}, {kName, S("c")}},
                                    {{kId, I(7)}, {kName, S("g")}}})
                  .ok());
  EXPECT_EQ(Ids({}), (IdList{3, 7, 10}));
}

// --- pagination and columns ---------------------------------------------------------------------

TEST_P(SqliteDatabaseTest, LimitAndOffsetPageWhileTotalCountsAllMatches) {
  Seed();
  auto r = db_->Read(Query({}, {}, 2, 1));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r.value().rows.size(), 2u);
  EXPECT_TRUE(r.value().rows[0][0] == I(2));
  EXPECT_TRUE(r.value().rows[1][0] == I(3));
  EXPECT_EQ(r.value().total, 5);
}

TEST_P(SqliteDatabaseTest, TotalCountsFilteredRowsIgnoringThePage) {
  Seed();
  auto r =
      db_->Read(Query({Cond(kAge, Op::kIsNotNull, {})}, {{kAge, false, Nulls::kDefault}}, 2, 3));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r.value().rows.size(), 1u);
  EXPECT_TRUE(r.value().rows[0][0] == I(4));  // ages 25, 30, 35, [40]
  EXPECT_EQ(r.value().total, 4);
}

TEST_P(SqliteDatabaseTest, OffsetPastTheEndGivesNoRowsButTheTotal) {
  Seed();
  auto r = db_->Read(Query({}, {}, 10, 50));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value().rows.empty());
  EXPECT_EQ(r.value().total, 5);
}

TEST_P(SqliteDatabaseTest, WithoutCountTotalIsTheNumberOfRowsReturned) {
  Seed();
  ReadQuery q = Query({}, {}, 3, 0);
  q.count_total = false;
  auto r = db_->Read(q);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().rows.size(), 3u);
  EXPECT_EQ(r.value().total, 3);
}

TEST_P(SqliteDatabaseTest, ReadReturnsRequestedColumnsInRequestedOrder) {
  Seed();
  auto r = db_->Read(Query({Cond(kId, Op::kEq, {I(2)})}, {}, 10, 0, {kNote, kName, kId}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r.value().rows.size(), 1u);
  const Row& row = r.value().rows[0];
  ASSERT_EQ(row.size(), 3u);
  EXPECT_TRUE(row[0] == S("5000 off")) << Show(row);
  EXPECT_TRUE(row[1] == S("alice")) << Show(row);
  EXPECT_TRUE(row[2] == I(2)) << Show(row);
}

TEST_P(SqliteDatabaseTest, ReadOfEmptyTableGivesNoRowsAndZeroTotal) {
  auto r = db_->Read(Query());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value().rows.empty());
  EXPECT_EQ(r.value().total, 0);
}

// --- read by key --------------------------------------------------------------------------------

TEST_P(SqliteDatabaseTest, ReadByKeyReturnsTheRowInRequestedColumns) {
  Seed();
  auto r = db_->ReadByKey(*users_, I(4), {kName, kAge}, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r.value().has_value());
  EXPECT_TRUE(*r.value() == (Row{S("Carol"), I(40)})) << Show(*r.value());
}

TEST_P(SqliteDatabaseTest, ReadByKeyOfMissingKeyIsNullopt) {
  Seed();
  auto r = db_->ReadByKey(*users_, I(99), {kId}, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().has_value());
}

TEST_P(SqliteDatabaseTest, ReadByKeyHonoursScope) {
  Seed();
  auto hidden = db_->ReadByKey(*users_, I(1), {kId}, {Cond(kName, Op::kEq, {S("Bob")})});
  ASSERT_TRUE(hidden.ok()) << hidden.error().message;
  EXPECT_FALSE(hidden.value().has_value());
  auto visible = db_->ReadByKey(*users_, I(1), {kId}, {Cond(kName, Op::kEq, {S("Alice")})});
  ASSERT_TRUE(visible.ok()) << visible.error().message;
  EXPECT_TRUE(visible.value().has_value());
}

TEST_P(SqliteDatabaseTest, ReadByKeyScopeWithOrDoesNotReachOtherRows) {
  Seed();
  // key = 1 AND (name = 'Bob' OR name = 'Carol') must not return Bob's or Carol's row.
  auto r = db_->ReadByKey(
      *users_, I(1), {kId},
      {Cond(kName, Op::kEq, {S("Bob")}), Cond(kName, Op::kEq, {S("Carol")}, Logic::kOr)});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().has_value());
}

// --- update -------------------------------------------------------------------------------------

TEST_P(SqliteDatabaseTest, UpdateChangesOnlyTheGivenFields) {
  Seed();
  auto before = ByKey(1);
  ASSERT_TRUE(before.has_value());
  auto r = db_->Update(*users_, I(1), {{kAge, I(31)}, {kNote, kNull}}, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r.value().has_value());
  Row expected = *before;
  expected[kAge] = I(31);
  expected[kNote] = kNull;
  EXPECT_TRUE(*r.value() == expected) << Show(*r.value()) << " expected " << Show(expected);
  auto after = ByKey(1);
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(*after == expected) << Show(*after);
  // Other rows are untouched.
  auto other = ByKey(2);
  ASSERT_TRUE(other.has_value());
  EXPECT_TRUE((*other)[kAge] == I(25));
  EXPECT_TRUE((*other)[kNote] == S("5000 off"));
}

TEST_P(SqliteDatabaseTest, UpdateOfMissingKeyIsNulloptAndChangesNothing) {
  Seed();
  auto r = db_->Update(*users_, I(99), {{kName, S("Ghost")}}, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().has_value());
  EXPECT_TRUE(IdsWhere(Cond(kName, Op::kEq, {S("Ghost")})).empty());
  EXPECT_EQ(Total(), 5);
}

TEST_P(SqliteDatabaseTest, UpdateOutsideScopeIsNulloptAndChangesNothing) {
  Seed();
  auto r = db_->Update(*users_, I(1), {{kName, S("Mallory")}},
                       {Cond(kEmail, Op::kEq, {S("bob@example.com")})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().has_value());
  auto row = ByKey(1);
  ASSERT_TRUE(row.has_value());
  EXPECT_TRUE((*row)[kName] == S("Alice"));
}

TEST_P(SqliteDatabaseTest, UpdateInsideScopeApplies) {
  Seed();
  auto r = db_->Update(*users_, I(1), {{kName, S("Alicia")}},
                       {Cond(kEmail, Op::kEq, {S("alice@example.com")})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r.value().has_value());
  EXPECT_TRUE((*r.value())[kName] == S("Alicia"));
}

TEST_P(SqliteDatabaseTest, UpdateScopeWithOrDoesNotReachOtherRows) {
  Seed();
  auto r = db_->Update(
      *users_, I(1), {{kName, S("X")}},
      {Cond(kName, Op::kEq, {S("Bob")}), Cond(kName, Op::kEq, {S("Carol")}, Logic::kOr)});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().has_value());
  EXPECT_TRUE(IdsWhere(Cond(kName, Op::kEq, {S("X")})).empty());
}

TEST_P(SqliteDatabaseTest, UpdateToTakenUniqueValueIsConflictAndChangesNothing) {
  Seed();
  auto r = db_->Update(*users_, I(2), {{kEmail, S("alice@example.com")}}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kConflict);
  auto row = ByKey(2);
  ASSERT_TRUE(row.has_value());
  EXPECT_TRUE((*row)[kEmail] == S("alice2@example.com"));
}

TEST_P(SqliteDatabaseTest, UpdateOfRequiredFieldToNullIsInvalidValue) {
  Seed();
  auto r = db_->Update(*users_, I(2), {{kName, kNull}}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidValue);
}

// --- delete -------------------------------------------------------------------------------------

TEST_P(SqliteDatabaseTest, DeleteReturnsTheDeletedRow) {
  Seed();
  auto before = ByKey(3);
  ASSERT_TRUE(before.has_value());
  auto r = db_->Delete(*users_, I(3), {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r.value().has_value());
  EXPECT_TRUE(*r.value() == *before) << Show(*r.value());
  EXPECT_FALSE(ByKey(3).has_value());
  EXPECT_EQ(Total(), 4);
}

TEST_P(SqliteDatabaseTest, DeleteOfMissingKeyIsNullopt) {
  Seed();
  auto r = db_->Delete(*users_, I(99), {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().has_value());
  EXPECT_EQ(Total(), 5);
}

TEST_P(SqliteDatabaseTest, DeleteTwiceIsNulloptTheSecondTime) {
  Seed();
  auto first = db_->Delete(*users_, I(2), {});
  ASSERT_TRUE(first.ok() && first.value().has_value());
  auto second = db_->Delete(*users_, I(2), {});
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_FALSE(second.value().has_value());
}

TEST_P(SqliteDatabaseTest, DeleteOutsideScopeIsNulloptAndKeepsTheRow) {
  Seed();
  auto r = db_->Delete(*users_, I(1), {Cond(kActive, Op::kEq, {B(false)})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r.value().has_value());
  EXPECT_TRUE(ByKey(1).has_value());
  EXPECT_EQ(Total(), 5);
}

TEST_P(SqliteDatabaseTest, DeleteInsideScopeApplies) {
  Seed();
  auto r = db_->Delete(*users_, I(2), {Cond(kActive, Op::kEq, {B(false)})});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r.value().has_value());
  EXPECT_TRUE((*r.value())[kName] == S("alice"));
  EXPECT_FALSE(ByKey(2).has_value());
}

// --- migrate ------------------------------------------------------------------------------------

TEST_P(SqliteDatabaseTest, MigrateIsIdempotentAndKeepsRows) {
  Seed();
  Status st = db_->Migrate(*users_);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(Total(), 5);
}

TEST_P(SqliteDatabaseTest, MigrateAddsMissingNullableColumnToExistingTable) {
  auto v1 = MustModel("public", "notes",
                      {AutoId(), MakeField("title", FieldType::kText, /*nullable=*/false)}, "id");
  ASSERT_TRUE(db_->Migrate(*v1).ok());
  ASSERT_TRUE(db_->Create(*v1, {{{1, S("old")}}}).ok());

  auto v2 =
      MustModel("public", "notes",
                {AutoId(), MakeField("title", FieldType::kText, /*nullable=*/false),
                 MakeField("body", FieldType::kText), MakeField("stars", FieldType::kInteger)},
                "id");
  Status st = db_->Migrate(*v2);
  ASSERT_TRUE(st.ok()) << st.error().message;

  auto old_row = db_->ReadByKey(*v2, I(1), {0, 1, 2, 3}, {});
  ASSERT_TRUE(old_row.ok()) << old_row.error().message;
  ASSERT_TRUE(old_row.value().has_value());
  EXPECT_TRUE(*old_row.value() == (Row{I(1), S("old"), kNull, kNull})) << Show(*old_row.value());

  auto created = db_->Create(*v2, {{{1, S("new")}, {2, S("text")}, {3, I(5)}}});
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(created.value()[0] == (Row{I(2), S("new"), S("text"), I(5)}))
      << Show(created.value()[0]);

  ReadQuery q;
  q.model = v2;
  q.columns = {0};
  q.limit = 10;
  q.filters = {Cond(3, Op::kEq, {I(5)})};
  auto read = db_->Read(q);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read.value().total, 1);
}

TEST_P(SqliteDatabaseTest, MigrateAddsMissingColumnToSchemaPrefixedTable) {
  auto v1 = MustModel("blog", "notes", {AutoId(), MakeField("title", FieldType::kText)}, "id");
  ASSERT_TRUE(db_->Migrate(*v1).ok());
  ASSERT_TRUE(db_->Create(*v1, {{{1, S("old")}}}).ok());
  auto v2 = MustModel(
      "blog", "notes",
      {AutoId(), MakeField("title", FieldType::kText), MakeField("tags", FieldType::kJson)}, "id");
  Status st = db_->Migrate(*v2);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto r = db_->Update(*v2, I(1), {{2, S(R"(["x"])")}}, {});
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r.value().has_value());
  EXPECT_TRUE(*r.value() == (Row{I(1), S("old"), S(R"(["x"])")})) << Show(*r.value());
}

TEST_P(SqliteDatabaseTest, MigrateRefusesToAddRequiredColumnAndLeavesTableUsable) {
  auto v1 = MustModel("public", "notes", {AutoId(), MakeField("title", FieldType::kText)}, "id");
  ASSERT_TRUE(db_->Migrate(*v1).ok());
  ASSERT_TRUE(db_->Create(*v1, {{{1, S("old")}}}).ok());
  auto v2 = MustModel("public", "notes",
                      {AutoId(), MakeField("title", FieldType::kText),
                       MakeField("owner", FieldType::kText, /*nullable=*/false)},
                      "id");
  Status st = db_->Migrate(*v2);
  EXPECT_FALSE(st.ok());
  auto row = db_->ReadByKey(*v1, I(1), {0, 1}, {});
  ASSERT_TRUE(row.ok()) << row.error().message;
  EXPECT_TRUE(row.value().has_value());
}

TEST_P(SqliteDatabaseTest, SchemaModelsAreSeparateTables) {
  auto a = MustModel("public", "posts", {AutoId(), MakeField("t", FieldType::kText)}, "id");
  auto b = MustModel("blog", "posts", {AutoId(), MakeField("t", FieldType::kText)}, "id");
  ASSERT_TRUE(db_->Migrate(*a).ok());
  ASSERT_TRUE(db_->Migrate(*b).ok());
  ASSERT_TRUE(db_->Create(*a, {{{1, S("public")}}}).ok());
  ASSERT_TRUE(db_->Create(*b, {{{1, S("blog1")}}, {{1, S("blog2")}}}).ok());
  ReadQuery qa;
  qa.model = a;
  qa.columns = {1};
  qa.limit = 10;
  ReadQuery qb = qa;
  qb.model = b;
  auto ra = db_->Read(qa);
  auto rb = db_->Read(qb);
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(ra.value().total, 1);
  EXPECT_EQ(rb.value().total, 2);
  EXPECT_TRUE(rb.value().rows[0][0] == S("blog1"));
}

TEST_P(SqliteDatabaseTest, ReadOfUnmigratedModelFailsWithoutLeakingSql) {
  auto other = MustModel("public", "missing", {AutoId()}, "id");
  ReadQuery q;
  q.model = other;
  q.columns = {0};
  q.limit = 10;
  auto r = db_->Read(q);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find("SELECT"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("missing"), std::string::npos) << r.error().message;
  // The connection is usable afterwards.
  EXPECT_EQ(Total(), 0);
}

TEST_P(SqliteDatabaseTest, SqlKeywordsWorkAsTableAndFieldNames) {
  Field order = MakeField("order", FieldType::kInteger);
  order.auto_increment = true;
  auto m = MustModel("select", "group",
                     {order, MakeField("from", FieldType::kText, true, /*unique=*/true),
                      MakeField("where", FieldType::kInteger)},
                     "order");
  Status st = db_->Migrate(*m);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto created = db_->Create(*m, {{{1, S("a")}, {2, I(1)}}, {{1, S("b")}, {2, I(2)}}});
  ASSERT_TRUE(created.ok()) << created.error().message;
  ReadQuery q;
  q.model = m;
  q.columns = {0, 1};
  q.limit = 10;
  q.filters = {Cond(2, Op::kGt, {I(1)})};
  q.sort = {{1, true, Nulls::kDefault}};
  auto r = db_->Read(q);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r.value().rows.size(), 1u);
  EXPECT_TRUE(r.value().rows[0] == (Row{I(2), S("b")})) << Show(r.value().rows[0]);
  auto upd = db_->Update(*m, I(1), {{2, I(9)}}, {Cond(1, Op::kEq, {S("a")})});
  ASSERT_TRUE(upd.ok()) << upd.error().message;
  EXPECT_TRUE(upd.value().has_value());
  auto del = db_->Delete(*m, I(2), {});
  ASSERT_TRUE(del.ok()) << del.error().message;
  EXPECT_TRUE(del.value().has_value());
}

INSTANTIATE_TEST_SUITE_P(Storage, SqliteDatabaseTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "File" : "Memory"; });

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

TEST_F(SqliteFileTest, ConcurrentCreatesAndReadsAllSucceed) {
  SqliteOptions o = Options();
  o.synchronous_full = false;
  auto db = MustOpen(o);
  ASSERT_NE(db, nullptr);
  auto users = Users();
  ASSERT_TRUE(db->Migrate(*users).ok());
  constexpr int kWriters = 3, kPerWriter = 40, kReaders = 3;
  std::atomic<int> failures{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kPerWriter; ++i) {
        std::string email = "w" + std::to_string(w) + "_" + std::to_string(i) + "@x";
        auto r = db->Create(*users, {{{kName, S("w")}, {kEmail, Value{email}}}});
        if (!r.ok()) ++failures;
      }
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&] {
      ReadQuery q;
      q.model = users;
      q.columns = {kId, kEmail};
      q.limit = 1000;
      int64_t last = 0;
      while (!done.load()) {
        auto res = db->Read(q);
        if (!res.ok() || res.value().total < last ||
            res.value().total != static_cast<int64_t>(res.value().rows.size())) {
          ++failures;
          return;
        }
        last = res.value().total;
      }
    });
  }
  for (int w = 0; w < kWriters; ++w) threads[w].join();
  done = true;
  for (size_t t = kWriters; t < threads.size(); ++t) threads[t].join();
  EXPECT_EQ(failures.load(), 0);
  ReadQuery q;
  q.model = users;
  q.columns = {kId};
  q.limit = 1000;
  auto r = db->Read(q);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().total, kWriters * kPerWriter);
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
