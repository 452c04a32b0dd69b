#pragma once
// PgPipeline: a libpq connection of its own that sends a list of statements as one pipeline
// (libpq's pipeline mode, PostgreSQL 14 and later): every statement and one Sync leave together
// and their results come back together, so BEGIN, a batch of writes and COMMIT cost one round
// trip where libpqxx 6 (which has no pipeline mode) pays one per statement. Each statement is
// prepared once per connection; the prepare rides in the pipeline ahead of its first use.
//
// Errors: an SQL error stops the pipeline at its statement — the server skips the rest up to the
// Sync (a COMMIT among them does not run) and Run rolls back the open transaction — and Run
// returns the statement's index with the error. A connection that cannot be made throws
// pqxx::broken_connection (nothing ran); so does a session the server ended (saying so: FATAL,
// class 57P) before it answered the last statement — it answers in order and runs nothing after
// its goodbye, so the last statement (a COMMIT) did not run. Any other loss once the pipeline
// left throws pqxx::in_doubt_error (a COMMIT in it may or may not have happened). A connection
// the server closed while idle is noticed before sending and made again. The session's
// application_name is mqttspec-writer.
// Sending never deadlocks on a big pipeline: the socket is non-blocking, and while the statements
// are flushed the results already arriving are read into libpq's buffer.
// Thread-safety: one thread at a time (the group commit's leader).

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "adapters/sql_builder.h"
#include "common/value.h"

struct pg_conn;
struct pg_result;

namespace mqttspec::adapters {

// The parameters of a statement as libpq takes them: text, and a null pointer for SQL NULL —
// the one binding of values both PostgreSQL connections use.
class PgParams {
 public:
  explicit PgParams(const std::vector<Value>& values);
  const std::vector<const char*>& pointers() const { return pointers_; }

 private:
  std::vector<std::string> storage_;
  std::vector<const char*> pointers_;
};

// A libpq result, freed with it.
struct PgResultFree {
  void operator()(pg_result* r) const;
};
using PgResult = std::unique_ptr<pg_result, PgResultFree>;

class PgPipeline {
 public:
  // `url`: a libpq connection string; every statement is cancelled after `query_timeout_ms`.
  PgPipeline(std::string url, int query_timeout_ms);
  ~PgPipeline();
  PgPipeline(const PgPipeline&) = delete;
  PgPipeline& operator=(const PgPipeline&) = delete;

  struct Failure {
    size_t index;  // the statement that failed
    std::string sqlstate, message;
  };
  // Runs `statements` in order as one pipeline. Sets results[i] to statement i's result (none for
  // statements that did not run) and returns the failure, if one failed.
  std::optional<Failure> Run(const std::vector<Statement>& statements,
                             std::vector<PgResult>& results);
  // How often the cache of prepared statements was emptied (more shapes than kMaxPrepared).
  uint64_t deallocations() const { return deallocations_; }
  static constexpr size_t kMaxPrepared = 256;

 private:
  void Connect();              // throws pqxx::broken_connection
  void Reset();                // closes the connection
  // The connection failed during Run: reads what the server still said, Resets, throws
  // pqxx::broken_connection if the last statement did not run, else in_doubt_error.
  [[noreturn]] void Lost();
  // Whether a result of this pipeline answers a statement (not the connection's end; a goodbye
  // sets terminated_).
  bool Answered(const pg_result* r);
  void Flush();                // sends what libpq buffered, reading meanwhile
  void Exec(const char* sql);  // outside the pipeline; throws pqxx::broken_connection
  // Run's steps: every statement (and the prepare of each new one) and the Sync, flushed; then
  // each statement's result into `results`, the first failure returned.
  void Send(const std::vector<Statement>& statements);
  std::optional<Failure> Receive(const std::vector<Statement>& statements,
                                 std::vector<PgResult>& results);

  std::string url_;
  int query_timeout_ms_;
  pg_conn* conn_ = nullptr;
  std::unordered_map<std::string, std::string> prepared_;  // SQL → statement name
  uint64_t next_ = 0;
  uint64_t deallocations_ = 0;
  // What this pipeline sent so far, in order: a prepare of statement `index` (as `name`), or
  // statement `index` itself.
  struct Sent {
    bool prepare;
    size_t index;
    std::string name;
  };
  std::vector<Sent> sent_;
  bool last_ran_ = false, terminated_ = false;  // by this pipeline's results (Answered)
};

}  // namespace mqttspec::adapters
