// The unit tests' sanitizer options in ASan builds (tests/unit/CMakeLists.txt), as the Python
// tests' processes get them from ctest's environment (tests/CMakeLists.txt). The runtimes call
// these at start-up; ASAN_OPTIONS, LSAN_OPTIONS and UBSAN_OPTIONS still override them.
extern "C" const char* __asan_default_options() { return MQTTSPEC_ASAN_OPTIONS; }
extern "C" const char* __lsan_default_options() { return MQTTSPEC_LSAN_OPTIONS; }
extern "C" const char* __ubsan_default_options() { return MQTTSPEC_UBSAN_OPTIONS; }
