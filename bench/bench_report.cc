// mqttspec_bench report FILE: turns the lines of `mqttspec_bench run` (and of
// mqttspec_pq_baseline) into the markdown tables of bench/RESULTS.md. Rows of several rounds are
// merged per (setup, QoS, workload): medians, with the range of p50 and req/s; ratios are to the
// echo baseline of the same QoS in the same file. Rows with QoS -1 (mqttspec_pq_baseline:
// raw-sqlite, raw-pg, raw-pg-tx) become the raw-database tables, beside the service's SQLite and
// PostgreSQL (setups *-pg) rows. Prints to stdout.

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_common.h"
#include "mqttspec_bench.h"

namespace bench {
namespace {

struct Row {
  std::string setup, workload, label;
  int qos = 0;
  long long n1 = 0, n64 = 0, errors = 0, lost = 0;
  double p50 = 0, p99 = 0, rps = 0, p50_64 = 0, p99_64 = 0;
};

std::string Fmt(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Rows of several rounds, one per (setup, qos, workload): medians, and the range of p50 and req/s.
struct Cell {
  std::string setup, workload;
  int qos = 0;
  int rounds = 0;
  double p50 = 0, p99 = 0, rps = 0, p50_64 = 0, p99_64 = 0;
  double p50_min = 0, p50_max = 0, rps_min = 0, rps_max = 0;
  long long errors = 0, lost = 0;
};

}  // namespace

int RunReport(const std::string& path) {
  std::ifstream in(path);
  if (!in) Die("cannot read %s", path.c_str());
  std::vector<Row> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string x;
    while (std::getline(ss, x, '\t')) f.push_back(x);
    if (f.size() < 12) continue;
    Row r;
    r.setup = f[0];
    r.qos = std::atoi(f[1].c_str());
    r.workload = f[2];
    r.n1 = std::atoll(f[3].c_str());
    r.p50 = std::atof(f[4].c_str());
    r.p99 = std::atof(f[5].c_str());
    r.n64 = std::atoll(f[6].c_str());
    r.rps = std::atof(f[7].c_str());
    r.p50_64 = std::atof(f[8].c_str());
    r.p99_64 = std::atof(f[9].c_str());
    r.errors = std::atoll(f[10].c_str());
    r.lost = std::atoll(f[11].c_str());
    r.label = f.size() > 12 ? f[12] : "-";
    rows.push_back(r);
  }
  std::vector<Cell> cells;
  for (const Row& r : rows) {
    auto it = std::find_if(cells.begin(), cells.end(), [&](const Cell& c) {
      return c.setup == r.setup && c.qos == r.qos && c.workload == r.workload;
    });
    if (it != cells.end()) continue;
    Cell c;
    c.setup = r.setup;
    c.qos = r.qos;
    c.workload = r.workload;
    std::vector<double> p50, p99, rps, p50_64, p99_64;
    for (const Row& s : rows) {
      if (s.setup != r.setup || s.qos != r.qos || s.workload != r.workload) continue;
      p50.push_back(s.p50);
      p99.push_back(s.p99);
      rps.push_back(s.rps);
      p50_64.push_back(s.p50_64);
      p99_64.push_back(s.p99_64);
      c.errors += s.errors;
      c.lost += s.lost;
      ++c.rounds;
    }
    c.p50 = Median(p50);
    c.p99 = Median(p99);
    c.rps = Median(rps);
    c.p50_64 = Median(p50_64);
    c.p99_64 = Median(p99_64);
    c.p50_min = *std::min_element(p50.begin(), p50.end());
    c.p50_max = *std::max_element(p50.begin(), p50.end());
    c.rps_min = *std::min_element(rps.begin(), rps.end());
    c.rps_max = *std::max_element(rps.begin(), rps.end());
    cells.push_back(c);
  }
  auto base = [&](const Cell& r) -> const Cell* {
    for (const Cell& b : cells)
      if (b.setup == "echo" && b.qos == r.qos && b.workload == r.workload) return &b;
    return nullptr;
  };
  auto range = [](double lo, double hi, const char* f) {
    return lo == hi ? std::string() : " (" + Fmt(f, lo) + "–" + Fmt(f, hi) + ")";
  };
  std::printf(
      "| QoS | workload | setup | p50 µs, 1 in flight | p99 µs | p50 × echo | req/s, 64 in flight "
      "| req/s × echo | p50 / p99 µs at 64 | errors |\n");
  std::printf("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  std::vector<std::string> order_w = {"read-by-key", "create", "update", "delete", "list-20",
                                      "ping"};
  for (int qos : {0, 1}) {
    for (const auto& w : order_w) {
      for (const Cell& r : cells) {
        if (r.qos != qos || r.workload != w) continue;
        const Cell* b = base(r);
        std::string rp = b && b->p50 > 0 ? Fmt("%.2f×", r.p50 / b->p50) : "—";
        std::string rt = b && b->rps > 0 ? Fmt("%.2f×", r.rps / b->rps) : "—";
        if (r.setup == "echo") rp = rt = "1";
        std::printf("| %d | %s | %s | %.0f%s | %.0f | %s | %.0f%s | %s | %.0f / %.0f | %lld%s |\n",
                    r.qos, r.workload.c_str(), r.setup.c_str(), r.p50,
                    range(r.p50_min, r.p50_max, "%.0f").c_str(), r.p99, rp.c_str(), r.rps,
                    range(r.rps_min, r.rps_max, "%.0f").c_str(), rt.c_str(), r.p50_64, r.p99_64,
                    r.errors, r.lost ? Fmt(" (+%lld lost)", r.lost).c_str() : "");
      }
    }
  }
  // The change log: its cost to writes (each setup against its `-nolog` twin, changes.enabled
  // false, in the same run) and the replay rate of a resuming subscriber.
  auto twin = [&](const Cell& r) -> const Cell* {
    for (const Cell& c : cells)
      if (c.setup == r.setup + "-nolog" && c.qos == r.qos && c.workload == r.workload) return &c;
    return nullptr;
  };
  bool header = false;
  for (const Cell& r : cells) {
    const Cell* off = twin(r);
    if (!off || r.workload == "replay" || off->rps <= 0) continue;
    if (!header) {
      std::printf(
          "\n**The change log's cost** (the same setup with `changes: {enabled: false}`, same "
          "run; target: the log costs at most 15 %% of create throughput)\n\n"
          "| QoS | workload | setup | req/s with the log | without | with ÷ without | p50 µs "
          "with / without |\n|---|---|---|---:|---:|---:|---:|\n");
      header = true;
    }
    std::printf("| %d | %s | %s | %.0f | %.0f | %.2f× | %.0f / %.0f |\n", r.qos, r.workload.c_str(),
                r.setup.c_str(), r.rps, off->rps, r.rps / off->rps, r.p50, off->p50);
  }
  header = false;
  for (const Cell& r : cells) {
    if (r.workload != "replay") continue;
    if (!header) {
      std::printf(
          "\n**Replay** (one subscriber resumes with since_change_seq 0 and receives every "
          "logged change; the median of 3 resumes per round)\n\n"
          "| QoS | setup | changes | first after µs | whole replay s | changes/s | × echo "
          "read-by-key req/s |\n|---|---|---:|---:|---:|---:|---:|\n");
      header = true;
    }
    const Cell* echo = nullptr;
    for (const Cell& b : cells)
      if (b.setup == "echo" && b.qos == r.qos && b.workload == "read-by-key") echo = &b;
    std::printf("| %d | %s | %.0f | %.0f | %.2f | %.0f%s | %s |\n", r.qos, r.setup.c_str(),
                r.rps * r.p50_64 / 1e6, r.p50, r.p50_64 / 1e6, r.rps,
                range(r.rps_min, r.rps_max, "%.0f").c_str(),
                echo && echo->rps > 0 ? Fmt("%.2f×", r.rps / echo->rps).c_str() : "—");
  }
  std::printf(
      "\n**Targets** (read-by-key, ratios of medians to the echo baseline of the same QoS in this "
      "run):\n\n");
  std::printf(
      "| QoS | setup | p50 × echo | per round | target | verdict | req/s × echo | per round | "
      "target | verdict |\n"
      "|---|---|---:|---|---|---|---:|---|---|---|\n");
  // Ratios of the rows of one round (same label) to that round's echo: how much the verdict
  // depends on the round.
  auto per_round = [&](const Cell& c, bool latency) {
    std::vector<double> v;
    for (const Row& r : rows) {
      if (r.setup != c.setup || r.qos != c.qos || r.workload != c.workload) continue;
      for (const Row& b : rows) {
        if (b.setup == "echo" && b.qos == r.qos && b.workload == r.workload && b.label == r.label) {
          double x = latency ? (b.p50 > 0 ? r.p50 / b.p50 : 0) : (b.rps > 0 ? r.rps / b.rps : 0);
          if (x > 0) v.push_back(x);
        }
      }
    }
    if (v.size() < 2) return std::string("—");
    std::sort(v.begin(), v.end());
    std::string out;
    for (double x : v) out += (out.empty() ? "" : ", ") + Fmt("%.2f", x);
    return out;
  };
  struct Target {
    const char* setup;
    double p50_max, rps_min;
  };
  for (int qos : {0, 1}) {
    for (Target t : {Target{"embedded", 1.0, 0.8}, Target{"external", 1.5, 0.6},
                     Target{"embedded-pg", 1.0, 0.8}, Target{"external-pg", 1.5, 0.6}}) {
      for (const Cell& r : cells) {
        if (r.qos != qos || r.setup != t.setup || r.workload != "read-by-key") continue;
        const Cell* b = base(r);
        if (!b || b->p50 <= 0 || b->rps <= 0) continue;
        double rp = r.p50 / b->p50, rt = r.rps / b->rps;
        std::string vp =
            rp <= t.p50_max ? "met" : Fmt("**missed** by %.0f %%", (rp / t.p50_max - 1) * 100);
        std::string vt =
            rt >= t.rps_min ? "met" : Fmt("**missed** by %.0f %%", (1 - rt / t.rps_min) * 100);
        std::printf("| %d | %s | %.2f× | %s | ≤ %.1f× | %s | %.2f× | %s | ≥ %.1f× | %s |\n", qos,
                    t.setup, rp, per_round(r, true).c_str(), t.p50_max, vp.c_str(), rt,
                    per_round(r, false).c_str(), t.rps_min, vt.c_str());
      }
    }
  }

