// mqttspec_pq_baseline: the raw database cost of the statements mqttspec sends, without mqttspec
// (no MQTT, no JSON, no adapter): bench/run.sh subtracts it from the service's latency.
//
//   mqttspec_pq_baseline pg --url URL [options]       libpq alone, PQexecPrepared (text params)
//   mqttspec_pq_baseline sqlite --path FILE [options] the sqlite3 C API alone (WAL, synchronous=NORMAL)
//
// Options: --ops LIST (pg: read,read-tx,read-pipe,create,create-tx,create-pipe; sqlite: read,create) --rows N (10000:
// keys 1..N exist) --warmup N (500) --samples N (5000) --latency-s S (1) --threads T (8)
// --tput-s S (1.5) --out FILE (else stdout) --label TEXT --setup-prefix NAME (raw)
//
// The statements are the ones the adapters send (captured from PostgreSQL's log_statement=all
// and read from adapters/sql_builder.cc):
//   read      SELECT "id", "grp", "name", "score", "created_at" FROM "public"."items" WHERE "id" = $1
//             (SQLite: FROM "items" … = ?)
//   create    INSERT INTO "public"."items" ("grp", "name", "score", "created_at") VALUES ($1, $2,
//             $3, $4) RETURNING "id", "grp", "name", "score", "created_at"
//   read-tx   read the way libpqxx runs it for the adapter: "BEGIN; SET TRANSACTION READ ONLY",
//             the prepared SELECT, "COMMIT" — three round trips
//   create-tx create the way the adapter runs it: "BEGIN", the prepared INSERT, "COMMIT"
//   read-pipe, create-pipe  the same transaction in libpq's pipeline mode: "BEGIN [READ ONLY]",
//             the prepared statement and "COMMIT" sent together, one round trip (what the -tx
//             shape could cost)
// SQLite: the adapter runs both statements on their own (autocommit), as here.
//
// Latency: 1 connection, 1 statement at a time (synchronous): warm-up, then --samples statements
// or --latency-s seconds; p50/p99. Throughput: --threads threads, each with its own connection,
// each running statements back to back for --tput-s seconds (after 0.2 s of warm-up); ops/s and
// the p50/p99 of the statements in that phase. SQLite writes: the threads share one writer
// connection behind a mutex (SQLite has one writer; the adapter does the same), reads use one
// connection per thread.
//
// Output: one tab-separated line per op in the format of `mqttspec_bench run` (setup "raw-pg",
// "raw-pg-tx", "raw-pg-pipe" or "raw-sqlite", QoS -1, workload read-by-key/create), so `mqttspec_bench report`
// puts them beside the service's rows.

#include <libpq-fe.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.h"

