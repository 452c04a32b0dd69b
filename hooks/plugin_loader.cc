#include "hooks/plugin_loader.h"

#include <dlfcn.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace mqttspec::hooks {

namespace {

Error Fail(const std::string& path, std::string why) {
  return MakeError(ErrorCode::kInvalidValue, fmt::format("hook plugin {}: {}", path, why));
}

// Opens the plugin and checks its entry points and ABI; returns its init, or the error.
Result<mqttspec_plugin_init_fn> Open(const std::string& path, void** handle_out) {
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) return Fail(path, std::string("cannot be loaded: ") + dlerror());
  auto version = reinterpret_cast<mqttspec_plugin_abi_version_fn>(
      dlsym(handle, "mqttspec_plugin_abi_version"));
  auto init = reinterpret_cast<mqttspec_plugin_init_fn>(dlsym(handle, "mqttspec_plugin_init"));
  if (!version || !init) {
    dlclose(handle);
    return Fail(path,
                "not an mqttspec plugin (mqttspec_plugin_abi_version / "
                "mqttspec_plugin_init missing)");
  }
  if (int v = version(); v != MQTTSPEC_PLUGIN_ABI_VERSION) {
    dlclose(handle);
    return Fail(path, fmt::format("built for plugin ABI {}, this mqttspec has ABI {}; rebuild it",
                                  v, MQTTSPEC_PLUGIN_ABI_VERSION));
  }
  *handle_out = handle;
  return init;
}

}  // namespace

Status CheckPlugin(const std::string& path) {
  void* handle = nullptr;
  auto init = Open(path, &handle);
  if (!init.ok()) return init.take_error();
  dlclose(handle);
  return OkStatus();
}

Status LoadPlugin(const std::string& path, const PluginOptions& options, PluginHost& host) {
  auto fail = [&](std::string why) { return Fail(path, std::move(why)); };
  void* handle = nullptr;
  auto opened = Open(path, &handle);
  if (!opened.ok()) return opened.take_error();
  mqttspec_plugin_init_fn init = opened.value();
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
