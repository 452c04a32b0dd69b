#include "server/allocator.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace mqttspec::server {

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
  return {true, "tcmalloc (" + library + ")"};
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
    return std::string("tcmalloc (") + MQTTSPEC_TCMALLOC + ")";
  const bool had_preload = preload != nullptr;
  const std::string before = had_preload ? preload : "";  // setenv may free what preload points to
  AllocatorChoice chosen = PreloadAllocator(allocator);
  if (!chosen.preloaded) return chosen.description;
  execv("/proc/self/exe", argv);
  spdlog::warn(
      "broker.allocator: tcmalloc: cannot exec mqttspecd again with it preloaded ({}); "
      "running with glibc's malloc",
      strerror(errno));
  if (had_preload) {
    setenv("LD_PRELOAD", before.c_str(), 1);
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
