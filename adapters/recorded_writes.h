#pragma once
// Recorded writes (database.h WriteTag): what a tagged write adds to its own transaction — its
// record in the service's requests table, and now and then a trim of expired records — and the
// encoding of the keys a record holds. The same for both adapters; the SQL comes from SqlBuilder.
// Thread-safety: a WriteRecorder is used by the thread running the write batch (one at a time:
// GroupCommit), or under the adapter's writer lock; DecodeKeys from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/database.h"
#include "adapters/sql_builder.h"

namespace mqttspec::adapters {

class WriteRecorder {
 public:
  // Expired records are trimmed at most this often, by one statement deleting at most twice the
  // records made since the last trim (and at least kTrimRows): the trims keep up with any write
  // rate, so the table holds about one window of writes, and none takes long.
  static constexpr int64_t kTrimIntervalMs = 1000;
  static constexpr int64_t kTrimRows = 1000;

  explicit WriteRecorder(const SqlBuilder& sql) : sql_(sql) {}

  // The statements to run after the write's own, in its transaction: none if it changed nothing
  // (nothing was applied, so a repeat may run again), else the record of `changes`' keys, preceded
  // by a trim when one is due at `now_ms`.
  std::vector<Statement> Statements(const WriteTag& tag, const registry::Model& model,
                                    const std::vector<Change>& changes, int64_t now_ms);
  // For a write whose record rides in its own statement (SqlBuilder::WithRecord, PostgreSQL):
  // the trim, if one is due at `now_ms`, to run before it; counts the record.
  std::optional<Statement> TrimIfDue(int64_t now_ms);

 private:
  const SqlBuilder& sql_;
  int64_t next_trim_ms_ = 0;
  int64_t recorded_since_trim_ = 0;
};

// The keys of a record, as written by WriteRecorder (a JSON array). Errors: internal.
Result<std::vector<Value>> DecodeKeys(std::string_view text);

// Unix time in milliseconds.
int64_t UnixMillis();

}  // namespace mqttspec::adapters
