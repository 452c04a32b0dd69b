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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "hooks/plugin_loader.h"
#include "server/config.h"
#include "server/core.h"
#include "server/embedded/broker_config.h"
#include "server/external/paho_transport.h"
#include "server/service.h"
#include "server/tls_files.h"

using namespace mqttspec;
namespace fs = std::filesystem;

namespace {

int ConfigError(const std::string& message) {
  std::cerr << "mqttspecd: configuration error: " << message << "\n";
  return 2;
}

int Failure(const std::string& message) {
  std::cerr << "mqttspecd: " << message << "\n";
  return 1;
}

// Core::Create's errors: invalid_value is the configuration's fault (a model, a plugin), the rest
// (database unavailable, …) a runtime failure.
int CoreFailure(const Error& e) {
  return e.code == ErrorCode::kInvalidValue ? ConfigError(e.message) : Failure(e.message);
}

// The executable `name` (a path, or looked up in PATH), or "".
std::string FindExecutable(const std::string& name) {
  auto executable = [](const fs::path& p) {
    return access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p);
  };
  if (name.find('/') != std::string::npos)
    return executable(name) ? fs::absolute(name).string() : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    std::string dir =
        dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!dir.empty() && executable(fs::path(dir) / name)) return (fs::path(dir) / name).string();
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return "";
}

// mqttspec_mosquitto.so: $MQTTSPEC_PLUGIN, else next to this executable (build tree: ../lib,
// installed: ../lib/mqttspec).
std::string FindPlugin() {
  if (const char* env = std::getenv("MQTTSPEC_PLUGIN"))
    return fs::exists(env) ? fs::absolute(env).string() : "";
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  for (const fs::path& p : {exe.parent_path() / "../lib/mqttspec_mosquitto.so",
                            exe.parent_path() / "../lib/mqttspec/mqttspec_mosquitto.so",
                            exe.parent_path() / "mqttspec_mosquitto.so"}) {
    if (fs::exists(p)) return fs::canonical(p).string();
  }
  return "";
}

// "" when host:port can be listened on, else why not.
std::string PortProblem(const std::string& host, int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1)
    return "";  // a name: let the broker judge
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  std::string problem;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    problem = fmt::format("{}:{} cannot be listened on: {}", host, port, strerror(errno));
  close(fd);
  return problem;
}

int RunEmbedded(const server::Config& config, const std::string& config_path) {
  const auto& b = config.broker;
  std::string mosquitto = FindExecutable(b.mosquitto);
  if (mosquitto.empty())
    return Failure(
        fmt::format("broker.mosquitto: '{}' not found; install Mosquitto "
                    "(apt-get install mosquitto) or set broker.mosquitto",
                    b.mosquitto));
  std::string plugin = FindPlugin();
  if (plugin.empty())
    return Failure(
        "the broker plugin mqttspec_mosquitto.so was not found next to mqttspecd "
        "(set MQTTSPEC_PLUGIN to its path)");
  for (auto [key, port] :
       {std::pair{"broker.port", b.port},
        {"broker.websocket_port", b.websocket_port},
        {"broker.tls.port", b.tls.enabled ? b.tls.port : 0},
        {"broker.tls.websocket_port", b.tls.enabled ? b.tls.websocket_port : 0}}) {
    if (port == 0) continue;
    if (auto p = PortProblem(b.host, port); !p.empty())
      return Failure(fmt::format("{}: {}", key, p));
  }
  // Open and migrate once here, so database and plugin errors are reported by us, not in the
  // broker's log. Plugins are only checked: their init runs once, inside the broker.
  {
    auto core = server::Core::Create(config, /*load_plugins=*/false);
    if (!core.ok()) return CoreFailure(core.error());
  }
  std::error_code ec;
  fs::create_directories(b.data_dir, ec);
  if (ec)
    return Failure(fmt::format("broker.data_dir: cannot create {}: {}", b.data_dir, ec.message()));
  server::embedded::BrokerFiles files;
  files.plugin_path = plugin;
  files.config_path = config_path.empty() ? "" : fs::absolute(config_path).string();
  files.data_dir = fs::absolute(b.data_dir).lexically_normal().string();
  files.run_as_root = geteuid() == 0;
  server::Config resolved = config;
  // The broker may run in another directory: it gets absolute paths.
  for (std::string* path : {&resolved.broker.password_file, &resolved.broker.tls.cert_file,
                            &resolved.broker.tls.key_file, &resolved.broker.tls.ca_file}) {
    if (!path->empty()) *path = fs::absolute(*path).string();
  }
  fs::path conf = fs::path(files.data_dir) / "mosquitto.conf";
  {
    std::ofstream out(conf, std::ios::trunc);
    out << server::embedded::RenderMosquittoConf(resolved, files);
    if (!out) return Failure(fmt::format("cannot write {}", conf.string()));
  }
  if (files.run_as_root)
    spdlog::warn(
        "running as root: the broker keeps root (user root); run mqttspecd as an "
        "unprivileged user in production (deploy/mqttspecd.service)");
  spdlog::info("embedded mode: starting {} with {} (listener {}:{})", mosquitto, conf.string(),
               b.host, b.port);
  std::fflush(nullptr);
  const std::string conf_str = conf.string();
  execl(mosquitto.c_str(), "mosquitto", "-c", conf_str.c_str(), static_cast<char*>(nullptr));
  return Failure(fmt::format("cannot execute {}: {}", mosquitto, strerror(errno)));
}

int RunExternal(const server::Config& config) {
  // Signals are taken by sigwait below; block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto core = server::Core::Create(config);
  if (!core.ok()) return CoreFailure(core.error());
  server::PahoTransport transport(config.broker, config.qos.request);
  {
    server::Service service(config, *core.value(), transport);
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
  if (!loaded.ok()) return ConfigError(loaded.error().message);
  server::Config config = std::move(loaded).value();
  if (auto st = server::CheckSupported(config); !st.ok()) return ConfigError(st.error().message);
  if (auto st = server::CheckTlsFiles(config.broker); !st.ok())
    return ConfigError(st.error().message);
  if (check_only) {
    for (const auto& plugin : config.plugins) {
      if (auto st = hooks::CheckPlugin(plugin.path); !st.ok())
        return ConfigError(st.error().message);
    }
    std::cout << "configuration OK: " << config.models.size() << " model(s), broker "
              << config.broker.mode << ", database " << config.database.driver << "\n";
    return 0;
  }

  spdlog::set_default_logger(spdlog::stderr_color_mt("mqttspecd"));
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  spdlog::info("mqttspecd {}", MQTTSPEC_VERSION);
  return config.broker.mode == "embedded" ? RunEmbedded(config, config_path) : RunExternal(config);
}
