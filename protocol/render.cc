#include "protocol/render.h"

#include <fmt/format.h>

#include <chrono>
#include <random>

#include "common/time_util.h"
#include "registry/coerce.h"

namespace mqttspec::protocol {

void WriteRow(const registry::Model& m, const std::vector<int>& columns, const Row& row,
              JsonWriter& w) {
  w.StartObject();
  for (size_t i = 0; i < columns.size(); ++i) {
    const auto& f = m.field(static_cast<size_t>(columns[i]));
    w.Key(f.name.data(), static_cast<rapidjson::SizeType>(f.name.size()));
    registry::WriteJson(f, row[i], w);
  }
  w.EndObject();
}

namespace {

void Head(std::string_view id_json, const char* type, JsonWriter& w) {
  w.StartObject();
  w.Key("id");
  w.RawValue(id_json.data(), id_json.size(), rapidjson::kStringType);
  w.Key("type");
  w.String(type);
}

void End(JsonWriter& w) {
  w.Key("timestamp");
  w.String(NowIso8601().c_str());
  w.EndObject();
}

void String(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

// {"code", "message"[, "committed": true]}: an error response's and a notification's error.
void ErrorObject(const Error& e, bool committed, JsonWriter& w) {
  w.StartObject();
  w.Key("code");
  String(w, ErrorCodeName(e.code));
  w.Key("message");
  String(w, e.message);
  if (committed) {
    w.Key("committed");
    w.Bool(true);
  }
  w.EndObject();
}

void Row(const Reply& r, const std::optional<mqttspec::Row>& row, JsonWriter& w) {
  if (row)
    WriteRow(*r.model, r.columns, *row, w);
  else
    w.Null();
}

void Meta(const registry::Model& m, std::string_view table, JsonWriter& w) {
  w.StartObject();
  w.Key("schema");
  String(w, m.schema());
  w.Key("entity");
  String(w, m.entity());
  w.Key("table");
  String(w, table);
  w.Key("primary_key");
  String(w, m.primary().name);
  w.Key("columns");
  w.StartArray();
  for (const auto& f : m.fields()) {
    w.StartObject();
    w.Key("name");
    String(w, f.name);
    w.Key("type");
    String(w, registry::FieldTypeName(f.type));
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
      String(w, f.default_value->display);
    else
      w.Null();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void Data(const Reply& r, JsonWriter& w) {
  using Kind = Reply::Kind;
  switch (r.kind) {
    case Kind::kOne: Row(r, r.rows.empty() ? std::nullopt : r.rows.front(), w); return;
    case Kind::kList:
    case Kind::kCreated: {
      const bool array = r.kind == Kind::kList || r.batch;
      if (array) w.StartArray();
      for (const auto& row : r.rows) Row(r, row, w);
      if (array) w.EndArray();
      return;
    }
    case Kind::kDeleted:
      w.StartObject();
      w.Key("deleted");
      w.Bool(true);
      w.Key("id");
      registry::WriteJson(r.model->primary(), *r.key, w);
      w.EndObject();
      return;
    case Kind::kMeta: Meta(*r.model, r.table, w); return;
    case Kind::kSubscribed:
      w.StartObject();
      w.Key("subscription_id");
      String(w, r.subscription_id);
      w.Key("notify_topic");
      String(w, r.notify_topic);
      w.EndObject();
      return;
    case Kind::kUnsubscribed:
      w.StartObject();
      w.Key("unsubscribed");
      w.Bool(true);
      w.Key("subscription_id");
      String(w, r.subscription_id);
      w.EndObject();
      return;
  }
}

}  // namespace

std::string RenderReply(std::string_view id_json, const Reply& r) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  Head(id_json, "response", w);
  w.Key("success");
  w.Bool(true);
  w.Key("data");
  Data(r, w);
  if (r.kind == Reply::Kind::kList || r.change_seq) {
    w.Key("metadata");
    w.StartObject();
    if (r.kind == Reply::Kind::kList) {
      w.Key("total");
      w.Int64(r.total);
      w.Key("count");
      w.Int64(static_cast<int64_t>(r.rows.size()));
      w.Key("limit");
      w.Int64(r.limit);
      w.Key("offset");
      w.Int64(r.offset);
    }
    if (r.change_seq) {
      w.Key("change_seq");
      w.Int64(*r.change_seq);
    }
    w.EndObject();
  }
  End(w);
  return {buf.GetString(), buf.GetSize()};
}

std::string RenderError(std::string_view id_json, const Error& e, bool committed) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  Head(id_json, "response", w);
  w.Key("success");
  w.Bool(false);
  w.Key("error");
  ErrorObject(e, committed, w);
  End(w);
  return {buf.GetString(), buf.GetSize()};
}

const std::string& ProcessInstance() {
  static const std::string id = [] {
    std::random_device rd;
    const uint64_t v =
        (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
        static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    return fmt::format("{:016x}", v);
  }();
  return id;
}

std::string RenderPong(std::string_view id_json) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  Head(id_json, "pong", w);
  w.Key("instance");
  String(w, ProcessInstance());
  End(w);
  return {buf.GetString(), buf.GetSize()};
}

NotificationTemplate::NotificationTemplate(std::string_view operation, const registry::Model& m,
                                           const mqttspec::Row& row, int64_t change_seq) {
  std::vector<int> all(m.fields().size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  rapidjson::StringBuffer data;
  JsonWriter w(data);
  WriteRow(m, all, row, w);
  head_ = R"({"type":"notification","operation":")";
  head_ += operation;
  head_ += R"(","subscription_id":")";
  middle_ = R"(","schema":")" + m.schema() + R"(","entity":")" + m.entity() + R"(","data":)";
  middle_.append(data.GetString(), data.GetSize());
  middle_ += R"(,"seq":)";
  if (change_seq > 0) tail_ = R"(,"change_seq":)" + std::to_string(change_seq);
  tail_ += R"(,"timestamp":")" + NowIso8601() + "\"}";
}

