// The plugin loader's test plugins (plugin_loader_test.cc), one MODULE library per kind.
//
// Built by tests/unit/CMakeLists.txt as hooks_test_plugin_<kind>.so in lib/test_plugins with
// MQTTSPEC_TEST_PLUGIN_<kind> defined (kind: ok, wrong_abi, no_entry_points, init_false,
// init_throws). The tests find the plugins in $MQTTSPEC_TEST_PLUGIN_DIR, else in the directory
// compiled in as MQTTSPEC_TEST_PLUGIN_DIR; the integration tests load them from there too.

#include <mqttspec/plugin.h>
#include <unistd.h>

#include <cstdio>
#include <stdexcept>

#if defined(MQTTSPEC_TEST_PLUGIN_no_entry_points)
// A shared library that is not an mqttspec plugin: it exports functions, but not the two entry
// points (the names are near misses on purpose).
MQTTSPEC_PLUGIN_EXPORT int mqttspec_plugin_version() { return MQTTSPEC_PLUGIN_ABI_VERSION; }
MQTTSPEC_PLUGIN_EXPORT bool mqttspec_plugin_start() { return true; }
#else
MQTTSPEC_PLUGIN_EXPORT int mqttspec_plugin_abi_version() {
#if defined(MQTTSPEC_TEST_PLUGIN_wrong_abi)
  return MQTTSPEC_PLUGIN_ABI_VERSION + 1;  // built "for another mqttspec"
#else
  return MQTTSPEC_PLUGIN_ABI_VERSION;
#endif
}

MQTTSPEC_PLUGIN_EXPORT bool mqttspec_plugin_init(mqttspec::PluginHost& host,
                                                 const mqttspec::PluginOptions& options) {
#if defined(MQTTSPEC_TEST_PLUGIN_init_throws)
  (void)host;
  (void)options;
  throw std::runtime_error("the test plugin refuses to start");
#elif defined(MQTTSPEC_TEST_PLUGIN_init_false)
  (void)options;
  host.Log("error", "hooks_test_plugin_init_false: refusing to start");
  return false;
#else
  // ok (and wrong_abi, whose init must never be called): a BeforeCreate hook that sets the field
  // named by option `field` to option `value` ("$username": the client's username, as hooks see
  // it). Without both options, init fails.
  // Option init_log: a file that gets one line per init ("init <pid>"), to count them.
  if (auto log = options.find("init_log"); log != options.end()) {
    if (FILE* f = std::fopen(log->second.c_str(), "a")) {
      std::fprintf(f, "init %d\n", static_cast<int>(getpid()));
      std::fclose(f);
    }
  }
  auto field = options.find("field");
  auto value = options.find("value");
  if (field == options.end() || value == options.end()) {
    host.Log("error", "hooks_test_plugin: options 'field' and 'value' are required");
    return false;
  }
  host.RegisterHook(mqttspec::HookType::kBeforeCreate, [f = field->second, v = value->second](
                                                           mqttspec::HookContext& ctx) {
    ctx.SetField(f, mqttspec::Value{v == "$username" ? ctx.client().username : v});
    return mqttspec::HookResult::kContinue;
  });
  return true;
#endif
}
#endif
