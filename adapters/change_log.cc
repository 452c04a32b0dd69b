#include "adapters/change_log.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "common/json_document.h"
#include "registry/coerce.h"

namespace mqttspec::adapters {

std::string_view ChangeKindName(Change::Kind kind) {
  switch (kind) {
    case Change::Kind::kCreate: return "create";
    case Change::Kind::kUpdate: return "update";
    case Change::Kind::kDelete: return "delete";
  }
  return "update";
}

std::optional<Change::Kind> ParseChangeKind(std::string_view name) {
  if (name == "create") return Change::Kind::kCreate;
  if (name == "update") return Change::Kind::kUpdate;
  if (name == "delete") return Change::Kind::kDelete;
  return std::nullopt;
}

std::string KeyText(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) return fmt::format("{}", *d);
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  return "null";
}

std::string EncodeRow(const registry::Model& m, const Row& row) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> w(out);
  w.StartObject();
  for (size_t i = 0; i < m.fields().size(); ++i) {
    const registry::Field& f = m.field(i);
    w.Key(f.name.data(), static_cast<rapidjson::SizeType>(f.name.size()));
    registry::WriteJson(f, i < row.size() ? row[i] : Value{}, w);
  }
  w.EndObject();
  return std::string(out.GetString(), out.GetSize());
}

Result<Row> DecodeRow(const registry::Model& m, std::string_view json) {
  LocalDocument local;
  rapidjson::Document& d = *local;
  if (!ParseExactJson(json, d) || !d.IsObject())
    return MakeError(ErrorCode::kInternal, "unreadable row in the change log");
  Row row(m.fields().size());
  for (size_t i = 0; i < m.fields().size(); ++i) {
    const registry::Field& f = m.field(i);
    auto it = d.FindMember(rapidjson::StringRef(f.name.data(), f.name.size()));
    if (it == d.MemberEnd() || it->value.IsNull()) continue;
    auto v = registry::CoerceJson(f, it->value);
    if (!v.ok())
      return MakeError(ErrorCode::kInternal,
                       "a logged row no longer fits its model: " + v.error().message);
    row[i] = std::move(v).value();
  }
  return row;
}

std::optional<Statement> ChangeTrimmer::TrimIfDue(int64_t now_ms) {
  std::optional<Statement> trim;
  if (now_ms >= next_trim_ms_) {
    next_trim_ms_ = now_ms + kTrimIntervalMs;
    trim = sql_.TrimChanges(now_ms - options_.retention_s * 1000, options_.max_rows,
                            std::max(kTrimRows, 2 * logged_since_trim_));
    logged_since_trim_ = 0;
  }
  ++logged_since_trim_;
  return trim;
}

}  // namespace mqttspec::adapters
