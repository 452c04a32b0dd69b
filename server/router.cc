#include "server/router.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <set>

#include "adapters/recorded_writes.h"
#include "common/blocking.h"
#include "common/json_document.h"
#include "hooks/hook_context.h"
#include "hooks/pipeline.h"
#include "protocol/render.h"
#include "registry/twin.h"
#include "server/handlers/handler.h"
#include "server/topics.h"

namespace mqttspec::server {

using protocol::Operation;
using protocol::RenderError;

namespace {

// SHA-256 of a payload, hex: what a write's record keeps of it.
std::string PayloadDigest(std::string_view payload) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  // Fetched once: given EVP_sha256(), OpenSSL 3 looks the algorithm up in its providers (under
  // a lock) on every call.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_Digest(payload.data(), payload.size(), md, &n, sha256 ? sha256 : EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

}  // namespace

Router::Router(registry::ModelRegistry& models, adapters::Database& db, RouterOptions options,
               Subscriptions* subscriptions, const hooks::HookRegistry* hooks)
    : models_(models),
      db_(db),
      options_(options),
      subscriptions_(subscriptions),
      hooks_(hooks),
      dedup_(options.dedup_window_s, options.dedup_capacity),
      recorded_(int64_t{options.dedup_window_s} * 1000),
      twin_locks_(std::make_unique<TwinKeyLocks>()) {}

Router::~Router() = default;

Router::Stats Router::stats() const {
  return Stats{requests_.load(), errors_.load(), dedup_hits_.load(), record_lookups_.load()};
}

Status Router::LoadRecordedWrites() {
  // Until the read is through (and if it fails) every write of the window is looked up.
  const int64_t now = adapters::UnixMillis();
  std::string client, id;
  std::vector<std::pair<int64_t, uint64_t>> found;  // (expiry, hash), at most what it can hold
  int64_t unkept_until = 0;                         // the latest expiry of the records beyond that
  for (;;) {
    auto page = db_.ListWrites(now, client, id, 10000);
    if (!page.ok()) return page.take_error();
    for (const auto& r : page.value()) {
      if (found.size() < RecordedKeys::kDefaultCapacity) {
        found.emplace_back(r.expires_at_ms, RecordedKeys::Hash(r.client_id, r.request_id));
      } else {
        unkept_until = std::max(unkept_until, r.expires_at_ms);
      }
    }
    if (page.value().size() < 10000) break;
    client = page.value().back().client_id;
    id = page.value().back().request_id;
  }
  std::sort(found.begin(), found.end());  // slices of expiry time fill in order
  for (const auto& [expires, hash] : found) recorded_.Add(hash, expires, now);
  // More records than it holds: writes are looked up until the ones left out have expired.
  if (unkept_until > 0) recorded_.UnknownUntil(unkept_until);
  records_known_.store(true);
  return OkStatus();
}

bool Router::MayBeRecorded(const std::string& client_id, const std::string& request_id) {
  if (options_.records_shared) return true;  // other instances record writes too
  if (dedup_.Complete()) return false;       // every answer of the window is in memory
  return !records_known_.load() ||
         recorded_.MayContain(RecordedKeys::Hash(client_id, request_id), adapters::UnixMillis());
}

namespace {
void Dispatch(Call& c, AnswerDone done);  // below
}  // namespace

// One request while it runs: what its write's continuation needs, in one place that stays put.
struct Router::Pending {
  Pending(ClientInfo& c, std::string p, Reply r)
      : client(c), payload(std::move(p)), reply(std::move(r)) {}
  ClientInfo& client;
  std::string payload;
  Reply reply;
  protocol::Request req;
  Outcome outcome;
  bool dedup = false;  // a write with an id: remembered; a repeat is answered from memory
  std::string key;     // its dedup key: client id, NUL, request id
  adapters::WriteTag tag;
  // The handler's call (Execute).
  std::optional<hooks::RequestHookContext> ctx;
  std::optional<hooks::Pipeline> pipe;
  std::optional<Call> call;
};

void Router::Handle(ClientInfo& client, std::string payload, Reply reply, bool suspend) {
  // One per request (make_shared: with its control block). Below 1 KiB it comes from glibc's
  // per-thread cache; above, each was a large-bin allocation that first merged the arena's fast
  // bins (malloc_consolidate: ~1 % of the broker's CPU in a profile of creates).
  static_assert(sizeof(Pending) <= 1000, "Router::Pending outgrew malloc's per-thread cache");
  auto p = std::make_shared<Pending>(client, std::move(payload), std::move(reply));
  requests_.fetch_add(1, std::memory_order_relaxed);
  std::string response;
  if (Admit(*p, response)) return p->reply(std::move(response), p->outcome);
  Execute(std::move(p), suspend);
}

std::string Router::Handle(ClientInfo& client, std::string_view payload, Outcome* outcome) {
  std::string out;
  Handle(
      client, std::string(payload),
      [&](std::string response, Outcome& o) {
        out = std::move(response);
        if (outcome) *outcome = std::move(o);
      },
      /*suspend=*/false);
  return out;
}

bool Router::Admit(Pending& p, std::string& response) {
  const std::string_view payload = p.payload;
  Outcome& outcome = p.outcome;
  protocol::Request& req = p.req;
  if (static_cast<int64_t>(payload.size()) > options_.max_payload_bytes) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    outcome.code = ErrorCodeName(ErrorCode::kPayloadTooLarge);
    response =
        RenderError("\"\"", MakeError(ErrorCode::kPayloadTooLarge,
                                      fmt::format("payload of {} bytes exceeds the limit of {}",
                                                  payload.size(), options_.max_payload_bytes)));
    return true;
  }
  if (auto st = protocol::ParseRequest(payload, models_, options_.parse, &req); !st.ok()) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    outcome.code = ErrorCodeName(st.error().code);
    response = RenderError(req.id_json, st.error());
    return true;
  }
  outcome.operation = protocol::OperationName(req.op);
  outcome.model = req.model.get();
  if (req.op == Operation::kPing) {
    response = protocol::RenderPong(req.id_json);
    return true;
  }
  // A read (or subscribe, meta) sees every earlier write of its client: those may still wait for
  // their group commit (the executor lets a client's next request start meanwhile).
  if (!protocol::IsWrite(req.op)) AwaitTurn();
  if (!protocol::IsWrite(req.op) || req.id.empty() || options_.dedup_window_s <= 0) return false;

  p.dedup = true;
  p.key = p.client.id;
  p.key += '\0';
  p.key += req.id;
  bool repeat_in_flight;
  {
    std::lock_guard lock(inflight_mu_);
    repeat_in_flight = inflight_.count(p.key) > 0;
    inflight_.insert(p.key);
  }
  if (repeat_in_flight) AwaitTurn();  // the earlier one has answered and is remembered now
  auto answered = [&](std::string r) {
    std::lock_guard lock(inflight_mu_);
    inflight_.erase(inflight_.find(p.key));
    response = std::move(r);
    return true;
  };
  if (auto earlier = dedup_.Find(p.key, payload)) {
    dedup_hits_.fetch_add(1, std::memory_order_relaxed);
    return answered(std::move(*earlier));
  }
  adapters::WriteTag& tag = p.tag;
  tag.client_id = p.client.id;
  tag.request_id = req.id;
  tag.digest = PayloadDigest(payload);
  tag.expires_at_ms = adapters::UnixMillis() + int64_t{options_.dedup_window_s} * 1000;
  if (MayBeRecorded(p.client.id, req.id)) {  // applied by an earlier run or another instance?
    record_lookups_.fetch_add(1, std::memory_order_relaxed);
    auto found = db_.FindWrite(p.client.id, req.id, adapters::UnixMillis());
    if (!found.ok()) {  // unknown whether it was applied: apply nothing
      errors_.fetch_add(1, std::memory_order_relaxed);
      outcome.code = ErrorCodeName(found.error().code);
      return answered(RenderError(req.id_json, found.error()));
    }
    if (found.value() && found.value()->digest == tag.digest) {
      dedup_hits_.fetch_add(1, std::memory_order_relaxed);
      std::string replayed = Replay(p.client, req, found.value()->keys, outcome);
      dedup_.Remember(p.key, p.payload, replayed);
      return answered(std::move(replayed));
    }
  }
  return false;
}

