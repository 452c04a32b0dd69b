#include "protocol/request.h"

#include <fmt/format.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/json_document.h"
#include "common/json_text.h"
#include "protocol/json_read.h"
#include "protocol/options.h"
#include "protocol/record.h"
#include "registry/twin.h"

namespace mqttspec::protocol {

using registry::Field;
using registry::Model;

std::string_view OperationName(Operation op) {
  switch (op) {
    case Operation::kPing: return "ping";
    case Operation::kRead: return "read";
    case Operation::kCreate: return "create";
    case Operation::kUpdate: return "update";
    case Operation::kDelete: return "delete";
    case Operation::kMeta: return "meta";
    case Operation::kSubscribe: return "subscribe";
    case Operation::kUnsubscribe: return "unsubscribe";
  }
  return "?";
}

namespace {

Result<Operation> ParseOperation(std::string_view type, const JsonValue* opv) {
  if (type == "ping") return Operation::kPing;
  if (!opv || !opv->IsString())
    return Err(ErrorCode::kInvalidMessage, "operation must be a string");
  std::string_view op = Sv(*opv);
  static constexpr std::pair<std::string_view, Operation> kOps[] = {
      {"read", Operation::kRead},
      {"create", Operation::kCreate},
      {"update", Operation::kUpdate},
      {"delete", Operation::kDelete},
      {"meta", Operation::kMeta},
      {"subscribe", Operation::kSubscribe},
      {"unsubscribe", Operation::kUnsubscribe}};
  for (const auto& [name, value] : kOps) {
    if (name == op) return value;
  }
  return Err(ErrorCode::kInvalidOperation, fmt::format("unknown operation '{}'", Echo(op)));
}

}  // namespace

Status ParseJsonText(std::string_view payload, rapidjson::Document& doc, bool whole) {
  // Iterative parsing: deep nesting cannot overflow the stack. Invalid UTF-8 is refused.
  if (const size_t at = LoneLowSurrogate(payload); at != std::string_view::npos) {
    return Err(ErrorCode::kInvalidJson,
               fmt::format("invalid JSON at offset {}: a low surrogate escape (\\uDC00–\\uDFFF) "
                           "without a high surrogate before it",
                           at));
  }
  std::string patched;
  const std::string_view text = ExactNumbers(payload, &patched);
  constexpr unsigned kFlags = rapidjson::kParseIterativeFlag |
                              rapidjson::kParseValidateEncodingFlag |
                              rapidjson::kParseFullPrecisionFlag;
  if (whole)
    doc.Parse<kFlags>(text.data(), text.size());
  else
    doc.Parse<kFlags | rapidjson::kParseStopWhenDoneFlag>(text.data(), text.size());
  if (doc.HasParseError()) {
    return Err(ErrorCode::kInvalidJson,
               fmt::format("invalid JSON at offset {}: {}", doc.GetErrorOffset(),
                           rapidjson::GetParseError_En(doc.GetParseError())));
  }
  return OkStatus();
}

namespace {

// Parses the JSON and reads the id: the part of a request every answer needs.
Status ParseEnvelope(std::string_view payload, rapidjson::Document& doc, Request* out) {
  if (auto st = ParseJsonText(payload, doc, false); !st.ok()) return st;
  if (!doc.IsObject()) return Err(ErrorCode::kInvalidMessage, "a request must be a JSON object");
  if (const JsonValue* id = Member(doc, "id"); id && !id->IsNull()) {
    if (!id->IsString() && !id->IsNumber())
      return Err(ErrorCode::kInvalidMessage, "id must be a string or a number");
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    id->Accept(w);
    out->id_json.assign(buf.GetString(), buf.GetSize());
    out->id = id->IsString() ? std::string(Sv(*id)) : out->id_json;
  }
  return OkStatus();
}

}  // namespace

std::string RequestIdJson(std::string_view payload) {
  LocalDocument doc;
  Request req;
  (void)ParseEnvelope(payload, *doc, &req);
  return req.id_json;
}

Status ParseRequest(std::string_view payload, const registry::ModelRegistry& models,
                    const ParseLimits& limits, Request* out) {
  LocalDocument local;
  rapidjson::Document& doc = *local;
  if (auto st = ParseEnvelope(payload, doc, out); !st.ok()) return st;
  std::string_view type = "request";
  if (const JsonValue* t = Member(doc, "type")) {
    if (!t->IsString()) return Err(ErrorCode::kInvalidMessage, "type must be a string");
    type = Sv(*t);
    if (type != "request" && type != "subscription" && type != "ping") {
      return Err(ErrorCode::kInvalidMessage,
                 fmt::format("type '{}' is not request, subscription or ping", Echo(type)));
    }
  }
  auto op = ParseOperation(type, Member(doc, "operation"));
  if (!op.ok()) return op.take_error();
  out->op = op.value();
  const JsonValue* data = Member(doc, "data");
  if (out->op == Operation::kPing) return OkStatus();
  if (out->op == Operation::kUnsubscribe) {
    const JsonValue* sid = Member(doc, "subscription_id");
    if (!sid && data && data->IsObject()) sid = Member(*data, "subscription_id");
    if (!sid || !sid->IsString())
      return Err(ErrorCode::kInvalidMessage, "unsubscribe needs a subscription_id string");
    out->subscription_id = std::string(Sv(*sid));
    return OkStatus();
  }

  std::string_view schema = "public";
  if (const JsonValue* s = Member(doc, "schema"); s && !s->IsNull()) {
    if (!s->IsString()) return Err(ErrorCode::kInvalidMessage, "schema must be a string");
    if (s->GetStringLength() > 0) schema = Sv(*s);
  }
  const JsonValue* entity = Member(doc, "entity");
  if (!entity || !entity->IsString())
    return Err(ErrorCode::kInvalidMessage, "entity must be a string");
  out->model = models.Find(schema, Sv(*entity));
  if (!out->model) {
    return Err(ErrorCode::kModelNotFound,
               fmt::format("no model {}.{}", Echo(schema), Echo(Sv(*entity))));
  }
  const Model& m = *out->model;
  out->query.model = out->model;

  // The single-record target: record_id, else the primary key inside data.
  const Field& pk = m.primary();
  if (const JsonValue* rid = Member(doc, "record_id"); rid && !rid->IsNull()) {
    if (!rid->IsString() && !rid->IsNumber())
      return Err(ErrorCode::kInvalidMessage, "record_id must be a string or a number");
    auto v = NonNull(pk, *rid, "record_id");
    if (!v.ok()) return v.take_error();
    out->key = std::move(v).value();
  } else if (data && data->IsObject() && out->op != Operation::kCreate) {
    if (const JsonValue* k = Member(*data, pk.name.c_str()); k && !k->IsNull()) {
      auto v = NonNull(pk, *k, "primary key");
      if (!v.ok()) return v.take_error();
      out->key = std::move(v).value();
    }
  }

  const JsonValue* options = Member(doc, "options");
  switch (out->op) {
    case Operation::kRead:
    case Operation::kSubscribe:
      if (auto st = ParseOptions(m, options, limits, &out->query); !st.ok()) return st;
      return ParseSinceChangeSeq(options, out->op == Operation::kSubscribe, &out->since_change_seq);
    case Operation::kCreate: {
      if (!data) return Err(ErrorCode::kInvalidMessage, "create needs data");
      if (data->IsArray()) {
        out->batch = true;
        if (data->Empty())
          return Err(ErrorCode::kInvalidMessage, "create needs at least one record");
        if (data->Size() > limits.max_batch)
          return Err(ErrorCode::kInvalidMessage,
                     fmt::format("a batch create takes at most {} records", limits.max_batch));
        for (const auto& item : data->GetArray()) {
          auto r = ParseRecord(m, item, false, std::nullopt);
          if (!r.ok()) return r.take_error();
          out->records.push_back(std::move(r).value());
        }
        return OkStatus();
      }
      auto r = ParseRecord(m, *data, false, std::nullopt);
      if (!r.ok()) return r.take_error();
      out->records.push_back(std::move(r).value());
      return OkStatus();
    }
    case Operation::kUpdate: {
      if (!out->key)
        return Err(ErrorCode::kInvalidMessage,
                   fmt::format("update needs record_id or '{}' in data", pk.name));
      if (!data || !data->IsObject())
        return Err(ErrorCode::kInvalidMessage, "update needs a data object");
      rapidjson::Value without;  // a twin's data without expected_version
      if (registry::IsTwin(m)) {
        if (const JsonValue* v = Member(*data, "expected_version")) {
          if (!v->IsInt64() || v->GetInt64() < 0)
            return Err(ErrorCode::kInvalidValue,
                       "expected_version must be an integer, 0 or more (the twin's version)");
          out->expected_version = v->GetInt64();
          without.CopyFrom(*data, doc.GetAllocator());
          without.RemoveMember("expected_version");
          data = &without;
        }
      }
      auto r = ParseRecord(m, *data, true, out->key);
      if (!r.ok()) return r.take_error();
      if (r.value().empty())
        return Err(ErrorCode::kInvalidMessage, "update needs at least one field to change");
      out->records.push_back(std::move(r).value());
      return ParseColumns(m, nullptr, nullptr, &out->query.columns);
    }
    case Operation::kDelete:
      if (!out->key)
        return Err(ErrorCode::kInvalidMessage,
                   fmt::format("delete needs record_id or '{}' in data", pk.name));
      return OkStatus();
    default: return OkStatus();
  }
}

}  // namespace mqttspec::protocol