namespace {

using namespace bench;  // NOLINT: bench_common.h





// The timestamp the service binds for created_at: PostgreSQL gets "2026-11-24 09:40:21.961+00",
// SQLite "2026-11-24T09:40:21.961Z".
std::string NowText(bool pg) {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t s = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, pg ? "%04d-%02d-%02d %02d:%02d:%02d.%03d+00" : "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

constexpr int kGroups = 250;  // as mqttspec_bench: grp = seq % 250

// Per-connection state of one op: runs statement number `seq`, returns false on an error.
class Worker {
 public:
  virtual ~Worker() = default;
  virtual bool Run(int64_t seq) = 0;
  virtual std::string Error() = 0;
};

// ---- PostgreSQL ---------------------------------------------------------------------------

const char* kPgSelect =
    R"(SELECT "id", "grp", "name", "score", "created_at" FROM "public"."items" WHERE "id" = $1)";
const char* kPgInsert =
    R"(INSERT INTO "public"."items" ("grp", "name", "score", "created_at") VALUES ($1, $2, $3, $4) RETURNING "id", "grp", "name", "score", "created_at")";

class PgWorker : public Worker {
 public:
  PgWorker(const std::string& url, bool create, bool tx, bool pipe, int64_t rows)
      : create_(create), tx_(tx), pipe_(pipe), rows_(rows) {
    conn_ = PQconnectdb(url.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) Die("cannot connect to %s: %s", url.c_str(), PQerrorMessage(conn_));
    // The session the adapter sets up (PostgresConnection::get()).
    Simple("SET statement_timeout = 5000");
    Simple("SET TIME ZONE 'UTC'");
    Simple("SET client_encoding = 'UTF8'");
    PGresult* r = PQprepare(conn_, "q", create ? kPgInsert : kPgSelect, 0, nullptr);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) Die("prepare: %s", PQerrorMessage(conn_));
    PQclear(r);
    if (pipe_ && PQenterPipelineMode(conn_) != 1) Die("pipeline mode: %s", PQerrorMessage(conn_));
  }
  ~PgWorker() override { PQfinish(conn_); }

  bool Run(int64_t seq) override {
    if (!pipe_ && tx_ && !Simple(create_ ? "BEGIN" : "BEGIN; SET TRANSACTION READ ONLY")) return false;
    char a[32], b[48], c[32];
    std::string ts;
    const char* params[4];
    int n;
    if (create_) {
      std::snprintf(a, sizeof a, "%lld", (long long)(seq % kGroups));
      std::snprintf(b, sizeof b, "new-%lld", (long long)seq);
      std::snprintf(c, sizeof c, "%lld.5", (long long)(seq % 1000));
      ts = NowText(true);
      params[0] = a, params[1] = b, params[2] = c, params[3] = ts.c_str();
      n = 4;
    } else {
      std::snprintf(a, sizeof a, "%lld", (long long)((seq * 7919) % rows_ + 1));
      params[0] = a;
      n = 1;
    }
    if (pipe_) return RunPipelined(n, params);
    PGresult* r = PQexecPrepared(conn_, "q", n, params, nullptr, nullptr, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    if (ok) {  // touch every value, as the adapter reads them
      size_t len = 0;
      for (int f = 0; f < PQnfields(r); ++f) len += std::strlen(PQgetvalue(r, 0, f));
      sink_ += len;
    } else {
      error_ = PQresultStatus(r) == PGRES_TUPLES_OK ? "no row" : PQresultErrorMessage(r);
    }
    PQclear(r);
    if (tx_ && !Simple("COMMIT")) return false;
    return ok;
  }
  std::string Error() override { return error_; }

 private:
  // BEGIN, the statement, COMMIT and a sync in one write; then the four results.
  bool RunPipelined(int n, const char* const* params) {
    bool sent = PQsendQueryParams(conn_, create_ ? "BEGIN" : "BEGIN READ ONLY", 0, nullptr, nullptr, nullptr, nullptr, 0) &&
                PQsendQueryPrepared(conn_, "q", n, params, nullptr, nullptr, 0) &&
                PQsendQueryParams(conn_, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0) && PQpipelineSync(conn_);
    if (!sent) Die("pipeline send: %s", PQerrorMessage(conn_));
    bool ok = true;
    for (int q = 0; q < 3; ++q) {
      PGresult* r = PQgetResult(conn_);
      ExecStatusType st = PQresultStatus(r);
      if (q == 1) {
        if (st == PGRES_TUPLES_OK && PQntuples(r) == 1) {
          size_t len = 0;
          for (int f = 0; f < PQnfields(r); ++f) len += std::strlen(PQgetvalue(r, 0, f));
          sink_ += len;
        } else {
          ok = false;
          error_ = st == PGRES_TUPLES_OK ? "no row" : PQresultErrorMessage(r);
        }
      } else if (st != PGRES_COMMAND_OK) {
        ok = false;
        error_ = PQresultErrorMessage(r);
      }
      PQclear(r);
      while ((r = PQgetResult(conn_)) != nullptr) PQclear(r);  // the NULL that ends each query
    }
    PGresult* r = PQgetResult(conn_);
    if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) ok = false, error_ = "no pipeline sync";
    PQclear(r);
    return ok;
  }

  bool Simple(const char* sql) {
    PGresult* r = PQexec(conn_, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) error_ = std::string(sql) + ": " + PQresultErrorMessage(r);
    PQclear(r);
    return ok;
  }

  PGconn* conn_ = nullptr;
  bool create_, tx_, pipe_;
  int64_t rows_;
  size_t sink_ = 0;
  std::string error_;
};

// ---- SQLite -------------------------------------------------------------------------------

const char* kSqliteSelect = R"(SELECT "id", "grp", "name", "score", "created_at" FROM "items" WHERE "id" = ?)";
const char* kSqliteInsert =
    R"(INSERT INTO "items" ("grp", "name", "score", "created_at") VALUES (?, ?, ?, ?) RETURNING "id", "grp", "name", "score", "created_at")";

sqlite3* OpenSqlite(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK)
    Die("cannot open %s: %s", path.c_str(), db ? sqlite3_errmsg(db) : "?");
  sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  if (sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;", nullptr, nullptr, &err) != SQLITE_OK)
    Die("pragmas: %s", err ? err : "?");
  return db;
}

class SqliteWorker : public Worker {
 public:
  // `shared` (writes): one connection for every thread, serialized by `mu`.
  SqliteWorker(sqlite3* db, std::mutex* mu, bool create, int64_t rows) : db_(db), mu_(mu), create_(create), rows_(rows) {
    if (sqlite3_prepare_v3(db_, create ? kSqliteInsert : kSqliteSelect, -1, SQLITE_PREPARE_PERSISTENT, &st_, nullptr) !=
        SQLITE_OK)
      Die("prepare: %s", sqlite3_errmsg(db_));
  }
  ~SqliteWorker() override { sqlite3_finalize(st_); }

