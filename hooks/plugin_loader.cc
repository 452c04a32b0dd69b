#include "hooks/plugin_loader.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace mqttspec::hooks {

Status LoadPlugin(const std::string& path, const PluginOptions& options, PluginHost& host) {
  auto fail = [&](std::string why) {
    return MakeError(ErrorCode::kInvalidValue, fmt::format("hook plugin {}: {}", path, why));
  };
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) return fail(dlerror());
  auto version = reinterpret_cast<mqttspec_plugin_abi_version_fn>(
      dlsym(handle, "mqttspec_plugin_abi_version"));
  auto init = reinterpret_cast<mqttspec_plugin_init_fn>(dlsym(handle, "mqttspec_plugin_init"));
  if (!version || !init) {
    dlclose(handle);
    return fail("not an mqttspec plugin (mqttspec_plugin_abi_version / mqttspec_plugin_init "
                "missing)");
  }
  if (int v = version(); v != MQTTSPEC_PLUGIN_ABI_VERSION) {
    dlclose(handle);
    return fail(fmt::format("built for plugin ABI {}, this mqttspec has ABI {}; rebuild it", v,
                            MQTTSPEC_PLUGIN_ABI_VERSION));
  }
  bool ok = false;
  try {
    ok = init(host, options);
  } catch (const std::exception& e) {
    return fail(fmt::format("init threw: {}", e.what()));
  } catch (...) {
    return fail("init threw");
  }
  if (!ok) return fail("init failed (see its log lines above)");
  spdlog::info("loaded hook plugin {}", path);
  return OkStatus();  // the handle stays open: the plugin's hooks live in it
}

}  // namespace mqttspec::hooks
