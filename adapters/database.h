#pragma once
// Database: the storage behind the router. Implementations: SqliteDatabase, PostgresDatabase,
// made by OpenDatabase (adapters/open_database.h). All identifiers come from the model; all
// values are bound parameters.
// Thread-safety: every method may be called concurrently from worker threads.
// Errors: conflict (unique/key violation), invalid_value (constraint), timeout, unavailable,
// internal. Messages never contain SQL.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/cluster_store.h"
#include "adapters/query.h"
#include "common/error.h"
#include "registry/model.h"

namespace mqttspec::adapters {

// One committed change of one row.
struct Change {
  enum class Kind { kCreate, kUpdate, kDelete };
  Kind kind = Kind::kCreate;
  const registry::Model* model = nullptr;  // registered models live as long as the process
  Row before;  // update: the row before it; delete: the deleted row; create: empty
  Row after;   // create / update: the row as stored; delete: empty
  // Its place in the change log (ChangeLogOptions): strictly increasing in commit order across
  // the database, without gaps; 0 when the log is off.
  int64_t change_seq = 0;
};

// The change log: every committed create, update and delete appends one row, in the write's own
// transaction, to `mqttspec_changes` (SQLite) / "mqttspec"."changes" (PostgreSQL). A trim,
// riding in the writes at most once a second, removes rows older than retention_s and beyond the
// newest max_rows, in bounded batches; the newest row always stays (it carries the sequence on).
struct ChangeLogOptions {
  bool enabled = true;
  int64_t retention_s = 86400;
  int64_t max_rows = 1000000;
  // Others append to the log too (PostgreSQL): other instances of the service (cluster.enabled)
  // or capture triggers. Every write transaction then takes the log's lock first (numbers stay
  // gap-free and in commit order whoever writes), marks itself as the service's own (a capture
  // trigger does not log it twice) and wakes the followers (ListenForChanges) when it commits.
  bool shared = false;
  // Models ("schema.entity") whose writes by other applications are logged by a trigger that
  // Migrate installs (capture: triggers). PostgreSQL only; implies `shared`.
  std::vector<std::string> capture;
};

// Wakes a follower of the log when another writer may have appended to it (PostgreSQL:
// LISTEN/NOTIFY). Only a hint: the log is the truth, so a follower re-reads it after every wake
// and after every timeout. Thread-safety: Wait on one thread; Wake from any.
class ChangeSignal {
 public:
  virtual ~ChangeSignal() = default;
  // Blocks until a notification or Wake, or `timeout_ms`; true if woken.
  virtual bool Wait(int timeout_ms) = 0;
  virtual void Wake() = 0;
};

// One change as the log holds it (ReadChanges). Rows are JSON objects as the protocol writes
// them (field name → value); adapters/change_log.h decodes them against the model.
struct LoggedChange {
  int64_t change_seq = 0;
  std::string schema, entity;
  Change::Kind kind = Change::Kind::kCreate;
  std::string data;      // the row as stored (the deleted row for delete)
  std::string old_data;  // update: the row before it; otherwise empty
};

// A page of the log, read in one snapshot.
struct ChangePage {
  std::vector<LoggedChange> changes;  // change_seq > the one asked for, in order
  int64_t oldest = 0;                 // the oldest change_seq the log holds (0: empty)
  int64_t newest = 0;                 // the newest (0: empty)
};

// Who asked for a write. A write given a tag records it, in the write's own transaction, in the
// service's requests table (`mqttspec_requests` on SQLite, `mqttspec.requests` on PostgreSQL):
// the client id and request id (the key; a later write with the same pair replaces the record),
// the payload's digest, the primary keys the write touched and when the record expires. So a
// write redelivered after a crash is recognised (FindWrite) and never applied twice.
struct WriteTag {
  std::string client_id;
  std::string request_id;
  std::string digest;      // of the request's payload
  int64_t expires_at_ms;   // Unix time; the record is trimmed after it
};

// A recorded write (FindWrite).
struct RecordedWrite {
  std::string digest;
  std::vector<Value> keys;  // the primary keys it created, updated or deleted, in order
};

// Whose a record is, and until when (ListWrites).
struct RecordKey {
  std::string client_id;
  std::string request_id;
  int64_t expires_at_ms;
};

// Receives committed changes. The adapter calls OnCommitted after each commit, in commit order,
// from the committing thread and before the next write can commit (one call per commit: a group
// commit's call holds the changes of all its writes, in order), so an implementation must be
// quick (queue and return) and must not call back into the Database. It may block to apply
// back-pressure to writers.
class ChangeListener {
 public:
  virtual ~ChangeListener() = default;
  virtual void OnCommitted(std::vector<Change> changes) = 0;
};

// Serves the existing tables of a schema as models (introspect: in the configuration).
class Introspector {
 public:
  virtual ~Introspector() = default;
  // Tables with a single-column primary key, as models (registry/model_builder.h); others are
  // skipped with a warning.
  virtual Result<std::vector<registry::ModelPtr>> Introspect(const std::string& schema) = 0;
};

class Database {
 public:
  virtual ~Database() = default;

  // Whether the database answers (the admin API's health). Errors: unavailable. SQLite, a local
  // file opened at start, always answers.
  virtual Status Ping() { return OkStatus(); }

  // This database's introspection, or nullptr when it has none (SQLite).
  virtual Introspector* introspector() { return nullptr; }

