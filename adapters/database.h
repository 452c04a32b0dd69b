#pragma once
// Database: the storage behind the router. Implementations: SqliteDatabase, PostgresDatabase,
// made by OpenDatabase (adapters/open_database.h). All identifiers come from the model; all
// values are bound parameters.
// Thread-safety: every method may be called concurrently from worker threads.
// Errors: conflict (unique/key violation), invalid_value (constraint), timeout, unavailable,
// internal. Messages never contain SQL.

#include <optional>
#include <string>
#include <vector>

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

  // Rows matching query.filters, sorted, paginated; total counted when query.count_total.
  virtual Result<ReadResult> Read(const ReadQuery& query) = 0;

  // The row with primary key `key` that also matches `scope` (may be empty), or nullopt.
  virtual Result<std::optional<Row>> ReadByKey(const registry::Model& model, const Value& key,
                                               const std::vector<int>& columns,
                                               const FilterList& scope) = 0;

  // Inserts all records in one transaction; returns each row as stored (all fields).
  virtual Result<std::vector<Row>> Create(const registry::Model& model,
                                          const std::vector<Record>& records) = 0;

  // Sets `changes` on the row with `key` matching `scope`; the updated row or nullopt.
  virtual Result<std::optional<Row>> Update(const registry::Model& model, const Value& key,
                                            const Record& changes, const FilterList& scope) = 0;

  // Deletes the row with `key` matching `scope`; the deleted row or nullopt.
  virtual Result<std::optional<Row>> Delete(const registry::Model& model, const Value& key,
                                            const FilterList& scope) = 0;
};

}  // namespace mqttspec::adapters
