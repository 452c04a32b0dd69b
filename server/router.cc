#include "server/router.h"

#include <fmt/format.h>

#include "registry/coerce.h"
#include "server/hook_context.h"
#include "server/response.h"

namespace mqttspec::server {

using registry::Model;

Router::Router(registry::ModelRegistry& models, adapters::Database& db, RouterOptions options,
               Subscriptions* subscriptions, const hooks::HookRegistry* hooks)
    : models_(models),
      db_(db),
      options_(options),
      subscriptions_(subscriptions),
      hooks_(hooks),
      dedup_(options.dedup_window_s, options.dedup_capacity) {}

Router::Stats Router::stats() const {
  return Stats{requests_.load(), errors_.load(), dedup_hits_.load()};
}

std::string Router::Handle(ClientInfo& client, std::string_view payload) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  if (static_cast<int64_t>(payload.size()) > options_.max_payload_bytes) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return RenderError("\"\"", MakeError(ErrorCode::kPayloadTooLarge,
                                         fmt::format("payload of {} bytes exceeds the limit of {}",
                                                     payload.size(), options_.max_payload_bytes)));
  }
  Request req;
  if (auto st = ParseRequest(payload, models_, options_.parse, &req); !st.ok()) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return RenderError(req.id_json, st.error());
  }
  if (req.op == Operation::kPing) return RenderPong(req.id_json);

  const bool dedup = IsWrite(req.op) && !req.id.empty() && options_.dedup_window_s > 0;
  std::string key;
  if (dedup) {
    key = client.id;
    key += '\0';
    key += req.id;
    if (auto earlier = dedup_.Find(key, payload)) {
      dedup_hits_.fetch_add(1, std::memory_order_relaxed);
      return std::move(*earlier);
    }
  }
  std::string response = Execute(client, req);
  if (dedup) dedup_.Remember(std::move(key), std::string(payload), response);
  return response;
}

