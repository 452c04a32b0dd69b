#include "registry/twin.h"

#include <rapidjson/document.h>

#include "common/json_document.h"

namespace mqttspec::registry {

ModelPtr TwinModel() {
  auto field = [](const char* name, FieldType type, bool nullable) {
    Field f;
    f.name = name;
    f.type = type;
    f.nullable = nullable;
    return f;
  };
  std::vector<Field> fields{
      field("id", FieldType::kText, false),
      field("device_id", FieldType::kText, false),
      field("key", FieldType::kText, false),
      field("request", FieldType::kJson, true),
      field("requested_at", FieldType::kTimestamp, true),
      field("report", FieldType::kJson, true),
      field("reported_at", FieldType::kTimestamp, true),
      field("version", FieldType::kInteger, false),
      field("in_sync", FieldType::kBoolean, false),
  };
  fields[kTwinDeviceId].indexed = true;  // a device's keys (twin/get), every twin of a device
  fields[kTwinInSync].indexed = true;    // every device out of sync
  for (int i : {kTwinVersion, kTwinInSync}) {
    FieldDefault d;
    d.literal = i == kTwinVersion ? Value{int64_t{0}} : Value{false};
    d.display = i == kTwinVersion ? "0" : "false";
    fields[static_cast<size_t>(i)].default_value = d;
  }
  auto model = Model::CreateBuiltIn(std::string(kTwinSchema), std::string(kTwinEntity),
                                    std::move(fields), "id", ClientAccess::kReadWrite);
  return model.ok() ? std::move(model).value() : nullptr;  // cannot fail: fixed, valid fields
}

bool IsTwin(const Model& model) {
  return model.schema() == kTwinSchema && model.entity() == kTwinEntity;
}

namespace {

bool Parse(const Value& v, rapidjson::Document* doc) {
  if (std::holds_alternative<std::monostate>(v)) {
    doc->SetNull();
    return true;
  }
  const auto* text = std::get_if<std::string>(&v);
  if (!text) return false;
  return ParseExactJson(*text, *doc);
}

}  // namespace

bool JsonValuesEqual(const Value& a, const Value& b) {
  LocalDocument x, y;
  if (!Parse(a, x.get()) || !Parse(b, y.get())) return a == b;
  return *x == *y;  // RapidJSON: members by name, numbers by value
}

}  // namespace mqttspec::registry
