#!/usr/bin/env bash
# bench/write_cost.sh — what one write costs the embedded broker process, per request: bytes it
# wrote and read (files and sockets, /proc/PID/io wchar/rchar), CPU time (utime + stime), and
# voluntary context switches (all its threads) — beside the throughput, for several service
# configurations in turn. Ratios of these, not the throughput alone, show a change on a noisy
# machine: they hardly move with other load.
#
#   bench/write_cost.sh [VARIANT …]      VARIANT: name, or name='yaml line' (added to the config)
#   e.g. SYNC=full ROUNDS=3 bench/write_cost.sh default norecord='limits: {dedup_window_s: 0}' \
#          nolog='changes: {enabled: false}'
#
# For each round and variant: a fresh directory and SQLite database (SYNC: normal | full), the
# service in embedded mode, 10 000 rows pre-filled and 500 creates at 1 in flight (the p50 is
# printed), then creates at CONNS connections × INFLIGHT in flight (default 4 × 16) for TPUT_S
# seconds (default 6), measured from the process's counters. Needs build/bin/mqttspecd and
# build/bin/mqttspec_bench (BUILD=).
# PERF_DIR=dir: a perf profile (-g -a) during the measured part, one file per round and variant,
# beside the broker's pid (perf report -i dir/1-default.data --pid $(cat dir/1-default.pid)).
# ALLOCATOR=system: the broker with glibc's malloc (broker.allocator; default tcmalloc).
# LOG_DIR=dir: keep each run's service log there (dir/1-default.log; `log: {level: debug}` as a
# variant's line adds the group commit's batch counts at its end).
# DB=postgres: a fresh database per variant on a private cluster (tests/pg/pgcluster.sh, with fsync
# and synchronous_commit on unless PG_DURABLE=0), and one more column: the server's CPU per request.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
ROUNDS=${ROUNDS:-1}
TPUT_S=${TPUT_S:-6}
CONNS=${CONNS:-4}        # the measured part: CONNS connections × INFLIGHT requests in flight
INFLIGHT=${INFLIGHT:-16}
SYNC=${SYNC:-normal}
ALLOCATOR=${ALLOCATOR:-tcmalloc}  # broker.allocator: tcmalloc | system
DB=${DB:-sqlite}
PG_DURABLE=${PG_DURABLE:-1}
BENCH=$BUILD/bin/mqttspec_bench
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto)}
[[ $# -gt 0 ]] || set -- default
WORK=$(mktemp -d /tmp/mqttspec-write-cost.XXXXXX)
SPID=""
PGDIR=""
trap '[[ -n $SPID ]] && kill "$SPID" 2>/dev/null; [[ -n $PGDIR ]] && "$ROOT/tests/pg/pgcluster.sh" stop "$PGDIR" >/dev/null; rm -rf "$WORK"' EXIT
source "$ROOT/bench/pg_ticks.sh"
if [[ $DB == postgres ]]; then
  PGDIR=$WORK/pg
  PG_ADMIN_URL=$(PGCLUSTER_DURABLE=$PG_DURABLE PGCLUSTER_OWNER_PID=$$ "$ROOT/tests/pg/pgcluster.sh" start "$PGDIR")
  PG_PM=$(head -1 "$(cat "$PGDIR/pgdata")/data/postmaster.pid")
fi

counters() {  # PID → "wchar rchar cpu_ticks voluntary_switches"
  echo "$(awk '/^wchar/{w=$2} /^rchar/{r=$2} END{print w, r}' "/proc/$1/io")" \
    "$(awk '{print $14 + $15}' "/proc/$1/stat")" \
    "$(cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt/{s += $2} END{print s}')"
}

printf '| round | variant | req/s, %s×%s | p50 µs, 1 in flight | KiB written / req | KiB read / req | CPU µs / req | switches / req | PostgreSQL CPU µs / req |\n' "$CONNS" "$INFLIGHT"
printf '|---|---|---:|---:|---:|---:|---:|---:|---:|\n'
for round in $(seq "$ROUNDS"); do
  for v in "$@"; do
    name=${v%%=*}
    extra=""
    [[ $v == *=* ]] && extra=${v#*=}
    dir=$WORK/$round-$name
    mkdir -p "$dir"
    port=$("$BENCH" free-port)
    database="database: {driver: sqlite, path: $dir/bench.db, synchronous: $SYNC}"
    if [[ $DB == postgres ]]; then
      db="r${round}_${name//[^a-z0-9]/_}"
      psql "$PG_ADMIN_URL" -XqAtc "CREATE DATABASE \"$db\"" >/dev/null
      database="database: {driver: postgres, url: \"${PG_ADMIN_URL%/*}/$db\"}"
    fi
    cat >"$dir/mqttspec.yaml" <<EOF
broker: {mode: embedded, host: 127.0.0.1, port: $port, mosquitto: $MOSQUITTO, data_dir: $dir/broker, allocator: $ALLOCATOR}
$database
qos: {request: 1, response: 1, notification: 1}
admin: {listen: ""}
$extra
EOF
    cat "$ROOT/bench/items_model.yaml" >>"$dir/mqttspec.yaml"
    "$BUILD/bin/mqttspecd" --config "$dir/mqttspec.yaml" >"$dir/mqttspecd.log" 2>&1 &
    SPID=$!
    for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    mpid=$(pgrep -f "mosquitto -c $dir/" | head -1)
    [[ -n $mpid ]] || { echo "the broker did not start: $(tail -5 "$dir/mqttspecd.log")" >&2; exit 1; }
    common=(--port "$port" --setup embedded --qos 1 --rows 10000 --conns "$CONNS"
      --inflight "$INFLIGHT" --workloads create --out "$dir/o.tsv" --label "$round")
    timeout 120 "$BENCH" run "${common[@]}" --prefill 10000 --warmup 500 --samples 500 \
      --latency-s 2 --tput-requests 1 --tput-s 0.01 >"$dir/latency.log" 2>&1
    read -r w0 r0 t0 c0 < <(counters "$mpid")
    p0=$(pg_ticks)
    perf_pid=""
    if [[ -n ${PERF_DIR:-} ]]; then  # a profile of the broker process during the measured part
      # system-wide: `perf record -p` misses the threads the process starts after it attached
      # (the executor starts workers on demand); perf report --pid picks the broker out
      mkdir -p "$PERF_DIR"
      echo "$mpid" >"$PERF_DIR/$round-$name.pid"
      perf record -q -g -a -o "$PERF_DIR/$round-$name.data" -- sleep "$TPUT_S" >/dev/null 2>&1 &
      perf_pid=$!
    fi
    timeout 120 "$BENCH" run "${common[@]}" --prefill 0 --warmup 100 --samples 100 --latency-s 0.1 \
      --tput-requests 1000000 --tput-s "$TPUT_S" >"$dir/tput.log" 2>&1
    read -r w1 r1 t1 c1 < <(counters "$mpid")
    p1=$(pg_ticks)
    [[ -n $perf_pid ]] && wait "$perf_pid"
    kill "$SPID"; wait "$SPID" 2>/dev/null || true; SPID=""
    [[ -n ${LOG_DIR:-} ]] && mkdir -p "$LOG_DIR" && cp "$dir/mqttspecd.log" "$LOG_DIR/$round-$name.log"
    # requests the counters saw: the measured ones, the warm-up (1000) and the 1-in-flight part
    n=$(($(grep -o 'n=[0-9]*)$' "$dir/tput.log" | tr -dc 0-9) + 1000 + 200))
    rps=$(grep -o '[0-9]* req/s' "$dir/tput.log" | cut -d' ' -f1)
    p50=$(grep -o 'in flight: p50 *[0-9.]*' "$dir/latency.log" | head -1 | awk '{print $NF}')
    tck=$(getconf CLK_TCK)
    awk -v r="$round" -v v="$name" -v rps="$rps" -v p50="$p50" -v n="$n" -v w=$((w1 - w0)) \
      -v rd=$((r1 - r0)) -v t=$((t1 - t0)) -v c=$((c1 - c0)) -v tck="$tck" -v pg=$((p1 - p0)) \
      -v db="$DB" 'BEGIN {
        printf "| %s | %s | %s | %s | %.1f | %.1f | %.0f | %.1f | %s |\n", r, v, rps, p50,
          w / n / 1024, rd / n / 1024, t / tck * 1e6 / n, c / n,
          db == "postgres" ? sprintf("%.0f", pg / tck * 1e6 / n) : "–" }'
  done
done
