#pragma once
// SqlBuilder: turns a validated Query into SQL text plus bound parameters, for one dialect.
// Identifiers come only from the model (and are quoted); every value becomes a parameter.
// Semantics are the same on every dialect: `like` is case-sensitive and `ilike`
// case-insensitive, '\' escapes in patterns, NULL sorts as the largest value unless the sort
// key says otherwise, reads without a sort are ordered by primary key.

#include <string>
#include <vector>

#include "adapters/database.h"
#include "adapters/query.h"
#include "common/error.h"
#include "common/value.h"
#include "registry/model.h"

namespace mqttspec::adapters {

enum class Dialect { kSqlite, kPostgres };

struct Statement {
  std::string sql;
  std::vector<Value> params;
};

class SqlBuilder {
 public:
  explicit SqlBuilder(Dialect dialect) : dialect_(dialect) {}

  // "users" / "blog_posts" for SQLite, "public"."users" for PostgreSQL.
  std::string Table(const registry::Model& model) const;
  // The same name unquoted: "users", "blog_posts", "public.users".
  std::string TableName(const registry::Model& model) const;
  std::string Quote(std::string_view identifier) const;

  Statement Select(const ReadQuery& query) const;
  Statement Count(const ReadQuery& query) const;
  // `with_change_seq`: one more column, the change log's newest change_seq in the same snapshot.
  Statement SelectByKey(const registry::Model& model, const Value& key,
                        const std::vector<int>& columns, const FilterList& scope,
                        bool with_change_seq = false) const;
  Statement Insert(const registry::Model& model, const Record& record) const;
  Statement Update(const registry::Model& model, const Value& key, const Record& changes,
                   const FilterList& scope) const;
  Statement Delete(const registry::Model& model, const Value& key, const FilterList& scope) const;
  // CREATE TABLE IF NOT EXISTS for the model.
  std::string CreateTable(const registry::Model& model) const;
  // CREATE INDEX IF NOT EXISTS for each indexed field (unique and primary fields have one).
  std::vector<std::string> CreateIndexes(const registry::Model& model) const;
  std::string ColumnDefinition(const registry::Field& field) const;

  // The service's requests table (database.h WriteTag): `mqttspec_requests` on SQLite,
  // "mqttspec"."requests" on PostgreSQL. Its DDL (schema, table, expiry index), in order:
  std::vector<std::string> CreateRequestsTable() const;
  // Records a tagged write (replacing an earlier record of the same client and request id).
  Statement RecordWrite(const WriteTag& tag, const std::string& keys) const;
  // PostgreSQL: `write` (an insert, update or delete returning the model's rows) and the record
  // of the rows it wrote (none: no record) as one statement, returning the same rows: one round
  // trip, so a lone write still runs in autocommit.
  Statement WithRecord(Statement write, const registry::Model& model, const WriteTag& tag) const;
  // The digest and keys of the unexpired record of (client_id, request_id).
  Statement FindWrite(const std::string& client_id, const std::string& request_id,
                      int64_t now_ms) const;
  // Deletes at most `limit` records that expired before `now_ms`.
  // Unexpired records after (after_client, after_id) in key order: client_id, request_id,
  // expires_at.
  Statement ListWrites(int64_t now_ms, const std::string& after_client, const std::string& after_id,
                       size_t limit) const;
  Statement TrimWrites(int64_t now_ms, int64_t limit) const;

  // The change log (database.h ChangeLogOptions): `mqttspec_changes` on SQLite,
  // "mqttspec"."changes" on PostgreSQL (whose schema CreateRequestsTable makes). Its DDL:
  std::vector<std::string> CreateChangesTable() const;
  // SQLite: appends one change, its rows encoded (change_log.h EncodeRow; `old_data` only for an
  // update). Its change_seq is the rowid SQLite gives (sqlite3_last_insert_rowid): the newest + 1,
  // since the key is an INTEGER PRIMARY KEY without AUTOINCREMENT and a trim never deletes the
  // newest row. Gap-free: a rolled-back change gives its number back. (A plain INSERT: the
  // INSERT … SELECT max + 1 … RETURNING form cost twice as much per write.)
  Statement LogChange(const registry::Model& model, Change::Kind kind, const Value& key,
                      std::string data, const std::string* old_data, int64_t now_ms) const;
  // PostgreSQL: `write` (an insert, update or delete of at most one row, returning the model's
  // fields: the CTE w) with, in the same statement, the change-log row of what it wrote (to_jsonb
  // of w; `old_data`: an update's row before, encoded) and, given a `tag`, the write's record
  // (WithRecord). Returns w's row followed by its change_seq: one round trip, as without the log.
  Statement WithLog(Statement write, const registry::Model& model, Change::Kind kind,
                    const std::string* old_data, int64_t now_ms, const WriteTag* tag) const;
  // PostgreSQL: an update of at most one row as one statement — the row before, locked, and the
  // update of it, with the change-log row (`log`; its old_data is to_jsonb of the row before, as
  // the capture trigger writes it) and a tagged write's record riding in it. Returns the row
  // before (the model's fields), the row after (all null if not updated) and, with `log`, the
  // change_seq; no row when the key (within `scope`) has none. One round trip for a lone update.
  Statement UpdateInOne(const registry::Model& model, const Value& key, const Record& changes,
                        const FilterList& scope, bool log, int64_t now_ms,
                        const WriteTag* tag) const;
  // At most `limit` changes with change_seq > `after`, in order: change_seq, schema, entity,
  // operation, data, old_data (JSON text).
  Statement ChangesAfter(int64_t after, int64_t limit) const;
  // The oldest and newest change_seq the log holds (0, 0 when empty).
  Statement ChangeBounds() const;
  // The newest change_seq (0 when empty).
  Statement NewestChange() const;
  // Deletes the oldest changes — a prefix of the log, at most `limit` rows, never the newest —
  // committed before `older_than_ms` or beyond the newest `max_rows`.
  Statement TrimChanges(int64_t older_than_ms, int64_t max_rows, int64_t limit) const;

