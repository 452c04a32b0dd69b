#include "adapters/postgres_database.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <charconv>
#include <optional>
#include <pqxx/pqxx>
#include <unordered_map>

#include "common/time_util.h"
#include "registry/model_builder.h"

namespace mqttspec::adapters {

using registry::Field;
using registry::FieldType;
using registry::Model;

namespace {

std::string ColumnOf(const std::string& what) {
  // "Key (email)=(x) already exists." / "null value in column "name" of relation …"
  for (auto [open, close] :
       {std::pair{"Key (\"", "\")"}, std::pair{"Key (", ")"}, std::pair{"column \"", "\""}}) {
    auto a = what.find(open);
    if (a == std::string::npos) continue;
    a += std::strlen(open);
    auto b = what.find(close, a);
    if (b == std::string::npos) continue;
    std::string col = what.substr(a, b - a);
    if (registry::IsIdentifier(col)) return col;
  }
  return "";
}

// A failure of libpqxx or the server, as a protocol error. No SQL text leaves this function.
Error PgError(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    const std::string& state = sql->sqlstate();
    if (state == "23505")
      return MakeError(ErrorCode::kConflict,
                       fmt::format("a row with this '{}' exists already", ColumnOf(e.what())));
    if (state == "23503") return MakeError(ErrorCode::kConflict, "foreign key violation");
    if (state == "23502")
      return MakeError(ErrorCode::kInvalidValue,
                       fmt::format("field '{}' may not be null", ColumnOf(e.what())));
    if (state.rfind("23", 0) == 0)
      return MakeError(ErrorCode::kInvalidValue, "constraint violated");
    if (state == "57014") return MakeError(ErrorCode::kTimeout, "query timed out");
    if (state.rfind("22", 0) == 0)
      return MakeError(ErrorCode::kInvalidValue, "value out of range for its column");
    if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0 || state == "3D000" ||
        state == "28P01" || state == "28000")
      return MakeError(ErrorCode::kUnavailable, "database unavailable");
    spdlog::warn("postgres error {}: {}", state, e.what());
    return MakeError(ErrorCode::kInternal, "database error");
  }
  if (dynamic_cast<const pqxx::broken_connection*>(&e) ||
      dynamic_cast<const pqxx::in_doubt_error*>(&e))
    return MakeError(ErrorCode::kUnavailable, "database unavailable");
  spdlog::warn("postgres: {}", e.what());
  return MakeError(ErrorCode::kInternal, "database error");
}

Value FromText(const Field& f, const char* text, size_t n) {
  std::string_view s(text, n);
  switch (f.type) {
    case FieldType::kInteger: {
      int64_t v = 0;
      std::from_chars(s.data(), s.data() + s.size(), v);
      return Value{v};
    }
    case FieldType::kReal: return Value{std::strtod(std::string(s).c_str(), nullptr)};
    case FieldType::kBoolean: return Value{s == "t" || s == "true"};
    case FieldType::kTimestamp: {
      if (auto iso = NormalizeIso8601(s)) return Value{*iso};
      return Value{std::string(s)};
    }
    default: return Value{std::string(s)};
  }
}

}  // namespace

// One libpqxx connection and the statements prepared on it. Used by one thread at a time.
class PostgresConnection {
 public:
  explicit PostgresConnection(const PostgresOptions& o) : options_(o) {}

  // Connects if needed (throws pqxx::broken_connection when the server is not reachable).
  pqxx::connection& get() {
    if (!conn_ || !conn_->is_open()) {
      conn_.reset();
      prepared_.clear();
      auto c = std::make_unique<pqxx::connection>(options_.url);
      pqxx::nontransaction setup(*c);
      setup.exec(fmt::format("SET statement_timeout = {}", options_.query_timeout_ms));
      setup.exec("SET TIME ZONE 'UTC'");
      setup.exec("SET client_encoding = 'UTF8'");
      setup.commit();
      conn_ = std::move(c);
    }
    return *conn_;
  }
  void Reset() {
    conn_.reset();
    prepared_.clear();
  }

  // Executes a statement inside `tx` as a prepared statement, every value bound.
  pqxx::result Exec(pqxx::transaction_base& tx, const Statement& st) {
    auto it = prepared_.find(st.sql);
    if (it == prepared_.end()) {
      if (prepared_.size() >= kMaxPrepared) {  // filters make many shapes: keep the cache bounded
        for (auto& [sql, name] : prepared_) conn_->unprepare(name);
        prepared_.clear();
      }
      std::string name = fmt::format("q{}", next_++);
      conn_->prepare(name, st.sql);
      it = prepared_.emplace(st.sql, std::move(name)).first;
    }
    PgParams params(st.params);
    return tx.exec_prepared(it->second, pqxx::prepare::make_dynamic_params(params.pointers()));
  }

 private:
  static constexpr size_t kMaxPrepared = 256;
  const PostgresOptions& options_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unordered_map<std::string, std::string> prepared_;
  uint64_t next_ = 0;
};

class PostgresDatabase::Lease {
 public:
  explicit Lease(PostgresDatabase& db) : db_(db) {
    std::unique_lock lock(db_.pool_mu_);
    db_.pool_cv_.wait(lock, [&] { return !db_.free_.empty(); });
    conn_ = db_.free_.back();
    db_.free_.pop_back();
  }
  ~Lease() {
    {
      std::lock_guard lock(db_.pool_mu_);
      db_.free_.push_back(conn_);
    }
    db_.pool_cv_.notify_one();
  }
  PostgresConnection& operator*() { return *conn_; }

