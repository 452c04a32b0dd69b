#pragma once
// The change log (database.h ChangeLogOptions): what both adapters share — the row encoding
// (the protocol's JSON object of a row, field name → value; PostgreSQL writes the same with
// to_jsonb inside the write's statement), its decoding against the current model, the operation
// names, and the schedule of trims.
// Thread-safety: EncodeRow, DecodeRow and the names are pure; a ChangeTrimmer is used by the
// thread running the write batch (one at a time: GroupCommit), or under the adapter's writer lock.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/database.h"
#include "adapters/sql_builder.h"

namespace mqttspec::adapters {

// "create" | "update" | "delete" — the log's operation column and the notifications' operation.
std::string_view ChangeKindName(Change::Kind kind);
std::optional<Change::Kind> ParseChangeKind(std::string_view name);

// A primary key as text (the log's record_id, the event stream's): "42", "abc".
std::string KeyText(const Value& key);

// Every field of `row` (all of `model`'s, in field order) as a JSON object.
std::string EncodeRow(const registry::Model& model, const Row& row);

// A logged row back as a Row of `model`'s fields, each coerced as a client's value would be
// (registry/coerce.h): fields the log lacks (added since) are null, fields the model no longer
// has are ignored. Errors: internal (not a JSON object, or a value the field cannot hold).
Result<Row> DecodeRow(const registry::Model& model, std::string_view json);

// When the writes also trim the log: at most once a second, one statement deleting at most
// twice the changes logged since the last trim (at least kTrimRows) — it keeps up with any write
// rate and never holds the writer for long.
class ChangeTrimmer {
 public:
  static constexpr int64_t kTrimIntervalMs = 1000;
  static constexpr int64_t kTrimRows = 1000;

  ChangeTrimmer(const SqlBuilder& sql, ChangeLogOptions options) : sql_(sql), options_(options) {}

  // The trim to run, in the write's transaction before its own statements, if one is due at
  // `now_ms`; counts one logged change.
  std::optional<Statement> TrimIfDue(int64_t now_ms);

 private:
  const SqlBuilder& sql_;
  ChangeLogOptions options_;
  int64_t next_trim_ms_ = 0;
  int64_t logged_since_trim_ = 0;
};

}  // namespace mqttspec::adapters