void Router::Execute(std::shared_ptr<Pending> p, bool suspend) {
  Pending& r = *p;
  r.ctx.emplace(r.client, protocol::OperationName(r.req.op), r.req.model, &r.req.key,
                options_.parse);
  r.pipe.emplace(hooks_, *r.ctx, r.req.model ? r.req.model->qualified_name() : std::string());
  r.call.emplace(Call{r.client, r.req, *r.pipe, db_, subscriptions_, r.dedup ? &r.tag : nullptr,
                      twin_locks_.get(), suspend});
  // With `suspend`, nothing here touches the request once its write is queued: its answer may
  // be on its way on another thread.
  Dispatch(*r.call, [this, p = std::move(p)](Answer answer) {
    Conclude(*p, Render(p->req, std::move(answer), p->outcome));
  });
}

void Router::Conclude(Pending& p, std::string response) {
  if (p.dedup) {
    recorded_.Add(RecordedKeys::Hash(p.client.id, p.req.id), p.tag.expires_at_ms,
                  adapters::UnixMillis());
    dedup_.Remember(p.key, std::move(p.payload), response);
    std::lock_guard lock(inflight_mu_);
    inflight_.erase(inflight_.find(p.key));
  }
  p.reply(std::move(response), p.outcome);
}

namespace {

// Whether a client may run `op` on `m` (registry::ClientAccess). Errors: forbidden.
Status CheckClientAccess(const registry::Model& m, Operation op) {
  using registry::ClientAccess;
  switch (m.client_access()) {
    case ClientAccess::kReadWrite: return OkStatus();
    case ClientAccess::kReadOnly:
      if (!protocol::IsWrite(op)) return OkStatus();
      return MakeError(ErrorCode::kForbidden,
                       fmt::format("{} is read-only for clients", m.qualified_name()));
    case ClientAccess::kNone: break;
  }
  return MakeError(ErrorCode::kForbidden,
                   fmt::format("{} is not accessible to clients", m.qualified_name()));
}

// Runs the request's operation; its answer goes to `done` (handler.h: the writes may answer
// later, as a continuation).
void Dispatch(Call& c, AnswerDone done) {
  if (c.req.op == Operation::kUnsubscribe) return done(HandleUnsubscribe(c));  // no model
  // The model's client_access, before any hook runs: the same for every front.
  if (auto st = CheckClientAccess(c.model(), c.req.op); !st.ok())
    return done(Answer::Fail(st.error()));
  if (auto st = c.pipe.Before(HookType::kBeforeHandle); !st.ok())
    return done(Answer::Fail(st.error()));
  switch (c.req.op) {
    case Operation::kRead: return done(HandleRead(c));
    case Operation::kCreate: return HandleCreate(c, std::move(done));
    case Operation::kUpdate: return HandleUpdate(c, std::move(done));
    case Operation::kDelete: return HandleDelete(c, std::move(done));
    case Operation::kMeta: return done(HandleMeta(c));
    case Operation::kSubscribe: return done(HandleSubscribe(c));
    case Operation::kUnsubscribe:
    case Operation::kPing: break;  // handled before
  }
  done(Answer::Fail(MakeError(ErrorCode::kInternal, "unhandled operation")));
}

}  // namespace

