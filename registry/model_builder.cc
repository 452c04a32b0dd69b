#include "registry/model_builder.h"

#include <fmt/format.h>

#include "registry/coerce.h"

namespace mqttspec::registry {

Result<ModelPtr> BuildModel(const ModelSpec& spec) {
  auto bad = [](std::string msg) { return MakeError(ErrorCode::kInvalidValue, std::move(msg)); };
  const std::string pk = spec.primary_key.empty() ? "id" : spec.primary_key;
  std::vector<Field> fields;
  for (const FieldSpec& s : spec.fields) {
    Field f;
    f.name = s.name;
    auto type = ParseFieldType(s.type);
    if (!type) {
      return bad(
          fmt::format("field '{}': unknown type '{}' (integer | real | text | boolean | "
                      "timestamp | json)",
                      s.name, s.type));
    }
    f.type = *type;
    f.nullable = s.nullable;
    f.unique = s.unique;
    f.primary = s.primary;
    f.indexed = s.indexed;
    const bool is_key = s.primary || s.name == pk;
    f.auto_increment = s.auto_increment.value_or(is_key && f.type == FieldType::kInteger);
    if (s.default_text) {
      FieldDefault d;
      d.display = *s.default_text;
      if (*s.default_text == "now" && f.type == FieldType::kTimestamp) {
        d.now = true;
      } else {
        auto v = CoerceText(f, *s.default_text);
        if (!v.ok()) return bad(fmt::format("fields.{}.default: {}", s.name, v.error().message));
        d.literal = std::move(v).value();
      }
      f.default_value = std::move(d);
    }
    fields.push_back(std::move(f));
  }
  return Model::Create(spec.schema.empty() ? "public" : spec.schema, spec.entity, std::move(fields),
                       pk, spec.client_access);
}

}  // namespace mqttspec::registry
