// PostgresDatabase: what only PostgreSQL has — real schemas and column types, introspection,
// server-side statement timeouts, the server being down, connections lost and found again. What
// every adapter must do alike is in database_conformance_test.cc.
//
// The server comes from MQTTSPEC_PG_URL or MQTTSPEC_PG_URL_FILE, as for the conformance suite
// (skipped without one unless MQTTSPEC_REQUIRE_PG=1 or MQTTSPEC_PG_URL_FILE is set). Each test
// gets a database of its own. PostgresRecoveryTest starts and stops a cluster of its own with
// tests/pg/pgcluster.sh (PostgreSQL binaries needed; as root it runs the server as `postgres`).

#include "adapters/postgres_database.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>
#include <vector>

#include "registry/model.h"
#include "tests/unit/pg_test_env.h"
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
using Table = std::vector<std::vector<std::string>>;

enum UserField { kId = 0, kName, kEmail, kAge, kScore, kActive, kCreatedAt, kNote, kMeta };

std::vector<int> AllColumns(const Model& m) {
  std::vector<int> cols;
  for (size_t i = 0; i < m.fields().size(); ++i) cols.push_back(static_cast<int>(i));
  return cols;
}

ReadQuery AllOf(ModelPtr m, int64_t limit = 100) {
  ReadQuery q;
  q.columns = AllColumns(*m);
  q.model = std::move(m);
  q.limit = limit;
  return q;
}

std::string Dump(const Table& t) {
  std::string out;
  for (const auto& row : t) {
    out += "\n  (";
    for (size_t i = 0; i < row.size(); ++i) out += (i ? ", " : "") + row[i];
    out += ")";
  }
  return out;
}

// A TCP port on 127.0.0.1 that nobody listens on (bound once, then released).
int ClosedPort() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = -1;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(s);
  return port;
}

// Every failed result of the adapter must look like this: the code, and no SQL, URL or secret.
template <typename T>
::testing::AssertionResult FailsWith(const Result<T>& r, ErrorCode code,
                                     std::vector<std::string> must_not_contain = {}) {
  if (r.ok()) return ::testing::AssertionFailure() << "succeeded";
  if (r.error().code != code) {
    return ::testing::AssertionFailure()
           << "code " << ErrorCodeName(r.error().code) << " (" << r.error().message
           << "), expected " << ErrorCodeName(code);
  }
  must_not_contain.insert(must_not_contain.end(),
                          {"SELECT", "INSERT", "UPDATE", "DELETE", "postgresql://", "127.0.0.1"});
  for (const auto& s : must_not_contain) {
    if (r.error().message.find(s) != std::string::npos) {
      return ::testing::AssertionFailure() << "message leaks '" << s << "': " << r.error().message;
    }
  }
  return ::testing::AssertionSuccess();
}

class PostgresDatabaseTest : public pgtest::ScratchDatabaseTest {
 protected:
  void SetUp() override {
    pgtest::ScratchDatabaseTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    db_ = Open();
    users_ = Users();
    ASSERT_NE(users_, nullptr);
  }

  void TearDown() override {
    db_.reset();
    pgtest::ScratchDatabaseTest::TearDown();
  }

  std::unique_ptr<PostgresDatabase> Open(int pool_size = 2, int timeout_ms = 5000) {
    PostgresOptions o;
    o.url = scratch_->url();
    o.pool_size = pool_size;
    o.query_timeout_ms = timeout_ms;
    return std::make_unique<PostgresDatabase>(o);
  }

  Table Sql(const std::string& sql) {
    try {
      return scratch_->Query(sql);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "SQL failed: " << e.what() << "\n" << sql;
      return {};
    }
  }

  void Exec(const std::string& sql) {
    try {
      scratch_->Exec(sql);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "SQL failed: " << e.what() << "\n" << sql;
    }
  }

  // Terminates every connection to the scratch database but the caller's.
  int KillConnections() {
    Table t =
        Sql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = '" +
            scratch_->name() + "' AND pid <> pg_backend_pid()");
    return t.empty() ? -1 : std::stoi(t[0][0]);
  }

  // pg_terminate_backend only signals: the sessions end a moment later. Until they have, a
  // statement sent on one may reach a backend that is ending and fail "may or may not have
  // happened" — what the adapter must say then, but not what a test of idle connections means.
  void AwaitConnectionsGone() {
    for (int i = 0; i < 500; ++i) {
      Table t = Sql("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + scratch_->name() +
                    "' AND pid <> pg_backend_pid()");
      if (!t.empty() && t[0][0] == "0") return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "the terminated sessions did not end within 5 s";
  }

  std::unique_ptr<PostgresDatabase> db_;
  ModelPtr users_;
};

