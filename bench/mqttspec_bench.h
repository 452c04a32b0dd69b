#pragma once
// The commands of mqttspec_bench (main and `free-port` in mqttspec_bench.cc), one file each.

#include <string>

#include "bench_common.h"

namespace bench {

// `echo` (bench_echo.cc): the bare-broker baseline; returns only on a fatal error.
int RunEcho(const Args& a);

// `run` (bench_load.cc): the load generator; appends its result lines to --out (or stdout).
int RunLoad(const Args& a);

// `report FILE` (bench_report.cc): the markdown tables of the result lines in `path`, on stdout.
int RunReport(const std::string& path);

}  // namespace bench
