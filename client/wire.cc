#include "client/wire.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "mqttspec/client.h"

namespace mqttspec::client::wire {
namespace {

void AppendString(std::string& out, std::string_view s) { out += Json(s).text(); }

void AppendFilter(std::string& out, const Filter& f) {
  out += '{';
  if (!f.group.empty()) {
    out += R"("logic_operator":)";
    AppendString(out, f.logic);
    out += R"(,"filters":)";
    out += FiltersJson(f.group);
  } else {
    out += R"("column":)";
    AppendString(out, f.column);
    out += R"(,"operator":)";
    AppendString(out, f.op);
    if (f.op != "is_null" && f.op != "is_not_null") {
      out += R"(,"value":)";
      out += f.value.text();
    }
    if (!f.logic.empty() && f.logic != "AND") {
      out += R"(,"logic_operator":)";
      AppendString(out, f.logic);
    }
  }
  out += '}';
}

void AppendNames(std::string& out, std::string_view key, const std::vector<std::string>& names) {
  if (names.empty()) return;
  if (out.size() > 1) out += ',';
  AppendString(out, key);
  out += ":[";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    AppendString(out, names[i]);
  }
  out += ']';
}

std::string Write(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return {buf.GetString(), buf.GetSize()};
}

std::string Str(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return "";
  return {it->value.GetString(), it->value.GetStringLength()};
}

int64_t Int(const rapidjson::Value& obj, const char* key, bool* present = nullptr) {
  auto it = obj.FindMember(key);
  const bool ok = it != obj.MemberEnd() && it->value.IsInt64();
  if (present) *present = ok;
  return ok ? it->value.GetInt64() : 0;
}

Error ErrorOf(const rapidjson::Value& obj) {
  Error e;
  auto it = obj.FindMember("error");
  if (it == obj.MemberEnd() || !it->value.IsObject()) {
    e.code = "internal";
    e.message = "an error answer without an error object";
    return e;
  }
  e.code = Str(it->value, "code");
  e.message = Str(it->value, "message");
  auto c = it->value.FindMember("committed");
  e.committed = c != it->value.MemberEnd() && c->value.IsBool() && c->value.GetBool();
  if (e.code.empty()) e.code = "internal";
  return e;
}

}  // namespace

std::string FiltersJson(const std::vector<Filter>& filters) {
  std::string out = "[";
  for (size_t i = 0; i < filters.size(); ++i) {
    if (i) out += ',';
    AppendFilter(out, filters[i]);
  }
  out += ']';
  return out;
}

std::string ReadOptionsJson(const ReadOptions& o) {
  std::string out = "{";
  if (!o.filters.empty()) out += R"("filters":)" + FiltersJson(o.filters);
  if (!o.sort.empty()) {
    if (out.size() > 1) out += ',';
    out += R"("sort":[)";
    for (size_t i = 0; i < o.sort.size(); ++i) {
      if (i) out += ',';
      out += R"({"column":)";
      AppendString(out, o.sort[i].column);
      out += R"(,"direction":)";
      AppendString(out, o.sort[i].direction);
      if (!o.sort[i].nulls.empty()) {
        out += R"(,"nulls":)";
        AppendString(out, o.sort[i].nulls);
      }
      out += '}';
    }
    out += ']';
  }
  AppendNames(out, "columns", o.columns);
  AppendNames(out, "omit_columns", o.omit_columns);
  if (o.limit)
    out += (out.size() > 1 ? "," : "") + std::string(R"("limit":)") + std::to_string(*o.limit);
  if (o.offset)
    out += (out.size() > 1 ? "," : "") + std::string(R"("offset":)") + std::to_string(*o.offset);
  out += '}';
  return out;
}

std::string SubscribeOptionsJson(const std::vector<Filter>& filters,
                                 std::optional<int64_t> since_change_seq) {
  std::string out = "{";
  if (!filters.empty()) out += R"("filters":)" + FiltersJson(filters);
  if (since_change_seq) {
    if (out.size() > 1) out += ',';
    out += R"("since_change_seq":)" + std::to_string(*since_change_seq);
  }
  out += '}';
  return out;
}