Answer Router::Run(ClientInfo& client, protocol::Request& req, const adapters::WriteTag* tag) {
  hooks::RequestHookContext ctx(client, protocol::OperationName(req.op), req.model, &req.key,
                                options_.parse);
  hooks::Pipeline pipe(hooks_, ctx, req.model ? req.model->qualified_name() : std::string());
  Call call{client, req, pipe, db_, subscriptions_, tag, twin_locks_.get()};
  Answer answer;
  Dispatch(call, [&answer](Answer a) { answer = std::move(a); });  // not suspended: answers now
  return answer;
}

namespace {

// The keys of a device's twin/get payload (a JSON list of keys), each once; at most `most`.
// Errors: invalid_message.
Result<std::set<std::string_view>> TwinGetKeys(const rapidjson::Document& doc, int64_t most) {
  auto bad_list = [] {
    return MakeError(ErrorCode::kInvalidMessage,
                     "twin/get takes a JSON list of keys, e.g. [\"software_version\"], each "
                     "of 1–128 characters without '/', '+', '#'");
  };
  if (!doc.IsArray()) return bad_list();
  std::set<std::string_view> keys;
  for (const auto& k : doc.GetArray()) {
    if (!k.IsString()) return bad_list();
    const std::string_view key(k.GetString(), k.GetStringLength());
    if (!IsValidTwinKey(key)) return bad_list();
    keys.insert(key);
  }
  if (static_cast<int64_t>(keys.size()) > most)
    return MakeError(ErrorCode::kInvalidMessage,
                     fmt::format("twin/get takes at most {} keys", most));
  return keys;
}

}  // namespace

