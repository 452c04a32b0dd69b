#include "registry/model_registry.h"

#include <fmt/format.h>

#include <mutex>

namespace mqttspec::registry {

Status ModelRegistry::Register(ModelPtr model) {
  std::unique_lock lock(mu_);
  auto key = std::make_pair(model->schema(), model->entity());
  if (models_.count(key)) {
    return MakeError(ErrorCode::kInvalidValue,
                     fmt::format("model {} is registered twice", model->qualified_name()));
  }
  models_.emplace(std::move(key), std::move(model));
  return OkStatus();
}

ModelPtr ModelRegistry::Find(std::string_view schema, std::string_view entity) const {
  std::shared_lock lock(mu_);
  auto it = models_.find(std::make_pair(std::string(schema), std::string(entity)));
  return it == models_.end() ? nullptr : it->second;
}

std::vector<ModelPtr> ModelRegistry::All() const {
  std::shared_lock lock(mu_);
  std::vector<ModelPtr> out;
  for (const auto& [k, m] : models_) out.push_back(m);
  return out;
}

}  // namespace mqttspec::registry
