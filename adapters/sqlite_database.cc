#include "adapters/sqlite_database.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <chrono>
#include <unordered_map>
#include <unordered_set>

namespace mqttspec::adapters {

using registry::Model;

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Maps an SQLite failure to a protocol error. `detail` (errmsg) is used only to name the field of
// a constraint; no SQL text leaves this function.
Error SqliteError(sqlite3* db, int rc) {
  const int ext = db ? sqlite3_extended_errcode(db) : rc;
  std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  auto field_of = [&]() -> std::string {
    // "UNIQUE constraint failed: users.email" → "email"
    auto colon = msg.rfind(": ");
    if (colon == std::string::npos) return "";
    std::string tail = msg.substr(colon + 2);
    auto dot = tail.rfind('.');
    if (dot != std::string::npos) tail = tail.substr(dot + 1);
    auto comma = tail.find(',');
    if (comma != std::string::npos) tail = tail.substr(0, comma);
    return registry::IsIdentifier(tail) ? tail : "";
  };
  switch (ext) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return MakeError(ErrorCode::kConflict,
                       fmt::format("a row with this '{}' exists already", field_of()));
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return MakeError(ErrorCode::kConflict, "foreign key violation");
    case SQLITE_CONSTRAINT_NOTNULL:
      return MakeError(ErrorCode::kInvalidValue,
                       fmt::format("field '{}' may not be null", field_of()));
    default: break;
  }
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: return MakeError(ErrorCode::kInvalidValue, "constraint violated");
    case SQLITE_INTERRUPT: return MakeError(ErrorCode::kTimeout, "query timed out");
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return MakeError(ErrorCode::kTimeout, "database is busy");
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_READONLY: return MakeError(ErrorCode::kUnavailable, "database unavailable");
    default: return MakeError(ErrorCode::kInternal, "database error");
  }
}

}  // namespace

// One sqlite3 handle and its cache of prepared statements. Used by one thread at a time.
class SqliteConnection {
 public:
  ~SqliteConnection() {
    for (auto& [sql, st] : cache_) sqlite3_finalize(st);
    if (db_) sqlite3_close_v2(db_);
  }

