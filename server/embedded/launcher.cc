#include "server/embedded/launcher.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "server/allocator.h"
#include "server/core.h"
#include "server/embedded/broker_config.h"
#include "server/exit_codes.h"

namespace mqttspec::server::embedded {
namespace {

namespace fs = std::filesystem;

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

}  // namespace

int RunEmbedded(const Config& config, const std::string& config_path) {
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
  // admin.listen ("host:port"): checked here too, so a taken port is reported before the exec.
  if (const std::string& l = config.admin.listen; !l.empty()) {
    const size_t colon = l.rfind(':');
    const int port = colon == std::string::npos ? 0 : std::atoi(l.c_str() + colon + 1);
    if (port > 0) {
      if (auto p = PortProblem(l.substr(0, colon), port); !p.empty())
        return Failure("admin.listen: " + p);
    }
  }

  // Open and migrate once here, so database and plugin errors are reported by us, not in the
  // broker's log. Plugins are only checked: their init runs once, inside the broker.
  {
    auto core = Core::Create(config, /*load_plugins=*/false);
    if (!core.ok()) return CoreFailure(core.error());
  }
  std::error_code ec;
  fs::create_directories(b.data_dir, ec);
  if (ec)
    return Failure(fmt::format("broker.data_dir: cannot create {}: {}", b.data_dir, ec.message()));
  BrokerFiles files;
  files.plugin_path = plugin;
  files.config_path = config_path.empty() ? "" : fs::absolute(config_path).string();
  files.data_dir = fs::absolute(b.data_dir).lexically_normal().string();
  files.run_as_root = geteuid() == 0;
  Config resolved = config;
  // The broker may run in another directory: it gets absolute paths.
  for (std::string* path : {&resolved.broker.password_file, &resolved.broker.tls.cert_file,
                            &resolved.broker.tls.key_file, &resolved.broker.tls.ca_file}) {
    if (!path->empty()) *path = fs::absolute(*path).string();
  }
  fs::path conf = fs::path(files.data_dir) / "mosquitto.conf";
  {
    std::ofstream out(conf, std::ios::trunc);
    out << RenderMosquittoConf(resolved, files);
    if (!out) return Failure(fmt::format("cannot write {}", conf.string()));
  }
  if (files.run_as_root)
    spdlog::warn(
        "running as root: the broker keeps root (user root); run mqttspecd as an "
        "unprivileged user in production (deploy/mqttspecd.service)");
  const std::string allocator = PreloadAllocator(b.allocator).description;
  spdlog::info("embedded mode: starting {} with {} (listener {}:{}; malloc: {})", mosquitto,
               conf.string(), b.host, b.port, allocator);
  std::fflush(nullptr);
  const std::string conf_str = conf.string();
  execl(mosquitto.c_str(), "mosquitto", "-c", conf_str.c_str(), static_cast<char*>(nullptr));
  return Failure(fmt::format("cannot execute {}: {}", mosquitto, strerror(errno)));
}

}  // namespace mqttspec::server::embedded
