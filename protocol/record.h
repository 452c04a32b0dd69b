#pragma once
// Records: the data of a create or update, field by field from the registry, values coerced; and
// what a create fills in (defaults) or must have (required fields).

#include <rapidjson/document.h>

#include <optional>

#include "adapters/query.h"
#include "common/error.h"
#include "registry/model.h"

namespace mqttspec::protocol {

// Fields of one data object → a record. `partial` (update): no defaults, and the primary key may
// appear only with the target's value (`key`). Errors: invalid_message, unknown_column,
// invalid_value.
Result<adapters::Record> ParseRecord(const registry::Model& m, const rapidjson::Value& obj,
                                     bool partial, const std::optional<Value>& key);

// Fills in the defaults (literal or now) of the fields a create leaves out.
void ApplyDefaults(const registry::Model& model, adapters::Record* record);
// invalid_value when a field that is neither nullable, defaulted nor generated is missing. Runs
// after the BeforeCreate hooks, which may supply such a field.
Status CheckRequired(const registry::Model& model, const adapters::Record& record);
// Both, for inserts that pass no hooks.
Status CompleteRecord(const registry::Model& model, adapters::Record* record);

}  // namespace mqttspec::protocol
