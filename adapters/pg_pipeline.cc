#include "adapters/pg_pipeline.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <pqxx/except>
#include <string_view>
#include <unordered_set>

namespace mqttspec::adapters {

PgParams::PgParams(const std::vector<Value>& values) {
  storage_.reserve(values.size());
  pointers_.reserve(values.size());
  for (const Value& v : values) {
    switch (v.index()) {
      case 0: pointers_.push_back(nullptr); continue;
      case 1: storage_.push_back(std::get<bool>(v) ? "true" : "false"); break;
      case 2: storage_.push_back(std::to_string(std::get<int64_t>(v))); break;
      case 3: storage_.push_back(fmt::format("{}", std::get<double>(v))); break;
      case 4: storage_.push_back(std::get<std::string>(v)); break;
    }
    pointers_.push_back(nullptr);  // pointers are taken once storage stops moving
  }
  for (size_t i = 0, s = 0; i < values.size(); ++i) {
    if (values[i].index() != 0) pointers_[i] = storage_[s++].c_str();
  }
}

void PgResultFree::operator()(pg_result* r) const { PQclear(r); }

PgPipeline::PgPipeline(std::string url, int query_timeout_ms)
    : url_(std::move(url)), query_timeout_ms_(query_timeout_ms) {}

PgPipeline::~PgPipeline() { Reset(); }

void PgPipeline::Reset() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  prepared_.clear();
}

bool PgPipeline::Answered(const pg_result* r) {
  const auto status = PQresultStatus(r);
  if (status == PGRES_PIPELINE_ABORTED) return false;  // skipped after an error: did not run
  if (status != PGRES_FATAL_ERROR) return true;
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  if (state && std::string_view(state).substr(0, 3) == "57P") {  // its goodbye
    terminated_ = true;
    return false;
  }
  return PQstatus(conn_) == CONNECTION_OK;
}

void PgPipeline::Lost() {
  // What the server still said. It answers in order, and says goodbye (FATAL, class 57P:
  // terminated, shutting down) before it closes a session, running nothing after it: a goodbye
  // before the answer to the last statement means the last statement did not run.
  for (size_t i = 0; conn_ && i < 2 * sent_.size() + 4; ++i) {
    PgResult r(PQgetResult(conn_));
    if (r && Answered(r.get())) last_ran_ = true;  // perhaps the last one's: in doubt
    if (!r && PQstatus(conn_) != CONNECTION_OK) break;
  }
  std::string why = conn_ ? PQerrorMessage(conn_) : "";
  const bool last_did_not_run = terminated_ && !last_ran_;
  Reset();
  if (last_did_not_run)
    throw pqxx::broken_connection("the server ended the session before the pipeline ended: " + why);
  throw pqxx::in_doubt_error("connection lost during a pipeline: " + why);
}

void PgPipeline::Exec(const char* sql) {
  PgResult r(PQexec(conn_, sql));
  const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
  std::string why = PQerrorMessage(conn_);
  Reset();
  throw pqxx::broken_connection(fmt::format("{}: {}", sql, why));
}

void PgPipeline::Connect() {
  if (conn_ && PQstatus(conn_) == CONNECTION_OK) {
    // Idle, nothing is due from the server: something readable is its goodbye (a restart, an
    // idle timeout, then the end of the stream) or a notice. Read it, so a closed connection is
    // made again before sending.
    for (int i = 0; conn_ && i < 4; ++i) {
      pollfd p{PQsocket(conn_), POLLIN, 0};
      if (poll(&p, 1, 0) <= 0) break;
      if (!PQconsumeInput(conn_) || PQstatus(conn_) != CONNECTION_OK) Reset();
    }
    while (conn_) {  // notices and notifications are not ours to keep
      PGnotify* n = PQnotifies(conn_);
      if (!n) break;
      PQfreemem(n);
    }
    if (conn_) return;
  }
  Reset();
  const char* keys[] = {"dbname", "fallback_application_name", nullptr};
  const char* values[] = {url_.c_str(), "mqttspec-writer", nullptr};
  conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn_);
    Reset();
    throw pqxx::broken_connection(why);
  }
  PQsetNoticeProcessor(
      conn_, [](void*, const char* message) { spdlog::debug("postgres: {}", message); }, nullptr);
  Exec(fmt::format("SET statement_timeout = {}", query_timeout_ms_).c_str());
  Exec("SET TIME ZONE 'UTC'");
  Exec("SET client_encoding = 'UTF8'");
  if (PQsetnonblocking(conn_, 1) != 0) {
    Reset();
    throw pqxx::broken_connection("cannot make the connection non-blocking");
  }
}

