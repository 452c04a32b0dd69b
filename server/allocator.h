#pragma once
// broker.allocator: the malloc of the process that serves — the broker in embedded mode,
// mqttspecd in external mode. "tcmalloc" (the default) preloads gperftools' tcmalloc_minimal
// (Debian: libtcmalloc-minimal4) into that process, which must happen at its exec: a malloc
// replaced after start-up would be handed blocks the first one allocated. The service allocates
// per request (packets, messages, rows, JSON), and glibc's malloc cost ~11 % of the broker's CPU
// per write more (bench/RESULTS.md §Allocator). "system": glibc's. A build without the library
// (or a sanitizer build, whose runtime replaces malloc itself) runs with glibc's either way.
// Not thread-safe (it changes the environment): call it before any thread starts.

#include <string>

namespace mqttspec::server {

struct AllocatorChoice {
  bool preloaded = false;   // LD_PRELOAD now names tcmalloc for the next exec
  std::string description;  // what an exec'd process runs with, for the log
};

// Sets LD_PRELOAD for the next exec (ahead of what the environment has) if `allocator` asks for
// tcmalloc and it is there.
AllocatorChoice PreloadAllocator(const std::string& allocator);

// External mode: unless this process already runs with the allocator asked for, execs itself
// again with it preloaded (same PID, same arguments). Returns only if it did not (nothing to do,
// or the exec failed: then it goes on with glibc's malloc, warned): what this process runs with,
// for the log.
std::string ReexecWithAllocator(const std::string& allocator, char** argv);

}  // namespace mqttspec::server
