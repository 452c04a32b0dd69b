#include "registry/model.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <unordered_set>

namespace mqttspec::registry {

std::string_view FieldTypeName(FieldType type) {
  switch (type) {
    case FieldType::kInteger: return "integer";
    case FieldType::kReal: return "real";
    case FieldType::kText: return "text";
    case FieldType::kBoolean: return "boolean";
    case FieldType::kTimestamp: return "timestamp";
    case FieldType::kJson: return "json";
  }
  return "text";
}

std::optional<FieldType> ParseFieldType(std::string_view name) {
  for (FieldType t : {FieldType::kInteger, FieldType::kReal, FieldType::kText, FieldType::kBoolean,
                      FieldType::kTimestamp, FieldType::kJson}) {
    if (FieldTypeName(t) == name) return t;
  }
  return std::nullopt;
}

bool IsIdentifier(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (!alpha(name[0])) return false;
  for (char c : name) {
    if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string_view ClientAccessName(ClientAccess access) {
  switch (access) {
    case ClientAccess::kReadWrite: return "read_write";
    case ClientAccess::kReadOnly: return "read_only";
    case ClientAccess::kNone: return "none";
  }
  return "read_write";
}

std::optional<ClientAccess> ParseClientAccess(std::string_view name) {
  for (ClientAccess a : {ClientAccess::kReadWrite, ClientAccess::kReadOnly, ClientAccess::kNone}) {
    if (ClientAccessName(a) == name) return a;
  }
  return std::nullopt;
}

Result<ModelPtr> Model::Create(std::string schema, std::string entity, std::vector<Field> fields,
                               std::string primary_key, ClientAccess client_access) {
  return Make(std::move(schema), std::move(entity), std::move(fields), std::move(primary_key),
              client_access, false);
}

Result<ModelPtr> Model::CreateBuiltIn(std::string schema, std::string entity,
                                      std::vector<Field> fields, std::string primary_key,
                                      ClientAccess client_access) {
  return Make(std::move(schema), std::move(entity), std::move(fields), std::move(primary_key),
              client_access, true);
}

Result<ModelPtr> Model::Make(std::string schema, std::string entity, std::vector<Field> fields,
                             std::string primary_key, ClientAccess client_access, bool built_in) {
  auto bad = [](std::string msg) { return MakeError(ErrorCode::kInvalidValue, std::move(msg)); };
  if (!IsIdentifier(schema)) return bad(fmt::format("invalid schema name '{}'", schema));
  if (!IsIdentifier(entity)) return bad(fmt::format("invalid entity name '{}'", entity));
  // The service's own tables: the schema mqttspec (PostgreSQL), tables mqttspec_* (SQLite).
  if (!built_in &&
      (schema == "mqttspec" || (schema == "public" && entity.rfind("mqttspec_", 0) == 0)))
    return bad(fmt::format("model {}.{}: the schema 'mqttspec' and entities named 'mqttspec_…' "
                           "are reserved for the service's own tables",
                           schema, entity));
  if (fields.empty()) return bad(fmt::format("model {}.{} has no fields", schema, entity));
  if (primary_key.empty()) primary_key = "id";
  std::unordered_set<std::string> seen;
  int pk = -1;
  for (size_t i = 0; i < fields.size(); ++i) {
    Field& f = fields[i];
    if (!IsIdentifier(f.name))
      return bad(fmt::format("model {}.{}: invalid field name '{}'", schema, entity, f.name));
    // Case-insensitively: SQLite's column names ignore case, so "Name" and "name" cannot both be
    // columns there, and a model means the same on every database.
    std::string folded = f.name;
    std::transform(folded.begin(), folded.end(), folded.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!seen.insert(folded).second)
      return bad(fmt::format("model {}.{}: duplicate field '{}' (field names ignore case)", schema,
                             entity, f.name));
    if (f.name == primary_key || f.primary) {
      if (pk >= 0 && static_cast<size_t>(pk) != i)
        return bad(fmt::format("model {}.{}: more than one primary key", schema, entity));
      pk = static_cast<int>(i);
    }
  }
  if (pk < 0) {
    return bad(
        fmt::format("model {}.{}: primary key '{}' is not a field", schema, entity, primary_key));
  }
  for (size_t i = 0; i < fields.size(); ++i) {
    Field& f = fields[i];
    f.primary = static_cast<int>(i) == pk;
    if (f.auto_increment && !(f.primary && f.type == FieldType::kInteger))
      return bad(fmt::format("model {}.{}: auto_increment needs an integer primary key ('{}')",
                             schema, entity, f.name));
    if (f.primary) f.nullable = false;
  }
  auto model = std::shared_ptr<Model>(new Model());
  model->schema_ = std::move(schema);
  model->entity_ = std::move(entity);
  model->fields_ = std::move(fields);
  model->primary_ = static_cast<size_t>(pk);
  model->client_access_ = client_access;
  return ModelPtr(std::move(model));
}

int Model::FindField(std::string_view name) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace mqttspec::registry