std::string RenderRequest(std::string_view id, const RequestParts& p) {
  std::string out;
  out.reserve(128 + (p.data ? p.data->text().size() : 0) + p.options.size());
  out += R"({"id":)";
  AppendString(out, id);
  out += R"(,"type":)";
  AppendString(out, p.type);
  if (!p.operation.empty()) {
    out += R"(,"operation":)";
    AppendString(out, p.operation);
  }
  if (p.entity) {
    out += R"(,"schema":)";
    AppendString(out, p.entity->schema);
    out += R"(,"entity":)";
    AppendString(out, p.entity->name);
  }
  if (p.record_id) out += R"(,"record_id":)" + p.record_id->text();
  if (p.data) out += R"(,"data":)" + p.data->text();
  if (!p.options.empty()) out += R"(,"options":)" + p.options;
  if (!p.subscription_id.empty()) {
    out += R"(,"subscription_id":)";
    AppendString(out, p.subscription_id);
  }
  out += '}';
  return out;
}

std::string CheckEntity(const Entity& e) {
  if (e.name.empty()) return "an entity name is required";
  if (e.schema.empty()) return "the schema name is empty";
  return "";
}

std::optional<Incoming> ParseIncoming(std::string_view payload, std::string* why) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(payload.data(), payload.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    if (why) *why = "not a JSON object";
    return std::nullopt;
  }
  Incoming in;
  const std::string type = Str(doc, "type");
  auto id = doc.FindMember("id");
  if (id != doc.MemberEnd()) {
    if (id->value.IsString())
      in.id.assign(id->value.GetString(), id->value.GetStringLength());
    else if (id->value.IsNumber())
      in.id = Write(id->value);
  }
  in.reply.timestamp = Str(doc, "timestamp");
  if (type == "pong") {
    in.kind = Incoming::Kind::kPong;
    in.instance = Str(doc, "instance");
    in.reply.ok = true;
    in.reply.data = Json::Object({{"instance", Json(in.instance)}});
    return in;
  }
  if (type == "response") {
    in.kind = Incoming::Kind::kResponse;
    auto s = doc.FindMember("success");
    in.reply.ok = s != doc.MemberEnd() && s->value.IsBool() && s->value.GetBool();
    if (in.reply.ok) {
      auto d = doc.FindMember("data");
      if (d != doc.MemberEnd()) in.reply.data = JsonAccess::FromText(Write(d->value));
      auto m = doc.FindMember("metadata");
      if (m != doc.MemberEnd()) in.reply.metadata = JsonAccess::FromText(Write(m->value));
    } else {
      in.reply.error = ErrorOf(doc);
    }
    return in;
  }
  if (type == "notification") {
    in.kind = Incoming::Kind::kNotification;
    in.subscription_id = Str(doc, "subscription_id");
    Notification& n = in.note;
    n.operation = Str(doc, "operation");
    n.schema = Str(doc, "schema");
    n.entity = Str(doc, "entity");
    n.timestamp = in.reply.timestamp;
    n.seq = static_cast<uint64_t>(std::max<int64_t>(Int(doc, "seq"), 0));
    n.change_seq = Int(doc, "change_seq", &in.has_change_seq);
    auto m = doc.FindMember("match");
    n.match = !(m != doc.MemberEnd() && m->value.IsBool() && !m->value.GetBool());
    auto d = doc.FindMember("data");
    if (d != doc.MemberEnd()) n.row = JsonAccess::FromText(Write(d->value));
    in.replayed = Int(doc, "replayed");
    if (n.operation == "resync_required") in.error = ErrorOf(doc);
    if (in.subscription_id.empty() || n.operation.empty()) {
      if (why) *why = "a notification without subscription_id or operation";
      return std::nullopt;
    }
    return in;
  }
  if (why) *why = "unknown message type '" + type.substr(0, 32) + "'";
  return std::nullopt;
}

}  // namespace mqttspec::client::wire