namespace {

std::vector<int> AllColumns(const Model& m) {
  std::vector<int> all(m.fields().size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  return all;
}

// Whether a client may run `op` on `m` (registry::ClientAccess). Errors: forbidden.
Status CheckClientAccess(const Model& m, Operation op) {
  using registry::ClientAccess;
  const bool writes = IsWrite(op);
  switch (m.client_access()) {
    case ClientAccess::kReadWrite: return OkStatus();
    case ClientAccess::kReadOnly:
      if (!writes) return OkStatus();
      return MakeError(ErrorCode::kForbidden,
                       fmt::format("{} is read-only for clients", m.qualified_name()));
    case ClientAccess::kNone: break;
  }
  return MakeError(ErrorCode::kForbidden,
                   fmt::format("{} is not accessible to clients", m.qualified_name()));
}

}  // namespace

// One request's trip through the hook pipeline and the database. Each operation: Before hook(s)
// with what they may change bound → the database → After hooks with the result bound → render.
std::string Router::Execute(ClientInfo& client, Request& req) {
  RequestHookContext ctx(client, OperationName(req.op), req.model, &req.key, options_.parse);
  const std::string entity = req.model ? req.model->qualified_name() : std::string();
  auto run = [&](HookType type) -> Status {
    if (!hooks_ || !hooks_->Has(type)) return OkStatus();
    ctx.set_type(type);
    return hooks_->Run(type, entity, ctx, ctx.state());
  };
  auto fail = [&](const Error& e) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return RenderError(req.id_json, e);
  };
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);

  if (req.op == Operation::kUnsubscribe) {  // the one operation without a model
    if (!subscriptions_)
      return fail(MakeError(ErrorCode::kInvalidOperation, "subscriptions are not served here"));
    if (auto st = run(HookType::kBeforeUnsubscribe); !st.ok()) return fail(st.error());
    if (auto st = subscriptions_->Remove(client.id, req.subscription_id); !st.ok())
      return fail(st.error());
    if (auto st = run(HookType::kAfterUnsubscribe); !st.ok()) return fail(st.error());
    BeginSuccess(req.id_json, w);
    w.Key("data");
    w.StartObject();
    w.Key("unsubscribed");
    w.Bool(true);
    w.Key("subscription_id");
    w.String(req.subscription_id.c_str());
    w.EndObject();
    EndResponse(w);
    return {buf.GetString(), buf.GetSize()};
  }

  const Model& m = *req.model;
  auto not_found = [&] {
    rapidjson::StringBuffer key;
    JsonWriter kw(key);
    registry::WriteJson(m.primary(), *req.key, kw);
    return fail(MakeError(
        ErrorCode::kNotFound,
        fmt::format("no {} with {} = {}", m.qualified_name(), m.primary().name, key.GetString())));
  };
  const std::vector<int> all = AllColumns(m);
  adapters::FilterList scope;  // what hooks add to by-key reads, updates and deletes
  std::vector<Row> rows;       // the result, bound to After hooks

  // The model's client_access, before any hook runs: the same for every front.
  if (auto st = CheckClientAccess(m, req.op); !st.ok()) return fail(st.error());
  if (auto st = run(HookType::kBeforeHandle); !st.ok()) return fail(st.error());

  switch (req.op) {
    case Operation::kRead: {
      ctx.BindFilters(req.key ? &scope : &req.query.filters);
      if (auto st = run(HookType::kBeforeRead); !st.ok()) return fail(st.error());
      int64_t total = 0;
      if (req.key) {
        auto row = db_.ReadByKey(m, *req.key, req.query.columns, scope);
        if (!row.ok()) return fail(row.error());
        if (!row.value()) return not_found();
        rows.push_back(std::move(*row.value()));
      } else {
        auto result = db_.Read(req.query);
        if (!result.ok()) return fail(result.error());
        rows = std::move(result.value().rows);
        total = result.value().total;
      }
      ctx.BindResult(&rows, &req.query.columns);
      if (auto st = run(HookType::kAfterRead); !st.ok()) return fail(st.error());
      if (req.key) {
        if (rows.empty()) return not_found();  // an After hook took it away
        BeginSuccess(req.id_json, w);
        w.Key("data");
        WriteRow(m, req.query.columns, rows.front(), w);
        break;
      }
      BeginSuccess(req.id_json, w);
      w.Key("data");
      w.StartArray();
      for (const Row& r : rows) WriteRow(m, req.query.columns, r, w);
      w.EndArray();
      w.Key("metadata");
      w.StartObject();
      w.Key("total");
      w.Int64(total);
      w.Key("count");
      w.Int64(static_cast<int64_t>(rows.size()));
      w.Key("limit");
      w.Int64(req.query.limit);
      w.Key("offset");
      w.Int64(req.query.offset);
      w.EndObject();
      break;
    }
    case Operation::kCreate: {
      for (auto& record : req.records) {
        ctx.BindData(&record);
        if (auto st = run(HookType::kBeforeCreate); !st.ok()) return fail(st.error());
        if (auto st = CheckRequired(m, record); !st.ok()) return fail(st.error());
      }
      auto created = db_.Create(m, req.records);
      if (!created.ok()) return fail(created.error());
      rows = std::move(created).value();
      for (size_t i = 0; i < rows.size(); ++i) {
        std::vector<Row> one{rows[i]};
        ctx.BindData(&req.records[i]);
        ctx.BindResult(&one, &all);
        if (auto st = run(HookType::kAfterCreate); !st.ok()) return fail(st.error());
        if (!one.empty()) rows[i] = std::move(one.front());
      }
      BeginSuccess(req.id_json, w);
      w.Key("data");
      if (req.batch) w.StartArray();
      for (const Row& r : rows) WriteRow(m, all, r, w);
      if (req.batch) w.EndArray();
      break;
    }
    case Operation::kUpdate: {
      ctx.BindData(&req.records.front());
      ctx.BindFilters(&scope);
      if (auto st = run(HookType::kBeforeUpdate); !st.ok()) return fail(st.error());
      auto row = db_.Update(m, *req.key, req.records.front(), scope);
      if (!row.ok()) return fail(row.error());
      if (!row.value()) return not_found();
      rows.push_back(std::move(*row.value()));
      ctx.BindResult(&rows, &all);
      if (auto st = run(HookType::kAfterUpdate); !st.ok()) return fail(st.error());
      if (rows.empty()) return not_found();
      BeginSuccess(req.id_json, w);
      w.Key("data");
      WriteRow(m, all, rows.front(), w);
      break;
    }
    case Operation::kDelete: {
      ctx.BindFilters(&scope);
      if (auto st = run(HookType::kBeforeDelete); !st.ok()) return fail(st.error());
      auto row = db_.Delete(m, *req.key, scope);
      if (!row.ok()) return fail(row.error());
      if (!row.value()) return not_found();
      rows.push_back(std::move(*row.value()));
      ctx.BindResult(&rows, &all);
      if (auto st = run(HookType::kAfterDelete); !st.ok()) return fail(st.error());
      BeginSuccess(req.id_json, w);
      w.Key("data");
      w.StartObject();
      w.Key("deleted");
      w.Bool(true);
      w.Key("id");
      registry::WriteJson(m.primary(), *req.key, w);
      w.EndObject();
      break;
    }
    case Operation::kMeta: {
      BeginSuccess(req.id_json, w);
      w.Key("data");
      WriteMeta(m, w);
      break;
    }
    case Operation::kSubscribe: {
      if (!subscriptions_)
        return fail(MakeError(ErrorCode::kInvalidOperation, "subscriptions are not served here"));
      ctx.BindFilters(&req.query.filters);
      if (auto st = run(HookType::kBeforeSubscribe); !st.ok()) return fail(st.error());
      auto sub = subscriptions_->Add(client.id, req.model, std::move(req.query.filters));
      if (!sub.ok()) return fail(sub.error());
      ctx.BindFilters(nullptr);
      if (auto st = run(HookType::kAfterSubscribe); !st.ok()) {
        (void)subscriptions_->Remove(client.id, sub.value()->id);
        return fail(st.error());
      }
      BeginSuccess(req.id_json, w);
      w.Key("data");
      w.StartObject();
      w.Key("subscription_id");
      w.String(sub.value()->id.c_str());
      w.Key("notify_topic");
      w.String(sub.value()->topic.c_str());
      w.EndObject();
      break;
    }
    case Operation::kUnsubscribe:  // handled above
    case Operation::kPing: return RenderPong(req.id_json);
  }
  EndResponse(w);
  return {buf.GetString(), buf.GetSize()};
}

