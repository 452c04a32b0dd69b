#include "hooks/plugin_host.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "protocol/record.h"
#include "registry/coerce.h"
#include "registry/model_builder.h"

namespace mqttspec::hooks {

void CorePluginHost::RegisterHook(HookType type, HookFn fn, HookOptions options) {
  hooks_.Register(type, std::move(fn), std::move(options), plugin_);
}

bool CorePluginHost::RegisterModel(const ModelInfo& info, std::string* error) {
  auto access = registry::ParseClientAccess(info.client_access);
  if (!access) {
    *error = fmt::format("client_access '{}' is not one of read_write | read_only | none",
                         info.client_access);
    return false;
  }
  registry::ModelSpec spec;
  spec.schema = info.schema.empty() ? "public" : info.schema;
  spec.entity = info.entity;
  spec.primary_key = info.primary_key;
  spec.client_access = *access;
  for (const auto& fi : info.fields) {  // auto_increment unset: the builder's rule
    registry::FieldSpec f;
    f.name = fi.name;
    f.type = fi.type;
    f.nullable = fi.nullable;
    f.unique = fi.unique;
    f.primary = fi.primary;
    spec.fields.push_back(std::move(f));
  }
  auto model = registry::BuildModel(spec);
  if (!model.ok()) {
    *error = model.error().message;
    return false;
  }
  if (auto st = models_.Register(model.value()); !st.ok()) {
    *error = st.error().message;
    return false;
  }
  if (migrate_) {
    if (auto st = db_.Migrate(*model.value()); !st.ok()) {
      *error = st.error().message;
      return false;
    }
  }
  return true;
}

bool CorePluginHost::Insert(std::string_view schema, std::string_view entity,
                            const std::vector<std::pair<std::string, Value>>& fields,
                            std::string* error) {
  auto model = models_.Find(schema.empty() ? "public" : schema, entity);
  if (!model) {
    *error = fmt::format("no model {}.{}", schema, entity);
    return false;
  }
  adapters::Record record;
  rapidjson::Document doc;
  for (const auto& [name, value] : fields) {
    int idx = model->FindField(name);
    if (idx < 0) {
      *error = fmt::format("column '{}' is not a field of {}", name, model->qualified_name());
      return false;
    }
    const auto& field = model->field(static_cast<size_t>(idx));
    auto v = registry::CoerceJson(field, registry::ToJson(field, value, doc.GetAllocator()));
    if (!v.ok()) {
      *error = v.error().message;
      return false;
    }
    record.push_back({idx, std::move(v).value()});
  }
  if (auto st = protocol::CompleteRecord(*model, &record); !st.ok()) {
    *error = st.error().message;
    return false;
  }
  auto rows = db_.Create(*model, {std::move(record)});
  if (!rows.ok()) {
    *error = rows.error().message;
    return false;
  }
  return true;
}

void CorePluginHost::Log(std::string_view level, std::string_view message) {
  if (level == "error")
    spdlog::error("{}", message);
  else if (level == "warn" || level == "warning")
    spdlog::warn("{}", message);
  else if (level == "debug")
    spdlog::debug("{}", message);
  else
    spdlog::info("{}", message);
}

}  // namespace mqttspec::hooks
