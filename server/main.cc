// mqttspecd: the mqttspec daemon.
//
// broker.mode embedded (the default): writes a Mosquitto configuration under broker.data_dir that
// loads our plugin (mqttspec_mosquitto.so) with our configuration, and exec()s Mosquitto with it:
// one process, whose signals and logs are the broker's. Fails with a clear message when the
// broker binary or the plugin is missing or the port is taken.
//
// broker.mode external: serves as a Paho MQTT client of the broker at broker.url until SIGINT or
// SIGTERM, then stops taking requests, answers those it has taken, and exits 0.
//
// Exit codes: 0 clean stop, 1 runtime failure (database, broker), 2 configuration error — a hook
// plugin that cannot be loaded, was built for another ABI or whose init refuses is one, the same
// under --check-config, at start in both modes, and inside the embedded broker (plugin.cc).

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "hooks/plugin_loader.h"
#include "server/allocator.h"
#include "server/config.h"
#include "server/core.h"
#include "server/embedded/launcher.h"
#include "server/exit_codes.h"
#include "server/external/run.h"
#include "server/tls_files.h"

using namespace mqttspec;

namespace {

// Every connection (and, in embedded mode, every client of the broker exec'd from here) is a file
// descriptor: the usual soft limit of 1024 would refuse the 1000-and-somethingth client (Mosquitto
// then logs a misleading "denied access by tcpd"). Raise the soft limit to the hard one.
void RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0 || lim.rlim_cur >= lim.rlim_max) return;
  const rlim_t before = lim.rlim_cur;
  lim.rlim_cur = lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) == 0)
    spdlog::debug("open files limit raised from {} to {}", before, lim.rlim_cur);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mqttspecd — database queries over MQTT", "mqttspecd"};
  std::string config_path;
  bool check_only = false;
  app.add_option("-c,--config", config_path,
                 "YAML configuration file (defaults apply without one)");
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
  app.set_version_flag("-v,--version", std::string("mqttspecd ") + MQTTSPEC_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto loaded = config_path.empty() ? server::ParseConfig("") : server::LoadConfig(config_path);
  if (!loaded.ok()) return server::ConfigError(loaded.error().message);
  server::Config config = std::move(loaded).value();
  if (auto st = server::CheckSupported(config); !st.ok())
    return server::ConfigError(st.error().message);
  if (auto st = server::CheckTlsFiles(config); !st.ok())
    return server::ConfigError(st.error().message);
  if (check_only) {
    for (const auto& plugin : config.plugins) {
      if (auto st = hooks::CheckPlugin(plugin.path); !st.ok())
        return server::ConfigError(st.error().message);
    }
    std::cout << "configuration OK: " << config.models.size() << " model(s), broker "
              << config.broker.mode << ", database " << config.database.driver << "\n";
    return 0;
  }

  spdlog::set_default_logger(spdlog::stderr_color_mt("mqttspecd"));
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  RaiseFileLimit();
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  if (config.broker.mode == "external") {
    // This process serves: its malloc is chosen here, before any thread starts.
    const std::string allocator = server::ReexecWithAllocator(config.broker.allocator, argv);
    spdlog::info("mqttspecd {} (malloc: {})", MQTTSPEC_VERSION, allocator);
  } else {
    spdlog::info("mqttspecd {}", MQTTSPEC_VERSION);
  }
  return config.broker.mode == "embedded" ? server::embedded::RunEmbedded(config, config_path)
                                          : server::RunExternal(config);
}
