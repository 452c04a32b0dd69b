#pragma once
// PostgresDatabase: the Database on PostgreSQL through libpqxx. A pool of `pool_size`
// connections, each with its own cache of prepared statements; every value is a bound parameter,
// identifiers are quoted and come from the model. Schemas are real ("public"."users").
//
// Availability: connections are made on demand, so the service starts while PostgreSQL is down;
// a lost connection is retried once (on a fresh connection) and otherwise reported as
// `unavailable`, never a crash. Migrations that could not run at start-up run before the first
// statement once the server is reachable. Statements longer than query_timeout_ms are cancelled
// by the server (statement_timeout) → `timeout`.
//
// Same behaviour as SQLite (the conformance tests check it): text compares and sorts byte-wise
// (COLLATE "C"), NULL sorts as the largest value unless told otherwise, timestamps come back as
// ISO 8601 UTC with milliseconds, `like` is case-sensitive and `ilike` not.
//
// Ordering: reads run in parallel on the pool. Writes are group-committed (group_commit.h): the
// writes that arrive while a commit is in flight run together in the next transaction, with one
// commit; listeners hear of the changes after it, in commit order. A create of one row, an update
// and a delete are one statement each (an update: SqlBuilder::UpdateInOne), so a batch of them
// leaves as one libpq pipeline — BEGIN, the statements, COMMIT: one round trip — on a connection
// of its own (PgPipeline). If one fails, the batch runs again on a pooled connection with a
// savepoint per write, without the failed one (which fails alone); so do batches with other
// writes (a create of several rows). A write alone keeps its short form: its one statement in
// autocommit, one round trip.
// Thread-safety: all methods may be called from any thread.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "adapters/change_log.h"
#include "adapters/database.h"
#include "adapters/group_commit.h"
#include "adapters/pg_pipeline.h"
#include "adapters/recorded_writes.h"
#include "adapters/sql_builder.h"

namespace pqxx {
class result;
class transaction_base;
}

namespace mqttspec::adapters {

struct PostgresOptions {
  std::string url;  // postgresql://user:pass@host:port/db
  int pool_size = 8;
  int query_timeout_ms = 5000;
  GroupCommitOptions group_commit;
  ChangeLogOptions changes;
};

class PostgresConnection;
class PgRows;

class PostgresDatabase : public Database, public Introspector {
 public:
  explicit PostgresDatabase(PostgresOptions options);
  ~PostgresDatabase() override;

  std::string TableName(const registry::Model& model) const override {
    return sql_.TableName(model);
  }
  void SetChangeListener(ChangeListener* listener) override { listener_ = listener; }
  Status Migrate(const registry::Model& model) override;
  Result<ReadResult> Read(const ReadQuery& query) override;
  using Database::ReadByKey;
  Result<std::optional<Row>> ReadByKey(const registry::Model& model, const Value& key,
                                       const std::vector<int>& columns, const FilterList& scope,
                                       int64_t* change_seq) override;
  bool logs_changes() const override { return options_.changes.enabled; }
  bool shares_log() const override { return options_.changes.enabled && options_.changes.shared; }
  // LISTEN on a connection of its own (kChangesChannel), woken by every commit that logged.
  std::unique_ptr<ChangeSignal> ListenForChanges() override;
  std::unique_ptr<ClusterStore> OpenClusterStore() override;
  Result<ChangePage> ReadChanges(int64_t after, size_t limit) override;
  using Database::Create;
  using Database::Delete;
  using Database::Update;
  void Create(const registry::Model& model, const std::vector<Record>& records, const WriteTag* tag,
              RowsDone done, bool suspend) override;
  void Update(const registry::Model& model, const Value& key, const Record& changes,
              const FilterList& scope, const WriteTag* tag, RowDone done, bool suspend) override;
  void Delete(const registry::Model& model, const Value& key, const FilterList& scope,
              const WriteTag* tag, RowDone done, bool suspend) override;
  Result<std::optional<RecordedWrite>> FindWrite(const std::string& client_id,
                                                 const std::string& request_id,
                                                 int64_t now_ms) override;
  Result<std::vector<RecordKey>> ListWrites(int64_t now_ms, const std::string& after_client,
                                            const std::string& after_id, size_t limit) override;

  // Models for every table of `schema` that has a single-column primary key, with field types,
  // nullability, uniqueness and identity columns read from the catalog. Errors: unavailable.
  Introspector* introspector() override { return this; }
  Status Ping() override;  // SELECT 1 on a pooled connection
  Result<std::vector<registry::ModelPtr>> Introspect(const std::string& schema) override;
  // Batches that left as one pipeline (committed or not).
  uint64_t pipelined_batches() const { return pipelined_.load(std::memory_order_relaxed); }