void Router::WriteMeta(const Model& m, JsonWriter& w) const {
  w.StartObject();
  w.Key("schema");
  w.String(m.schema().c_str());
  w.Key("entity");
  w.String(m.entity().c_str());
  w.Key("table");
  w.String(db_.TableName(m).c_str());
  w.Key("primary_key");
  w.String(m.primary().name.c_str());
  w.Key("columns");
  w.StartArray();
  for (const auto& f : m.fields()) {
    w.StartObject();
    w.Key("name");
    w.String(f.name.c_str());
    w.Key("type");
    w.String(registry::FieldTypeName(f.type).data());
    w.Key("nullable");
    w.Bool(f.nullable);
    w.Key("primary");
    w.Bool(f.primary);
    w.Key("unique");
    w.Bool(f.unique || f.primary);
    w.Key("auto_increment");
    w.Bool(f.auto_increment);
    w.Key("default");
    if (f.default_value)
      w.String(f.default_value->display.c_str());
    else
      w.Null();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

// --- DedupCache -------------------------------------------------------------------------------

void Router::DedupCache::Expire(std::chrono::steady_clock::time_point now) {
  while (!entries_.empty() &&
         (now - entries_.front().at > window_ || entries_.size() > capacity_)) {
    index_.erase(entries_.front().key);
    entries_.pop_front();
  }
}

std::optional<std::string> Router::DedupCache::Find(const std::string& key,
                                                    std::string_view payload) {
  std::lock_guard lock(mu_);
  Expire(std::chrono::steady_clock::now());
  auto it = index_.find(key);
  if (it == index_.end() || it->second->payload != payload) return std::nullopt;
  return it->second->response;
}

void Router::DedupCache::Remember(std::string key, std::string payload, std::string response) {
  std::lock_guard lock(mu_);
  auto now = std::chrono::steady_clock::now();
  if (auto it = index_.find(key); it != index_.end()) {
    entries_.erase(it->second);
    index_.erase(it);
  }
  entries_.push_back(Entry{key, std::move(payload), std::move(response), now});
  index_.emplace(std::move(key), std::prev(entries_.end()));
  Expire(now);
}

}  // namespace mqttspec::server