 private:
  PostgresDatabase& db_;
  PostgresConnection* conn_;
};

PostgresDatabase::PostgresDatabase(PostgresOptions options)
    : options_(std::move(options)),
      trimmer_(sql_, options_.changes),
      commits_(std::make_unique<GroupCommit>(
          options_.group_commit,
          [this](const std::vector<WriteJob*>& batch, GroupCommit::Deadline deadline) {
            return RunBatch(batch, deadline);
          })),
      pipeline_(std::make_unique<PgPipeline>(options_.url, options_.query_timeout_ms)) {
  if (!options_.changes.capture.empty()) options_.changes.shared = true;
  for (int i = 0; i < std::max(1, options_.pool_size); ++i) {
    slots_.push_back(std::make_unique<PostgresConnection>(options_));
    free_.push_back(slots_.back().get());
  }
}

PostgresDatabase::~PostgresDatabase() {
  const auto stats = commits_->stats();
  if (stats.jobs > 0)
    spdlog::debug("postgres writes: {} in {} commits (largest {}), {} pipelined", stats.jobs,
                  stats.batches, stats.largest, pipelined_.load());
}

// A statement's rows by column index, read by libpqxx or by libpq (the pipeline's results).
class PgRows {
 public:
  explicit PgRows(const pqxx::result& r) : pqxx_(&r) {}
  explicit PgRows(const pg_result* r) : libpq_(r) {}
  size_t size() const {
    return pqxx_ ? pqxx_->size() : libpq_ ? static_cast<size_t>(PQntuples(libpq_)) : 0;
  }
  // The value's text, nothing for SQL NULL.
  std::optional<std::string_view> at(size_t row, size_t col) const {
    if (pqxx_) {
      const auto field = (*pqxx_)[static_cast<pqxx::result::size_type>(row)]
                                 [static_cast<pqxx::row::size_type>(col)];
      if (field.is_null()) return std::nullopt;
      return std::string_view(field.c_str(), field.size());
    }
    const int r = static_cast<int>(row), c = static_cast<int>(col);
    if (PQgetisnull(libpq_, r, c)) return std::nullopt;
    return std::string_view(PQgetvalue(libpq_, r, c),
                            static_cast<size_t>(PQgetlength(libpq_, r, c)));
  }
  int64_t Int(size_t row, size_t col) const {
    int64_t v = 0;
    if (auto text = at(row, col)) std::from_chars(text->data(), text->data() + text->size(), v);
    return v;
  }

 private:
  const pqxx::result* pqxx_ = nullptr;
  const pg_result* libpq_ = nullptr;
};