// --- schemas and types --------------------------------------------------------------------------

TEST_F(PostgresDatabaseTest, TableNamesAreSchemaQualified) {
  EXPECT_EQ(db_->TableName(*users_), "public.users");
  auto posts = MustModel("blog", "posts", {AutoId()}, "id");
  EXPECT_EQ(db_->TableName(*posts), "blog.posts");
}

TEST_F(PostgresDatabaseTest, MigrateCreatesRealSchemasAndTypedColumns) {
  auto posts = MustModel("blog", "posts",
                         {AutoId(), MakeField("title", FieldType::kText, false, true),
                          MakeField("body", FieldType::kText)},
                         "id");
  ASSERT_TRUE(db_->Migrate(*users_).ok());
  ASSERT_TRUE(db_->Migrate(*posts).ok());

  EXPECT_EQ(Sql("SELECT table_schema, table_name, table_type FROM information_schema.tables "
                "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"),
            (Table{{"blog", "posts", "BASE TABLE"},
                   {"mqttspec", "changes", "BASE TABLE"},   // the service's own: the change log
                   {"mqttspec", "requests", "BASE TABLE"},  // and recorded writes
                   {"public", "users", "BASE TABLE"}}));
  EXPECT_EQ(Sql("SELECT schema_name FROM information_schema.schemata WHERE schema_name = 'blog'"),
            (Table{{"blog"}}));

  Table columns =
      Sql("SELECT column_name, data_type, is_nullable, is_identity, "
          "       coalesce(identity_generation, '-') FROM information_schema.columns "
          "WHERE table_schema = 'public' AND table_name = 'users' ORDER BY ordinal_position");
  EXPECT_EQ(columns, (Table{{"id", "bigint", "NO", "YES", "BY DEFAULT"},
                            {"name", "text", "NO", "NO", "-"},
                            {"email", "text", "YES", "NO", "-"},
                            {"age", "bigint", "YES", "NO", "-"},
                            {"score", "double precision", "YES", "NO", "-"},
                            {"active", "boolean", "YES", "NO", "-"},
                            {"created_at", "timestamp with time zone", "YES", "NO", "-"},
                            {"note", "text", "YES", "NO", "-"},
                            {"meta", "jsonb", "YES", "NO", "-"}}))
      << Dump(columns);

  Table keys = Sql(
      "SELECT tc.table_schema, tc.table_name, tc.constraint_type, k.column_name "
      "FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage k "
      "  ON k.constraint_schema = tc.constraint_schema AND k.constraint_name = tc.constraint_name "
      "WHERE tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE') "
      "  AND tc.table_schema NOT IN ('pg_catalog', 'information_schema', 'mqttspec') "
      "ORDER BY 1, 2, 3, 4");
  EXPECT_EQ(keys, (Table{{"blog", "posts", "PRIMARY KEY", "id"},
                         {"blog", "posts", "UNIQUE", "title"},
                         {"public", "users", "PRIMARY KEY", "id"},
                         {"public", "users", "UNIQUE", "email"}}))
      << Dump(keys);
}

