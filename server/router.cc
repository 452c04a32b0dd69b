#include "server/router.h"

#include <fmt/format.h>

#include "registry/coerce.h"
#include "server/response.h"

namespace mqttspec::server {

using registry::Model;

Router::Router(registry::ModelRegistry& models, adapters::Database& db, RouterOptions options,
               Subscriptions* subscriptions)
    : models_(models),
      db_(db),
      options_(options),
      subscriptions_(subscriptions),
      dedup_(options.dedup_window_s, options.dedup_capacity) {}

Router::Stats Router::stats() const {
  return Stats{requests_.load(), errors_.load(), dedup_hits_.load()};
}

std::string Router::Handle(const ClientInfo& client, std::string_view payload) {
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

std::string Router::Unsubscribe(const ClientInfo& client, const Request& req) {
  Status st = subscriptions_
                  ? subscriptions_->Remove(client.id, req.subscription_id)
                  : Status(MakeError(ErrorCode::kInvalidOperation, "subscriptions are not served here"));
  if (!st.ok()) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return RenderError(req.id_json, st.error());
  }
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
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

std::string Router::Execute(const ClientInfo& client, Request& req) {
  if (req.op == Operation::kUnsubscribe) return Unsubscribe(client, req);  // names no model
  const Model& m = *req.model;
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  auto fail = [&](const Error& e) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return RenderError(req.id_json, e);
  };
  auto not_found = [&] {
    rapidjson::StringBuffer key;
    JsonWriter kw(key);
    registry::WriteJson(m.primary(), *req.key, kw);
    return fail(MakeError(ErrorCode::kNotFound, fmt::format("no {} with {} = {}",
                                                            m.qualified_name(), m.primary().name,
                                                            key.GetString())));
  };
  std::vector<int> all(m.fields().size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  static const adapters::FilterList kNoScope;

  switch (req.op) {
    case Operation::kRead: {
      if (req.key) {
        auto row = db_.ReadByKey(m, *req.key, req.query.columns, kNoScope);
        if (!row.ok()) return fail(row.error());
        if (!row.value()) return not_found();
        BeginSuccess(req.id_json, w);
        w.Key("data");
        WriteRow(m, req.query.columns, *row.value(), w);
        break;
      }
      auto result = db_.Read(req.query);
      if (!result.ok()) return fail(result.error());
      BeginSuccess(req.id_json, w);
      w.Key("data");
      w.StartArray();
      for (const Row& r : result.value().rows) WriteRow(m, req.query.columns, r, w);
      w.EndArray();
      w.Key("metadata");
      w.StartObject();
      w.Key("total");
      w.Int64(result.value().total);
      w.Key("count");
      w.Int64(static_cast<int64_t>(result.value().rows.size()));
      w.Key("limit");
      w.Int64(req.query.limit);
      w.Key("offset");
      w.Int64(req.query.offset);
      w.EndObject();
      break;
    }
    case Operation::kCreate: {
      auto rows = db_.Create(m, req.records);
      if (!rows.ok()) return fail(rows.error());
      BeginSuccess(req.id_json, w);
      w.Key("data");
      if (req.batch) w.StartArray();
      for (const Row& r : rows.value()) WriteRow(m, all, r, w);
      if (req.batch) w.EndArray();
      break;
    }
    case Operation::kUpdate: {
      auto row = db_.Update(m, *req.key, req.records.front(), kNoScope);
      if (!row.ok()) return fail(row.error());
      if (!row.value()) return not_found();
      BeginSuccess(req.id_json, w);
      w.Key("data");
      WriteRow(m, all, *row.value(), w);
      break;
    }
    case Operation::kDelete: {
      auto row = db_.Delete(m, *req.key, kNoScope);
      if (!row.ok()) return fail(row.error());
      if (!row.value()) return not_found();
      BeginSuccess(req.id_json, w);
      w.Key("data");
      w.StartObject();
      w.Key("deleted");
      w.Bool(true);
      w.Key("id");
      registry::WriteJson(m.primary(), (*row.value())[m.primary_index()], w);
      w.EndObject();
      break;
    }
    case Operation::kMeta: {
      BeginSuccess(req.id_json, w);
      w.Key("data");
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
        if (f.default_value) w.String(f.default_value->display.c_str());
        else w.Null();
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
      break;
    }
    case Operation::kSubscribe: {
      if (!subscriptions_) {
        return fail(MakeError(ErrorCode::kInvalidOperation, "subscriptions are not served here"));
      }
      auto sub = subscriptions_->Add(client.id, req.model, std::move(req.query.filters));
      if (!sub.ok()) return fail(sub.error());
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
    case Operation::kPing:
      return RenderPong(req.id_json);
  }
  EndResponse(w);
  return {buf.GetString(), buf.GetSize()};
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
