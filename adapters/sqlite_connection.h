#pragma once
// SqliteConnection: one sqlite3 handle, its pragmas (WAL, synchronous, case-sensitive like), its
// cache of prepared statements and the statement deadline (limits.query_timeout_ms, via the
// progress handler). SqliteError maps an SQLite failure to a protocol error without SQL text.
// Thread-safety: one thread at a time (SqliteDatabase hands connections out under its locks).

#include <fmt/format.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "adapters/sql_builder.h"
#include "adapters/sqlite_database.h"
#include "common/error.h"

namespace mqttspec::adapters {

Error SqliteError(sqlite3* db, int rc);

inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class SqliteConnection {
 public:
  ~SqliteConnection() {
    for (auto& [sql, st] : cache_) sqlite3_finalize(st);
    if (db_) sqlite3_close_v2(db_);
  }

  static Result<std::unique_ptr<SqliteConnection>> Open(const SqliteOptions& o, bool writer) {
    // Before SQLite's first use in the process: no memory statistics (nothing here reads them).
    // With them, every allocation of SQLite's — each a malloc, as Debian's build has no
    // lookaside — takes one process-wide mutex and asks malloc for the block's size. Refused
    // (SQLITE_MISUSE, harmless) when SQLite was already initialised by someone else.
    static std::once_flag configured;
    std::call_once(configured, [] { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
    auto c = std::unique_ptr<SqliteConnection>(new SqliteConnection());
    c->timeout_ms_ = o.query_timeout_ms;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(o.path.c_str(), &c->db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      return MakeError(ErrorCode::kUnavailable,
                       fmt::format("cannot open the SQLite database: {}", sqlite3_errstr(rc)));
    }
    sqlite3_extended_result_codes(c->db_, 1);
    sqlite3_busy_timeout(c->db_, o.query_timeout_ms);
    sqlite3_progress_handler(
        c->db_, 1000,
        [](void* p) -> int {
          auto* self = static_cast<SqliteConnection*>(p);
          return self->deadline_ns_ != 0 && NowNs() > self->deadline_ns_ ? 1 : 0;
        },
        c.get());
    std::string pragmas = "PRAGMA case_sensitive_like = ON; PRAGMA foreign_keys = ON;";
    if (writer) {
      pragmas += "PRAGMA journal_mode = WAL; PRAGMA journal_size_limit = 16777216;";
      pragmas += o.synchronous_full ? "PRAGMA synchronous = FULL;" : "PRAGMA synchronous = NORMAL;";
    }
    char* err = nullptr;
    rc = sqlite3_exec(c->db_, pragmas.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string m = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      return MakeError(ErrorCode::kUnavailable, "cannot configure the SQLite database: " + m);
    }
    return c;
  }

  Status Exec(const std::string& sql) {
    Arm();
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    deadline_ns_ = 0;
    sqlite3_free(err);
    if (rc != SQLITE_OK) return SqliteError(db_, rc);
    return OkStatus();
  }

  // Runs one statement without parameters or rows (BEGIN, COMMIT, SAVEPOINT …), prepared once:
  // Exec (sqlite3_exec) parses its text on every call — ~2 % of the writer's CPU in a profile of
  // creates, for a BEGIN and a COMMIT per batch.
  Status Step(const std::string& sql) {
    auto prepared = Prepare(sql);
    if (!prepared.ok()) return prepared.take_error();
    sqlite3_stmt* s = prepared.value();
    Arm();
    const int rc = sqlite3_step(s);
    deadline_ns_ = 0;
    Status st = OkStatus();
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) st = SqliteError(db_, rc);
    sqlite3_reset(s);
    return st;
  }

  // Runs a statement, collecting at most `max_rows` rows of `ncols` columns.
  Result<std::vector<Row>> Query(const Statement& st, size_t ncols) {
    auto prepared = Prepare(st.sql);
    if (!prepared.ok()) return prepared.take_error();
    sqlite3_stmt* s = prepared.value();
    for (size_t i = 0; i < st.params.size(); ++i) Bind(s, static_cast<int>(i + 1), st.params[i]);
    Arm();
    std::vector<Row> rows;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      Row row(ncols);
      for (size_t c = 0; c < ncols; ++c) row[c] = Column(s, static_cast<int>(c));
      rows.push_back(std::move(row));
    }
    deadline_ns_ = 0;
    Error err{ErrorCode::kInternal, ""};
    if (rc != SQLITE_DONE) err = SqliteError(db_, rc);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) return err;
    return rows;
  }

  sqlite3* db() { return db_; }

 private:
  SqliteConnection() = default;

  void Arm() { deadline_ns_ = NowNs() + static_cast<int64_t>(timeout_ms_) * 1000000; }

  Result<sqlite3_stmt*> Prepare(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) return it->second;
    if (cache_.size() >= kMaxCached) {  // filters make many shapes: keep the cache bounded
      for (auto& [k, st] : cache_) sqlite3_finalize(st);
      cache_.clear();
    }
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &st, nullptr);
    if (rc != SQLITE_OK) return SqliteError(db_, rc);
    cache_.emplace(sql, st);
    return st;
  }

  static void Bind(sqlite3_stmt* s, int i, const Value& v) {
    switch (v.index()) {
      case 0: sqlite3_bind_null(s, i); break;
      case 1: sqlite3_bind_int64(s, i, std::get<bool>(v) ? 1 : 0); break;
      case 2: sqlite3_bind_int64(s, i, std::get<int64_t>(v)); break;
      case 3: sqlite3_bind_double(s, i, std::get<double>(v)); break;
      case 4: {
        const auto& str = std::get<std::string>(v);
        sqlite3_bind_text64(s, i, str.data(), str.size(), SQLITE_STATIC, SQLITE_UTF8);
        break;
      }
    }
  }

  static Value Column(sqlite3_stmt* s, int c) {
    switch (sqlite3_column_type(s, c)) {
      case SQLITE_INTEGER: return Value{static_cast<int64_t>(sqlite3_column_int64(s, c))};
      case SQLITE_FLOAT: return Value{sqlite3_column_double(s, c)};
      case SQLITE_NULL: return Value{};
      default: {
        const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
        return Value{std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(s, c)))};
      }
    }
  }

  static constexpr size_t kMaxCached = 256;
  sqlite3* db_ = nullptr;
  int timeout_ms_ = 5000;
  std::atomic<int64_t> deadline_ns_{0};
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

}  // namespace mqttspec::adapters
