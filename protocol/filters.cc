#include "protocol/filters.h"

#include <fmt/format.h>

#include "common/json_document.h"
#include "protocol/json_read.h"

namespace mqttspec::protocol {

using adapters::Condition;
using adapters::FilterList;
using adapters::FilterNode;
using adapters::Op;
using registry::Field;
using registry::FieldType;
using registry::Model;

FilterParser::FilterParser(const Model& m, const ParseLimits& l) : m_(m), l_(l) {}

Result<FilterList> FilterParser::List(const JsonValue& arr, int depth) {
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

Result<FilterNode> FilterParser::Node(const JsonValue& f, int depth) {
  if (!f.IsObject()) return Err(ErrorCode::kInvalidFilter, "each filter must be an object");
  FilterNode node;
  if (const JsonValue* lo = Member(f, "logic_operator")) {
    if (!lo->IsString()) return Err(ErrorCode::kInvalidFilter, "logic_operator must be AND or OR");
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
    return Err(
        ErrorCode::kInvalidFilter,
        fmt::format("json field '{}' can be filtered only with is_null / is_not_null", field.name));
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
                   fmt::format("operator '{}' needs a text column; '{}' is {}", opname, field.name,
                               registry::FieldTypeName(field.type)));
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
        while (backslashes < pat.size() && pat[pat.size() - 1 - backslashes] == '\\') ++backslashes;
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

Result<FilterNode> ParseFilter(const Model& m, const JsonValue& filter, const ParseLimits& limits) {
  rapidjson::Value list(rapidjson::kArrayType);
  LocalDocument holder;
  rapidjson::Value copy(filter, holder->GetAllocator());
  list.PushBack(copy, holder->GetAllocator());
  auto nodes = FilterParser(m, limits).List(list, 0);
  if (!nodes.ok()) return nodes.take_error();
  return std::move(nodes.value().front());
}

}  // namespace mqttspec::protocol