std::string NotificationTemplate::For(std::string_view subscription_id, uint64_t seq,
                                      bool match) const {
  std::string out;
  out.reserve(head_.size() + subscription_id.size() + middle_.size() + tail_.size() + 32);
  out += head_;
  out += subscription_id;
  out += middle_;
  out += std::to_string(seq);
  if (!match) out += R"(,"match":false)";
  out += tail_;
  return out;
}

namespace {

void WriteFilters(const registry::Model& m, const adapters::FilterList& filters, JsonWriter& w) {
  w.StartArray();
  for (const adapters::FilterNode& n : filters) {
    w.StartObject();
    w.Key("logic_operator");
    w.String(n.logic == adapters::Logic::kOr ? "OR" : "AND");
    if (n.is_group) {
      w.Key("filters");
      WriteFilters(m, n.children, w);
    } else {
      const registry::Field& f = m.field(static_cast<size_t>(n.cond.field));
      w.Key("column");
      String(w, f.name);
      w.Key("operator");
      String(w, adapters::OpName(n.cond.op));
      const auto& values = n.cond.values;
      const bool list = n.cond.op == adapters::Op::kIn || n.cond.op == adapters::Op::kNotIn ||
                        n.cond.op == adapters::Op::kBetween;
      if (list || !values.empty()) {
        w.Key("value");
        if (list) w.StartArray();
        for (const Value& v : values) registry::WriteJson(f, v, w);
        if (list) w.EndArray();
      }
    }
    w.EndObject();
  }
  w.EndArray();
}

}  // namespace

std::string RenderFilters(const registry::Model& model, const adapters::FilterList& filters) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  WriteFilters(model, filters, w);
  return {buf.GetString(), buf.GetSize()};
}

namespace {

// {"type":"notification","operation":…,"subscription_id":…,"change_seq":…, then the caller's.
void NotificationHead(std::string_view operation, std::string_view subscription_id,
                      int64_t change_seq, JsonWriter& w) {
  w.StartObject();
  w.Key("type");
  w.String("notification");
  w.Key("operation");
  String(w, operation);
  w.Key("subscription_id");
  String(w, subscription_id);
  w.Key("change_seq");
  w.Int64(change_seq);
}

}  // namespace

std::string RenderReplayComplete(std::string_view subscription_id, int64_t change_seq,
                                 uint64_t replayed) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  NotificationHead("replay_complete", subscription_id, change_seq, w);
  w.Key("replayed");
  w.Uint64(replayed);
  End(w);
  return {buf.GetString(), buf.GetSize()};
}

std::string RenderResyncRequired(std::string_view subscription_id, int64_t change_seq,
                                 const Error& error) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  NotificationHead("resync_required", subscription_id, change_seq, w);
  w.Key("error");
  ErrorObject(error, /*committed=*/false, w);
  End(w);
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace mqttspec::protocol