  bool Run(int64_t seq) override {
    std::unique_lock<std::mutex> lock;
    if (mu_) lock = std::unique_lock(*mu_);
    if (create_) {
      char name[48];
      std::snprintf(name, sizeof name, "new-%lld", (long long)seq);
      std::string ts = NowText(false);
      sqlite3_bind_int64(st_, 1, seq % kGroups);
      sqlite3_bind_text(st_, 2, name, -1, SQLITE_TRANSIENT);
      sqlite3_bind_double(st_, 3, static_cast<double>(seq % 1000) + 0.5);
      sqlite3_bind_text(st_, 4, ts.c_str(), static_cast<int>(ts.size()), SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_int64(st_, 1, (seq * 7919) % rows_ + 1);
    }
    int rows = 0, rc;
    while ((rc = sqlite3_step(st_)) == SQLITE_ROW) {
      ++rows;
      for (int c = 0; c < sqlite3_column_count(st_); ++c) {  // read every value, as the adapter does
        if (sqlite3_column_type(st_, c) == SQLITE_TEXT) sink_ += static_cast<size_t>(sqlite3_column_bytes(st_, c));
        else sink_ += static_cast<size_t>(sqlite3_column_int64(st_, c));
      }
    }
    bool ok = rc == SQLITE_DONE && rows == 1;
    if (!ok) error_ = rc == SQLITE_DONE ? "no row" : sqlite3_errmsg(db_);
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
    return ok;
  }
  std::string Error() override { return error_; }

 private:
  sqlite3* db_;
  std::mutex* mu_;
  sqlite3_stmt* st_ = nullptr;
  bool create_;
  int64_t rows_;
  size_t sink_ = 0;
  std::string error_;
};

// ---- measuring ----------------------------------------------------------------------------


std::atomic<int64_t> g_seq{1'000'000'000};  // distinct from the driver's ids: names only

struct Result {
  int64_t n1 = 0, n64 = 0, errors = 0;
  double p50 = 0, p99 = 0, rps = 0, p50_t = 0, p99_t = 0;
  std::string first_error;
};

Result Measure(const std::function<std::unique_ptr<Worker>()>& make, const Args& a) {
  Result res;
  const int64_t warmup = a.Int("warmup", 500), samples = a.Int("samples", 5000);
  const double latency_s = a.Real("latency-s", 1), tput_s = a.Real("tput-s", 1.5);
  const int threads = static_cast<int>(a.Int("threads", 8));
  {  // 1 connection, 1 at a time
    auto w = make();
    for (int64_t i = 0; i < warmup; ++i) {
      if (!w->Run(g_seq++)) ++res.errors, res.first_error = w->Error();
    }
    std::vector<int64_t> lat;
    lat.reserve(static_cast<size_t>(samples));
    int64_t end = NowNs() + static_cast<int64_t>(latency_s * 1e9);
    for (int64_t i = 0; i < samples && NowNs() < end; ++i) {
      int64_t t0 = NowNs();
      if (!w->Run(g_seq++)) ++res.errors, res.first_error = w->Error();
      lat.push_back(NowNs() - t0);
    }
    res.n1 = static_cast<int64_t>(lat.size());
    res.p50 = Percentile(lat, 0.5);
    res.p99 = Percentile(lat, 0.99);
  }
  {  // `threads` connections, closed loop
    std::vector<std::unique_ptr<Worker>> ws;
    for (int t = 0; t < threads; ++t) ws.push_back(make());
    std::atomic<int> phase{0};  // 0 warm-up, 1 measure, 2 stop
    std::vector<std::vector<int64_t>> lat(static_cast<size_t>(threads));
    std::vector<int64_t> errors(static_cast<size_t>(threads), 0);
    std::vector<std::string> first(static_cast<size_t>(threads));
    std::vector<std::thread> th;
    for (int t = 0; t < threads; ++t) {
      th.emplace_back([&, t] {
        auto& l = lat[static_cast<size_t>(t)];
        l.reserve(200000);
        int p;
        while ((p = phase.load(std::memory_order_relaxed)) < 2) {
          int64_t t0 = NowNs();
          bool ok = ws[static_cast<size_t>(t)]->Run(g_seq++);
          if (p == 1 && phase.load(std::memory_order_relaxed) == 1) {
            l.push_back(NowNs() - t0);
            if (!ok && errors[static_cast<size_t>(t)]++ == 0) first[static_cast<size_t>(t)] = ws[static_cast<size_t>(t)]->Error();
          }
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    int64_t t0 = NowNs();
    phase = 1;
    std::this_thread::sleep_for(std::chrono::nanoseconds(static_cast<int64_t>(tput_s * 1e9)));
    phase = 2;
    int64_t t1 = NowNs();
    for (auto& t : th) t.join();
    std::vector<int64_t> all;
    for (size_t t = 0; t < lat.size(); ++t) {
      all.insert(all.end(), lat[t].begin(), lat[t].end());
      res.errors += errors[t];
      if (res.first_error.empty()) res.first_error = first[t];
    }
    res.n64 = static_cast<int64_t>(all.size());
    res.rps = static_cast<double>(all.size()) / (static_cast<double>(t1 - t0) / 1e9);
    res.p50_t = Percentile(all, 0.5);
    res.p99_t = Percentile(all, 0.99);
  }
  return res;
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string x;
  while (std::getline(in, x, ',')) out.push_back(x);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  bench::program_name = "mqttspec_pq_baseline";
  if (argc < 2) {
    std::fprintf(stderr, "usage: mqttspec_pq_baseline pg --url URL | sqlite --path FILE [--ops …] [--out FILE] [...]\n");
    return 2;
  }
  const std::string db = argv[1];
  Args a = ParseArgs(argc, argv, 2);
  const int64_t rows = a.Int("rows", 10000);
  const std::string prefix = a.Get("setup-prefix", "raw");
  const int threads = static_cast<int>(a.Int("threads", 8));
  std::FILE* out = stdout;
  if (!a.Get("out").empty()) {
    out = std::fopen(a.Get("out").c_str(), "a");
    if (!out) Die("cannot open %s", a.Get("out").c_str());
  }
  sqlite3* shared_writer = nullptr;
  std::mutex writer_mu;
  std::vector<sqlite3*> opened;
  for (const std::string& op : Split(a.Get("ops", db == "pg" ? "read,read-tx,read-pipe,create,create-tx,create-pipe" : "read,create"))) {
    const bool create = op.rfind("create", 0) == 0;
    const bool tx = op.size() > 3 && op.substr(op.size() - 3) == "-tx";
    const bool pipe = op.size() > 5 && op.substr(op.size() - 5) == "-pipe";
    std::string setup;
    std::function<std::unique_ptr<Worker>()> make;
    if (db == "pg") {
      const std::string url = a.Get("url");
      if (url.empty()) Die("pg: --url is required");
      setup = prefix + "-pg" + (tx ? "-tx" : pipe ? "-pipe" : "");
      make = [url, create, tx, pipe, rows] { return std::make_unique<PgWorker>(url, create, tx || pipe, pipe, rows); };
    } else if (db == "sqlite") {
      const std::string path = a.Get("path");
      if (path.empty()) Die("sqlite: --path is required");
      if (tx || pipe) Die("sqlite: the adapter runs single statements without BEGIN; no -tx/-pipe ops");
      setup = prefix + "-sqlite";
      if (create) {
        if (!shared_writer) shared_writer = OpenSqlite(path);
        make = [&, rows] { return std::make_unique<SqliteWorker>(shared_writer, &writer_mu, true, rows); };
      } else {
        make = [&, path, rows] {
          sqlite3* c = OpenSqlite(path);
          opened.push_back(c);
          return std::make_unique<SqliteWorker>(c, nullptr, false, rows);
        };
      }
    } else {
      Die("unknown database '%s' (pg or sqlite)", db.c_str());
    }
    Result r = Measure(make, a);
    const char* workload = create ? "create" : "read-by-key";
    std::fprintf(out, "%s\t-1\t%s\t%lld\t%.1f\t%.1f\t%lld\t%.0f\t%.1f\t%.1f\t%lld\t0\t%s\n", setup.c_str(), workload,
                 (long long)r.n1, r.p50, r.p99, (long long)r.n64, r.rps, r.p50_t, r.p99_t, (long long)r.errors,
                 a.Get("label", "-").c_str());
    std::fflush(out);
    std::fprintf(stderr, "%-14s %-12s 1 conn: p50 %7.1f µs p99 %7.1f µs (n=%lld) | %d conns: %8.0f ops/s p50 %7.1f µs p99 %7.1f µs (n=%lld)%s\n",
                 setup.c_str(), workload, r.p50, r.p99, (long long)r.n1, threads, r.rps, r.p50_t, r.p99_t,
                 (long long)r.n64, r.errors ? " ERRORS" : "");
    if (r.errors) {
      std::fprintf(stderr, "  %lld errors, first: %s\n", (long long)r.errors, r.first_error.c_str());
      return 1;
    }
  }
  for (sqlite3* c : opened) sqlite3_close(c);
  if (shared_writer) sqlite3_close(shared_writer);
  if (out != stdout) std::fclose(out);
  return 0;
}