namespace {

// The rows of `r`, from its column `first` on: the model's fields `columns`.
std::vector<Row> Rows(const PgRows& r, const Model& m, const std::vector<int>& columns,
                      size_t first = 0) {
  std::vector<Row> out;
  out.reserve(r.size());
  for (size_t row = 0; row < r.size(); ++row) {
    Row values(columns.size());
    for (size_t c = 0; c < columns.size(); ++c) {
      if (auto text = r.at(row, first + c))
        values[c] = FromText(m.field(static_cast<size_t>(columns[c])), text->data(), text->size());
    }
    out.push_back(std::move(values));
  }
  return out;
}

std::vector<Row> Rows(const pqxx::result& r, const Model& m, const std::vector<int>& columns) {
  return Rows(PgRows(r), m, columns);
}

std::vector<int> All(const Model& m) {
  std::vector<int> all(m.fields().size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  return all;
}

Result<std::optional<Row>> First(std::vector<Row> rows) {
  if (rows.empty()) return std::optional<Row>();
  return std::optional<Row>(std::move(rows.front()));
}
}  // namespace

// A write of this adapter. With a `statement`, the job is that one statement (after the trims
// due), whose rows `finish` reads — so a batch of such jobs can leave as one pipeline
// (RunPipelined), and `run` (set by Planned) runs it on a libpqxx connection otherwise. Without
// one, `run` holds the job's steps.
struct PostgresDatabase::PgJob : WriteJob {
  const WriteTag* tag = nullptr;  // a tagged write makes the records' trim due
  std::function<Statement(int64_t now)> statement;
  // Reads the statement's rows; only ever succeeds (the statement's success is the job's).
  std::function<void(const PgRows& rows, std::vector<Change>& changes)> finish;
};

template <typename T, typename F>
Result<T> PostgresDatabase::WithConnection(F&& work) {
  Lease lease(*this);
  PostgresConnection& conn = *lease;
  for (int attempt = 0;; ++attempt) {
    try {
      conn.get();
      if (auto st = RunPendingMigrations(conn); !st.ok()) return st.take_error();
      return work(conn);
    } catch (const pqxx::broken_connection& e) {
      conn.Reset();
      if (attempt == 0) continue;  // once more, on a fresh connection
      spdlog::warn("postgres unavailable: {}", e.what());
      return MakeError(ErrorCode::kUnavailable, "database unavailable");
    } catch (const pqxx::in_doubt_error&) {
      conn.Reset();
      return MakeError(ErrorCode::kUnavailable,
                       "database unavailable; the write may or may not have happened");
    } catch (const std::exception& e) {
      return PgError(e);
    }
  }
}

namespace {
// Instances starting together would race on CREATE … IF NOT EXISTS (which is not atomic in
// PostgreSQL's catalog): their DDL runs one transaction at a time.
void LockForDdl(pqxx::transaction_base& tx) {
  tx.exec(fmt::format("SELECT pg_advisory_xact_lock({})", SqlBuilder::kMigrateLock));
}
}  // namespace

Status PostgresDatabase::RunPendingMigrations(PostgresConnection& conn) {
  std::lock_guard lock(migrate_mu_);
  if (!requests_ready_) {  // the service's own table first (a lost connection propagates)
    try {
      pqxx::work tx(conn.get());
      LockForDdl(tx);
      for (const std::string& ddl : sql_.CreateRequestsTable()) tx.exec(ddl);
      for (const std::string& ddl : sql_.CreateChangesTable()) tx.exec(ddl);
      if (!options_.changes.capture.empty()) {
        for (const std::string& ddl : sql_.CreateCaptureFunction()) tx.exec(ddl);
      }
      tx.commit();
      requests_ready_ = true;
    } catch (const pqxx::broken_connection&) {
      throw;
    } catch (const pqxx::sql_error& e) {
      spdlog::error("creating the requests table: {}", e.what());
      return PgError(e);
    }
  }
  while (!pending_.empty()) {
    const Model& m = *pending_.front();
    // A lost connection propagates (the migration stays queued for later); any other failure
    // will not heal by waiting, so it is reported once and leaves the queue.
    auto give_up = [&](Error e) {
      spdlog::error("migrating {}: {}", m.qualified_name(), e.message);
      pending_.erase(pending_.begin());
      return e;
    };
    try {
      pqxx::work tx(conn.get());
      LockForDdl(tx);
      tx.exec("CREATE SCHEMA IF NOT EXISTS " + sql_.Quote(m.schema()));
      tx.exec(sql_.CreateTable(m));
      // Fields an existing table lacks are added (nullable ones; others need a hand migration).
      pqxx::result have = tx.exec_params(
          "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND "
          "table_name = $2",
          m.schema(), m.entity());
      std::vector<std::string> names;
      for (const auto& r : have) names.push_back(r[0].c_str());
      for (const auto& f : m.fields()) {
        if (std::find(names.begin(), names.end(), f.name) != names.end()) continue;
        if (auto st = CheckAddableColumn(m, f); !st.ok()) return give_up(st.take_error());
        tx.exec("ALTER TABLE " + sql_.Table(m) + " ADD COLUMN " + sql_.ColumnDefinition(f));
      }
      for (const auto& index : sql_.CreateIndexes(m)) tx.exec(index);
      const auto& capture = options_.changes.capture;
      if (std::find(capture.begin(), capture.end(), m.qualified_name()) != capture.end())
        tx.exec(sql_.CreateCaptureTrigger(m));
      tx.commit();
    } catch (const pqxx::broken_connection&) {
      throw;
    } catch (const pqxx::sql_error& e) {
      return give_up(PgError(e));
    }
    pending_.erase(pending_.begin());
  }
  return OkStatus();
}

Status PostgresDatabase::Migrate(const Model& m) {
  {
    std::lock_guard lock(migrate_mu_);
    pending_.push_back(&m);
  }
  auto done = WithConnection<Ok>([](PostgresConnection&) { return Ok{}; });
  if (done.ok()) return OkStatus();
  if (done.error().code == ErrorCode::kUnavailable) {  // the server: wait for it
    spdlog::warn("postgres is not reachable yet: {} will be migrated once it is",
                 m.qualified_name());
    return OkStatus();
  }
  return done.take_error();  // RunPendingMigrations has dropped it from the queue
}

Result<ReadResult> PostgresDatabase::Read(const ReadQuery& q) {
  return WithConnection<ReadResult>([&](PostgresConnection& conn) {
    // One snapshot for rows and total.
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn.get());
    ReadResult out;
    out.rows = Rows(conn.Exec(tx, sql_.Select(q)), *q.model, q.columns);
    if (q.count_total) {
      pqxx::result c = conn.Exec(tx, sql_.Count(q));
      out.total = c[0][0].as<int64_t>();
    } else {
      out.total = static_cast<int64_t>(out.rows.size());
    }
    if (logs_changes()) out.change_seq = conn.Exec(tx, sql_.NewestChange())[0][0].as<int64_t>();
    tx.commit();
    return out;
  });
}

Status PostgresDatabase::Ping() {
  auto r = WithConnection<bool>([&](PostgresConnection& conn) -> Result<bool> {
    pqxx::nontransaction tx(conn.get());
    tx.exec("SELECT 1");
    return true;
  });
  if (!r.ok()) return r.take_error();
  return OkStatus();
}

