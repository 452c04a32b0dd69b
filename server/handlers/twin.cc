// The device twin's writes (docs/protocol.md §13), on mqttspec.twin (registry/twin.h): an app's
// update of `request` — an upsert, checked against expected_version — and a device's report.
// Both are read-modify-write: the row is read, the new one computed (version, in_sync, the
// times), and written only if nobody changed it meanwhile — the update's scope requires the
// version and reported_at it was computed from (each change of request moves version, each
// change of report moves reported_at, strictly), else it is read again. So concurrent writers,
// on one instance or several, never lose a change or leave in_sync wrong. On one instance the
// writes of one key also take turns (TwinKeyLocks), so they do not keep making each other read
// again.
#include "registry/twin.h"

#include <fmt/format.h>

#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include "common/blocking.h"
#include "common/time_util.h"
#include "server/handlers/handler.h"
#include "server/topics.h"

namespace mqttspec::server {

namespace {

using protocol::Request;
namespace twin = registry;

constexpr int kMaxAttempts = 16;

// Between two attempts of a compare-and-set that another writer (another instance) won: a random
// pause of up to 2^attempt ms (at most 64 ms), so two instances do not keep colliding.
void PauseAfterMiss(int attempt) {
  thread_local std::minstd_rand random(std::random_device{}());
  const int most = 1 << std::min(attempt, 6);
  BlockingRegion waiting;
  std::this_thread::sleep_for(std::chrono::milliseconds(random() % static_cast<unsigned>(most)));
}

const Value& Cell(const Row& row, int field) { return row[static_cast<size_t>(field)]; }

int64_t VersionOf(const Row& row) {
  const Value& v = Cell(row, twin::kTwinVersion);
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  return 0;
}

adapters::FilterNode Equals(int field, Value v) {
  adapters::FilterNode n;
  n.cond.field = field;
  if (IsNull(v)) {
    n.cond.op = adapters::Op::kIsNull;
  } else {
    n.cond.op = adapters::Op::kEq;
    n.cond.values.push_back(std::move(v));
  }
  return n;
}

Error Refuse(ErrorCode code, std::string message) { return MakeError(code, std::move(message)); }

// "<device_id>/<key>" → device and key, or nullopt unless both follow the topic rules.
std::optional<std::pair<std::string, std::string>> SplitTwinId(const std::string& id) {
  const size_t slash = id.find('/');
  if (slash == std::string::npos || !IsValidClientId(std::string_view(id).substr(0, slash)) ||
      !IsValidTwinKey(std::string_view(id).substr(slash + 1)))
    return std::nullopt;
  return std::pair{id.substr(0, slash), id.substr(slash + 1)};
}

// The row a key's first request (or, `report`, its first report) creates.
adapters::Record NewTwin(const std::string& id, const std::string& device, const std::string& key,
                         bool report, const Value& value) {
  return {{twin::kTwinId, Value{id}},
          {twin::kTwinDeviceId, Value{device}},
          {twin::kTwinKey, Value{key}},
          {report ? twin::kTwinReport : twin::kTwinRequest, value},
          {report ? twin::kTwinReportedAt : twin::kTwinRequestedAt, Value{NowIso8601()}},
          {twin::kTwinVersion, Value{int64_t{report ? 0 : 1}}},
          {twin::kTwinInSync, Value{twin::JsonValuesEqual(value, Value{})}}};
}

// The answer to a twin write that left `row` (changed or not): the request to push to the device
// when an app changed it, the After hooks, and silence for an equal report.
Answer AnswerTwinWrite(Call& c, Row row, bool changed, bool report, const std::string& device,
                       const std::string& key, const std::vector<int>& all) {
  Answer answer;
  const auto* request = std::get_if<std::string>(&Cell(row, twin::kTwinRequest));  // JSON text
  if (changed && !report && request)
    answer.deliveries.push_back(TwinDelivery{device, key, *request, VersionOf(row)});
  protocol::Reply reply;
  reply.model = &c.model();
  reply.columns = all;
  if (report && !changed) {  // an equal report again: nothing happened, nobody is answered
    reply.rows.push_back(std::move(row));
    answer.reply = std::move(reply);
    return answer;
  }
  std::vector<Row> rows{std::move(row)};
  if (auto st = c.pipe.After(HookType::kAfterUpdate, &rows, &reply.columns, true); !st.ok()) {
    answer.error = st.error();
    answer.committed = changed;
    return answer;
  }
  reply.rows.push_back(rows.empty() ? std::nullopt : std::optional<Row>(std::move(rows.front())));
  answer.reply = std::move(reply);
  return answer;
}

// A twin write: the key it sets and the side (the device's report, or an app's request).
struct TwinWrite {
  const std::string& id;  // "<device_id>/<key>"
  const std::string& device;
  const std::string& key;
  bool report;
  const Value& value;
};

// One attempt of the compare-and-set on the key's row (within `scope`, what hooks allow): reads
// it, computes the new one and writes it unless it changed meanwhile. The row and whether it
// changed; nullopt when another writer won (read again); or the request's error.
Result<std::optional<std::pair<Row, bool>>> TryTwinWrite(Call& c, const TwinWrite& w,
                                                         const adapters::FilterList& scope,
                                                         const std::vector<int>& all) {
  Request& req = c.req;
  const registry::Model& m = c.model();
  using Written = std::optional<std::pair<Row, bool>>;
  auto current = c.db.ReadByKey(m, *req.key, all, scope);
  if (!current.ok()) return current.error();
  if (!current.value()) {
    if (!scope.empty()) {  // there, but outside what the hooks allow: as for any update
      auto there = c.db.ReadByKey(m, *req.key, {static_cast<int>(m.primary_index())}, {});
      if (!there.ok()) return there.error();
      if (there.value()) return NotFound(m, *req.key);
    }
    if (req.expected_version && *req.expected_version != 0)
      return Refuse(ErrorCode::kConflict,
                    fmt::format("mqttspec.twin {}: version is 0 (no request yet), not the "
                                "expected {}",
                                w.id, *req.expected_version));
    auto created = c.db.Create(m, {NewTwin(w.id, w.device, w.key, w.report, w.value)}, c.tag);
    if (!created.ok() && created.error().code == ErrorCode::kConflict) return Written();  // raced
    if (!created.ok()) return created.error();
    return Written(std::pair{std::move(created.value().front()), true});
  }
  Row& cur = *current.value();
  const int64_t version = VersionOf(cur);
  if (req.expected_version && *req.expected_version != version)
    return Refuse(ErrorCode::kConflict,
                  fmt::format("mqttspec.twin {}: version is {}, not the expected {}", w.id, version,
                              *req.expected_version));
  const int side = w.report ? twin::kTwinReport : twin::kTwinRequest;
  if (twin::JsonValuesEqual(Cell(cur, side), w.value))  // the same value again: nothing moves
    return Written(std::pair{std::move(cur), false});
  const Value& reported_at = Cell(cur, twin::kTwinReportedAt);
  const auto* previous = std::get_if<std::string>(&reported_at);
  const int other = w.report ? twin::kTwinRequest : twin::kTwinReport;
  adapters::Record changes{
      {side, w.value},
      {w.report ? twin::kTwinReportedAt : twin::kTwinRequestedAt,
       Value{w.report ? NowIso8601After(previous ? *previous : "") : NowIso8601()}},
      {twin::kTwinInSync, Value{twin::JsonValuesEqual(w.value, Cell(cur, other))}}};
  if (!w.report) changes.push_back({twin::kTwinVersion, Value{version + 1}});
  adapters::FilterList unchanged = scope;  // …since it was read
  unchanged.push_back(Equals(twin::kTwinVersion, Value{version}));
  unchanged.push_back(Equals(twin::kTwinReportedAt, reported_at));
  auto updated = c.db.Update(m, *req.key, changes, unchanged, c.tag);
  if (!updated.ok()) return updated.error();
  if (!updated.value()) return Written();  // changed meanwhile
  return Written(std::pair{std::move(*updated.value()), true});
}

}  // namespace

std::mutex& TwinKeyLocks::For(const std::string& id) {
  return locks_[std::hash<std::string>{}(id) % locks_.size()];
}

Answer RefuseTwinCreate() {
  return Answer::Fail(Refuse(ErrorCode::kInvalidOperation,
                             "mqttspec.twin: set a request with update (it creates the key; "
                             "record_id \"<device_id>/<key>\", data {\"request\": …})"));
}

Answer HandleTwinUpdate(Call& c) {
  Request& req = c.req;
  const registry::Model& m = c.model();
  const bool report = req.origin == Request::Origin::kTwinReport;
  const int side = report ? twin::kTwinReport : twin::kTwinRequest;
  adapters::Record& rec = req.records.front();
  auto only_side = [&]() -> Status {
    if (rec.size() == 1 && rec.front().field == side) return OkStatus();
    return Refuse(ErrorCode::kInvalidMessage,
                  "mqttspec.twin: an update sets request (and may give expected_version); the "
                  "report is the device's, published on <prefix>/<device_id>/twin/reports/<key>, "
                  "and the other fields follow from the two");
  };
  if (auto st = only_side(); !st.ok()) return Answer::Fail(st.error());
  const auto* id = std::get_if<std::string>(&*req.key);
  const auto parts = id ? SplitTwinId(*id) : std::nullopt;
  if (!parts)
    return Answer::Fail(Refuse(
        ErrorCode::kInvalidValue,
        "mqttspec.twin: record_id must be \"<device_id>/<key>\": a valid client id, '/', and a "
        "key of 1–128 characters without '/', '+', '#'"));
  const auto& [device, key] = *parts;

  adapters::FilterList scope;
  c.hooks().BindData(&rec);
  c.hooks().BindFilters(&scope);
  if (auto st = c.pipe.Before(HookType::kBeforeUpdate); !st.ok()) return Answer::Fail(st.error());
  if (auto st = only_side(); !st.ok()) return Answer::Fail(st.error());  // as a hook left it
  const Value value = rec.front().value;
  AwaitTurn();  // the client's earlier writes have committed: they are what this one reads
  std::unique_lock key_lock(c.twin_locks->For(*id), std::defer_lock);
  {
    BlockingRegion waiting;  // the pool runs other clients meanwhile
    key_lock.lock();
  }

  const std::vector<int> all = AllColumns(m);
  const TwinWrite write{*id, device, key, report, value};
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (attempt > 0) PauseAfterMiss(attempt);
    auto written = TryTwinWrite(c, write, scope, all);
    if (!written.ok()) return Answer::Fail(written.error());
    if (!written.value()) continue;  // changed meanwhile: read it again
    auto& [row, changed] = *written.value();
    return AnswerTwinWrite(c, std::move(row), changed, report, device, key, all);
  }
  return Answer::Fail(Refuse(
      ErrorCode::kConflict,
      fmt::format("mqttspec.twin {}: changed by others {} times while this update was computed; "
                  "try again",
                  *id, kMaxAttempts)));
}

}  // namespace mqttspec::server
