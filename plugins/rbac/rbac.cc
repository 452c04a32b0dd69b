// rbac: role-based access control. An operation listed in `operations` (default: delete) needs
// the client to hold `role` (default: admin) among its comma-separated metadata "roles" (set by an
// auth hook such as jwt_auth); otherwise it is refused with forbidden and nothing is written.
//
// Options: role (default admin), operations (comma-separated: read, create, update, delete,
//          subscribe; default delete), entity (only this model; default all).

#include <mqttspec/plugin.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(' '), e = item.find_last_not_of(' ');
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

bool HasRole(mqttspec::HookContext& ctx, const std::string& role) {
  auto it = ctx.client().metadata.find("roles");
  if (it == ctx.client().metadata.end()) return false;
  for (const auto& r : Split(it->second)) {
    if (r == role) return true;
  }
  return false;
}

}  // namespace

MQTTSPEC_PLUGIN_EXPORT int mqttspec_plugin_abi_version() { return MQTTSPEC_PLUGIN_ABI_VERSION; }

MQTTSPEC_PLUGIN_EXPORT bool mqttspec_plugin_init(mqttspec::PluginHost& host,
                                                 const mqttspec::PluginOptions& options) {
  std::string role = "admin", operations = "delete", entity;
  for (const auto& [key, value] : options) {
    if (key == "role")
      role = value;
    else if (key == "operations")
      operations = value;
    else if (key == "entity")
      entity = value;
    else {
      host.Log("error", "rbac: unknown option '" + key + "'");
      return false;
    }
  }
  using mqttspec::HookType;
  for (const auto& op : Split(operations)) {
    HookType type;
    if (op == "read")
      type = HookType::kBeforeRead;
    else if (op == "create")
      type = HookType::kBeforeCreate;
    else if (op == "update")
      type = HookType::kBeforeUpdate;
    else if (op == "delete")
      type = HookType::kBeforeDelete;
    else if (op == "subscribe")
      type = HookType::kBeforeSubscribe;
    else {
      host.Log("error", "rbac: unknown operation '" + op + "'");
      return false;
    }
    host.RegisterHook(
        type,
        [role, op](mqttspec::HookContext& ctx) {
          if (!HasRole(ctx, role))
            return ctx.Abort("permission denied: " + op + " requires " + role + " role");
          return mqttspec::HookResult::kContinue;
        },
        mqttspec::HookOptions{0, entity});
  }
  return true;
}
