#pragma once
// CorePluginHost: the PluginHost the core offers hook plugins. Everything a plugin asks for goes
// through the same checks as configuration and client input: models through Model::Create and the
// registry, inserts through field resolution, coercion, defaults and bound parameters.
// Thread-safety: RegisterHook/RegisterModel during start-up (plugin init); Insert and Log from
// any thread (hooks run on the workers).

#include <mqttspec/plugin.h>

#include "adapters/database.h"
#include "hooks/hook_registry.h"
#include "registry/model_registry.h"

namespace mqttspec::hooks {

class CorePluginHost : public PluginHost {
 public:
  CorePluginHost(HookRegistry& hooks, registry::ModelRegistry& models, adapters::Database& db,
                 bool migrate)
      : hooks_(hooks), models_(models), db_(db), migrate_(migrate) {}

  void RegisterHook(HookType type, HookFn fn, HookOptions options) override;
  bool RegisterModel(const ModelInfo& model, std::string* error) override;
  bool Insert(std::string_view schema, std::string_view entity,
              const std::vector<std::pair<std::string, Value>>& fields,
              std::string* error) override;
  void Log(std::string_view level, std::string_view message) override;

  // The plugin whose init runs now: its hooks are listed under this name (admin API).
  void set_plugin(std::string name) { plugin_ = std::move(name); }

 private:
  HookRegistry& hooks_;
  registry::ModelRegistry& models_;
  adapters::Database& db_;
  bool migrate_;
  std::string plugin_;
};

}  // namespace mqttspec::hooks