TEST_F(PostgresDatabaseTest, RowsAreStoredInTheirNativeTypes) {
  ASSERT_TRUE(db_->Migrate(*users_).ok());
  auto r = db_->Create(*users_, {{{kName, S("Typed")},
                                  {kAge, I(42)},
                                  {kScore, D(0.5)},
                                  {kActive, B(true)},
                                  {kCreatedAt, S("2026-07-01T12:00:00.250Z")},
                                  {kMeta, S(R"({"a":[1,2],"b":{"c":null}})")}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Sql("SELECT age + 1, score * 2, NOT active, "
                "       extract(epoch FROM created_at)::numeric(20,3), "
                "       jsonb_typeof(meta), meta->'a'->>1, jsonb_typeof(meta->'b'->'c') "
                "FROM public.users"),
            (Table{{"43", "1", "f", "1782907200.250", "object", "2", "null"}}));
  // Booleans come back as booleans (SQLite gives 0/1; both are true/false on the wire).
  EXPECT_TRUE(r.value()[0][kActive] == B(true)) << Show(r.value()[0]);
}

// jsonb normalizes JSON text (key order, spaces): the value is the same, the text may not be
// (documented). Clients get the JSON value, never the text.
TEST_F(PostgresDatabaseTest, JsonComesBackAsTheSameJsonValue) {
  ASSERT_TRUE(db_->Migrate(*users_).ok());
  const char* json = R"({"zz":1,"a":{"y":[true,false,null],"x":"s"},"m":1.50})";
  auto r = db_->Create(*users_, {{{kName, S("j")}, {kMeta, S(json)}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  const auto* text = std::get_if<std::string>(&r.value()[0][kMeta]);
  ASSERT_NE(text, nullptr) << Show(r.value()[0]);
  rapidjson::Document got, want;
  got.Parse(text->c_str());
  want.Parse(json);
  ASSERT_FALSE(got.HasParseError()) << *text;
  EXPECT_TRUE(got == want) << *text << " vs " << json;
}

// The server's time zone does not matter: the adapter reads and writes UTC.
TEST_F(PostgresDatabaseTest, TimestampsAreUtcWhateverTheServerTimeZone) {
  Exec("ALTER DATABASE \"" + scratch_->name() + "\" SET timezone TO 'America/New_York'");
  auto db = Open();  // new connections see the database's time zone
  ASSERT_TRUE(db->Migrate(*users_).ok());
  ASSERT_EQ(Sql("SHOW timezone"), (Table{{"America/New_York"}}));
  auto r = db->Create(*users_, {{{kName, S("t")}, {kCreatedAt, S("2026-07-01T12:00:00.000Z")}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.value()[0][kCreatedAt] == S("2026-07-01T12:00:00.000Z")) << Show(r.value()[0]);
  // Stored as that instant…
  EXPECT_EQ(
      Sql("SELECT extract(epoch FROM created_at)::bigint, created_at::text FROM public.users"),
      (Table{{"1782907200", "2026-07-01 08:00:00-04"}}));
  // …and a row written by another client in local time reads back in UTC.
  Exec("INSERT INTO public.users (name, created_at) VALUES ('local', '2026-01-15 07:30:00')");
  auto local = db->Read([&] {
    ReadQuery q = AllOf(users_);
    q.filters = {Cond(kName, Op::kEq, {S("local")})};
    return q;
  }());
  ASSERT_TRUE(local.ok()) << local.error().message;
  ASSERT_EQ(local.value().rows.size(), 1u);
  EXPECT_TRUE(local.value().rows[0][kCreatedAt] == S("2026-01-15T12:30:00.000Z"))
      << Show(local.value().rows[0]);
  // Filters compare instants.
  ReadQuery q = AllOf(users_);
  q.filters = {Cond(kCreatedAt, Op::kEq, {S("2026-07-01T12:00:00.000Z")})};
  auto hit = db->Read(q);
  ASSERT_TRUE(hit.ok()) << hit.error().message;
  EXPECT_EQ(hit.value().total, 1);
}

// --- migrate on existing tables -----------------------------------------------------------------

TEST_F(PostgresDatabaseTest, MigrateAddsMissingColumnsToATableCreatedOutsideTheService) {
  Exec(
      "CREATE TABLE public.users (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
      "name text NOT NULL, email text UNIQUE); "
      "INSERT INTO public.users (name, email) VALUES ('Legacy', 'l@x')");
  ASSERT_TRUE(db_->Migrate(*users_).ok());
  EXPECT_EQ(Sql("SELECT column_name, data_type FROM information_schema.columns WHERE "
                "table_schema = 'public' AND table_name = 'users' AND ordinal_position > 3 "
                "ORDER BY ordinal_position"),
            (Table{{"age", "bigint"},
                   {"score", "double precision"},
                   {"active", "boolean"},
                   {"created_at", "timestamp with time zone"},
                   {"note", "text"},
                   {"meta", "jsonb"}}));
  auto row = db_->ReadByKey(*users_, I(1), AllColumns(*users_), {});
  ASSERT_TRUE(row.ok()) << row.error().message;
  ASSERT_TRUE(row.value().has_value());
  EXPECT_TRUE((*row.value())[kName] == S("Legacy"));
  auto upd = db_->Update(*users_, I(1), {{kAge, I(50)}, {kMeta, S("[1]")}}, {});
  ASSERT_TRUE(upd.ok()) << upd.error().message;
  ASSERT_TRUE(upd.value().has_value());
  EXPECT_TRUE((*upd.value())[kAge] == I(50));
  auto created = db_->Create(*users_, {{{kName, S("New")}}});
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(created.value()[0][kId] == I(2)) << Show(created.value()[0]);
}

// --- introspection ------------------------------------------------------------------------------

TEST_F(PostgresDatabaseTest, IntrospectRegistersExistingTablesWithTypesKeysAndNullability) {
  Exec(R"(
    CREATE SCHEMA shop;
    CREATE TABLE shop.items (id serial PRIMARY KEY, sku text NOT NULL UNIQUE,
      price numeric(10,2), qty integer DEFAULT 0, weight real, big bigint, small smallint,
      added timestamptz, stamp timestamp, born date, tags jsonb, raw json, flag boolean,
      note varchar(20), code char(3), uid uuid);
    CREATE TABLE shop.orders (no bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      item_id integer NOT NULL REFERENCES shop.items (id), ref text UNIQUE);
    CREATE TABLE shop.codes (code text PRIMARY KEY, label text);
    CREATE TABLE shop.multi (id integer PRIMARY KEY, a integer, b integer, UNIQUE (a, b));
    CREATE TABLE shop.pairs (a integer, b integer, PRIMARY KEY (a, b));
    CREATE TABLE shop.loose (x integer);
    CREATE VIEW shop.view_of_items AS SELECT id, sku FROM shop.items;
    CREATE TABLE public.elsewhere (id integer PRIMARY KEY);
  )");
  auto models = db_->Introspect("shop");
  ASSERT_TRUE(models.ok()) << models.error().message;
  std::map<std::string, ModelPtr> by_name;
  for (const auto& m : models.value()) by_name[m->qualified_name()] = m;
  std::vector<std::string> names;
  for (const auto& [n, m] : by_name) names.push_back(n);
  // Composite keys, no key and views are not served.
  EXPECT_EQ(names,
            (std::vector<std::string>{"shop.codes", "shop.items", "shop.multi", "shop.orders"}));

  auto describe = [](const Model& m) {
    std::string out;
    for (const Field& f : m.fields()) {
      out += f.name + ":" + std::string(registry::FieldTypeName(f.type)) +
             (f.nullable ? "" : " notnull") + (f.unique ? " unique" : "") +
             (f.primary ? " pk" : "") + (f.auto_increment ? " auto" : "") + "; ";
    }
    return out;
  };
  ASSERT_TRUE(by_name.count("shop.items"));
  EXPECT_EQ(describe(*by_name["shop.items"]),
            "id:integer notnull pk auto; sku:text notnull unique; price:real; qty:integer; "
            "weight:real; big:integer; small:integer; added:timestamp; stamp:timestamp; "
            "born:timestamp; tags:json; raw:json; flag:boolean; note:text; code:text; uid:text; ");
  ASSERT_TRUE(by_name.count("shop.orders"));
  EXPECT_EQ(describe(*by_name["shop.orders"]),
            "no:integer notnull pk auto; item_id:integer notnull; ref:text unique; ");
  ASSERT_TRUE(by_name.count("shop.codes"));
  EXPECT_EQ(describe(*by_name["shop.codes"]), "code:text notnull pk; label:text; ");
  ASSERT_TRUE(by_name.count("shop.multi"));
  EXPECT_EQ(describe(*by_name["shop.multi"]), "id:integer notnull pk; a:integer; b:integer; ");
  EXPECT_EQ(by_name["shop.items"]->primary().name, "id");
  EXPECT_EQ(by_name["shop.orders"]->primary().name, "no");

  // The models work through the adapter like declared ones.
  const ModelPtr items = by_name["shop.items"];
  auto idx = [&](const char* n) { return items->FindField(n); };
  auto created = db_->Create(*items, {{{idx("sku"), S("A-1")},
                                       {idx("price"), D(9.99)},
                                       {idx("added"), S("2026-03-04T05:06:07.089Z")},
                                       {idx("born"), S("2026-01-02T00:00:00.000Z")},
                                       {idx("tags"), S(R"(["x"])")},
                                       {idx("raw"), S(R"({"b": 1, "a": 2})")},
                                       {idx("flag"), B(false)},
                                       {idx("uid"), S("123e4567-e89b-12d3-a456-426614174000")}}});
  ASSERT_TRUE(created.ok()) << created.error().message;
  const Row& row = created.value()[0];
  EXPECT_TRUE(row[idx("id")] == I(1)) << Show(row);
  EXPECT_TRUE(row[idx("price")] == D(9.99)) << Show(row);
  EXPECT_TRUE(row[idx("qty")] == I(0)) << "the table's default applies: " << Show(row);
  EXPECT_TRUE(row[idx("added")] == S("2026-03-04T05:06:07.089Z")) << Show(row);
  EXPECT_TRUE(row[idx("born")] == S("2026-01-02T00:00:00.000Z")) << Show(row);
  EXPECT_TRUE(row[idx("raw")] == S(R"({"b": 1, "a": 2})")) << "json keeps its text: " << Show(row);
  EXPECT_TRUE(row[idx("flag")] == B(false)) << Show(row);
  EXPECT_TRUE(row[idx("uid")] == S("123e4567-e89b-12d3-a456-426614174000")) << Show(row);
  auto dup = db_->Create(*items, {{{idx("sku"), S("A-1")}}});
  EXPECT_TRUE(FailsWith(dup, ErrorCode::kConflict));

  const ModelPtr orders = by_name["shop.orders"];
  auto order = db_->Create(*orders, {{{1, I(1)}, {2, S("r1")}}});
  ASSERT_TRUE(order.ok()) << order.error().message;
  EXPECT_TRUE(order.value()[0][0] == I(1)) << Show(order.value()[0]);
  auto dangling = db_->Create(*orders, {{{1, I(999)}}});
  EXPECT_TRUE(FailsWith(dangling, ErrorCode::kConflict));
  if (!dangling.ok()) {
    EXPECT_EQ(dangling.error().message, "foreign key violation");
  }
}

TEST_F(PostgresDatabaseTest, IntrospectOfAnEmptyOrMissingSchemaFindsNothing) {
  auto none = db_->Introspect("no_such_schema");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none.value().empty());
  Exec("CREATE SCHEMA empty_one");
  auto empty = db_->Introspect("empty_one");
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_TRUE(empty.value().empty());
}

// --- statement timeout --------------------------------------------------------------------------

// A read of a view that is a cross join of 10^10 rows (served as a model: the API has no other way
// to run a slow statement) is cancelled by the server's statement_timeout → timeout; the pooled
// connection is usable afterwards. Bounded: a watchdog terminates the backend after 30 s.
TEST_F(PostgresDatabaseTest, StatementRunningLongerThanTheTimeoutIsCancelledWithTimeout) {
  Exec(
      "CREATE VIEW public.slow AS SELECT a.g * 100000 + b.g AS id, 'x'::text AS pad "
      "FROM generate_series(1, 100000) a(g) CROSS JOIN generate_series(1, 100000) b(g)");
  auto slow =
      MustModel("public", "slow",
                {MakeField("id", FieldType::kInteger), MakeField("pad", FieldType::kText)}, "id");
  auto db = Open(/*pool_size=*/1, /*timeout_ms=*/300);
  ASSERT_TRUE(db->Migrate(*users_).ok());

  ReadQuery q = AllOf(slow, 10);
  q.sort = {{0, true, Nulls::kDefault}};  // sorts all 10^10 rows
  std::atomic<bool> done{false};
  std::mutex mu;
  std::condition_variable cv;
  std::thread guard([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(30), [&] { return done.load(); })) {
      KillConnections();
    }
  });
  auto start = std::chrono::steady_clock::now();
  auto r = db->Read(q);
  auto elapsed = std::chrono::steady_clock::now() - start;
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  guard.join();
  EXPECT_TRUE(FailsWith(r, ErrorCode::kTimeout, {"slow", "generate_series"}));
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  // The same (only) connection serves the next statement.
  auto ok = db->ReadByKey(*users_, I(1), {kId}, {});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_FALSE(ok.value().has_value());
  auto created = db->Create(*users_, {{{kName, S("after")}}});
  ASSERT_TRUE(created.ok()) << created.error().message;
  // A count is cancelled too (the first row comes at once; counting them all does not).
  ReadQuery count = AllOf(slow, 1);
  count.count_total = true;
  count.filters = {Cond(1, Op::kEq, {S("x")})};
  EXPECT_TRUE(FailsWith(db->Read(count), ErrorCode::kTimeout));
}

// --- the server or the connection going away -----------------------------------------------------

TEST_F(PostgresDatabaseTest, UnavailableWhenNobodyListensAndNoCrash) {
  int port = ClosedPort();
  ASSERT_GT(port, 0);
  PostgresOptions o;
  o.url =
      "postgresql://mqttspec:s3cret@127.0.0.1:" + std::to_string(port) + "/nodb?connect_timeout=3";
  o.pool_size = 2;
  PostgresDatabase db(o);
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(db.Migrate(*users_).ok()) << "a migration waits for the server";
  std::vector<std::string> secrets = {"s3cret", std::to_string(port), "nodb"};
  EXPECT_TRUE(FailsWith(db.Read(AllOf(users_)), ErrorCode::kUnavailable, secrets));
  EXPECT_TRUE(FailsWith(db.ReadByKey(*users_, I(1), {kId}, {}), ErrorCode::kUnavailable, secrets));
  EXPECT_TRUE(FailsWith(db.Create(*users_, {{{kName, S("x")}}}), ErrorCode::kUnavailable, secrets));
  EXPECT_TRUE(
      FailsWith(db.Update(*users_, I(1), {{kName, S("y")}}, {}), ErrorCode::kUnavailable, secrets));
  EXPECT_TRUE(FailsWith(db.Delete(*users_, I(1), {}), ErrorCode::kUnavailable, secrets));
  EXPECT_TRUE(FailsWith(db.Introspect("public"), ErrorCode::kUnavailable, secrets));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST_F(PostgresDatabaseTest, UnavailableWhenTheDatabaseDoesNotExist) {
  PostgresOptions o;
  o.url = pgtest::UrlWithDatabase(cfg_.admin_url, scratch_->name() + "_missing");
  o.pool_size = 1;
  PostgresDatabase db(o);
  EXPECT_TRUE(db.Migrate(*users_).ok());
  EXPECT_TRUE(FailsWith(db.Read(AllOf(users_)), ErrorCode::kUnavailable, {"_missing"}));
  EXPECT_TRUE(FailsWith(db.Create(*users_, {{{kName, S("x")}}}), ErrorCode::kUnavailable));
}

// Connections the server dropped (restart, idle timeout, pg_terminate_backend) are replaced on
// the next statement, without an error.
TEST_F(PostgresDatabaseTest, ConnectionsKilledByTheServerAreReplacedTransparently) {
  auto db = Open(/*pool_size=*/2);
  ASSERT_TRUE(db->Migrate(*users_).ok());
  ASSERT_TRUE(db->Create(*users_, {{{kName, S("a")}}}).ok());
  ASSERT_TRUE(db->Read(AllOf(users_)).ok());
  for (int round = 0; round < 3; ++round) {
    EXPECT_GE(KillConnections(), 1) << "round " << round;
    auto r = db->Read(AllOf(users_));
    ASSERT_TRUE(r.ok()) << "round " << round << ": " << r.error().message;
    EXPECT_EQ(r.value().total, 1 + round);
    KillConnections();
    auto c = db->Create(*users_, {{{kName, S("b")}}});
    ASSERT_TRUE(c.ok()) << "round " << round << ": " << c.error().message;
  }
}

// Writes that queue while a commit is in flight leave as one pipeline (BEGIN, their statements,
// COMMIT: one round trip); a failing one fails alone and the others commit; a pipeline connection
// the server dropped while idle is made again before the next batch.
TEST_F(PostgresDatabaseTest, BatchedWritesLeaveAsOnePipelineAndFailAlone) {
  auto db = Open();
  ASSERT_TRUE(db->Migrate(*users_).ok());
  constexpr int kThreads = 8, kEach = 30;
  int total = 0;  // rows created and not deleted
  for (int round = 0; round < 2; ++round) {
    std::atomic<int> created{0}, conflicts{0}, updated{0}, deleted{0}, other{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          // Every third create repeats the email of the one before: a conflict.
          const int n = i % 3 == 2 ? i - 1 : i;
          const std::string email = fmt::format("r{}-t{}-{}@x", round, t, n);
          auto c = db->Create(*users_, {{{kName, S("n")}, {kEmail, Value{email}}}});
          if (!c.ok()) {
            (c.error().code == ErrorCode::kConflict ? conflicts : other)++;
            continue;
          }
          ++created;
          const Value key = c.value()[0][kId];
          auto u = db->Update(*users_, key, {{kAge, I(i)}}, {});
          if (u.ok() && u.value() && (*u.value())[kAge] == I(i))
            ++updated;
          else
            ++other;
          if (i % 3 != 0) continue;  // (not one whose email the next conflicts with)
          auto d = db->Delete(*users_, key, {});
          if (d.ok() && d.value())
            ++deleted;
          else
            ++other;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(other.load(), 0) << "round " << round;
    EXPECT_EQ(conflicts.load(), kThreads * (kEach / 3));
    EXPECT_EQ(updated.load(), created.load());
    auto r = db->Read(AllOf(users_, 1));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_GT(db->pipelined_batches(), 0u) << "no batch of writes formed";
    // Nothing else is left behind: the rows that stay are the created ones not deleted.
    total += created.load() - deleted.load();
    EXPECT_EQ(r.value().total, total) << "round " << round;
    EXPECT_GE(KillConnections(), 1);  // the pipeline's connection too, while idle
    AwaitConnectionsGone();
  }
}

// The server ends the writer's session while a pipelined batch waits for a lock (a restart, an
// administrator): it says so before the COMMIT ran, so nothing of the batch committed — the batch
// runs again on a pooled connection and every write succeeds once, none answered "may or may not
// have happened".
TEST_F(PostgresDatabaseTest, ABatchWhoseSessionEndsBeforeItsCommitRunsAgain) {
  auto db = Open();
  ASSERT_TRUE(db->Migrate(*users_).ok());
  auto x = db->Create(*users_, {{{kName, S("x")}}});
  auto y = db->Create(*users_, {{{kName, S("y")}}});
  ASSERT_TRUE(x.ok() && y.ok());
  const Value kx = x.value()[0][kId], ky = y.value()[0][kId];
  const std::string table = "\"public\".\"users\"";
  auto lock = [&](pqxx::connection& c, const Value& key) {
    auto tx = std::make_unique<pqxx::work>(c);
    tx->exec("SELECT 1 FROM " + table + " WHERE id = " + std::to_string(std::get<int64_t>(key)) +
             " FOR UPDATE");
    return tx;
  };
  // Backends of `application` waiting for a lock (any application: "").
  auto waiting = [&](const std::string& application) {
    Table t = Sql("SELECT pid FROM pg_stat_activity WHERE datname = '" + scratch_->name() +
                  "' AND wait_event_type = 'Lock'" +
                  (application.empty() ? "" : " AND application_name = '" + application + "'"));
    return t.empty() ? std::string() : t[0][0];
  };
  auto await = [&](const std::string& application) {
    for (int i = 0; i < 500; ++i) {
      if (auto pid = waiting(application); !pid.empty()) return pid;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::string();
  };
  pqxx::connection cy(scratch_->url()), cx(scratch_->url());
  auto hold_y = lock(cy, ky);
  auto hold_x = lock(cx, kx);
  // A lone write waits for y (in autocommit, on a pooled connection) while the batch forms.
  auto first = std::async(std::launch::async, [&] {
    return db->Update(*users_, ky, {{kAge, I(1)}}, {});
  });
  ASSERT_FALSE(await("").empty()) << "the lone write never waited for its lock";
  auto update = std::async(std::launch::async, [&] {
    return db->Update(*users_, kx, {{kAge, I(2)}}, {});
  });
  auto create = std::async(std::launch::async, [&] {
    return db->Create(*users_, {{{kName, S("z")}}});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // both queue behind it
  hold_y->commit();
  // The batch (update of x, create of z) leaves as one pipeline and waits for x.
  const std::string writer = await("mqttspec-writer");
  ASSERT_FALSE(writer.empty()) << "the batch never waited in the pipeline";
  Sql("SELECT pg_terminate_backend(" + writer + ")");
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  hold_x->commit();
  auto f = first.get();
  auto u = update.get();
  auto c = create.get();
  ASSERT_TRUE(f.ok()) << f.error().message;
  ASSERT_TRUE(u.ok()) << u.error().message;
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(u.value());
  EXPECT_EQ((*u.value())[kAge], I(2));
  EXPECT_EQ(Sql("SELECT count(*) FROM " + table + " WHERE name = 'z'"), (Table{{"1"}}));
  EXPECT_EQ(
      Sql("SELECT age FROM " + table + " WHERE id = " + std::to_string(std::get<int64_t>(kx))),
      (Table{{"2"}}));
}

// A pipeline whose statements and results outgrow the socket's buffers: sending reads meanwhile,
// so neither side blocks for good.
TEST_F(PostgresDatabaseTest, BigPipelinesDoNotDeadlock) {
  auto db = Open();
  ASSERT_TRUE(db->Migrate(*users_).ok());
  constexpr int kThreads = 16;
  std::vector<Value> keys;
  for (int t = 0; t < kThreads; ++t) {
    auto c = db->Create(*users_, {{{kName, S("n")}}});
    ASSERT_TRUE(c.ok());
    keys.push_back(c.value()[0][kId]);
  }
  const std::string big(256 * 1024, 'x');  // each update sends it and gets it back twice
  const uint64_t before = db->pipelined_batches();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 6; ++i) {
        auto u = db->Update(*users_, keys[t], {{kNote, Value{big + std::to_string(i)}}}, {});
        if (!u.ok() || !u.value()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(db->pipelined_batches(), before);
}

// Many callers share a pool of one connection: they wait for it, none fails.
TEST_F(PostgresDatabaseTest, PoolOfOneServesConcurrentCallers) {
  auto db = Open(/*pool_size=*/1);
  ASSERT_TRUE(db->Migrate(*users_).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (!db->Create(*users_, {{{kName, S("n")}, {kAge, I(t)}}}).ok()) ++failures;
        if (!db->Read(AllOf(users_)).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto r = db->Read(AllOf(users_, 1));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().total, 80);
}

// More statement shapes than the per-connection cache of prepared statements holds.
TEST_F(PostgresDatabaseTest, ManyStatementShapesOverflowThePreparedStatementCacheSafely) {
  auto db = Open(/*pool_size=*/1);
  ASSERT_TRUE(db->Migrate(*users_).ok());
  ASSERT_TRUE(db->Create(*users_, {{{kName, S("a")}, {kAge, I(3)}}}).ok());
  for (int n = 1; n <= 300; ++n) {
    std::vector<Value> values;
    for (int i = 0; i < n; ++i) values.push_back(I(i));
    ReadQuery q = AllOf(users_);
    q.filters = {Cond(kAge, Op::kIn, std::move(values))};
    auto r = db->Read(q);
    ASSERT_TRUE(r.ok()) << n << " values: " << r.error().message;
    EXPECT_EQ(r.value().total, n > 3 ? 1 : 0) << n;
  }
}

// --- a server that comes up late and goes away again ---------------------------------------------

// Runs tests/pg/pgcluster.sh; the path comes from this file's location (CMake compiles sources
// by absolute path) or MQTTSPEC_PGCLUSTER.
std::string PgClusterScript() {
  if (const char* env = std::getenv("MQTTSPEC_PGCLUSTER"); env && *env) return env;
  std::filesystem::path here(__FILE__);
  return (here.parent_path().parent_path() / "pg" / "pgcluster.sh").string();
}

int PgCluster(const std::string& command, const std::string& dir, int port = 0) {
  std::string cmd = "PGCLUSTER_OWNER_PID=" + std::to_string(::getpid()) + " PGCLUSTER_TTL_S=600";
  if (port > 0) cmd += " PGCLUSTER_PORT=" + std::to_string(port);
  cmd += " '" + PgClusterScript() + "' " + command + " '" + dir + "' >/dev/null";
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

class PostgresRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pgtest::PgConfig cfg;
    NEED_POSTGRES(cfg);  // same switch as the other PostgreSQL tests (this one runs its own server)
    ASSERT_TRUE(std::filesystem::exists(PgClusterScript())) << PgClusterScript();
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "mqttspec_pgrecovery_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl + "/cluster";
  }
  void TearDown() override {
    if (dir_.empty()) return;
    EXPECT_EQ(PgCluster("stop", dir_), 0);
    std::filesystem::remove_all(std::filesystem::path(dir_).parent_path());
  }
  std::string dir_;
};

TEST_F(PostgresRecoveryTest, ServesOnceTheServerIsUpAndAgainAfterAnOutage) {
  int port = ClosedPort();
  ASSERT_GT(port, 0);
  PostgresOptions o;
  o.url = "postgresql://mqttspec@127.0.0.1:" + std::to_string(port) + "/postgres?connect_timeout=5";
  o.pool_size = 2;
  PostgresDatabase db(o);
  auto users = Users();
  auto notes = MustModel("app", "notes", {AutoId(), MakeField("body", FieldType::kText)}, "id");

  // Down at start-up: migrations wait, statements are unavailable.
  ASSERT_TRUE(db.Migrate(*users).ok());
  ASSERT_TRUE(db.Migrate(*notes).ok());
  EXPECT_TRUE(FailsWith(db.Read(AllOf(users)), ErrorCode::kUnavailable));
  EXPECT_TRUE(FailsWith(db.Create(*users, {{{kName, S("x")}}}), ErrorCode::kUnavailable));

  // Up: the pending migrations run before the first statement.
  ASSERT_EQ(PgCluster("start", dir_, port), 0) << "pgcluster.sh start on port " << port;
  auto empty = db.Read(AllOf(users));
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_EQ(empty.value().total, 0);
  auto created = db.Create(*users, {{{kName, S("first")}}});
  ASSERT_TRUE(created.ok()) << created.error().message;
  auto note = db.Create(*notes, {{{1, S("n")}}});
  ASSERT_TRUE(note.ok()) << note.error().message;

  // An outage: pooled connections break; every call fails cleanly.
  ASSERT_EQ(PgCluster("pause", dir_), 0);
  EXPECT_TRUE(FailsWith(db.Read(AllOf(users)), ErrorCode::kUnavailable));
  EXPECT_TRUE(FailsWith(db.Create(*users, {{{kName, S("lost")}}}), ErrorCode::kUnavailable));
  EXPECT_TRUE(
      FailsWith(db.Update(*users, I(1), {{kName, S("lost")}}, {}), ErrorCode::kUnavailable));

  // Back: the next statements work, the data is there, nothing of the outage was written.
  ASSERT_EQ(PgCluster("resume", dir_), 0);
  auto after = db.Read(AllOf(users));
  ASSERT_TRUE(after.ok()) << after.error().message;
  ASSERT_EQ(after.value().total, 1);
  EXPECT_TRUE(after.value().rows[0][kName] == S("first"));
  auto more = db.Create(*users, {{{kName, S("second")}}});
  ASSERT_TRUE(more.ok()) << more.error().message;
  auto notes_read = db.Read(AllOf(notes));
  ASSERT_TRUE(notes_read.ok()) << notes_read.error().message;
  EXPECT_EQ(notes_read.value().total, 1);
}

}  // namespace
}  // namespace mqttspec::adapters
