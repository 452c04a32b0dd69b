#include "adapters/sqlite_connection.h"

#include <fmt/format.h>

#include <chrono>

namespace mqttspec::adapters {

// Maps an SQLite failure to a protocol error. The message (errmsg) is used only to name the field
// of a constraint; no SQL text leaves this function.
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

}  // namespace mqttspec::adapters
