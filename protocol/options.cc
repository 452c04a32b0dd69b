#include "protocol/options.h"

#include <fmt/format.h>

#include <algorithm>

#include "protocol/filters.h"
#include "protocol/json_read.h"

namespace mqttspec::protocol {

using registry::FieldType;
using registry::Model;

namespace {

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

}  // namespace

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

namespace {

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
  static constexpr std::string_view kKnown[] = {
      "filters", "sort", "columns", "omit_columns", "limit", "offset", "since_change_seq"};
  static constexpr std::string_view kUnsupported[] = {"cursor_forward", "cursor_backward",
                                                      "fetch_row_number", "parameters"};
  for (const auto& kv : options.GetObject()) {
    const std::string_view name(kv.name.GetString(), kv.name.GetStringLength());
    if (std::find(std::begin(kKnown), std::end(kKnown), name) != std::end(kKnown)) continue;
    const bool unused =
        kv.value.IsNull() || (kv.value.IsString() && kv.value.GetStringLength() == 0);
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
                           "limit, offset, since_change_seq)",
                           Echo(name)));
  }
  return OkStatus();
}

}  // namespace

Status ParseSinceChangeSeq(const JsonValue* options, bool subscribe, std::optional<int64_t>* out) {
  if (!options || !options->IsObject()) return OkStatus();
  const JsonValue* since = Member(*options, "since_change_seq");
  if (!since || since->IsNull()) return OkStatus();
  if (!subscribe)
    return Err(ErrorCode::kInvalidOption, "option 'since_change_seq' applies to subscribe only");
  if (!since->IsInt64() || since->GetInt64() < 0)
    return Err(ErrorCode::kInvalidOption, "since_change_seq must be a non-negative integer");
  *out = since->GetInt64();
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

}  // namespace mqttspec::protocol