  // Sets who hears of committed changes (nullptr: nobody). Call before serving requests.
  virtual void SetChangeListener(ChangeListener* listener) = 0;

  // The name of the model's table in this database, unquoted ("users", "public.users").
  virtual std::string TableName(const registry::Model& model) const = 0;

  // Creates the model's table if it is missing (and adds missing nullable columns).
  virtual Status Migrate(const registry::Model& model) = 0;

  // Rows matching query.filters, sorted, paginated; total counted when query.count_total;
  // change_seq: the newest change committed before the read's snapshot (when the log is on).
  virtual Result<ReadResult> Read(const ReadQuery& query) = 0;

  // The row with primary key `key` that also matches `scope` (may be empty), or nullopt.
  // `change_seq`, if given and the log is on: set, with the row, to the newest change committed
  // before the read's snapshot (the same statement).
  virtual Result<std::optional<Row>> ReadByKey(const registry::Model& model, const Value& key,
                                               const std::vector<int>& columns,
                                               const FilterList& scope, int64_t* change_seq) = 0;
  Result<std::optional<Row>> ReadByKey(const registry::Model& model, const Value& key,
                                       const std::vector<int>& columns, const FilterList& scope) {
    return ReadByKey(model, key, columns, scope, nullptr);
  }

  // Whether writes append to the change log (ChangeLogOptions::enabled).
  virtual bool logs_changes() const { return false; }
  // Whether others append to the log too (ChangeLogOptions::shared): the service then learns of
  // changes by following the log (server/log_follower.h), not from its own commits.
  virtual bool shares_log() const { return false; }
  // A wake-up for a follower of the log, or nullptr when this database has none.
  virtual std::unique_ptr<ChangeSignal> ListenForChanges() { return nullptr; }
  // The cluster's shared state in this database, or nullptr when it cannot hold it (SQLite).
  virtual std::unique_ptr<ClusterStore> OpenClusterStore() { return nullptr; }

  // At most `limit` logged changes with change_seq > `after`, in order, and the log's bounds, in
  // one snapshot. Errors: invalid_operation (the log is off), unavailable, internal.
  virtual Result<ChangePage> ReadChanges(int64_t after, size_t limit) {
    (void)after;
    (void)limit;
    return MakeError(ErrorCode::kInvalidOperation, "the change log is off");
  }

  // The writes. Each hands its outcome to `done`: before it returns — or, with `suspend`, where
  // the calling task can suspend (common/blocking.h) while the write waits for its group commit,
  // later, as that task's continuation on another thread; the arguments must then stay alive
  // until `done` has run. `tag` (may be null): the write is recorded with it (WriteTag).
  using RowsDone = std::function<void(Result<std::vector<Row>>)>;
  using RowDone = std::function<void(Result<std::optional<Row>>)>;

  // Inserts all records in one transaction; each row as stored (all fields).
  virtual void Create(const registry::Model& model, const std::vector<Record>& records,
                      const WriteTag* tag, RowsDone done, bool suspend) = 0;
  Result<std::vector<Row>> Create(const registry::Model& model, const std::vector<Record>& records,
                                  const WriteTag* tag = nullptr) {
    return Blocking<std::vector<Row>>(
        [&](RowsDone done) { Create(model, records, tag, std::move(done), false); });
  }

  // Sets `changes` on the row with `key` matching `scope`; the updated row or nullopt.
  virtual void Update(const registry::Model& model, const Value& key, const Record& changes,
                      const FilterList& scope, const WriteTag* tag, RowDone done, bool suspend) = 0;
  Result<std::optional<Row>> Update(const registry::Model& model, const Value& key,
                                    const Record& changes, const FilterList& scope,
                                    const WriteTag* tag = nullptr) {
    return Blocking<std::optional<Row>>(
        [&](RowDone done) { Update(model, key, changes, scope, tag, std::move(done), false); });
  }

  // Deletes the row with `key` matching `scope`; the deleted row or nullopt.
  virtual void Delete(const registry::Model& model, const Value& key, const FilterList& scope,
                      const WriteTag* tag, RowDone done, bool suspend) = 0;
  Result<std::optional<Row>> Delete(const registry::Model& model, const Value& key,
                                    const FilterList& scope, const WriteTag* tag = nullptr) {
    return Blocking<std::optional<Row>>(
        [&](RowDone done) { Delete(model, key, scope, tag, std::move(done), false); });
  }

  // The unexpired record of the write tagged (client_id, request_id), or nullopt (WriteTag).
  // `now_ms`: Unix time. Errors: unavailable, internal.
  virtual Result<std::optional<RecordedWrite>> FindWrite(const std::string& client_id,
                                                         const std::string& request_id,
                                                         int64_t now_ms) = 0;
  // The unexpired records (at `now_ms`) after (after_client, after_id) in key order, at most
  // `limit` of them: what the service reads at start to know which writes may be repeats
  // (server/recorded_keys.h). Errors: unavailable, internal.
  virtual Result<std::vector<RecordKey>> ListWrites(int64_t now_ms, const std::string& after_client,
                                                    const std::string& after_id, size_t limit) = 0;

 private:
  // The outcome of a write started without `suspend` (its `done` has run when it returns).
  template <typename R, typename Start>
  static Result<R> Blocking(Start&& start) {
    std::optional<Result<R>> out;
    start([&out](Result<R> r) { out.emplace(std::move(r)); });
    return std::move(*out);
  }
};

}  // namespace mqttspec::adapters
