#include "server/allocator.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

namespace mqttspec::server {

#ifdef MQTTSPEC_TCMALLOC
namespace {
std::string Tcmalloc() { return std::string("tcmalloc (") + MQTTSPEC_TCMALLOC + ")"; }
}  // namespace
#endif

AllocatorChoice PreloadAllocator(const std::string& allocator) {
  if (allocator != "tcmalloc") return {false, "glibc's malloc (broker.allocator: system)"};
#ifdef MQTTSPEC_TCMALLOC
  const std::string library = MQTTSPEC_TCMALLOC;
  if (!std::filesystem::exists(library)) {
    spdlog::warn(
        "broker.allocator: tcmalloc: {} is not installed (Debian: libtcmalloc-minimal4); "
        "running with glibc's malloc",
        library);
    return {false, "glibc's malloc"};
  }
  const char* preload = std::getenv("LD_PRELOAD");
  const std::string value = preload && *preload ? library + ":" + preload : library;
  setenv("LD_PRELOAD", value.c_str(), 1);
  return {true, Tcmalloc()};
#else
  spdlog::info(
      "broker.allocator: tcmalloc: this build has none (a sanitizer build, or "
      "libtcmalloc-minimal4 was missing when it was built); running with glibc's "
      "malloc");
  return {false, "glibc's malloc"};
#endif
}

std::string ReexecWithAllocator(const std::string& allocator, char** argv) {
#ifdef MQTTSPEC_TCMALLOC
  const char* preload = std::getenv("LD_PRELOAD");
  if (preload && std::strstr(preload, MQTTSPEC_TCMALLOC))  // it runs with it already
    return Tcmalloc();
  // A copy: setenv may free what preload points to.
  const std::optional<std::string> before =
      preload ? std::optional<std::string>(preload) : std::nullopt;
  AllocatorChoice chosen = PreloadAllocator(allocator);
  if (!chosen.preloaded) return chosen.description;
  execv("/proc/self/exe", argv);
  spdlog::warn(
      "broker.allocator: tcmalloc: cannot exec mqttspecd again with it preloaded ({}); "
      "running with glibc's malloc",
      strerror(errno));
  if (before) {
    setenv("LD_PRELOAD", before->c_str(), 1);
  } else {
    unsetenv("LD_PRELOAD");
  }
  return "glibc's malloc";
#else
  (void)argv;
  return PreloadAllocator(allocator).description;
#endif
}

}  // namespace mqttspec::server