Result<std::optional<Row>> PostgresDatabase::ReadByKey(const Model& m, const Value& key,
                                                       const std::vector<int>& columns,
                                                       const FilterList& scope,
                                                       int64_t* change_seq) {
  const bool with_seq = change_seq && logs_changes();
  return WithConnection<std::optional<Row>>(
      [&](PostgresConnection& conn) -> Result<std::optional<Row>> {
        // One statement: autocommit, one round trip (a transaction adds BEGIN and COMMIT), and
        // one snapshot for the row and the log's newest change.
        pqxx::nontransaction tx(conn.get());
        pqxx::result r = conn.Exec(tx, sql_.SelectByKey(m, key, columns, scope, with_seq));
        if (with_seq && !r.empty())
          *change_seq = r[0][static_cast<pqxx::row::size_type>(columns.size())].as<int64_t>();
        return First(Rows(r, m, columns));
      });
}

Result<ChangePage> PostgresDatabase::ReadChanges(int64_t after, size_t limit) {
  if (!logs_changes()) return Database::ReadChanges(after, limit);
  return WithConnection<ChangePage>([&](PostgresConnection& conn) -> Result<ChangePage> {
    pqxx::transaction<pqxx::repeatable_read, pqxx::read_only> tx(conn.get());  // one snapshot
    pqxx::result bounds = conn.Exec(tx, sql_.ChangeBounds());
    pqxx::result rows = conn.Exec(tx, sql_.ChangesAfter(after, static_cast<int64_t>(limit)));
    tx.commit();
    ChangePage page;
    page.oldest = bounds[0][0].as<int64_t>();
    page.newest = bounds[0][1].as<int64_t>();
    for (const auto& r : rows) {
      auto kind = ParseChangeKind(r[3].c_str());
      if (!kind) return MakeError(ErrorCode::kInternal, "unreadable operation in the change log");
      LoggedChange c;
      c.change_seq = r[0].as<int64_t>();
      c.schema = r[1].c_str();
      c.entity = r[2].c_str();
      c.kind = *kind;
      c.data = r[4].c_str();
      if (!r[5].is_null()) c.old_data = r[5].c_str();
      page.changes.push_back(std::move(c));
    }
    return page;
  });
}

size_t PostgresDatabase::RunBatch(const std::vector<WriteJob*>& batch,
                                  GroupCommit::Deadline deadline) {
  // A job that failed in the pipeline: the batch runs again with savepoints, without it.
  std::optional<size_t> failed;
  bool ran_nothing = false;  // the pipeline's connection was lost first: the batch runs below
  if (Pipelined(batch)) {
    auto outcome = RunPipelined(batch, ran_nothing);
    if (ran_nothing) {
      // as if there were no pipeline
    } else if (!outcome.ok()) {  // nothing of the batch is known to be committed
      for (WriteJob* job : batch) job->Fail(outcome.error());
      return batch.size();
    } else if (!outcome.value()) {
      TellCommitted(listener_, batch);
      return batch.size();
    } else {
      failed = outcome.value();
      savepoints_.JobFailed();
    }
  }
  // A job's own failure (an SQL error, or an error it returns) is its status; a lost connection
  // or a commit in doubt ends the batch (WithConnection retries a lost connection once: nothing
  // of the batch was committed then).
  size_t ran = 0;
  auto done = WithConnection<Ok>([&](PostgresConnection& conn) -> Result<Ok> {
    batch_conn_ = &conn;
    ran = 0;
    if (batch.size() == 1 && !failed) {
      ran = 1;
      RunAlone(conn, *batch.front());
      return Ok{};
    }
    // Transaction control by hand: libpqxx 6's subtransaction does not recover from an error
    // inside it — and PostgreSQL answers COMMIT of a failed transaction with a silent ROLLBACK,
    // so every failing job is rolled back to its savepoint (which throws if it cannot be) before
    // the next one runs, and the COMMIT only ever ends a healthy transaction.
    pqxx::nontransaction tx(conn.get());
    // After a failed run without savepoints (or a failed pipeline), its failed job keeps its
    // error (a timeout is not waited for twice) and the jobs up to it run again, deadline or not.
    if (!failed && savepoints_.WithoutSavepoints()) {  // a round trip per job less
      failed = RunWithoutSavepoints(tx, batch, deadline, ran);
      if (!failed) return Ok{};
      ran = 0;
    }
    RunWithSavepoints(tx, batch, deadline, failed, ran);
    return Ok{};
  });
  batch_conn_ = nullptr;
  batch_tx_ = nullptr;
  if (ran == 0) ran = batch.size();  // failed before any job ran
  if (!done.ok()) {  // nothing of the batch is known to be committed
    for (size_t i = 0; i < ran; ++i) batch[i]->Fail(done.error());
    return ran;
  }
  TellCommitted(listener_, std::span(batch).first(ran));
  return ran;
}

bool PostgresDatabase::Pipelined(const std::vector<WriteJob*>& batch) {
  // A lone job in autocommit is one round trip already.
  if (batch.size() == 1 && batch.front()->single_statement && !shares_log()) return false;
  for (WriteJob* job : batch) {
    if (!static_cast<PgJob*>(job)->statement) return false;
  }
  std::lock_guard lock(migrate_mu_);  // migrations run first, on a pooled connection
  return requests_ready_ && pending_.empty();
}

