#pragma once
// SqliteDatabase: the Database on one SQLite file in WAL mode. One writer connection (writes are
// serialized by SQLite anyway) and a pool of reader connections that read concurrently with it.
// Each connection (sqlite_connection.h) caches its prepared statements. WAL checkpoints run on a
// background connection (sqlite_checkpointer.h), not inside commits. Writes are group-committed
// (group_commit.h): the writes that arrive while a commit is in flight share the next
// transaction, each in its own savepoint, so one fsync serves them all. `like`
// is made case-sensitive with PRAGMA case_sensitive_like; `ilike` compares lower() of both sides
// (ASCII case folding). Thread-safety: all methods may be called from any thread.

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "adapters/change_log.h"
#include "adapters/database.h"
#include "adapters/group_commit.h"
#include "adapters/recorded_writes.h"
#include "adapters/sql_builder.h"

namespace mqttspec::adapters {

struct SqliteOptions {
  std::string path = "mqttspec.db";  // ":memory:" uses one connection for everything
  bool synchronous_full = true;      // false: synchronous=NORMAL
  int readers = 4;
  int query_timeout_ms = 5000;  // a statement running longer is interrupted → timeout
  GroupCommitOptions group_commit;
  ChangeLogOptions changes;
};

class SqliteConnection;
class SqliteCheckpointer;

class SqliteDatabase : public Database {
 public:
  // Opens (creating if missing) the database file. Errors: unavailable.
  static Result<std::unique_ptr<SqliteDatabase>> Open(const SqliteOptions& options);
  ~SqliteDatabase() override;

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

 private:
  explicit SqliteDatabase(const SqliteOptions& options);

  // A reader connection for the duration of a scope (the writer when there are no readers).
  class ReaderLease;
  // GroupCommit's runner: the batch's jobs in one transaction on the writer, first without
  // savepoints, again with one per job if a job failed (SavepointPolicy; alone: no savepoint, and
  // one statement in autocommit); then the listener.
  size_t RunBatch(const std::vector<WriteJob*>& batch, GroupCommit::Deadline deadline);
  // The steps of RunBatch, writer_mu_ held:
  // a job alone: no savepoint; one statement runs in autocommit;
  void RunAlone(WriteJob& job);
  // the batch without savepoints: nothing if every job ran (up to the deadline; `ran` of them)
  // and the batch committed or failed as a whole; else the index of the job that failed (its
  // status says why) and the batch was rolled back;
  std::optional<size_t> RunOptimistic(const std::vector<WriteJob*>& batch,
                                      GroupCommit::Deadline deadline, size_t& ran);
  // the batch with a savepoint per job, skipping the one that `failed` without them (which, with
  // every job before it, runs whatever the deadline); returns how many jobs it ran;
  size_t RunWithSavepoints(const std::vector<WriteJob*>& batch, GroupCommit::Deadline deadline,
                           std::optional<size_t> failed);
  // COMMIT, then the listener hears of `committed`; if the commit fails they fail with it.
  void Commit(std::span<WriteJob* const> committed);
  // Inside a job, after its own statements: logs `changes` (numbering them) when the log is on,
  // and records a tagged write (recorded_writes.h).
  Status AfterWrite(const WriteTag* tag, const registry::Model& model,
                    std::vector<Change>& changes);

  SqliteOptions options_;
  SqlBuilder sql_{Dialect::kSqlite};

  std::mutex writer_mu_;  // guards writer_ and its statement cache; orders commits
  std::unique_ptr<SqliteConnection> writer_;
  ChangeListener* listener_ = nullptr;  // told of each commit while writer_mu_ is held
  SavepointPolicy savepoints_;          // writer_mu_
  WriteRecorder recorder_{sql_};        // writer_mu_
  ChangeTrimmer trimmer_;               // writer_mu_
  // Migrated tables (lower case) → the model on each (writer_mu_): one model per table.
  std::unordered_map<std::string, std::string> table_owners_;

  std::mutex readers_mu_;  // guards free_readers_
  std::condition_variable reader_free_;
  std::vector<std::unique_ptr<SqliteConnection>> readers_;
  std::vector<SqliteConnection*> free_readers_;

  std::unique_ptr<SqliteCheckpointer> checkpointer_;  // file databases; after writer_
  std::unique_ptr<GroupCommit> commits_;              // runs RunBatch on writers' threads

 public:
  uint64_t checkpoints() const;  // background checkpoints done (0 for :memory:)
  GroupCommit::Stats group_commit_stats() const;
};

}  // namespace mqttspec::adapters
