#include "adapters/sqlite_database.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <unordered_map>
#include <unordered_set>

#include "adapters/sqlite_checkpointer.h"
#include "adapters/sqlite_connection.h"

namespace mqttspec::adapters {

using registry::Model;

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

SqliteDatabase::SqliteDatabase(const SqliteOptions& options)
    : options_(options),
      trimmer_(sql_, options.changes),
      commits_(std::make_unique<GroupCommit>(
          options.group_commit,
          [this](const std::vector<WriteJob*>& batch, GroupCommit::Deadline deadline) {
            return RunBatch(batch, deadline);
          })) {}

GroupCommit::Stats SqliteDatabase::group_commit_stats() const { return commits_->stats(); }

uint64_t SqliteDatabase::checkpoints() const {
  return checkpointer_ ? checkpointer_->checkpoints() : 0;
}

SqliteDatabase::~SqliteDatabase() {  // the checkpointer (and its hook) goes first
  const auto stats = commits_->stats();
  if (stats.jobs > 0)
    spdlog::debug("sqlite writes: {} in {} commits (largest {})", stats.jobs, stats.batches,
                  stats.largest);
}

Result<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(const SqliteOptions& options) {
  auto db = std::unique_ptr<SqliteDatabase>(new SqliteDatabase(options));
  auto w = SqliteConnection::Open(options, /*writer=*/true);
  if (!w.ok()) return w.take_error();
  db->writer_ = std::move(w).value();
  for (const std::string& ddl : db->sql_.CreateRequestsTable()) {
    if (auto st = db->writer_->Exec(ddl); !st.ok()) return st.take_error();
  }
  for (const std::string& ddl : db->sql_.CreateChangesTable()) {
    if (auto st = db->writer_->Exec(ddl); !st.ok()) return st.take_error();
  }
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
    auto checkpointer = SqliteCheckpointer::Start(std::move(c).value(), db->writer_->db());
    if (!checkpointer.ok()) return checkpointer.take_error();
    db->checkpointer_ = std::move(checkpointer).value();
  }
  return db;
}

