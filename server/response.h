#pragma once
// Rendering of responses and (later) notifications: the envelope of PROTOCOL.md.

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>

#include "common/error.h"
#include "common/value.h"
#include "registry/model.h"

namespace mqttspec::server {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// Writes a row (values aligned with `columns`) as a JSON object.
void WriteRow(const registry::Model& model, const std::vector<int>& columns, const Row& row,
              JsonWriter& w);

// Starts {"id":…,"type":"response","success":true; the caller writes "data" etc. and then calls
// EndResponse, which adds the timestamp and closes the object.
void BeginSuccess(std::string_view id_json, JsonWriter& w);
void EndResponse(JsonWriter& w);

std::string RenderError(std::string_view id_json, const Error& error);
std::string RenderPong(std::string_view id_json);

}  // namespace mqttspec::server
