#include "server/core.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "adapters/open_database.h"
#include "hooks/plugin_loader.h"
#include "registry/twin.h"

namespace mqttspec::server {

Status CheckSupported(const Config& c) {
  auto refuse = [](std::string msg) { return MakeError(ErrorCode::kInvalidValue, std::move(msg)); };

  if (!c.introspect.empty() && c.database.driver != "postgres")
    return refuse(
        "introspect: needs database.driver postgres (SQLite tables are declared under models)");
  return OkStatus();
}

namespace {

// A plugin's name: its file name without directory, "lib" and extension ("/x/libaudit_log.so" →
// "audit_log").
std::string PluginName(const std::string& path) {
  std::string stem = std::filesystem::path(path).stem().string();
  return stem.rfind("lib", 0) == 0 && stem.size() > 3 ? stem.substr(3) : stem;
}

}  // namespace

Result<std::unique_ptr<Core>> Core::Create(const Config& c, bool load_plugins) {
  if (auto st = CheckSupported(c); !st.ok()) return st.take_error();
  auto core = std::unique_ptr<Core>(new Core());
  auto db = adapters::OpenDatabase(
      {c.database.driver, c.database.path, c.database.synchronous == "full", c.database.url,
       c.database.pool_size, c.limits.query_timeout_ms, c.database.group_commit_max_rows,
       c.database.group_commit_max_ms,
       adapters::ChangeLogOptions{c.changes.enabled, c.changes.retention_s, c.changes.max_rows,
                                  c.cluster.enabled, c.capture}});
  if (!db.ok()) return db.take_error();
  core->db_ = std::move(db).value();
  std::vector<registry::ModelPtr> served = c.models;
  if (c.twin.enabled) served.push_back(registry::TwinModel());
  for (const auto& m : served) {
    if (auto st = core->models_.Register(m); !st.ok()) return st.take_error();
    if (c.database.migrate) {
      if (auto st = core->db_->Migrate(*m); !st.ok()) {
        return MakeError(st.error().code,
                         fmt::format("migrating {}: {}", m->qualified_name(), st.error().message));
      }
    }
  }
  // Existing tables of the introspected schemas are served as they are (declared models win).
  for (const auto& schema : c.introspect) {
    adapters::Introspector* introspector = core->db_->introspector();
    if (!introspector)  // CheckSupported refuses this; kept as a guard
      return MakeError(ErrorCode::kInvalidValue, "introspect: this database cannot introspect");
    auto found = introspector->Introspect(schema);
    if (!found.ok()) {
      return MakeError(found.error().code,
                       fmt::format("introspect {}: {}", schema, found.error().message));
    }
    for (auto& m : found.value()) {
      if (core->models_.Find(m->schema(), m->entity())) continue;
      if (auto st = core->models_.Register(m); !st.ok()) return st.take_error();
      spdlog::info("introspected {} ({} fields)", m->qualified_name(), m->fields().size());
    }
  }
  core->host_ = std::make_unique<hooks::CorePluginHost>(core->hooks_, core->models_, *core->db_,
                                                        c.database.migrate);
  for (const auto& plugin : c.plugins) {
    core->host_->set_plugin(PluginName(plugin.path));
    auto st = load_plugins ? hooks::LoadPlugin(plugin.path, plugin.options, *core->host_)
                           : hooks::CheckPlugin(plugin.path);
    if (!st.ok()) return st.take_error();
  }
  RouterOptions ro;
  ro.parse.max_rows = c.limits.max_rows;
  ro.parse.max_filters = c.limits.max_filters;
  ro.max_payload_bytes = c.limits.max_payload_bytes;
  ro.dedup_window_s = c.limits.dedup_window_s;
  ro.records_shared = c.cluster.enabled;
  core->subscriptions_ =
      std::make_unique<Subscriptions>(c.topic_prefix, c.limits.max_subscriptions_per_client);
  core->router_ = std::make_unique<Router>(core->models_, *core->db_, ro,
                                           core->subscriptions_.get(), &core->hooks_);
  if (!ro.records_shared && ro.dedup_window_s > 0) {
    if (auto st = core->router_->LoadRecordedWrites(); !st.ok()) {
      spdlog::warn(
          "cannot read the records of earlier writes ({}): the writes of the next {} s "
          "are each looked up in the database",
          st.error().message, ro.dedup_window_s);
    }
  }
  spdlog::info("{} model(s), database {}", core->models_.All().size(),
               c.database.driver == "postgres" ? "postgres" : "sqlite (" + c.database.path + ")");
  return core;
}

}  // namespace mqttspec::server