  static Result<std::unique_ptr<SqliteConnection>> Open(const SqliteOptions& o, bool writer) {
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

class SqliteDatabase::ReaderLease {
 public:
  explicit ReaderLease(SqliteDatabase& db) : db_(db) {
    if (db_.readers_.empty()) {
      writer_lock_ = std::unique_lock(db_.writer_mu_);
      conn_ = db_.writer_.get();
      return;
    }
    std::unique_lock lock(db_.readers_mu_);
    db_.reader_free_.wait(lock, [&] { return !db_.free_readers_.empty(); });
    conn_ = db_.free_readers_.back();
    db_.free_readers_.pop_back();
  }
  ~ReaderLease() {
    if (writer_lock_.owns_lock()) return;
    {
      std::lock_guard lock(db_.readers_mu_);
      db_.free_readers_.push_back(conn_);
    }
    db_.reader_free_.notify_one();
  }
  SqliteConnection* operator->() { return conn_; }

 private:
  SqliteDatabase& db_;
  SqliteConnection* conn_ = nullptr;
  std::unique_lock<std::mutex> writer_lock_;
};

SqliteDatabase::SqliteDatabase(const SqliteOptions& options) : options_(options) {}

SqliteDatabase::~SqliteDatabase() {
  if (checkpoint_thread_.joinable()) {
    {
      std::lock_guard lock(checkpoint_mu_);
      stopping_ = true;
    }
    checkpoint_cv_.notify_all();
    checkpoint_thread_.join();
  }
  if (writer_) sqlite3_wal_hook(writer_->db(), nullptr, nullptr);
}

void SqliteDatabase::Checkpoints() {
  std::unique_lock lock(checkpoint_mu_);
  for (;;) {
    // Asked for (every kCheckpointPages new frames), or the writer has gone quiet for a second
    // with frames still in the WAL: drain it then, so a pause leaves a small WAL behind.
    bool asked = checkpoint_cv_.wait_for(lock, std::chrono::seconds(1),
                                         [&] { return checkpoint_wanted_ || stopping_; });
    if (stopping_) return;
    const bool idle_drain = !asked && wal_written_.exchange(false);
    if (!asked && !idle_drain) continue;
    checkpoint_wanted_ = false;
    wal_written_ = false;
    lock.unlock();
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(checkpointer_->db(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                       &log, &done);
    if (rc == SQLITE_OK) checkpoints_done_.fetch_add(1, std::memory_order_relaxed);
    lock.lock();
  }
}

Result<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(const SqliteOptions& options) {
  auto db = std::unique_ptr<SqliteDatabase>(new SqliteDatabase(options));
  auto w = SqliteConnection::Open(options, /*writer=*/true);
  if (!w.ok()) return w.take_error();
  db->writer_ = std::move(w).value();
  const bool memory = options.path == ":memory:" || options.path.empty();
  for (int i = 0; !memory && i < options.readers; ++i) {
    auto r = SqliteConnection::Open(options, /*writer=*/false);
    if (!r.ok()) return r.take_error();
    db->free_readers_.push_back(r.value().get());
    db->readers_.push_back(std::move(r).value());
  }
  if (!memory) {
    auto c = SqliteConnection::Open(options, /*writer=*/false);
    if (!c.ok()) return c.take_error();
    db->checkpointer_ = std::move(c).value();
    // A connection attaches to the WAL only once it has read the database; until then a
    // checkpoint through it silently does nothing.
    if (auto st = db->checkpointer_->Exec("SELECT count(*) FROM sqlite_master"); !st.ok())
      return st.take_error();
    // Replaces SQLite's auto-checkpoint: called after each commit with the WAL's size.
    sqlite3_wal_hook(
        db->writer_->db(),
        [](void* self, sqlite3* db, const char*, int pages) -> int {
          auto* d = static_cast<SqliteDatabase*>(self);
          d->wal_written_.store(true, std::memory_order_relaxed);
          // Once per kCheckpointPages new frames: under steady writes the WAL never drains
          // completely, so asking on every commit past the threshold meant an fsync per commit.
          // (Called with writer_mu_ held: next_checkpoint_at_ needs no lock of its own.)
          if (pages < d->next_checkpoint_at_ - kCheckpointPages) {
            d->next_checkpoint_at_ = kCheckpointPages;  // the WAL restarted
          }
          if (pages >= kWriterCheckpointPages) {  // the backstop: bounded, as SQLite's own
            sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
            d->next_checkpoint_at_ = pages + kCheckpointPages;
          } else if (pages >= d->next_checkpoint_at_) {
            d->next_checkpoint_at_ = pages + kCheckpointPages;
            std::lock_guard lock(d->checkpoint_mu_);
            d->checkpoint_wanted_ = true;
            d->checkpoint_cv_.notify_one();
          }
          return SQLITE_OK;
        },
        db.get());
    db->checkpoint_thread_ = std::thread([d = db.get()] { d->Checkpoints(); });
  }
  return db;
}

Status SqliteDatabase::Migrate(const Model& m) {
  std::lock_guard lock(writer_mu_);
  if (auto st = writer_->Exec(sql_.CreateTable(m)); !st.ok()) return st;
  for (const auto& index : sql_.CreateIndexes(m)) {
    if (auto st = writer_->Exec(index); !st.ok()) return st;
  }
  // Add fields that an existing table lacks (SQLite can only add nullable or defaulted columns).
  auto cols = writer_->Query(
      Statement{"SELECT name FROM pragma_table_info(?)", {Value{sql_.TableName(m)}}}, 1);
  if (!cols.ok()) return cols.take_error();
  std::unordered_set<std::string> have;
  for (const Row& r : cols.value()) have.insert(std::get<std::string>(r[0]));
  for (const auto& f : m.fields()) {
    if (have.count(f.name)) continue;
    if (auto st = CheckAddableColumn(m, f); !st.ok()) return st;
    if (auto st = writer_->Exec("ALTER TABLE " + sql_.Table(m) + " ADD COLUMN " +
                                sql_.ColumnDefinition(f));
        !st.ok())
      return st;
  }
  return OkStatus();
}

Result<ReadResult> SqliteDatabase::Read(const ReadQuery& q) {
  ReaderLease conn(*this);
  // One read transaction, so rows and total come from the same snapshot.
  if (auto st = conn->Exec("BEGIN"); !st.ok()) return st.take_error();
  ReadResult out;
  auto rows = conn->Query(sql_.Select(q), q.columns.size());
  if (rows.ok() && q.count_total) {
    auto count = conn->Query(sql_.Count(q), 1);
    if (!count.ok()) {
      (void)conn->Exec("ROLLBACK");
      return count.take_error();
    }
    out.total = std::get<int64_t>(count.value().at(0).at(0));
  }
  (void)conn->Exec("COMMIT");
  if (!rows.ok()) return rows.take_error();
  out.rows = std::move(rows).value();
  if (!q.count_total) out.total = static_cast<int64_t>(out.rows.size());
  return out;
}

namespace {
Result<std::optional<Row>> FirstRow(Result<std::vector<Row>> rows) {
  if (!rows.ok()) return rows.take_error();
  if (rows.value().empty()) return std::optional<Row>();
  return std::optional<Row>(std::move(rows.value().front()));
}
}  // namespace

Result<std::optional<Row>> SqliteDatabase::ReadByKey(const Model& m, const Value& key,
                                                     const std::vector<int>& columns,
                                                     const FilterList& scope) {
  ReaderLease conn(*this);
  return FirstRow(conn->Query(sql_.SelectByKey(m, key, columns, scope), columns.size()));
}

Result<std::vector<Row>> SqliteDatabase::Create(const Model& m,
                                                const std::vector<Record>& records) {
  std::lock_guard lock(writer_mu_);
  const bool tx = records.size() > 1;
  if (tx) {
    if (auto st = writer_->Exec("BEGIN IMMEDIATE"); !st.ok()) return st.take_error();
  }
  std::vector<Row> out;
  out.reserve(records.size());
  for (const Record& r : records) {
    auto rows = writer_->Query(sql_.Insert(m, r), m.fields().size());
    if (!rows.ok() || rows.value().empty()) {
      if (tx) (void)writer_->Exec("ROLLBACK");
      if (!rows.ok()) return rows.take_error();
      return MakeError(ErrorCode::kInternal, "insert returned no row");
    }
    out.push_back(std::move(rows.value().front()));
  }
  if (tx) {
    if (auto st = writer_->Exec("COMMIT"); !st.ok()) {
      (void)writer_->Exec("ROLLBACK");
      return st.take_error();
    }
  }
  if (listener_) {
    std::vector<Change> changes;
    changes.reserve(out.size());
    for (const Row& r : out) changes.push_back(Change{Change::Kind::kCreate, &m, {}, r});
    listener_->OnCommitted(std::move(changes));
  }
  return out;
}

Result<std::optional<Row>> SqliteDatabase::Update(const Model& m, const Value& key,
                                                  const Record& changes, const FilterList& scope) {
  std::vector<int> all(m.fields().size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  std::lock_guard lock(writer_mu_);
  if (changes.empty()) {  // nothing to set: the row as it is
    return FirstRow(writer_->Query(sql_.SelectByKey(m, key, all, scope), all.size()));
  }
  // The row before the update, read in the same transaction, tells subscribers whether the row
  // left their filter.
  if (auto st = writer_->Exec("BEGIN IMMEDIATE"); !st.ok()) return st.take_error();
  auto before = FirstRow(writer_->Query(sql_.SelectByKey(m, key, all, scope), all.size()));
  if (!before.ok() || !before.value()) {
    (void)writer_->Exec("ROLLBACK");
    return before;
  }
  auto after = FirstRow(writer_->Query(sql_.Update(m, key, changes, scope), all.size()));
  if (!after.ok()) {
    (void)writer_->Exec("ROLLBACK");
    return after;
  }
  if (auto st = writer_->Exec("COMMIT"); !st.ok()) {
    (void)writer_->Exec("ROLLBACK");
    return st.take_error();
  }
  if (listener_ && after.value()) {
    std::vector<Change> change;
    change.push_back(Change{Change::Kind::kUpdate, &m, std::move(*before.value()), *after.value()});
    listener_->OnCommitted(std::move(change));
  }
  return after;
}

Result<std::optional<Row>> SqliteDatabase::Delete(const Model& m, const Value& key,
                                                  const FilterList& scope) {
  std::lock_guard lock(writer_mu_);
  auto row = FirstRow(writer_->Query(sql_.Delete(m, key, scope), m.fields().size()));
  if (listener_ && row.ok() && row.value()) {
    std::vector<Change> change;
    change.push_back(Change{Change::Kind::kDelete, &m, *row.value(), {}});
    listener_->OnCommitted(std::move(change));
  }
  return row;
}

}  // namespace mqttspec::adapters