  // The raw database baselines (mqttspec_pq_baseline: QoS -1) and what the service adds to them.
  auto find = [&](const std::string& setup, int qos, const std::string& w) -> const Cell* {
    for (const Cell& c : cells)
      if (c.setup == setup && c.qos == qos && c.workload == w) return &c;
    return nullptr;
  };
  if (std::none_of(cells.begin(), cells.end(), [](const Cell& c) { return c.qos == -1; })) return 0;
  std::printf(
      "\n**Raw database baselines** (the same statements without mqttspec: libpq `PQexecPrepared` "
      "/ the "
      "sqlite3 C API; latency 1 connection, 1 statement at a time; throughput 8 "
      "connections/threads, "
      "closed loop):\n\n");
  std::printf(
      "| setup | statement | p50 µs, 1 conn | p99 µs | ops/s, 8 conns | p50 / p99 µs at 8 | errors "
      "|\n"
      "|---|---|---:|---:|---:|---:|---:|\n");
  for (const char* w : {"read-by-key", "create"}) {
    for (const Cell& c : cells) {
      if (c.qos != -1 || c.workload != w) continue;
      std::printf("| %s | %s | %.0f%s | %.0f | %.0f%s | %.0f / %.0f | %lld |\n", c.setup.c_str(), w,
                  c.p50, range(c.p50_min, c.p50_max, "%.0f").c_str(), c.p99, c.rps,
                  range(c.rps_min, c.rps_max, "%.0f").c_str(), c.p50_64, c.p99_64, c.errors);
    }
  }
  std::printf(
      "\n**Service vs raw database** (p50 µs at 1 in flight, medians; \"− raw\" = service p50 − "
      "raw p50 = "
      "what the adapter and the MQTT path add to the statement; echo = the bare MQTT round "
      "trip):\n\n");
  std::printf(
      "| QoS | workload | mode | echo | SQLite | raw sqlite3 | − raw | PostgreSQL | raw libpq | − "
      "raw | raw libpq, BEGIN…COMMIT as the adapter | − that |\n"
      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  // One row per (QoS, workload, mode): the service beside the raw statement on each database.
  // `value` formats a cell, `compare` the service against a raw baseline.
  auto service_vs_raw = [&](auto value, auto compare) {
    for (int qos : {0, 1}) {
      for (const char* w : {"read-by-key", "create"}) {
        for (const char* mode : {"embedded", "external"}) {
          const Cell* e = find("echo", qos, w);
          const Cell* s = find(mode, qos, w);
          const Cell* p = find(std::string(mode) + "-pg", qos, w);
          if (!s && !p) continue;
          const Cell* rs = find("raw-sqlite", -1, w);
          const Cell* rp = find("raw-pg", -1, w);
          const Cell* rt = find("raw-pg-tx", -1, w);
          std::printf("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", qos, w,
                      mode, value(e).c_str(), value(s).c_str(), value(rs).c_str(),
                      compare(s, rs).c_str(), value(p).c_str(), value(rp).c_str(),
                      compare(p, rp).c_str(), value(rt).c_str(), compare(p, rt).c_str());
        }
      }
    }
  };
  service_vs_raw([](const Cell* c) { return c ? Fmt("%.0f", c->p50) : std::string("—"); },
                 [](const Cell* a, const Cell* b) {
                   return a && b ? Fmt("%+.0f", a->p50 - b->p50) : std::string("—");
                 });
  std::printf(
      "\n**Throughput, service vs raw database** (req/s at 4 × 16 in flight vs raw ops/s with 8 "
      "connections; medians):\n\n");
  std::printf(
      "| QoS | workload | mode | echo | SQLite | raw sqlite3 | service / raw | PostgreSQL | raw "
      "libpq | service / raw | raw libpq, BEGIN…COMMIT | service / that |\n"
      "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  service_vs_raw([](const Cell* c) { return c ? Fmt("%.0f", c->rps) : std::string("—"); },
                 [](const Cell* a, const Cell* b) {
                   return a && b && b->rps > 0 ? Fmt("%.2f×", a->rps / b->rps) : std::string("—");
                 });
  return 0;
}

}  // namespace bench