Result<std::optional<protocol::Request>> Router::TwinRequest(const ClientInfo& client,
                                                             const TwinMessage& message,
                                                             std::string_view payload) {
  LocalDocument local;
  rapidjson::Document& doc = *local;
  // The whole payload is the value: a device's message is no envelope with room after it.
  if (auto st = protocol::ParseJsonText(payload, doc, true); !st.ok()) return st.take_error();
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto str = [&w](std::string_view v) {
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  w.Key("schema");
  str(registry::kTwinSchema);
  w.Key("entity");
  str(registry::kTwinEntity);
  if (message.origin == protocol::Request::Origin::kTwinReport) {
    w.Key("operation");
    w.String("update");
    w.Key("record_id");
    str(client.id + "/" + message.key);
    w.Key("data");
    w.StartObject();
    w.Key("report");
    doc.Accept(w);  // the device's value, as parsed: nothing else can reach the request
    w.EndObject();
  } else {
    auto keys = TwinGetKeys(doc, std::min(options_.parse.max_rows,
                                          static_cast<int64_t>(options_.parse.max_list_values)));
    if (!keys.ok()) return keys.take_error();
    if (keys.value().empty()) return std::optional<protocol::Request>();  // nothing asked
    w.Key("operation");
    w.String("read");
    w.Key("options");
    w.StartObject();
    w.Key("filters");
    w.StartArray();
    w.StartObject();
    w.Key("column");
    w.String("device_id");
    w.Key("operator");
    w.String("eq");
    w.Key("value");
    str(client.id);
    w.EndObject();
    w.StartObject();
    w.Key("column");
    w.String("key");
    w.Key("operator");
    w.String("in");
    w.Key("value");
    w.StartArray();
    for (std::string_view key : keys.value()) str(key);
    w.EndArray();
    w.EndObject();
    w.EndArray();
    w.Key("limit");
    w.Int64(static_cast<int64_t>(keys.value().size()));
    w.EndObject();
  }
  w.EndObject();
  protocol::Request req;
  if (auto st = protocol::ParseRequest(std::string_view(buf.GetString(), buf.GetSize()), models_,
                                       options_.parse, &req);
      !st.ok())
    return st.take_error();
  req.origin = message.origin;
  return std::optional<protocol::Request>(std::move(req));
}

std::string Router::HandleTwin(ClientInfo& client, const TwinMessage& message,
                               std::string_view payload, Outcome* outcome_out) {
  Outcome scratch;
  Outcome& outcome = outcome_out ? *outcome_out : scratch;
  requests_.fetch_add(1, std::memory_order_relaxed);
  auto fail = [&](const Error& e, bool committed) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    outcome.code = ErrorCodeName(e.code);
    return RenderError("\"\"", MakeError(e.code, message.topic + ": " + e.message), committed);
  };
  outcome.operation =
      message.origin == protocol::Request::Origin::kTwinGet ? "twin_get" : "twin_report";
  if (static_cast<int64_t>(payload.size()) > options_.max_payload_bytes)
    return fail(MakeError(ErrorCode::kPayloadTooLarge,
                          fmt::format("payload of {} bytes exceeds the limit of {}", payload.size(),
                                      options_.max_payload_bytes)),
                false);
  auto req = TwinRequest(client, message, payload);
  if (!req.ok()) return fail(req.error(), false);
  if (!req.value()) return "";  // an empty twin/get
  protocol::Request& r = *req.value();
  outcome.model = r.model.get();
  if (r.op == Operation::kRead) AwaitTurn();  // after the device's earlier reports
  Answer answer = Run(client, r, nullptr);
  outcome.deliveries = std::move(answer.deliveries);
  if (!answer.reply) return fail(answer.error, answer.committed);
  if (r.origin != protocol::Request::Origin::kTwinGet) return "";
  // The rows read, as the device may see them (hooks): each key's request, if it has one.
  const std::vector<int>& cols = answer.reply->columns;
  auto column = [&](int field) -> int {
    for (size_t i = 0; i < cols.size(); ++i)
      if (cols[i] == field) return static_cast<int>(i);
    return -1;
  };
  const int key_col = column(registry::kTwinKey), request_col = column(registry::kTwinRequest),
            version_col = column(registry::kTwinVersion);
  if (key_col < 0 || request_col < 0) return "";
  for (const std::optional<Row>& row : answer.reply->rows) {
    if (!row) continue;
    const auto* key = std::get_if<std::string>(&(*row)[static_cast<size_t>(key_col)]);
    const auto* request = std::get_if<std::string>(&(*row)[static_cast<size_t>(request_col)]);
    if (!key || !request) continue;  // no request yet
    int64_t version = 0;
    if (version_col >= 0)
      if (const auto* v = std::get_if<int64_t>(&(*row)[static_cast<size_t>(version_col)]))
        version = *v;
    outcome.deliveries.push_back(TwinDelivery{client.id, *key, *request, version});
  }
  return "";
}