 private:
  class Lease;
  // Runs `work` on a pooled connection; a lost connection is retried once on a fresh one.
  template <typename T, typename F>
  Result<T> WithConnection(F&& work);
  Status RunPendingMigrations(PostgresConnection& conn);
  // GroupCommit's runner: the batch as one pipeline where it can (Pipelined); else, or again
  // after a job failed in it, the batch's jobs on one pooled connection in one transaction, first
  // without savepoints, again with one per job if a job failed (SavepointPolicy; alone: no
  // savepoint, one statement in autocommit); then the listener.
  size_t RunBatch(const std::vector<WriteJob*>& batch, GroupCommit::Deadline deadline);
  // A batch of one-statement jobs (PgJob::statement; not a lone one in autocommit) leaves as one
  // pipeline, once the migrations have run:
  bool Pipelined(const std::vector<WriteJob*>& batch);
  // BEGIN, the jobs' statements and COMMIT in one round trip (PgPipeline). Nothing if it
  // committed; else the index of the job that failed (its status says why; nothing committed);
  // an error of the batch's own (its BEGIN or COMMIT, a lost connection) is returned. A
  // connection that could not be made, or a session the server ended before the COMMIT ran, sets
  // `ran_nothing` (nothing committed): the batch then runs on a pooled connection (which retries
  // once), as without a pipeline.
  Result<std::optional<size_t>> RunPipelined(const std::vector<WriteJob*>& batch,
                                             bool& ran_nothing);
  // Its steps, on the batch's connection (`ran`: the jobs run so far, kept if one throws):
  // one job and its status (an SQL error becomes the status; a lost connection throws);
  bool RunJob(WriteJob& job, pqxx::transaction_base& tx);
  // a job alone: no savepoint; one statement runs in autocommit;
  void RunAlone(PostgresConnection& conn, WriteJob& job);
  // the batch in one transaction without savepoints: nothing if it committed, else the index of
  // the job that failed (its status says why) and the transaction was rolled back;
  std::optional<size_t> RunWithoutSavepoints(pqxx::transaction_base& tx,
                                             const std::vector<WriteJob*>& batch,
                                             GroupCommit::Deadline deadline, size_t& ran);
  // the batch with a savepoint per job, skipping the one that `failed` without them (which, with
  // every job before it, runs whatever the deadline);
  void RunWithSavepoints(pqxx::transaction_base& tx, const std::vector<WriteJob*>& batch,
                         GroupCommit::Deadline deadline, std::optional<size_t> failed, size_t& ran);
  // Right after BEGIN: with a shared log, SqlBuilder::BeginSharedWrite (the log's lock …).
  void BeginWrite(PostgresConnection& conn, pqxx::transaction_base& tx);
  // COMMIT; a connection lost meanwhile leaves the commit in doubt (pqxx::in_doubt_error).
  static void Commit(pqxx::transaction_base& tx);
  // Inside a job: records a tagged write's `changes` (recorded_writes.h); nothing without a tag.
  void RecordTagged(const WriteTag* tag, const registry::Model& model,
                    const std::vector<Change>& changes);
  struct PgJob;
  // Makes `run` of a one-statement job: its trims and its statement on the batch's connection.
  void Planned(PgJob& job);
  // The trims that are due: of the records (for a write with a `tag`) and of the change log.
  std::vector<Statement> DueTrims(const WriteTag* tag, int64_t now);
  // `write` with its change-log row and a tag's record riding in it (WithLog, WithRecord).
  Statement Annotate(Statement write, const registry::Model& model, Change::Kind kind,
                     const WriteTag* tag, int64_t now) const;
  // Inside a job: the statement to run for `write` (returning at most one row) — with its
  // change-log row (SqlBuilder::WithLog) and the record of a tagged write (`tag`, may be null;
  // WithRecord) riding in it — after the trims that are due. (An update: UpdateInOne.)
  Statement Annotated(Statement write, const registry::Model& model, Change::Kind kind,
                      const WriteTag* tag);
  // The change_seq in `column` of the row a write's statement returned (0 when the log is off).
  int64_t ChangeSeqOf(const PgRows& rows, size_t column) const;

  PostgresOptions options_;
  SqlBuilder sql_{Dialect::kPostgres};
  ChangeListener* listener_ = nullptr;

  std::mutex pool_mu_;  // guards free_
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<PostgresConnection>> slots_;
  std::vector<PostgresConnection*> free_;

  // The batch's connection and transaction (or savepoint) while RunBatch runs a job: only the
  // batch's leader touches them (GroupCommit runs one batch at a time).
  PostgresConnection* batch_conn_ = nullptr;
  pqxx::transaction_base* batch_tx_ = nullptr;
  SavepointPolicy savepoints_;  // the batch's leader's
  WriteRecorder recorder_{sql_};  // the batch's leader's
  ChangeTrimmer trimmer_;         // the batch's leader's
  std::unique_ptr<GroupCommit> commits_;
  std::unique_ptr<PgPipeline> pipeline_;  // the batch's leader's; a connection of its own
  std::atomic<uint64_t> pipelined_{0};

  std::mutex migrate_mu_;  // guards pending_ (models live as long as the registry), requests_ready_
  std::vector<const registry::Model*> pending_;
  bool requests_ready_ = false;  // the service's tables (requests, changes) exist
};

}  // namespace mqttspec::adapters