Result<std::optional<size_t>> PostgresDatabase::RunPipelined(const std::vector<WriteJob*>& batch,
                                                             bool& ran_nothing) {
  constexpr size_t kNone = SIZE_MAX;
  std::vector<Statement> statements;
  std::vector<size_t> job_of;  // per statement: its job's index, kNone for the batch's own
  auto add = [&](Statement st, size_t job) {
    statements.push_back(std::move(st));
    job_of.push_back(job);
  };
  add(Statement{"BEGIN", {}}, kNone);
  if (shares_log()) add(SqlBuilder::BeginSharedWrite(), kNone);
  const int64_t now = UnixMillis();
  std::vector<size_t> last(batch.size());  // each job's statement (after its trims)
  for (size_t j = 0; j < batch.size(); ++j) {
    auto& job = static_cast<PgJob&>(*batch[j]);
    for (Statement& trim : DueTrims(job.tag, now)) add(std::move(trim), j);
    last[j] = statements.size();
    add(job.statement(now), j);
  }
  add(Statement{"COMMIT", {}}, kNone);

  std::vector<PgResult> results;
  std::optional<PgPipeline::Failure> failure;
  pipelined_.fetch_add(1, std::memory_order_relaxed);
  try {
    failure = pipeline_->Run(statements, results);
  } catch (const pqxx::in_doubt_error&) {
    return MakeError(ErrorCode::kUnavailable,
                     "database unavailable; the write may or may not have happened");
  } catch (const pqxx::broken_connection& e) {  // nothing committed: a pooled connection tries
    spdlog::debug("postgres pipeline: {}", e.what());
    ran_nothing = true;
    return MakeError(ErrorCode::kUnavailable, "database unavailable");
  } catch (const std::exception& e) {
    return PgError(e);
  }
  if (failure) {
    const Error error = PgError(pqxx::sql_error(failure->message, "", failure->sqlstate.c_str()));
    const size_t j = job_of[failure->index];
    if (j == kNone) return error;  // BEGIN, the log's lock or COMMIT: the batch's own failure
    for (WriteJob* job : batch) job->changes.clear();
    batch[j]->Fail(error);
    return std::optional<size_t>(j);
  }
  for (size_t j = 0; j < batch.size(); ++j) {
    auto& job = static_cast<PgJob&>(*batch[j]);
    job.changes.clear();
    job.status = OkStatus();
    job.finish(PgRows(results[last[j]].get()), job.changes);
  }
  return std::optional<size_t>();
}

bool PostgresDatabase::RunJob(WriteJob& job, pqxx::transaction_base& tx) {
  job.changes.clear();
  batch_tx_ = &tx;
  try {
    job.status = job.run(job.changes);
  } catch (const pqxx::broken_connection&) {
    throw;
  } catch (const pqxx::in_doubt_error&) {
    throw;
  } catch (const std::exception& e) {
    job.status = PgError(e);
  }
  batch_tx_ = nullptr;
  if (!job.status.ok()) job.changes.clear();
  return job.status.ok();
}

void PostgresDatabase::RunAlone(PostgresConnection& conn, WriteJob& job) {
  if (job.single_statement && !shares_log()) {  // autocommit: one round trip
    pqxx::nontransaction tx(conn.get());
    RunJob(job, tx);
  } else {
    pqxx::work tx(conn.get());
    BeginWrite(conn, tx);
    if (RunJob(job, tx)) tx.commit();
  }
}

void PostgresDatabase::BeginWrite(PostgresConnection& conn, pqxx::transaction_base& tx) {
  if (shares_log()) conn.Exec(tx, SqlBuilder::BeginSharedWrite());
}

void PostgresDatabase::Commit(pqxx::transaction_base& tx) {
  try {
    tx.exec("COMMIT");
  } catch (const pqxx::broken_connection& e) {  // sent or not: nobody knows
    throw pqxx::in_doubt_error(e.what());
  }
}

std::optional<size_t> PostgresDatabase::RunWithoutSavepoints(pqxx::transaction_base& tx,
                                                             const std::vector<WriteJob*>& batch,
                                                             GroupCommit::Deadline deadline,
                                                             size_t& ran) {
  tx.exec("BEGIN");
  BeginWrite(*batch_conn_, tx);
  for (; ran < batch.size(); ++ran) {
    if (ran > 0 && std::chrono::steady_clock::now() > deadline) break;  // the rest: next batch
    if (RunJob(*batch[ran], tx)) continue;
    tx.exec("ROLLBACK");  // one failed: the others run again with a savepoint each
    for (size_t i = 0; i <= ran; ++i) batch[i]->changes.clear();
    savepoints_.JobFailed();
    return ran;
  }
  Commit(tx);
  return std::nullopt;
}

void PostgresDatabase::RunWithSavepoints(pqxx::transaction_base& tx,
                                         const std::vector<WriteJob*>& batch,
                                         GroupCommit::Deadline deadline,
                                         std::optional<size_t> failed, size_t& ran) {
  tx.exec("BEGIN");
  BeginWrite(*batch_conn_, tx);
  for (; ran < batch.size(); ++ran) {
    if (ran > failed.value_or(0) && std::chrono::steady_clock::now() > deadline) break;  // next
    if (ran == failed) continue;
    tx.exec("SAVEPOINT request");
    if (RunJob(*batch[ran], tx)) {
      tx.exec("RELEASE SAVEPOINT request");
    } else {
      tx.exec("ROLLBACK TO SAVEPOINT request");  // this job's statements only
    }
  }
  Commit(tx);
}

void PostgresDatabase::RecordTagged(const WriteTag* tag, const Model& m,
                                    const std::vector<Change>& changes) {
  if (!tag) return;
  for (const Statement& st : recorder_.Statements(*tag, m, changes, UnixMillis()))
    batch_conn_->Exec(*batch_tx_, st);
}

