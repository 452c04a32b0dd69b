#pragma once
// Value: one cell of a row or one bound parameter, after coercion to a field type.
// Timestamps travel as normalized ISO 8601 UTC text ("2026-11-22T10:00:00.000Z"), JSON fields as
// their serialized text; the field's type says how to render them back to the wire.
// The type is defined in the public plugin header, so hooks and the core share it.

#include <mqttspec/plugin.h>

namespace mqttspec {

inline bool IsNull(const Value& v) { return v.index() == 0; }

}  // namespace mqttspec
