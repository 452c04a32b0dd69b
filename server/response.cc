#include "server/response.h"

#include "common/time_util.h"
#include "registry/coerce.h"

namespace mqttspec::server {

void WriteRow(const registry::Model& m, const std::vector<int>& columns, const Row& row,
              JsonWriter& w) {
  w.StartObject();
  for (size_t i = 0; i < columns.size(); ++i) {
    const auto& f = m.field(static_cast<size_t>(columns[i]));
    w.Key(f.name.data(), static_cast<rapidjson::SizeType>(f.name.size()));
    registry::WriteJson(f, row[i], w);
  }
  w.EndObject();
}

namespace {
void Head(std::string_view id_json, const char* type, JsonWriter& w) {
  w.StartObject();
  w.Key("id");
  w.RawValue(id_json.data(), id_json.size(), rapidjson::kStringType);
  w.Key("type");
  w.String(type);
}
}  // namespace

void BeginSuccess(std::string_view id_json, JsonWriter& w) {
  Head(id_json, "response", w);
  w.Key("success");
  w.Bool(true);
}

void EndResponse(JsonWriter& w) {
  w.Key("timestamp");
  w.String(NowIso8601().c_str());
  w.EndObject();
}

std::string RenderError(std::string_view id_json, const Error& e) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  Head(id_json, "response", w);
  w.Key("success");
  w.Bool(false);
  w.Key("error");
  w.StartObject();
  w.Key("code");
  std::string_view code = ErrorCodeName(e.code);
  w.String(code.data(), static_cast<rapidjson::SizeType>(code.size()));
  w.Key("message");
  w.String(e.message.data(), static_cast<rapidjson::SizeType>(e.message.size()));
  w.EndObject();
  EndResponse(w);
  return {buf.GetString(), buf.GetSize()};
}

std::string RenderPong(std::string_view id_json) {
  rapidjson::StringBuffer buf;
  JsonWriter w(buf);
  Head(id_json, "pong", w);
  EndResponse(w);
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace mqttspec::server
