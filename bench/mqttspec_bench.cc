// mqttspec_bench: load generator, echo baseline and report writer for bench/run.sh.
//
//   mqttspec_bench free-port
//       prints a free TCP port on 127.0.0.1
//   mqttspec_bench echo --port P [--host H] [--qos Q]
//       the bare-broker baseline: subscribes to spec/+/request and republishes every payload,
//       unchanged, to spec/<client>/response (no database)
//   mqttspec_bench run --port P --setup NAME [--qos Q] [--prefill ROWS] [--workloads
//   read,create,list]
//                      [--warmup N] [--samples N] [--latency-s S] [--tput-requests N] [--tput-s S]
//                      [--conns C] [--inflight N] [--out FILE] [--label TEXT]
//       measures request→response round trips against whatever answers on spec/<id>/response:
//       p50/p99 at 1 in flight, then throughput with C connections × N in flight each; appends
//       one tab-separated line per workload to FILE (or stdout)
//   mqttspec_bench report FILE
//       turns those lines into the markdown tables of bench/RESULTS.md, with ratios to the echo
//       baseline of the same run; rows of mqttspec_pq_baseline (QoS -1: raw-sqlite, raw-pg,
//       raw-pg-tx) become the raw-database tables, beside the service's SQLite and PostgreSQL
//       (setups *-pg) rows
//
// Every connection sets TCP_NODELAY. Each connection publishes its requests to its own
// spec/<id>/request and receives the answers on its own spec/<id>/response (what the embedded
// ACL allows). Responses are matched to requests by the echoed "id". One thread drives all
// connections with poll(), so the load generator costs the same in every setup.
//
// Files: mqttspec_bench.cc (this: main, free-port), bench_conn.{h,cc} (connections and the poll
// loop), bench_echo.cc (echo), bench_load.cc (run), bench_report.cc (report); bench_common.h
// (clock, fatal errors, arguments, percentiles) is shared with mqttspec_pq_baseline.

#include "mqttspec_bench.h"

#include <mosquitto.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "bench_common.h"

namespace {

using namespace bench;  // NOLINT: bench_common.h, mqttspec_bench.h

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    Die("bind: %s", std::strerror(errno));
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  std::printf("%d\n", ntohs(addr.sin_port));
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bench::program_name = "mqttspec_bench";
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: mqttspec_bench free-port | echo --port P [--qos Q] | run --port P --setup "
                 "NAME [...] | report FILE\n");
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "free-port") return FreePort();
  if (cmd == "report") {
    if (argc < 3) Die("report FILE");
    return RunReport(argv[2]);
  }
  mosquitto_lib_init();
  Args a = ParseArgs(argc, argv, 2);
  int rc = 2;
  if (cmd == "echo")
    rc = RunEcho(a);
  else if (cmd == "run")
    rc = RunLoad(a);
  else
    Die("unknown command '%s'", cmd.c_str());
  mosquitto_lib_cleanup();
  return rc;
}