std::vector<Statement> PostgresDatabase::DueTrims(const WriteTag* tag, int64_t now) {
  std::vector<Statement> out;
  if (tag) {
    if (auto trim = recorder_.TrimIfDue(now)) out.push_back(std::move(*trim));
  }
  if (logs_changes()) {
    if (auto trim = trimmer_.TrimIfDue(now)) out.push_back(std::move(*trim));
  }
  return out;
}

Statement PostgresDatabase::Annotate(Statement write, const Model& m, Change::Kind kind,
                                     const WriteTag* tag, int64_t now) const {
  if (!logs_changes()) return tag ? sql_.WithRecord(std::move(write), m, *tag) : write;
  return sql_.WithLog(std::move(write), m, kind, nullptr, now, tag);
}

Statement PostgresDatabase::Annotated(Statement write, const Model& m, Change::Kind kind,
                                      const WriteTag* tag) {
  const int64_t now = UnixMillis();
  for (const Statement& trim : DueTrims(tag, now)) batch_conn_->Exec(*batch_tx_, trim);
  return Annotate(std::move(write), m, kind, tag, now);
}

int64_t PostgresDatabase::ChangeSeqOf(const PgRows& r, size_t column) const {
  if (!logs_changes() || r.size() == 0) return 0;
  return r.Int(0, column);
}

void PostgresDatabase::Planned(PgJob& job) {
  job.single_statement = true;
  job.run = [this, &job](std::vector<Change>& changes) -> Status {
    const int64_t now = UnixMillis();
    for (const Statement& trim : DueTrims(job.tag, now)) batch_conn_->Exec(*batch_tx_, trim);
    pqxx::result r = batch_conn_->Exec(*batch_tx_, job.statement(now));
    job.finish(PgRows(r), changes);
    return OkStatus();
  };
}

Result<std::optional<RecordedWrite>> PostgresDatabase::FindWrite(const std::string& client_id,
                                                                 const std::string& request_id,
                                                                 int64_t now_ms) {
  return WithConnection<std::optional<RecordedWrite>>(
      [&](PostgresConnection& conn) -> Result<std::optional<RecordedWrite>> {
        pqxx::nontransaction tx(conn.get());
        pqxx::result r = conn.Exec(tx, sql_.FindWrite(client_id, request_id, now_ms));
        if (r.empty()) return std::optional<RecordedWrite>();
        auto keys = DecodeKeys(r[0][1].c_str());
        if (!keys.ok()) return keys.take_error();
        return std::optional<RecordedWrite>(
            RecordedWrite{r[0][0].c_str(), std::move(keys).value()});
      });
}

Result<std::vector<RecordKey>> PostgresDatabase::ListWrites(int64_t now_ms,
                                                            const std::string& after_client,
                                                            const std::string& after_id,
                                                            size_t limit) {
  return WithConnection<std::vector<RecordKey>>(
      [&](PostgresConnection& conn) -> Result<std::vector<RecordKey>> {
        pqxx::nontransaction tx(conn.get());
        pqxx::result r = conn.Exec(tx, sql_.ListWrites(now_ms, after_client, after_id, limit));
        std::vector<RecordKey> out;
        out.reserve(r.size());
        for (const auto& row : r)
          out.push_back(RecordKey{row[0].c_str(), row[1].c_str(), row[2].as<int64_t>()});
        return out;
      });
}

void PostgresDatabase::Create(const Model& m, const std::vector<Record>& records,
                              const WriteTag* tag, RowsDone done, bool suspend) {
  bool explicit_key = false;
  for (const Record& r : records) {
    for (const auto& a : r) explicit_key |= a.field == static_cast<int>(m.primary_index());
  }
  const bool catch_up = explicit_key && m.primary().auto_increment;
  auto job = std::make_shared<JobOf<std::vector<Row>, PgJob>>();
  job->rows = records.size();
  if (records.size() == 1 && !catch_up) {
    // One statement: alone it runs in autocommit (one round trip instead of BEGIN / INSERT /
    // COMMIT), batched it can leave in a pipeline. Its change-log row and a tag's record ride in
    // the insert's statement (Annotate).
    job->tag = tag;
    job->statement = [this, &m, &records, tag](int64_t now) {
      return Annotate(sql_.Insert(m, records.front()), m, Change::Kind::kCreate, tag, now);
    };
    job->finish = [this, &m, &out = job->value](const PgRows& r, std::vector<Change>& changes) {
      const auto all = All(m);
      out = Rows(r, m, all);  // INSERT … RETURNING: one row
      if (out.empty()) return;
      changes.push_back(
          Change{Change::Kind::kCreate, &m, {}, out.front(), ChangeSeqOf(r, all.size())});
    };
    Planned(*job);
    commits_->Submit<std::vector<Row>>(
        std::move(job),
        [done = std::move(done)](Result<std::vector<Row>> out) {
          if (out.ok() && out.value().empty())
            return done(MakeError(ErrorCode::kInternal, "insert returned no row"));
          done(std::move(out));
        },
        suspend);
    return;
  }
  job->run = [this, &m, &records, tag, catch_up,
              &out = job->value](std::vector<Change>& changes) -> Status {
    const auto all = All(m);
    out.clear();
    out.reserve(records.size());
    std::vector<int64_t> seqs;
    const bool record_within = tag && records.size() == 1;
    for (const Record& r : records) {
      pqxx::result result = batch_conn_->Exec(
          *batch_tx_,
          Annotated(sql_.Insert(m, r), m, Change::Kind::kCreate, record_within ? tag : nullptr));
      auto rows = Rows(result, m, all);
      if (rows.empty()) return MakeError(ErrorCode::kInternal, "insert returned no row");
      out.push_back(std::move(rows.front()));
      seqs.push_back(ChangeSeqOf(PgRows(result), all.size()));
    }
    if (catch_up) {
      // An identity column does not see keys given explicitly; SQLite's AUTOINCREMENT does.
      // Move it past them, so the next generated key cannot collide.
      batch_conn_->Exec(*batch_tx_,
                        Statement{"SELECT setval(pg_get_serial_sequence($1, $2), GREATEST((SELECT "
                                  "max(" +
                                      sql_.Quote(m.primary().name) + ") FROM " + sql_.Table(m) +
                                      "), 1))",
                                  {Value{sql_.Table(m)}, Value{m.primary().name}}});
    }
    for (size_t i = 0; i < out.size(); ++i)
      changes.push_back(Change{Change::Kind::kCreate, &m, {}, out[i], seqs[i]});
    if (!record_within) RecordTagged(tag, m, changes);
    return OkStatus();
  };
  commits_->Submit<std::vector<Row>>(std::move(job), std::move(done), suspend);
}