void PgPipeline::Flush() {
  for (;;) {
    const int r = PQflush(conn_);
    if (r == 0) return;
    if (r < 0) Lost();
    // The server may be blocked writing results we have not read: read them while we wait.
    pollfd p{PQsocket(conn_), POLLIN | POLLOUT, 0};
    if (poll(&p, 1, -1) < 0 && errno != EINTR) Lost();
    if ((p.revents & POLLIN) && !PQconsumeInput(conn_)) Lost();
  }
}

void PgPipeline::Send(const std::vector<Statement>& statements) {
  sent_.clear();
  sent_.reserve(statements.size() + 1);
  std::unordered_map<std::string_view, std::string> preparing;  // in this pipeline
  for (size_t i = 0; i < statements.size(); ++i) {
    const Statement& st = statements[i];
    std::string name;
    if (auto it = prepared_.find(st.sql); it != prepared_.end()) {
      name = it->second;
    } else if (auto p = preparing.find(st.sql); p != preparing.end()) {
      name = p->second;
    } else {
      name = fmt::format("p{}", next_++);
      if (!PQsendPrepare(conn_, name.c_str(), st.sql.c_str(), 0, nullptr)) Lost();
      sent_.push_back(Sent{true, i, name});
      preparing.emplace(st.sql, name);
    }
    PgParams params(st.params);
    if (!PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(params.pointers().size()),
                             params.pointers().data(), nullptr, nullptr, 0))
      Lost();
    sent_.push_back(Sent{false, i, {}});
  }
  if (!PQpipelineSync(conn_)) Lost();
  Flush();
}

std::optional<PgPipeline::Failure> PgPipeline::Receive(const std::vector<Statement>& statements,
                                                       std::vector<PgResult>& results) {
  std::optional<Failure> failure;
  for (const Sent& s : sent_) {
    PgResult r(PQgetResult(conn_));
    if (!r) Lost();
    if (Answered(r.get()) && !s.prepare && s.index + 1 == statements.size()) last_ran_ = true;
    switch (PQresultStatus(r.get())) {
      case PGRES_COMMAND_OK:
      case PGRES_TUPLES_OK:
        if (s.prepare)
          prepared_.emplace(statements[s.index].sql, s.name);
        else
          results[s.index] = std::move(r);
        break;
      case PGRES_PIPELINE_ABORTED: break;  // after the failure: did not run
      default: {
        if (terminated_ || PQstatus(conn_) != CONNECTION_OK) Lost();
        const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
        if (!failure) failure = Failure{s.index, state ? state : "", PQresultErrorMessage(r.get())};
      }
    }
    PgResult end(PQgetResult(conn_));  // each statement's results end with a null
    if (end) Lost();
  }
  return failure;
}

std::optional<PgPipeline::Failure> PgPipeline::Run(const std::vector<Statement>& statements,
                                                   std::vector<PgResult>& results) {
  results.clear();
  results.resize(statements.size());
  last_ran_ = terminated_ = false;
  sent_.clear();
  Connect();
  // Filters make many shapes: the cache stays bounded. (Counted in shapes, not statements: a
  // batch of 1000 writes has a handful.)
  std::unordered_set<std::string_view> fresh;
  for (const Statement& st : statements) {
    if (!prepared_.contains(st.sql)) fresh.insert(st.sql);
  }
  if (prepared_.size() + fresh.size() > kMaxPrepared && !prepared_.empty()) {
    Exec("DEALLOCATE ALL");
    prepared_.clear();
    ++deallocations_;
  }
  if (!PQenterPipelineMode(conn_)) Lost();
  Send(statements);
  std::optional<Failure> failure = Receive(statements, results);
  PgResult sync(PQgetResult(conn_));
  if (!sync || PQresultStatus(sync.get()) != PGRES_PIPELINE_SYNC) Lost();
  if (!PQexitPipelineMode(conn_)) Lost();
  // A failure inside BEGIN … COMMIT leaves the transaction open and aborted.
  if (PQtransactionStatus(conn_) != PQTRANS_IDLE) Exec("ROLLBACK");
  return failure;
}

}  // namespace mqttspec::adapters
