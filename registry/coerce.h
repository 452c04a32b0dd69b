#pragma once
// Coercion between the wire (JSON) and a field's type. Every value a client sends goes through
// CoerceJson before it is bound to a statement; every value read goes out through WriteJson.
//
//   integer   JSON integer, integral number, or a string of decimal digits ("42")
//   real      JSON number, or a numeric string
//   text      JSON string
//   boolean   true/false, 0/1, "true"/"false"
//   timestamp ISO 8601 string, normalized to UTC ("2026-11-22T10:00:00.000Z")
//   json      any JSON value, stored as its serialized text

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/error.h"
#include "common/value.h"
#include "registry/model.h"

namespace mqttspec::registry {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// JSON null gives a null Value when the field is nullable, invalid_value otherwise.
Result<Value> CoerceJson(const Field& field, const rapidjson::Value& json);

// Coerces a default written in the configuration (a scalar as text) to the field's type.
Result<Value> CoerceText(const Field& field, std::string_view text);

// A Value as a JSON value (text as a string; for a json field, text that parses is taken as the
// JSON it spells). For values handed over by hooks, which then go through CoerceJson.
rapidjson::Value ToJson(const Field& field, const Value& value,
                        rapidjson::Document::AllocatorType& allocator);

// Writes `value` of `field` as JSON (booleans as true/false, json fields embedded as JSON).
void WriteJson(const Field& field, const Value& value, JsonWriter& writer);

// A short human description of a JSON value's type for error messages ("string", "object").
std::string_view JsonTypeName(const rapidjson::Value& json);

}  // namespace mqttspec::registry