void PostgresDatabase::Update(const Model& m, const Value& key, const Record& changes,
                              const FilterList& scope, const WriteTag* tag, RowDone done,
                              bool suspend) {
  auto job = std::make_shared<JobOf<std::optional<Row>, PgJob>>();
  // One statement — the row before, locked, and the update (UpdateInOne) — so alone it runs in
  // autocommit: one round trip instead of BEGIN / SELECT … FOR UPDATE / UPDATE / COMMIT.
  if (!changes.empty()) job->tag = tag;  // nothing to write: no record either
  job->statement = [this, &m, &key, &changes, &scope, tag](int64_t now) {
    if (!changes.empty()) return sql_.UpdateInOne(m, key, changes, scope, logs_changes(), now, tag);
    Statement lock = sql_.SelectByKey(m, key, All(m), scope);  // the row as it is
    lock.sql += " FOR UPDATE";
    return lock;
  };
  job->finish = [this, &m, &changes, &result = job->value](const PgRows& r,
                                                           std::vector<Change>& out) {
    const auto all = All(m);
    result.reset();
    if (r.size() == 0) return;
    auto before = Rows(r, m, all);
    if (changes.empty()) {
      result = std::move(before.front());
      return;
    }
    if (!r.at(0, all.size() + m.primary_index())) return;  // not updated: cannot be (locked)
    auto after = Rows(r, m, all, all.size());
    result = after.front();
    out.push_back(Change{Change::Kind::kUpdate, &m, std::move(before.front()),
                         std::move(after.front()), ChangeSeqOf(r, 2 * all.size())});
  };
  Planned(*job);
  commits_->Submit<std::optional<Row>>(std::move(job), std::move(done), suspend);
}

void PostgresDatabase::Delete(const Model& m, const Value& key, const FilterList& scope,
                              const WriteTag* tag, RowDone done, bool suspend) {
  auto job = std::make_shared<JobOf<std::optional<Row>, PgJob>>();
  job->tag = tag;  // its record rides in the statement
  job->statement = [this, &m, &key, &scope, tag](int64_t now) {
    return Annotate(sql_.Delete(m, key, scope), m, Change::Kind::kDelete, tag, now);
  };
  job->finish = [this, &m, &result = job->value](const PgRows& r, std::vector<Change>& out) {
    const auto all = All(m);
    auto rows = Rows(r, m, all);
    result.reset();
    if (rows.empty()) return;
    result = rows.front();
    out.push_back(
        Change{Change::Kind::kDelete, &m, std::move(rows.front()), {}, ChangeSeqOf(r, all.size())});
  };
  Planned(*job);
  commits_->Submit<std::optional<Row>>(std::move(job), std::move(done), suspend);
}

namespace {

// A PostgreSQL column type (information_schema data_type) as a model field type; text for
// anything else.
std::string FieldTypeOf(const std::string& pg_type) {
  if (pg_type == "integer" || pg_type == "bigint" || pg_type == "smallint") return "integer";
  if (pg_type == "real" || pg_type == "double precision" || pg_type == "numeric") return "real";
  if (pg_type == "boolean") return "boolean";
  if (pg_type.rfind("timestamp", 0) == 0 || pg_type == "date") return "timestamp";
  if (pg_type == "json" || pg_type == "jsonb") return "json";
  return "text";
}

}  // namespace

