#pragma once
// ModelRegistry: the registered models, looked up by (schema, entity). It is the allow-list
// for every identifier that reaches SQL.
// Thread-safety: all methods may be called from any thread; lookups take a shared lock and
// return shared pointers that stay valid after the model is replaced.

#include <map>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "registry/model.h"

namespace mqttspec::registry {

class ModelRegistry {
 public:
  // Adds a model. Fails with invalid_value if a model of that name exists already.
  Status Register(ModelPtr model);

  // The model, or nullptr.
  ModelPtr Find(std::string_view schema, std::string_view entity) const;

  std::vector<ModelPtr> All() const;

 private:
  mutable std::shared_mutex mu_;  // guards models_
  std::map<std::pair<std::string, std::string>, ModelPtr, std::less<>> models_;
};

}  // namespace mqttspec::registry