Status SqliteDatabase::Migrate(const Model& m) {
  std::lock_guard lock(writer_mu_);
  // One table per model: SQLite folds the case of table names and has no schemas, so blog.posts
  // and public.blog_posts (or public.Users and public.users) would share one.
  std::string table = sql_.TableName(m);
  std::transform(table.begin(), table.end(), table.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto [owner, fresh] = table_owners_.emplace(table, m.qualified_name());
  if (!fresh && owner->second != m.qualified_name()) {
    return MakeError(ErrorCode::kInvalidValue,
                     fmt::format("models {} and {} would share the SQLite table {}: rename one",
                                 owner->second, m.qualified_name(), table));
  }
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
  if (auto st = conn->Step("BEGIN"); !st.ok()) return st.take_error();
  ReadResult out;
  auto rows = conn->Query(sql_.Select(q), q.columns.size());
  if (rows.ok() && q.count_total) {
    auto count = conn->Query(sql_.Count(q), 1);
    if (!count.ok()) {
      (void)conn->Step("ROLLBACK");
      return count.take_error();
    }
    out.total = std::get<int64_t>(count.value().at(0).at(0));
  }
  if (rows.ok() && logs_changes()) {
    auto newest = conn->Query(sql_.NewestChange(), 1);
    if (!newest.ok()) {
      (void)conn->Step("ROLLBACK");
      return newest.take_error();
    }
    out.change_seq = std::get<int64_t>(newest.value().at(0).at(0));
  }
  (void)conn->Step("COMMIT");
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
                                                     const FilterList& scope, int64_t* change_seq) {
  ReaderLease conn(*this);
  const bool with_seq = change_seq && logs_changes();
  auto row = FirstRow(conn->Query(sql_.SelectByKey(m, key, columns, scope, with_seq),
                                  columns.size() + (with_seq ? 1 : 0)));
  if (with_seq && row.ok() && row.value()) {
    *change_seq = std::get<int64_t>(row.value()->back());
    row.value()->pop_back();
  }
  return row;
}

Result<ChangePage> SqliteDatabase::ReadChanges(int64_t after, size_t limit) {
  if (!logs_changes()) return Database::ReadChanges(after, limit);
  ReaderLease conn(*this);
  if (auto st = conn->Step("BEGIN"); !st.ok()) return st.take_error();  // one snapshot
  auto bounds = conn->Query(sql_.ChangeBounds(), 2);
  auto rows = bounds.ok() ? conn->Query(sql_.ChangesAfter(after, static_cast<int64_t>(limit)), 6)
                          : Result<std::vector<Row>>(bounds.error());
  (void)conn->Step("COMMIT");
  if (!rows.ok()) return rows.take_error();
  ChangePage page;
  page.oldest = std::get<int64_t>(bounds.value().at(0).at(0));
  page.newest = std::get<int64_t>(bounds.value().at(0).at(1));
  for (Row& r : rows.value()) {
    auto kind = ParseChangeKind(std::get<std::string>(r[3]));
    if (!kind) return MakeError(ErrorCode::kInternal, "unreadable operation in the change log");
    LoggedChange c;
    c.change_seq = std::get<int64_t>(r[0]);
    c.schema = std::move(std::get<std::string>(r[1]));
    c.entity = std::move(std::get<std::string>(r[2]));
    c.kind = *kind;
    c.data = std::move(std::get<std::string>(r[4]));
    if (auto* old = std::get_if<std::string>(&r[5])) c.old_data = std::move(*old);
    page.changes.push_back(std::move(c));
  }
  return page;
}

size_t SqliteDatabase::RunBatch(const std::vector<WriteJob*>& batch,
                                GroupCommit::Deadline deadline) {
  std::lock_guard lock(writer_mu_);
  if (batch.size() == 1) {
    RunAlone(*batch.front());
    return 1;
  }
  // After a failed run without savepoints, its failed job keeps its error (a timeout is not
  // waited for twice) and the jobs up to it run again, deadline or not.
  std::optional<size_t> failed;
  if (savepoints_.WithoutSavepoints()) {
    size_t ran = 0;
    failed = RunOptimistic(batch, deadline, ran);
    if (!failed) return ran;
  }
  return RunWithSavepoints(batch, deadline, failed);
}

void SqliteDatabase::RunAlone(WriteJob& job) {
  SqliteConnection& w = *writer_;
  if (job.single_statement) {  // autocommit: the statement is its own transaction
    job.status = job.run(job.changes);
    if (!job.status.ok()) {
      job.changes.clear();
      return;
    }
    WriteJob* committed[] = {&job};
    TellCommitted(listener_, committed);
    return;
  }
  if (auto st = w.Step("BEGIN IMMEDIATE"); !st.ok()) {
    job.Fail(st.error());
    return;
  }
  job.status = job.run(job.changes);
  if (!job.status.ok()) {
    job.changes.clear();
    (void)w.Step("ROLLBACK");
    return;
  }
  WriteJob* committed[] = {&job};
  Commit(committed);
}

void SqliteDatabase::Commit(std::span<WriteJob* const> committed) {
  SqliteConnection& w = *writer_;
  if (auto st = w.Step("COMMIT"); !st.ok()) {
    (void)w.Step("ROLLBACK");
    for (WriteJob* job : committed) job->Fail(st.error());
    return;
  }
  TellCommitted(listener_, committed);
}

std::optional<size_t> SqliteDatabase::RunOptimistic(const std::vector<WriteJob*>& batch,
                                                    GroupCommit::Deadline deadline, size_t& ran) {
  SqliteConnection& w = *writer_;
  ran = batch.size();
  if (auto st = w.Step("BEGIN IMMEDIATE"); !st.ok()) {
    for (WriteJob* job : batch) job->Fail(st.error());
    return std::nullopt;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (i > 0 && std::chrono::steady_clock::now() > deadline) {  // the rest: next batch
      ran = i;
      break;
    }
    WriteJob& job = *batch[i];
    job.changes.clear();
    job.status = job.run(job.changes);
    if (job.status.ok()) continue;
    // One failed: undo the batch; it runs again with a savepoint per job.
    (void)w.Step("ROLLBACK");
    for (size_t j = 0; j <= i; ++j) batch[j]->changes.clear();
    savepoints_.JobFailed();
    return i;
  }
  Commit(std::span(batch).first(ran));
  return std::nullopt;
}

size_t SqliteDatabase::RunWithSavepoints(const std::vector<WriteJob*>& batch,
                                         GroupCommit::Deadline deadline,
                                         std::optional<size_t> failed) {
  SqliteConnection& w = *writer_;
  if (auto st = w.Step("BEGIN IMMEDIATE"); !st.ok()) {
    for (WriteJob* job : batch) job->Fail(st.error());
    return batch.size();
  }
  std::vector<WriteJob*> committed;  // run without error in the current transaction
  size_t ran = 0;
  for (; ran < batch.size(); ++ran) {
    if (ran > failed.value_or(0) && std::chrono::steady_clock::now() > deadline) break;  // next
    if (ran == failed) continue;
    WriteJob& job = *batch[ran];
    if (auto st = w.Step("SAVEPOINT request"); !st.ok()) {
      job.Fail(st.error());
      continue;
    }
    job.status = job.run(job.changes);
    if (job.status.ok()) {
      (void)w.Step("RELEASE request");
      committed.push_back(&job);
      continue;
    }
    job.changes.clear();
    if (sqlite3_get_autocommit(w.db())) {
      // SQLite ended the whole transaction (an I/O error, a full disk): what ran before this job
      // is gone too. Those jobs fail with its error; the rest go on in a new transaction.
      for (WriteJob* lost : committed) lost->Fail(job.status.error());
      committed.clear();
      if (auto st = w.Step("BEGIN IMMEDIATE"); !st.ok()) {
        for (size_t i = ran + 1; i < batch.size(); ++i) batch[i]->Fail(st.error());
        return batch.size();
      }
      continue;
    }
    (void)w.Step("ROLLBACK TO request");  // this job's statements only
    (void)w.Step("RELEASE request");
  }
  Commit(committed);
  return ran;
}

Status SqliteDatabase::AfterWrite(const WriteTag* tag, const Model& m,
                                  std::vector<Change>& changes) {
  if (logs_changes()) {
    const int64_t now = UnixMillis();
    for (Change& c : changes) {
      if (auto trim = trimmer_.TrimIfDue(now)) {
        if (auto r = writer_->Query(*trim, 0); !r.ok()) return r.take_error();
      }
      const bool update = c.kind == Change::Kind::kUpdate;
      const Row& row = c.kind == Change::Kind::kDelete ? c.before : c.after;
      const std::string old_data = update ? EncodeRow(m, c.before) : std::string();
      auto logged =
          writer_->Query(sql_.LogChange(m, c.kind, row.at(m.primary_index()), EncodeRow(m, row),
                                        update ? &old_data : nullptr, now),
                         0);
      if (!logged.ok()) return logged.take_error();
      c.change_seq = sqlite3_last_insert_rowid(writer_->db());
    }
  }
  if (!tag) return OkStatus();
  for (const Statement& st : recorder_.Statements(*tag, m, changes, UnixMillis())) {
    if (auto r = writer_->Query(st, 0); !r.ok()) return r.take_error();
  }
  return OkStatus();
}

Result<std::optional<RecordedWrite>> SqliteDatabase::FindWrite(const std::string& client_id,
                                                               const std::string& request_id,
                                                               int64_t now_ms) {
  ReaderLease conn(*this);
  auto rows = conn->Query(sql_.FindWrite(client_id, request_id, now_ms), 2);
  if (!rows.ok()) return rows.take_error();
  if (rows.value().empty()) return std::optional<RecordedWrite>();
  const Row& r = rows.value().front();
  auto keys = DecodeKeys(std::get<std::string>(r[1]));
  if (!keys.ok()) return keys.take_error();
  return std::optional<RecordedWrite>(
      RecordedWrite{std::get<std::string>(r[0]), std::move(keys).value()});
}

Result<std::vector<RecordKey>> SqliteDatabase::ListWrites(int64_t now_ms,
                                                          const std::string& after_client,
                                                          const std::string& after_id,
                                                          size_t limit) {
  ReaderLease conn(*this);
  auto rows = conn->Query(sql_.ListWrites(now_ms, after_client, after_id, limit), 3);
  if (!rows.ok()) return rows.take_error();
  std::vector<RecordKey> out;
  out.reserve(rows.value().size());
  for (Row& r : rows.value()) {
    out.push_back(RecordKey{std::move(std::get<std::string>(r[0])),
                            std::move(std::get<std::string>(r[1])), std::get<int64_t>(r[2])});
  }
  return out;
}

void SqliteDatabase::Create(const Model& m, const std::vector<Record>& records, const WriteTag* tag,
                            RowsDone done, bool suspend) {
  auto job = std::make_shared<JobOf<std::vector<Row>>>();
  job->rows = records.size();
  job->single_statement = records.size() == 1 && !tag && !logs_changes();
  job->run = [this, &m, &records, tag, &out = job->value](std::vector<Change>& changes) -> Status {
    out.clear();
    out.reserve(records.size());
    for (const Record& r : records) {
      auto rows = writer_->Query(sql_.Insert(m, r), m.fields().size());
      if (!rows.ok()) return rows.take_error();
      if (rows.value().empty()) return MakeError(ErrorCode::kInternal, "insert returned no row");
      out.push_back(std::move(rows.value().front()));
    }
    for (const Row& r : out) changes.push_back(Change{Change::Kind::kCreate, &m, {}, r});
    return AfterWrite(tag, m, changes);
  };
  commits_->Submit<std::vector<Row>>(std::move(job), std::move(done), suspend);
}

void SqliteDatabase::Update(const Model& m, const Value& key, const Record& changes,
                            const FilterList& scope, const WriteTag* tag, RowDone done,
                            bool suspend) {
  auto job = std::make_shared<JobOf<std::optional<Row>>>();
  job->single_statement = changes.empty();  // nothing to set: the row as it is
  job->run = [this, &m, &key, &changes, &scope, tag,
              &result = job->value](std::vector<Change>& out) -> Status {
    std::vector<int> all(m.fields().size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
    // The row before the update, read in the same transaction, tells subscribers whether the
    // row left their filter.
    auto before = FirstRow(writer_->Query(sql_.SelectByKey(m, key, all, scope), all.size()));
    if (!before.ok()) return before.take_error();
    result.reset();
    if (!before.value() || changes.empty()) {
      result = std::move(before.value());
      return OkStatus();
    }
    auto after = FirstRow(writer_->Query(sql_.Update(m, key, changes, scope), all.size()));
    if (!after.ok()) return after.take_error();
    result = std::move(after.value());
    if (result)
      out.push_back(Change{Change::Kind::kUpdate, &m, std::move(*before.value()), *result});
    return AfterWrite(tag, m, out);
  };
  commits_->Submit<std::optional<Row>>(std::move(job), std::move(done), suspend);
}

void SqliteDatabase::Delete(const Model& m, const Value& key, const FilterList& scope,
                            const WriteTag* tag, RowDone done, bool suspend) {
  auto job = std::make_shared<JobOf<std::optional<Row>>>();
  job->single_statement = !tag && !logs_changes();
  job->run = [this, &m, &key, &scope, tag,
              &result = job->value](std::vector<Change>& out) -> Status {
    auto row = FirstRow(writer_->Query(sql_.Delete(m, key, scope), m.fields().size()));
    if (!row.ok()) return row.take_error();
    result = std::move(row.value());
    if (result) out.push_back(Change{Change::Kind::kDelete, &m, *result, {}});
    return AfterWrite(tag, m, out);
  };
  commits_->Submit<std::optional<Row>>(std::move(job), std::move(done), suspend);
}

}  // namespace mqttspec::adapters
