#pragma once
// Value: one cell of a row or one bound parameter, after coercion to a field type.
// Timestamps travel as normalized ISO 8601 UTC text ("2026-11-22T10:00:00.000Z"), JSON fields as
// their serialized text; the field's type says how to render them back to the wire.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace mqttspec {

using Value = std::variant<std::monostate, bool, int64_t, double, std::string>;

inline bool IsNull(const Value& v) { return v.index() == 0; }

using Row = std::vector<Value>;

}  // namespace mqttspec
