// mqttspecd: the mqttspec daemon. Reads the YAML configuration, opens the database, registers and
// migrates the models, and serves requests through the configured broker mode until SIGINT or
// SIGTERM, after which it stops taking requests, answers those it has taken, and exits 0.
// Exit codes: 0 clean stop, 1 runtime failure (database, broker), 2 configuration error.

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <iostream>

#include "adapters/sqlite_database.h"
#include "registry/model_registry.h"
#include "server/config.h"
#include "server/external/paho_transport.h"
#include "server/router.h"
#include "server/service.h"

using namespace mqttspec;

namespace {

int ConfigError(const std::string& message) {
  std::cerr << "mqttspecd: configuration error: " << message << "\n";
  return 2;
}

std::unique_ptr<adapters::Database> OpenDatabase(const server::Config& c, std::string* error) {
  adapters::SqliteOptions o;
  o.path = c.database.path;
  o.synchronous_full = c.database.synchronous == "full";
  o.readers = std::max(1, c.database.pool_size / 2);
  o.query_timeout_ms = c.limits.query_timeout_ms;
  auto db = adapters::SqliteDatabase::Open(o);
  if (!db.ok()) {
    *error = db.error().message;
    return nullptr;
  }
  return std::move(db).value();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mqttspecd — database queries over MQTT", "mqttspecd"};
  std::string config_path;
  bool check_only = false;
  app.add_option("-c,--config", config_path, "YAML configuration file (defaults apply without one)");
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
  app.set_version_flag("-v,--version", std::string("mqttspecd ") + MQTTSPEC_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  auto loaded = config_path.empty() ? server::ParseConfig("") : server::LoadConfig(config_path);
  if (!loaded.ok()) return ConfigError(loaded.error().message);
  server::Config config = std::move(loaded).value();

  // What this version cannot do yet is refused at start, never silently ignored.
  if (config.broker.mode == "embedded")
    return ConfigError("broker.mode: embedded mode is not available in this version; "
                       "set broker.mode: external and broker.url");
  if (config.database.driver != "sqlite")
    return ConfigError("database.driver: only sqlite is available in this version");
  if (!config.plugins.empty())
    return ConfigError("hooks.plugins: hook plugins are not available in this version");
  if (!config.introspect.empty())
    return ConfigError("introspect: introspection is not available in this version");
  if (check_only) {
    std::cout << "configuration OK: " << config.models.size() << " model(s), broker "
              << config.broker.mode << ", database " << config.database.driver << "\n";
    return 0;
  }

  spdlog::set_default_logger(spdlog::stderr_color_mt("mqttspecd"));
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::string error;
  auto db = OpenDatabase(config, &error);
  if (!db) {
    spdlog::error("database: {}", error);
    return 1;
  }
  registry::ModelRegistry models;
  for (const auto& m : config.models) {
    if (auto st = models.Register(m); !st.ok()) return ConfigError(st.error().message);
    if (config.database.migrate) {
      if (auto st = db->Migrate(*m); !st.ok()) {
        spdlog::error("migrating {}: {}", m->qualified_name(), st.error().message);
        return 1;
      }
    }
  }
  spdlog::info("mqttspecd {}: {} model(s), database {} ({})", MQTTSPEC_VERSION,
               config.models.size(), config.database.driver, config.database.path);

  server::RouterOptions ro;
  ro.parse.max_rows = config.limits.max_rows;
  ro.parse.max_filters = config.limits.max_filters;
  ro.max_payload_bytes = config.limits.max_payload_bytes;
  ro.dedup_window_s = config.limits.dedup_window_s;
  server::Router router(models, *db, ro);

  server::PahoTransport transport(config.broker, config.qos.request);
  {
    server::Service service(config, router, transport);
    transport.Start(service);

    int sig = 0;
    sigwait(&signals, &sig);
    spdlog::info("received {}, stopping: no new requests, answering those taken", strsignal(sig));
    transport.StopTaking();
    service.Drain();
    auto s = service.stats();
    spdlog::info("answered {} of {} requests ({} dropped topics, {} rate limited)", s.answered,
                 s.taken, s.dropped_topics, s.rate_limited);
  }
  transport.Stop(std::chrono::seconds(5));
  spdlog::info("stopped");
  return 0;
}