std::string Router::Replay(ClientInfo& client, protocol::Request& req,
                           const std::vector<Value>& keys, Outcome& outcome) {
  {  // The request itself must still be allowed, as any request: client_access, BeforeHandle.
    hooks::RequestHookContext ctx(client, protocol::OperationName(req.op), req.model, &req.key,
                                  options_.parse);
    hooks::Pipeline pipe(hooks_, ctx, req.model->qualified_name());
    Status allowed = CheckClientAccess(*req.model, req.op);
    if (allowed.ok()) allowed = pipe.Before(HookType::kBeforeHandle);
    if (!allowed.ok()) return Render(req, Answer::Fail(allowed.error()), outcome);
  }
  // Its rows, as this client would read them.
  hooks::RequestHookContext ctx(client, protocol::OperationName(Operation::kRead), req.model,
                                &req.key, options_.parse);
  hooks::Pipeline pipe(hooks_, ctx, req.model->qualified_name());
  Call call{client, req, pipe, db_, subscriptions_};
  return Render(req, HandleReplay(call, keys), outcome);
}

std::string Router::Render(const protocol::Request& req, Answer answer, Outcome& outcome) {
  outcome.deliveries = std::move(answer.deliveries);
  if (answer.reply) {
    outcome.resume = answer.resume;
    outcome.resume_after = answer.resume_after;
    return protocol::RenderReply(req.id_json, *answer.reply);
  }
  errors_.fetch_add(1, std::memory_order_relaxed);
  outcome.code = ErrorCodeName(answer.error.code);
  return RenderError(req.id_json, answer.error, answer.committed);
}

}  // namespace mqttspec::server
