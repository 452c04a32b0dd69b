// hello_hooks: a tiny hook plugin built out of tree (see CMakeLists.txt next to it).
//   BeforeCreate: sets `field` (default greeting) to `text` (default hello) when the client left
//                 it out.
//   AfterRead:    appends " (read)" to that field in every row the client gets (not stored).
// Options: field, text, entity (only this model; default all).

#include <mqttspec/plugin.h>

#include <string>

MQTTSPEC_PLUGIN_EXPORT int mqttspec_plugin_abi_version() { return MQTTSPEC_PLUGIN_ABI_VERSION; }

MQTTSPEC_PLUGIN_EXPORT bool mqttspec_plugin_init(mqttspec::PluginHost& host,
                                                 const mqttspec::PluginOptions& options) {
  std::string field = "greeting", text = "hello", entity;
  for (const auto& [key, value] : options) {
    if (key == "field")
      field = value;
    else if (key == "text")
      text = value;
    else if (key == "entity")
      entity = value;
    else {
      host.Log("error", "hello_hooks: unknown option '" + key + "'");
      return false;
    }
  }
  using mqttspec::HookType;
  host.RegisterHook(
      HookType::kBeforeCreate,
      [field, text](mqttspec::HookContext& ctx) {
        if (!ctx.HasField(field)) ctx.SetField(field, mqttspec::Value{text});
        return mqttspec::HookResult::kContinue;
      },
      mqttspec::HookOptions{0, entity});
  host.RegisterHook(
      HookType::kAfterRead,
      [field](mqttspec::HookContext& ctx) {
        auto columns = ctx.result_columns();
        for (size_t i = 0; i < columns.size(); ++i) {
          if (columns[i] != field) continue;
          for (auto& row : *ctx.result()) {
            if (auto* s = std::get_if<std::string>(&row[i])) *s += " (read)";
          }
        }
        return mqttspec::HookResult::kContinue;
      },
      mqttspec::HookOptions{0, entity});
  host.Log("info", "hello_hooks: ready (field " + field + ")");
  return true;
}
