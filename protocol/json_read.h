#pragma once
// Small helpers for reading client JSON, shared by the protocol parsers (internal to protocol/).
// Every column name a client sends is resolved against the model here (ResolveColumn): the
// registry is the only source of names that reach SQL.

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "common/error.h"
#include "registry/coerce.h"
#include "registry/model.h"

namespace mqttspec::protocol {

using JsonValue = rapidjson::Value;

inline Error Err(ErrorCode code, std::string msg) { return MakeError(code, std::move(msg)); }

// Client text echoed in a message is cut short — after at most `max_bytes`, at a character
// boundary: messages are UTF-8 — and stripped of control characters.
inline std::string Echo(std::string_view s, size_t max_bytes = 64) {
  size_t n = std::min<size_t>(s.size(), max_bytes);
  while (n < s.size() && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  std::string out;
  for (char c : s.substr(0, n)) out += static_cast<unsigned char>(c) < 0x20 ? '?' : c;
  if (s.size() > n) out += "…";
  return out;
}

inline std::string_view Sv(const JsonValue& v) { return {v.GetString(), v.GetStringLength()}; }

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

inline const JsonValue* Member(const JsonValue& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

// The index of the field named by `v` in `m`; `missing_code` when `v` is not a string,
// unknown_column when the model has no such field.
inline Result<int> ResolveColumn(const registry::Model& m, const JsonValue* v,
                                 ErrorCode missing_code, const char* what) {
  if (!v || !v->IsString())
    return Err(missing_code, fmt::format("{} must be a column name string", what));
  int idx = m.FindField(Sv(*v));
  if (idx < 0) {
    return Err(ErrorCode::kUnknownColumn,
               fmt::format("column '{}' is not a field of {}", Echo(Sv(*v)), m.qualified_name()));
  }
  return idx;
}

// A value for `f` that may not be null (comparison operands, keys).
inline Result<Value> NonNull(const registry::Field& f, const JsonValue& v, std::string_view op) {
  if (v.IsNull()) {
    return Err(
        ErrorCode::kInvalidValue,
        fmt::format("operator '{}' on '{}' needs a non-null value (use is_null)", op, f.name));
  }
  return registry::CoerceJson(f, v);
}

}  // namespace mqttspec::protocol
