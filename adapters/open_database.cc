#include "adapters/open_database.h"

#include <algorithm>

#include "adapters/postgres_database.h"
#include "adapters/sqlite_database.h"

namespace mqttspec::adapters {

Result<std::unique_ptr<Database>> OpenDatabase(const DatabaseSpec& spec) {
  if (spec.driver == "postgres") {
    PostgresOptions o;
    o.url = spec.url;
    o.pool_size = spec.pool_size;
    o.query_timeout_ms = spec.query_timeout_ms;
    o.group_commit.max_rows = static_cast<size_t>(spec.group_commit_max_rows);
    o.group_commit.max_time = std::chrono::milliseconds(spec.group_commit_max_ms);
    o.changes = spec.changes;
    return std::unique_ptr<Database>(std::make_unique<PostgresDatabase>(o));
  }
  if (spec.driver != "sqlite")
    return MakeError(ErrorCode::kInvalidValue, "database.driver must be sqlite or postgres");
  SqliteOptions o;
  o.path = spec.path;
  o.synchronous_full = spec.synchronous_full;
  o.readers = std::max(1, spec.pool_size / 2);
  o.query_timeout_ms = spec.query_timeout_ms;
  o.group_commit.max_rows = static_cast<size_t>(spec.group_commit_max_rows);
  o.group_commit.max_time = std::chrono::milliseconds(spec.group_commit_max_ms);
  o.group_commit.defer_while_busy = !spec.synchronous_full;  // its commits cost CPU, not a wait
  o.changes = spec.changes;
  auto db = SqliteDatabase::Open(o);
  if (!db.ok()) return db.take_error();
  return std::unique_ptr<Database>(std::move(db).value());
}

}  // namespace mqttspec::adapters