Result<std::vector<registry::ModelPtr>> PostgresDatabase::Introspect(const std::string& schema) {
  return WithConnection<std::vector<registry::ModelPtr>>(
      [&](PostgresConnection& conn) -> Result<std::vector<registry::ModelPtr>> {
        pqxx::read_transaction tx(conn.get());
        pqxx::result cols = tx.exec_params(
            "SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, "
            "       (c.is_identity = 'YES' OR c.column_default LIKE 'nextval(%') AS generated "
            "FROM information_schema.columns c JOIN information_schema.tables t "
            "  ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
            "WHERE c.table_schema = $1 AND t.table_type = 'BASE TABLE' "
            "ORDER BY c.table_name, c.ordinal_position",
            schema);
        pqxx::result keys = tx.exec_params(
            "SELECT tc.table_name, tc.constraint_type, tc.constraint_name, k.column_name "
            "FROM information_schema.table_constraints tc JOIN "
            "     information_schema.key_column_usage k "
            "  ON k.constraint_schema = tc.constraint_schema AND k.constraint_name = "
            "tc.constraint_name "
            "WHERE tc.table_schema = $1 AND tc.constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
            schema);
        tx.commit();
        // Single-column keys only: (table, constraint) → columns.
        std::map<std::pair<std::string, std::string>, std::vector<std::string>> constraints;
        std::map<std::pair<std::string, std::string>, std::string> kinds;
        for (const auto& r : keys) {
          auto key = std::make_pair(std::string(r[0].c_str()), std::string(r[2].c_str()));
          constraints[key].push_back(r[3].c_str());
          kinds[key] = r[1].c_str();
        }
        std::map<std::string, std::string> primary;              // table → pk column
        std::map<std::string, std::vector<std::string>> unique;  // table → unique columns
        for (const auto& [key, columns] : constraints) {
          if (columns.size() != 1) continue;
          if (kinds[key] == "PRIMARY KEY")
            primary[key.first] = columns.front();
          else
            unique[key.first].push_back(columns.front());
        }
        std::map<std::string, std::vector<registry::FieldSpec>> tables;
        for (const auto& r : cols) {
          std::string table = r[0].c_str(), type = r[2].c_str();
          registry::FieldSpec f;
          f.name = r[1].c_str();
          f.type = FieldTypeOf(type);
          f.nullable = std::string_view(r[3].c_str()) == "YES";
          f.auto_increment = r[4].as<bool>(false) && f.type == "integer";  // an identity column
          tables[table].push_back(std::move(f));
        }
        std::vector<registry::ModelPtr> out;
        for (auto& [table, fields] : tables) {
          auto pk = primary.find(table);
          if (pk == primary.end()) {
            spdlog::warn("introspect: {}.{} has no single-column primary key; not served", schema,
                         table);
            continue;
          }
          registry::ModelSpec spec{schema, table, pk->second, std::move(fields)};
          for (auto& f : spec.fields) {
            f.unique = std::count(unique[table].begin(), unique[table].end(), f.name) > 0;
            if (f.name != pk->second) f.auto_increment = false;
          }
          auto model = registry::BuildModel(spec);
          if (!model.ok()) {
            spdlog::warn("introspect: {}.{}: {}; not served", schema, table, model.error().message);
            continue;
          }
          out.push_back(std::move(model).value());
        }
        return out;
      });
}

}  // namespace mqttspec::adapters

namespace mqttspec::adapters {
namespace {

// LISTEN on a connection of its own; an eventfd for Wake. A lost connection is made again on the
// next Wait (notifications missed meanwhile do not matter: the follower re-reads the log).
class PostgresChangeSignal : public ChangeSignal {
 public:
  explicit PostgresChangeSignal(std::string url)
      : url_(std::move(url)), wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~PostgresChangeSignal() override {
    receiver_.reset();  // before its connection
    conn_.reset();
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  bool Wait(int timeout_ms) override {
    const bool listening = Connect();
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {listening ? conn_->sock() : -1, POLLIN, 0}};
    (void)poll(fds, listening && fds[1].fd >= 0 ? 2 : 1, timeout_ms);
    bool woken = TakeWake();
    if (!listening) return woken;
    try {
      woken |= conn_->get_notifs() > 0;
    } catch (const std::exception& e) {
      spdlog::warn("listening for changes: {}", e.what());
      receiver_.reset();
      conn_.reset();
    }
    return woken;
  }

  void Wake() override {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof one);
  }

 private:
  class Receiver : public pqxx::notification_receiver {
   public:
    explicit Receiver(pqxx::connection_base& c)
        : pqxx::notification_receiver(c, SqlBuilder::kChangesChannel) {}
    void operator()(const std::string&, int) override {}  // get_notifs counts them
  };

  bool Connect() {
    if (conn_ && conn_->is_open()) return true;
    receiver_.reset();
    conn_.reset();
    try {
      conn_ = std::make_unique<pqxx::connection>(url_);
      receiver_ = std::make_unique<Receiver>(*conn_);  // LISTEN
      return true;
    } catch (const std::exception& e) {
      if (!warned_) spdlog::warn("listening for changes: {}", e.what());
      warned_ = true;
      receiver_.reset();
      conn_.reset();
      return false;
    }
  }

  bool TakeWake() {
    uint64_t n = 0;
    return read(wake_fd_, &n, sizeof n) == static_cast<ssize_t>(sizeof n) && n > 0;
  }

  std::string url_;
  int wake_fd_;
  bool warned_ = false;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<Receiver> receiver_;
};

}  // namespace

std::unique_ptr<ChangeSignal> PostgresDatabase::ListenForChanges() {
  if (!shares_log()) return nullptr;
  return std::make_unique<PostgresChangeSignal>(options_.url);
}

}  // namespace mqttspec::adapters
