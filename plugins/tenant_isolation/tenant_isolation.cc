// tenant_isolation: every model with a tenant column is partitioned by the client's tenant
// (client metadata, set by an auth hook such as jwt_auth):
//   reads, by-key reads, updates, deletes, subscriptions → AND tenant_id = <client's tenant>
//   creates → tenant_id set to the client's tenant (another value given → forbidden)
//   updates → changing tenant_id is forbidden
// A client without a tenant gets nothing of such models (forbidden). Models without the column
// are not touched.
//
// Options: column (default tenant_id), metadata_key (default tenant_id).

#include <mqttspec/plugin.h>

#include <memory>
#include <string>

namespace {

struct Settings {
  std::string column = "tenant_id";
  std::string metadata_key = "tenant_id";
};

bool HasColumn(const mqttspec::HookContext& ctx, const std::string& column) {
  const mqttspec::ModelInfo* m = ctx.model();
  if (!m) return false;
  for (const auto& f : m->fields) {
    if (f.name == column) return true;
  }
  return false;
}

using mqttspec::HookResult;

// The client's tenant, or "" (the caller stops: a client without a tenant gets nothing).
std::string TenantOf(const Settings& cfg, mqttspec::HookContext& ctx) {
  auto it = ctx.client().metadata.find(cfg.metadata_key);
  return it == ctx.client().metadata.end() ? std::string() : it->second;
}

HookResult NoTenant(mqttspec::HookContext& ctx) { return ctx.Abort("no tenant for this client"); }

HookResult Narrow(const Settings& cfg, mqttspec::HookContext& ctx) {
  if (!HasColumn(ctx, cfg.column)) return HookResult::kContinue;
  std::string tenant = TenantOf(cfg, ctx);
  if (tenant.empty()) return NoTenant(ctx);
  ctx.AddFilter(cfg.column, "eq", {mqttspec::Value{tenant}});
  return HookResult::kContinue;
}

HookResult Stamp(const Settings& cfg, mqttspec::HookContext& ctx) {
  if (!HasColumn(ctx, cfg.column)) return HookResult::kContinue;
  std::string tenant = TenantOf(cfg, ctx);
  if (tenant.empty()) return NoTenant(ctx);
  if (auto given = ctx.GetField(cfg.column)) {
    const auto* s = std::get_if<std::string>(&*given);
    if (!s || *s != tenant) return ctx.Abort("records of another tenant cannot be created");
  }
  ctx.SetField(cfg.column, mqttspec::Value{tenant});
  return HookResult::kContinue;
}

HookResult KeepTenant(const Settings& cfg, mqttspec::HookContext& ctx) {
  if (!HasColumn(ctx, cfg.column)) return HookResult::kContinue;
  if (ctx.HasField(cfg.column)) return ctx.Abort(cfg.column + " cannot be changed");
  return Narrow(cfg, ctx);
}

}  // namespace

MQTTSPEC_PLUGIN_EXPORT int mqttspec_plugin_abi_version() { return MQTTSPEC_PLUGIN_ABI_VERSION; }

MQTTSPEC_PLUGIN_EXPORT bool mqttspec_plugin_init(mqttspec::PluginHost& host,
                                                 const mqttspec::PluginOptions& options) {
  auto cfg = std::make_shared<Settings>();
  for (const auto& [key, value] : options) {
    if (key == "column")
      cfg->column = value;
    else if (key == "metadata_key")
      cfg->metadata_key = value;
    else {
      host.Log("error", "tenant_isolation: unknown option '" + key + "'");
      return false;
    }
  }
  using mqttspec::HookType;
  auto narrow = [cfg](mqttspec::HookContext& ctx) { return Narrow(*cfg, ctx); };
  host.RegisterHook(HookType::kBeforeRead, narrow);
  host.RegisterHook(HookType::kBeforeDelete, narrow);
  host.RegisterHook(HookType::kBeforeSubscribe, narrow);
  host.RegisterHook(HookType::kBeforeUpdate,
                    [cfg](mqttspec::HookContext& ctx) { return KeepTenant(*cfg, ctx); });
  host.RegisterHook(HookType::kBeforeCreate,
                    [cfg](mqttspec::HookContext& ctx) { return Stamp(*cfg, ctx); });
  return true;
}
