#pragma once
// Core: what every broker mode hosts — the model registry, the database and the router, built
// from a Config. mqttspecd (external mode) and the Mosquitto plugin (embedded mode) both start
// from here, so nothing between a transport and the database depends on the broker mode.
// Thread-safety: built once at start (Create); afterwards only the rules of its members apply
// (docs/architecture.md, Threading).

#include <memory>

#include "adapters/database.h"
#include "common/error.h"
#include "hooks/hook_registry.h"
#include "hooks/plugin_host.h"
#include "registry/model_registry.h"
#include "server/clients.h"
#include "server/config.h"
#include "server/router.h"
#include "server/subscriptions.h"

namespace mqttspec::server {

class Core {
 public:
  // Opens the database, registers the configured models and migrates them (database.migrate),
  // then loads the hook plugins of hooks.plugins (which may register hooks and more models).
  // Errors: invalid_value for what the configuration asks and this build cannot do,
  // unavailable when the database cannot be opened or migrated.
  // With load_plugins false (mqttspecd before it execs the embedded broker, which builds its own
  // Core) the plugins are only checked (loadable, entry points, ABI), never initialised: a
  // plugin's init runs once per process that serves.
  static Result<std::unique_ptr<Core>> Create(const Config& config, bool load_plugins = true);

  registry::ModelRegistry& models() { return models_; }
  adapters::Database& database() { return *db_; }
  Router& router() { return *router_; }
  Subscriptions& subscriptions() { return *subscriptions_; }
  hooks::HookRegistry& hooks() { return hooks_; }
  Clients& clients() { return clients_; }

 private:
  Core() = default;
  registry::ModelRegistry models_;
  hooks::HookRegistry hooks_;
  Clients clients_;
  std::unique_ptr<hooks::CorePluginHost> host_;  // outlives the plugins' use of it
  std::unique_ptr<adapters::Database> db_;
  std::unique_ptr<Subscriptions> subscriptions_;
  std::unique_ptr<Router> router_;
};

// Refuses, with a message naming the key, what the configuration asks for and this build does not
// have yet (instead of silently ignoring it).
Status CheckSupported(const Config& config);

}  // namespace mqttspec::server