  // PostgreSQL, a shared log (ChangeLogOptions::shared). The first statement of every write
  // transaction of the service: takes the log's lock (kLogLock, held to the commit: numbers are
  // handed out one transaction at a time, so they stay gap-free and in commit order whichever
  // instance or application writes), marks the transaction as the service's (a capture trigger
  // then leaves the logging to the service) and queues the wake-up of every follower
  // (kChangesChannel; delivered at commit, dropped at rollback).
  static Statement BeginSharedWrite();
  static constexpr int64_t kLogLock = 0x6d71747473706563;      // "mqttspec"
  static constexpr int64_t kMigrateLock = 0x6d71747473706564;  // DDL of concurrent instances
  static constexpr const char* kChangesChannel = "mqttspec_changes";
  // The capture trigger function (one per database; CREATE OR REPLACE): appends the row a
  // statement of another application inserted, updated or deleted to the change log — as the
  // service would (to_jsonb of the row, the row before for an update) — under the log's lock,
  // and wakes the followers. Skips the service's own writes (they log themselves).
  std::vector<std::string> CreateCaptureFunction() const;
  // The trigger on the model's table (CREATE OR REPLACE TRIGGER mqttspec_capture); its arguments
  // are the model's schema, entity and key name, all registry identifiers.
  std::string CreateCaptureTrigger(const registry::Model& model) const;

  // Escapes %, _ and \ so that `text` matches itself inside a LIKE pattern.
  static std::string EscapeLike(std::string_view text);

 private:
  void AppendParam(Statement& st, Value v) const;
  std::string RequestsTable() const;
  std::string ChangesTable() const;
  std::string NewestChangeExpr() const;  // (SELECT coalesce(max(change_seq), 0) FROM …)
  // ", c AS (…)": the change-log row of the CTE w (old_data: the parameter `old_data`, or with
  // `old_from_b` to_jsonb of the CTE b), then ", r AS (…)": a tagged write's record.
  void AppendLogged(Statement& st, const registry::Model& model, Change::Kind kind,
                    const std::string* old_data, bool old_from_b, int64_t now_ms,
                    const WriteTag* tag) const;
  // The upsert of a write's record: `keys` as a parameter, or (null) the keys of the rows of the
  // CTE w, a write of `written`, with no record when w is empty.
  void AppendRecord(Statement& st, const WriteTag& tag, const std::string* keys,
                    const registry::Model* written) const;
  std::string Ordered(const registry::Field& field) const;  // column for ordering/ranges
  void AppendColumns(const registry::Model& model, const std::vector<int>& columns,
                     std::string& sql) const;
  void AppendAllColumns(const registry::Model& model, std::string& sql) const;
  void AppendWhere(const registry::Model& model, const FilterList& filters, Statement& st) const;
  void AppendFilterList(const registry::Model& model, const FilterList& filters,
                        Statement& st) const;
  void AppendCondition(const registry::Model& model, const Condition& c, Statement& st) const;
  void AppendKeyAndScope(const registry::Model& model, const Value& key, const FilterList& scope,
                         Statement& st) const;

  Dialect dialect_;
};

// The one migrate rule, the same on every database: a field that an existing table lacks is
// added when it is nullable, not unique and not the key; otherwise invalid_value (the table needs
// a migration by hand), and the table is left as it was.
Status CheckAddableColumn(const registry::Model& model, const registry::Field& field);

}  // namespace mqttspec::adapters
