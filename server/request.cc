#include "server/request.h"

#include <fmt/format.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>

#include "common/time_util.h"
#include "registry/coerce.h"

namespace mqttspec::server {

using adapters::Condition;
using adapters::FilterList;
using adapters::FilterNode;
using adapters::Op;
using registry::Field;
using registry::FieldType;
using registry::Model;
using JsonValue = rapidjson::Value;

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

Error Err(ErrorCode code, std::string msg) { return MakeError(code, std::move(msg)); }

// Client text echoed in a message is cut short and stripped of control characters.
std::string Echo(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
  if (s.size() > 64) out += "…";
  return out;
}

std::string_view Sv(const JsonValue& v) { return {v.GetString(), v.GetStringLength()}; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

const JsonValue* Member(const JsonValue& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

Result<int> ResolveColumn(const Model& m, const JsonValue* v, ErrorCode missing_code,
                          const char* what) {
  if (!v || !v->IsString())
    return Err(missing_code, fmt::format("{} must be a column name string", what));
  int idx = m.FindField(Sv(*v));
  if (idx < 0) {
    return Err(ErrorCode::kUnknownColumn,
               fmt::format("column '{}' is not a field of {}", Echo(Sv(*v)), m.qualified_name()));
  }
  return idx;
}

Result<Value> NonNull(const Field& f, const JsonValue& v, std::string_view op) {
  if (v.IsNull()) {
    return Err(
        ErrorCode::kInvalidValue,
        fmt::format("operator '{}' on '{}' needs a non-null value (use is_null)", op, f.name));
  }
  return registry::CoerceJson(f, v);
}

class FilterParser {
 public:
  FilterParser(const Model& m, const ParseLimits& l) : m_(m), l_(l) {}

  Result<FilterList> List(const JsonValue& arr, int depth) {
    if (!arr.IsArray()) return Err(ErrorCode::kInvalidFilter, "filters must be an array");
    if (depth > l_.max_filter_depth) {
      return Err(ErrorCode::kInvalidFilter,
                 fmt::format("filter groups nest deeper than {}", l_.max_filter_depth));
    }
    FilterList out;
    for (const auto& item : arr.GetArray()) {
      if (++count_ > l_.max_filters) {
        return Err(ErrorCode::kInvalidFilter, fmt::format("more than {} filters", l_.max_filters));
      }
      auto node = Node(item, depth);
      if (!node.ok()) return node.take_error();
      out.push_back(std::move(node).value());
    }
    return out;
  }

 private:
  Result<FilterNode> Node(const JsonValue& f, int depth) {
    if (!f.IsObject()) return Err(ErrorCode::kInvalidFilter, "each filter must be an object");
    FilterNode node;
    if (const JsonValue* lo = Member(f, "logic_operator")) {
      if (!lo->IsString())
        return Err(ErrorCode::kInvalidFilter, "logic_operator must be AND or OR");
      if (EqualsIgnoreCase(Sv(*lo), "or"))
        node.logic = adapters::Logic::kOr;
      else if (!EqualsIgnoreCase(Sv(*lo), "and"))
        return Err(ErrorCode::kInvalidFilter,
                   fmt::format("logic_operator '{}' is not AND or OR", Echo(Sv(*lo))));
    }
    if (const JsonValue* sub = Member(f, "filters")) {
      node.is_group = true;
      auto children = List(*sub, depth + 1);
      if (!children.ok()) return children.take_error();
      node.children = std::move(children).value();
      return node;
    }
    auto col = ResolveColumn(m_, Member(f, "column"), ErrorCode::kInvalidFilter, "filter column");
    if (!col.ok()) return col.take_error();
    Condition& c = node.cond;
    c.field = col.value();
    const Field& field = m_.field(static_cast<size_t>(c.field));
    const JsonValue* opv = Member(f, "operator");
    if (!opv || !opv->IsString()) return Err(ErrorCode::kInvalidFilter, "filter needs an operator");
    auto op = adapters::ParseOp(Sv(*opv));
    if (!op) {
      return Err(ErrorCode::kInvalidFilter, fmt::format("unknown operator '{}'", Echo(Sv(*opv))));
    }
    c.op = *op;
    std::string_view opname = adapters::OpName(c.op);
    // JSON values compare as text on SQLite and as jsonb on PostgreSQL: rather than differ, json
    // fields filter by null-ness only.
    if (field.type == FieldType::kJson && c.op != Op::kIsNull && c.op != Op::kIsNotNull) {
      return Err(ErrorCode::kInvalidFilter,
                 fmt::format("json field '{}' can be filtered only with is_null / is_not_null",
                             field.name));
    }
    const JsonValue* value = Member(f, "value");
    auto need_value = [&]() -> Status {
      if (!value) {
        return Err(ErrorCode::kInvalidFilter, fmt::format("operator '{}' needs a value", opname));
      }
      return OkStatus();
    };
    switch (c.op) {
      case Op::kEq:
      case Op::kNeq:
      case Op::kGt:
      case Op::kGte:
      case Op::kLt:
      case Op::kLte: {
        if (auto st = need_value(); !st.ok()) return st.take_error();
        auto v = NonNull(field, *value, opname);
        if (!v.ok()) return v.take_error();
        c.values.push_back(std::move(v).value());
        break;
      }
      case Op::kLike:
      case Op::kIlike:
      case Op::kContains:
      case Op::kStartsWith: {
        if (field.type != FieldType::kText) {
          return Err(ErrorCode::kInvalidFilter,
                     fmt::format("operator '{}' needs a text column; '{}' is {}", opname,
                                 field.name, registry::FieldTypeName(field.type)));
        }
        if (auto st = need_value(); !st.ok()) return st.take_error();
        if (!value->IsString()) {
          return Err(ErrorCode::kInvalidValue,
                     fmt::format("operator '{}' needs a string value", opname));
        }
        if (Sv(*value).find('\0') != std::string_view::npos) {
          return Err(ErrorCode::kInvalidValue,
                     fmt::format("the value of '{}' may not contain NUL", opname));
        }
        if (c.op == Op::kLike || c.op == Op::kIlike) {
          // A pattern ending in an unescaped backslash matches nothing on SQLite and is an error on
          // PostgreSQL: refuse it on both.
          std::string_view pat = Sv(*value);
          size_t backslashes = 0;
          while (backslashes < pat.size() && pat[pat.size() - 1 - backslashes] == '\\')
            ++backslashes;
          if (backslashes % 2 == 1) {
            return Err(ErrorCode::kInvalidFilter,
                       fmt::format("pattern of '{}' ends with an unescaped '\\'", opname));
          }
        }
        c.values.push_back(Value{std::string(Sv(*value))});
        break;
      }
      case Op::kIn:
      case Op::kNotIn:
      case Op::kBetween: {
        if (auto st = need_value(); !st.ok()) return st.take_error();
        if (!value->IsArray()) {
          return Err(ErrorCode::kInvalidFilter,
                     fmt::format("operator '{}' needs an array value", opname));
        }
        size_t n = value->Size();
        if (c.op == Op::kBetween && n != 2) {
          return Err(ErrorCode::kInvalidFilter, "operator 'between' needs [low, high]");
        }
        if (n > l_.max_list_values) {
          return Err(ErrorCode::kInvalidFilter, fmt::format("operator '{}' takes at most {} values",
                                                            opname, l_.max_list_values));
        }
        for (const auto& e : value->GetArray()) {
          auto v = NonNull(field, e, opname);
          if (!v.ok()) return v.take_error();
          c.values.push_back(std::move(v).value());
        }
        break;
      }
      case Op::kIsNull:
      case Op::kIsNotNull: break;
    }
    return node;
  }

  const Model& m_;
  const ParseLimits& l_;
  int count_ = 0;
};

Status ParseSort(const Model& m, const JsonValue& v, std::vector<adapters::SortKey>* out) {
  if (!v.IsArray()) return Err(ErrorCode::kInvalidOption, "sort must be an array");
  if (v.Size() > static_cast<rapidjson::SizeType>(m.fields().size()) * 2)
    return Err(ErrorCode::kInvalidOption, "too many sort keys");
  for (const auto& s : v.GetArray()) {
    if (!s.IsObject()) return Err(ErrorCode::kInvalidOption, "each sort key must be an object");
    auto col = ResolveColumn(m, Member(s, "column"), ErrorCode::kInvalidOption, "sort column");
    if (!col.ok()) return col.take_error();
    adapters::SortKey key;
    key.field = col.value();
    if (m.field(static_cast<size_t>(key.field)).type == FieldType::kJson) {
      return Err(ErrorCode::kInvalidOption,
                 fmt::format("json field '{}' cannot be sorted on",
                             m.field(static_cast<size_t>(key.field)).name));
    }
    if (const JsonValue* d = Member(s, "direction")) {
      if (!d->IsString())
        return Err(ErrorCode::kInvalidOption, "sort direction must be asc or desc");
      if (EqualsIgnoreCase(Sv(*d), "desc"))
        key.desc = true;
      else if (!EqualsIgnoreCase(Sv(*d), "asc"))
        return Err(ErrorCode::kInvalidOption,
                   fmt::format("sort direction '{}' is not asc or desc", Echo(Sv(*d))));
    }
    if (const JsonValue* n = Member(s, "nulls")) {
      if (n->IsString() && EqualsIgnoreCase(Sv(*n), "first"))
        key.nulls = adapters::Nulls::kFirst;
      else if (n->IsString() && EqualsIgnoreCase(Sv(*n), "last"))
        key.nulls = adapters::Nulls::kLast;
      else
        return Err(ErrorCode::kInvalidOption, "sort nulls must be first or last");
    }
    out->push_back(key);
  }
  return OkStatus();
}

Status ParseColumns(const Model& m, const JsonValue* columns, const JsonValue* omit,
                    std::vector<int>* out) {
  std::vector<bool> selected(m.fields().size(), columns == nullptr);
  auto each = [&](const JsonValue* list, const char* what, bool value) -> Status {
    if (!list || list->IsNull()) return OkStatus();
    if (!list->IsArray())
      return Err(ErrorCode::kInvalidOption, fmt::format("{} must be an array", what));
    for (const auto& c : list->GetArray()) {
      auto idx = ResolveColumn(m, &c, ErrorCode::kInvalidOption, what);
      if (!idx.ok()) return idx.take_error();
      selected[static_cast<size_t>(idx.value())] = value;
    }
    return OkStatus();
  };
  if (columns && columns->IsArray() && columns->Empty()) selected.assign(selected.size(), true);
  if (auto st = each(columns, "columns", true); !st.ok()) return st;
  if (auto st = each(omit, "omit_columns", false); !st.ok()) return st;
  for (size_t i = 0; i < selected.size(); ++i) {
    if (selected[i]) out->push_back(static_cast<int>(i));
  }
  if (out->empty()) return Err(ErrorCode::kInvalidOption, "no columns left to return");
  return OkStatus();
}

Result<int64_t> NonNegativeInt(const JsonValue& v, const char* what) {
  if (v.IsInt64() && v.GetInt64() >= 0) return v.GetInt64();
  if (v.IsUint64()) return std::numeric_limits<int64_t>::max();
  if (v.IsDouble() && v.GetDouble() >= 0 &&
      v.GetDouble() == static_cast<double>(static_cast<int64_t>(std::min(v.GetDouble(), 9e18))))
    return static_cast<int64_t>(std::min(v.GetDouble(), 9e18));
  return Err(ErrorCode::kInvalidOption, fmt::format("{} must be a non-negative integer", what));
}

// Options the service does not implement are refused by name rather than ignored: a client
// paging by cursor would otherwise get page one again, forever. Those of the Go mqttspec that
// have no equivalent here are tolerated only when null or "" (sent as "not used").
Status CheckOptionNames(const JsonValue& options) {
  static constexpr std::string_view kKnown[] = {"filters", "sort",  "columns",
                                                "omit_columns", "limit", "offset"};
  static constexpr std::string_view kUnsupported[] = {"cursor_forward", "cursor_backward",
                                                      "fetch_row_number", "parameters"};
  for (const auto& kv : options.GetObject()) {
    const std::string_view name(kv.name.GetString(), kv.name.GetStringLength());
    if (std::find(std::begin(kKnown), std::end(kKnown), name) != std::end(kKnown)) continue;
    const bool unused = kv.value.IsNull() || (kv.value.IsString() && kv.value.GetStringLength() == 0);
    if (std::find(std::begin(kUnsupported), std::end(kUnsupported), name) !=
        std::end(kUnsupported)) {
      if (unused) continue;
      return Err(ErrorCode::kInvalidOption,
                 fmt::format("option '{}' is not supported; page with limit and offset, sorted "
                             "by a unique column",
                             name));
    }
    return Err(ErrorCode::kInvalidOption,
               fmt::format("option '{}' is unknown (known: filters, sort, columns, omit_columns, "
                           "limit, offset)",
                           name.substr(0, 64)));
  }
  return OkStatus();
}

Status ParseOptions(const Model& m, const JsonValue* options, const ParseLimits& limits,
                    adapters::ReadQuery* q) {
  q->limit = limits.max_rows;
  const JsonValue* columns = nullptr;
  const JsonValue* omit = nullptr;
  if (options && !options->IsNull()) {
    if (!options->IsObject()) return Err(ErrorCode::kInvalidOption, "options must be an object");
    for (const char* refused : {"customOperators", "custom_operators", "computedColumns",
                                "computed_columns", "preload", "sql_joins", "where", "sql"}) {
      if (Member(*options, refused)) {
        return Err(
            ErrorCode::kInvalidOption,
            fmt::format("option '{}' is refused: client-supplied SQL is not accepted", refused));
      }
    }
    if (auto st = CheckOptionNames(*options); !st.ok()) return st;
    if (const JsonValue* f = Member(*options, "filters"); f && !f->IsNull()) {
      auto filters = FilterParser(m, limits).List(*f, 0);
      if (!filters.ok()) return filters.take_error();
      q->filters = std::move(filters).value();
    }
    if (const JsonValue* s = Member(*options, "sort"); s && !s->IsNull()) {
      if (auto st = ParseSort(m, *s, &q->sort); !st.ok()) return st;
    }
    columns = Member(*options, "columns");
    omit = Member(*options, "omit_columns");
    if (const JsonValue* l = Member(*options, "limit"); l && !l->IsNull()) {
      auto v = NonNegativeInt(*l, "limit");
      if (!v.ok()) return v.take_error();
      if (v.value() > 0) q->limit = std::min(v.value(), limits.max_rows);
    }
    if (const JsonValue* o = Member(*options, "offset"); o && !o->IsNull()) {
      auto v = NonNegativeInt(*o, "offset");
      if (!v.ok()) return v.take_error();
      q->offset = v.value();
    }
  }
  return ParseColumns(m, columns && columns->IsNull() ? nullptr : columns, omit, &q->columns);
}

// Fields of one data object → a record; `partial` (update) skips defaults and required checks.
Result<adapters::Record> ParseRecord(const Model& m, const JsonValue& obj, bool partial,
                                     const std::optional<Value>& key) {
  if (!obj.IsObject()) return Err(ErrorCode::kInvalidMessage, "data must be an object");
  adapters::Record rec;
  for (const auto& kv : obj.GetObject()) {
    auto idx = ResolveColumn(m, &kv.name, ErrorCode::kInvalidMessage, "data key");
    if (!idx.ok()) return idx.take_error();
    const size_t i = static_cast<size_t>(idx.value());
    const Field& f = m.field(i);
    auto v = registry::CoerceJson(f, kv.value);
    if (!v.ok()) return v.take_error();
    if (partial && f.primary) {
      if (key && *key != v.value())
        return Err(ErrorCode::kInvalidValue,
                   fmt::format("the primary key '{}' cannot be changed", f.name));
      continue;
    }
    rec.push_back({idx.value(), std::move(v).value()});
  }
  if (partial) return rec;
  ApplyDefaults(m, &rec);  // required fields are checked after the BeforeCreate hooks
  return rec;
}

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

namespace {

// Parses the JSON and reads the id: the part of a request every answer needs.
Status ParseEnvelope(std::string_view payload, rapidjson::Document& doc, Request* out) {
  // Iterative parsing: deep nesting cannot overflow the stack. Invalid UTF-8 is refused.
  doc.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
            rapidjson::kParseStopWhenDoneFlag | rapidjson::kParseFullPrecisionFlag>(payload.data(),
                                                                                    payload.size());
  if (doc.HasParseError()) {
    return Err(ErrorCode::kInvalidJson,
               fmt::format("invalid JSON at offset {}: {}", doc.GetErrorOffset(),
                           rapidjson::GetParseError_En(doc.GetParseError())));
  }
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

void ApplyDefaults(const Model& m, adapters::Record* rec) {
  std::vector<bool> given(m.fields().size(), false);
  for (const auto& a : *rec) given[static_cast<size_t>(a.field)] = true;
  for (size_t i = 0; i < m.fields().size(); ++i) {
    const Field& f = m.field(i);
    if (given[i] || !f.default_value) continue;
    rec->push_back({static_cast<int>(i),
                    f.default_value->now ? Value{NowIso8601()} : f.default_value->literal});
  }
}

Status CheckRequired(const Model& m, const adapters::Record& rec) {
  std::vector<bool> given(m.fields().size(), false);
  for (const auto& a : rec) given[static_cast<size_t>(a.field)] = true;
  for (size_t i = 0; i < m.fields().size(); ++i) {
    const Field& f = m.field(i);
    if (!given[i] && !f.nullable && !f.auto_increment && !f.default_value)
      return Err(ErrorCode::kInvalidValue, fmt::format("field '{}' is required", f.name));
  }
  return OkStatus();
}

Status CompleteRecord(const Model& m, adapters::Record* rec) {
  ApplyDefaults(m, rec);
  return CheckRequired(m, *rec);
}

Result<adapters::FilterNode> ParseFilter(const Model& m, const rapidjson::Value& filter,
                                         const ParseLimits& limits) {
  rapidjson::Value list(rapidjson::kArrayType);
  rapidjson::Document holder;
  rapidjson::Value copy(filter, holder.GetAllocator());
  list.PushBack(copy, holder.GetAllocator());
  auto nodes = FilterParser(m, limits).List(list, 0);
  if (!nodes.ok()) return nodes.take_error();
  return std::move(nodes.value().front());
}

std::string RequestIdJson(std::string_view payload) {
  rapidjson::Document doc;
  Request req;
  (void)ParseEnvelope(payload, doc, &req);
  return req.id_json;
}

Status ParseRequest(std::string_view payload, const registry::ModelRegistry& models,
                    const ParseLimits& limits, Request* out) {
  rapidjson::Document doc;
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
    case Operation::kSubscribe: return ParseOptions(m, options, limits, &out->query);
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

}  // namespace mqttspec::server
