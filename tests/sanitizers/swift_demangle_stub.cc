// Preloaded after the ASan runtime into the uninstrumented Mosquitto of the ASan integration tests
// (tests/CMakeLists.txt, MQTTSPEC_TEST_SANITIZER_PRELOAD). Without it the embedded broker hangs
// for ever on its first PostgreSQL connection (GCC 12's libasan, glibc 2.36, seen in gdb):
//
// An uninstrumented executable has no preinit hook, so ASan initialises at the first malloc. In
// Mosquitto that malloc comes from libgpg-error's constructor, inside bindtextdomain() while it
// holds glibc's _nl_state_lock as writer. ASan's initialisation looks up `swift_demangle` with
// dlsym and clears the failure with dlerror(), which translates its message: dcgettext takes the
// same lock as reader, gets EDEADLK (ignored), and its unlock releases the writer's lock; the
// writer's own unlock then leaves the lock corrupt, and the next bindtextdomain() (libpq's, at its
// first connection) waits on it for ever.
//
// With this symbol in the process the lookup succeeds and nothing is translated. ASan calls it for
// names it symbolizes; nullptr means "not a Swift name", so C++ names are demangled as before.
#include <cstddef>
#include <cstdint>

extern "C" __attribute__((visibility("default"))) char* swift_demangle(const char*, size_t, char*,
                                                                       size_t*, uint32_t) {
  return nullptr;
}
