#include "protocol/record.h"

#include <fmt/format.h>

#include "common/time_util.h"
#include "protocol/json_read.h"

namespace mqttspec::protocol {

using registry::Field;
using registry::Model;

// Fields of one data object → a record; `partial` (update) skips defaults and required checks.
Result<adapters::Record> ParseRecord(const Model& m, const JsonValue& obj, bool partial,
                                     const std::optional<Value>& key) {
  if (!obj.IsObject()) return Err(ErrorCode::kInvalidMessage, "data must be an object");
  adapters::Record rec;
  std::vector<bool> given(m.fields().size(), false);
  for (const auto& kv : obj.GetObject()) {
    auto idx = ResolveColumn(m, &kv.name, ErrorCode::kInvalidMessage, "data key");
    if (!idx.ok()) return idx.take_error();
    const size_t i = static_cast<size_t>(idx.value());
    const Field& f = m.field(i);
    // JSON allows a key twice; SQL does not agree on which value wins (or refuses the statement).
    if (given[i])
      return Err(ErrorCode::kInvalidMessage, fmt::format("data key '{}' is given twice", f.name));
    given[i] = true;
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

}  // namespace mqttspec::protocol
