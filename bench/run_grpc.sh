#!/usr/bin/env bash
# bench/run_grpc.sh [BUILD_DIR] — the gRPC data API (mqttspec.v1.Query/Read by key) against a bare
# grpc++ echo server of the same service (the transport's own cost), in one run, on this machine.
#
# Builds nothing. Expects, in BUILD_DIR (default build/; or the variables in brackets):
#   bin/mqttspecd [MQTTSPECD], lib/mqttspec_mosquitto.so [PLUGIN], bin/mqttspec_grpc_bench
#   [GRPC_BENCH] (bench/grpc_bench.cc: `cmake --build BUILD_DIR --target mqttspec_grpc_bench`), and
#   `mosquitto` in PATH [MOSQUITTO].
#
# Starts, once: the echo (`mqttspec_grpc_bench echo-server`: Read returns the record_id, nothing
# else) and mqttspecd in embedded mode (the default deployment) on SQLite (synchronous: normal)
# with admin.listen on a free loopback port and a random admin.token; fills public.items with ROWS
# rows through Query/Create (the model and rows of bench/run.sh). Then ROUNDS rounds, each
# measuring echo, then service (interleaved, both servers stay up):
#   latency     1 call in flight, WARMUP s of warm-up, then LAT_S s: p50/p90/p99
#   throughput  INFLIGHT calls in flight, spread over CLIENTS mqttspec-client names (the service
#               runs one client's requests one at a time), WARMUP + TPUT_S s: req/s
# Read(record_id) with keys scattered over 1…ROWS; every answer is checked (the echo's record_id,
# the service's row id) and any error fails the run. The load generator is grpc++'s asynchronous
# client, LOAD_THREADS thread(s), one channel. Prints per-round ratios and the medians over the
# rounds, against the targets (p50 ≤ 1.3×, throughput ≥ 0.7× the echo); the table also goes to
# OUT if set, the raw JSON lines to OUT's .jsonl. Free loopback ports, a temp dir, every process
# started here is stopped on exit. Run as root or as a user that may run Mosquitto.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-${BUILD:-$ROOT/build}}
BUILD=$(cd "$BUILD" && pwd)
MQTTSPECD=${MQTTSPECD:-$BUILD/bin/mqttspecd}
PLUGIN=${PLUGIN:-$BUILD/lib/mqttspec_mosquitto.so}
GRPC_BENCH=${GRPC_BENCH:-$BUILD/bin/mqttspec_grpc_bench}
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || true)}
OUT=${OUT:-}
ROUNDS=${ROUNDS:-3}
ROWS=${ROWS:-10000}
WARMUP=${WARMUP:-1}          # seconds of warm-up before each measurement
LAT_S=${LAT_S:-4}            # 1 in flight: seconds measured
TPUT_S=${TPUT_S:-4}          # INFLIGHT in flight: seconds measured
INFLIGHT=${INFLIGHT:-64}
CLIENTS=${CLIENTS:-4}        # mqttspec-client names the INFLIGHT calls are spread over
LOAD_THREADS=${LOAD_THREADS:-1}
WORKERS=${WORKERS:-}         # mqttspecd's `workers:` (empty: its default, the number of cores)
PIN=${PIN:-0}                # 1: servers on CPU 0, the load generator on CPU 1

for f in "$MQTTSPECD" "$PLUGIN" "$GRPC_BENCH"; do
  [[ -e $f ]] || { echo "run_grpc.sh: $f is missing: build it first (cmake --build $BUILD --target mqttspecd mqttspec_mosquitto mqttspec_grpc_bench)" >&2; exit 1; }
done
[[ -n $MOSQUITTO && -x $MOSQUITTO ]] || { echo "run_grpc.sh: mosquitto not found (apt-get install mosquitto)" >&2; exit 1; }
export MQTTSPEC_PLUGIN=$PLUGIN
SUT_PIN="" LOAD_PIN=""
if [[ $PIN == 1 ]]; then SUT_PIN="taskset -c 0"; LOAD_PIN="taskset -c 1"; fi

WORK=$(mktemp -d /tmp/mqttspec-grpc-bench.XXXXXX)
PIDS=()
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# stop_pid PID: SIGTERM, up to 5 s, then SIGKILL.
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  log "pid $pid ignored SIGTERM for 5 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do stop_pid "$pid"; done
  if [[ ${KEEP_WORK:-0} != 1 ]]; then rm -rf "$WORK"; else log "kept $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_port PORT PID: until 127.0.0.1:PORT accepts a connection (20 s), failing if PID died.
wait_port() {
  local port=$1 pid=$2 i
  for i in $(seq 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { log "process $pid exited before listening on $port"; return 1; }
    sleep 0.1
  done
  log "nothing listens on 127.0.0.1:$port after 20 s"
  return 1
}
busy() { echo "load $(cut -d' ' -f1-3 /proc/loadavg), $(pgrep -c -x 'cc1plus|cc1|ld' || true) compiler processes"; }
field() { sed -E "s/.*\"$2\":([0-9.]+).*/\\1/" <<<"$1"; }  # field JSON-LINE NAME

BUSY_START=$(busy)
START=$(date +%s)
# Seconds during which a compiler ran (another build skews everything: the report says so).
: >"$WORK/busy"
( while sleep 1; do pgrep -x 'cc1plus|cc1|ld' >/dev/null && echo x >>"$WORK/busy"; done ) &
MONITOR_PID=$!; PIDS+=("$MONITOR_PID")

# The echo.
ECHO_PORT=$("$GRPC_BENCH" free-port)
$SUT_PIN "$GRPC_BENCH" echo-server --listen "127.0.0.1:$ECHO_PORT" >"$WORK/echo.log" 2>&1 &
ECHO_PID=$!; PIDS+=("$ECHO_PID")

# The service: embedded mode, SQLite, the gRPC front on a free port with a token.
BROKER_PORT=$("$GRPC_BENCH" free-port)
GRPC_PORT=$("$GRPC_BENCH" free-port)
while [[ $GRPC_PORT == "$BROKER_PORT" || $GRPC_PORT == "$ECHO_PORT" ]]; do GRPC_PORT=$("$GRPC_BENCH" free-port); done
TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
cat >"$WORK/mqttspec.yaml" <<EOF
broker:
  mode: embedded
  host: 127.0.0.1
  port: $BROKER_PORT
  mosquitto: $MOSQUITTO
  data_dir: $WORK/broker
database:
  driver: sqlite
  path: $WORK/bench.db
  synchronous: normal
admin:
  listen: 127.0.0.1:$GRPC_PORT
  token: $TOKEN
log:
  level: info
models:
  - name: public.items
    primary_key: id
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: grp, type: integer, nullable: false, index: true}
      - {name: name, type: text, nullable: false}
      - {name: score, type: real}
      - {name: created_at, type: timestamp, default: now}
EOF
if [[ -n $WORKERS ]]; then echo "workers: $WORKERS" >>"$WORK/mqttspec.yaml"; fi
$SUT_PIN "$MQTTSPECD" --config "$WORK/mqttspec.yaml" >"$WORK/mqttspecd.log" 2>&1 &
SVC_PID=$!; PIDS+=("$SVC_PID")

fail() { log "$*; the last lines of the logs:"; tail -n 15 "$WORK"/*.log >&2 || true; exit 1; }
wait_port "$ECHO_PORT" "$ECHO_PID" || fail "the echo server did not start"
wait_port "$BROKER_PORT" "$SVC_PID" || fail "mqttspecd did not start"
wait_port "$GRPC_PORT" "$SVC_PID" || fail "mqttspecd's gRPC front did not start"
log "echo on 127.0.0.1:$ECHO_PORT, mqttspecd (embedded) broker $BROKER_PORT, gRPC 127.0.0.1:$GRPC_PORT"
timeout 120 "$GRPC_BENCH" seed --addr "127.0.0.1:$GRPC_PORT" --token "$TOKEN" --entity items --rows "$ROWS" ||
  fail "seeding $ROWS rows failed"

# measure SETUP PHASE ROUND → one JSON line appended to $WORK/results.jsonl and echoed to stderr
measure() {
  local setup=$1 phase=$2 round=$3 addr inflight=1 seconds=$LAT_S clients=1 line
  if [[ $setup == echo ]]; then addr=127.0.0.1:$ECHO_PORT; else addr=127.0.0.1:$GRPC_PORT; fi
  if [[ $phase == tput ]]; then inflight=$INFLIGHT; seconds=$TPUT_S; clients=$CLIENTS; fi
  line=$(timeout $((${seconds%.*} + ${WARMUP%.*} + 60)) $LOAD_PIN "$GRPC_BENCH" load --addr "$addr" \
    --token "$TOKEN" --entity items --ids "$ROWS" --inflight "$inflight" --clients "$clients" \
    --threads "$LOAD_THREADS" --seconds "$seconds" --warmup "$WARMUP" --label "$round/$setup/$phase") ||
    fail "the load generator failed ($setup, $phase, round $round): $line"
  echo "$line" >>"$WORK/results.jsonl"
  log "$line"
  RESULT=$line
}

# CPU of everything else during the measurements = the machine's non-idle time − the two servers'
# (from /proc: both are alive until the end) − the load generator's (its JSON lines), in ticks.
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
proc_ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{print $12+$13}'; }
servers_ticks() { echo $(( $(proc_ticks "$ECHO_PID") + $(proc_ticks "$SVC_PID") )); }
M0=$(machine_ticks) S0=$(servers_ticks) T0=$(date +%s.%N)
E0=$(proc_ticks "$ECHO_PID") V0=$(proc_ticks "$SVC_PID")

declare -A P50 RPS
for round in $(seq "$ROUNDS"); do
  for setup in echo service; do
    log "round $round/$ROUNDS: $setup, 1 in flight"
    measure "$setup" lat "$round"; P50[$round/$setup]=$(field "$RESULT" p50_us)
    log "round $round/$ROUNDS: $setup, $INFLIGHT in flight"
    measure "$setup" tput "$round"; RPS[$round/$setup]=$(field "$RESULT" req_per_s)
  done
done
M1=$(machine_ticks) S1=$(servers_ticks) T1=$(date +%s.%N)
E1=$(proc_ticks "$ECHO_PID") V1=$(proc_ticks "$SVC_PID")
# Each server's CPU per call it answered (warm-up calls included in the CPU, not in the count: the
# same share for both). Less sensitive to other load on the machine than latency is.
calls_of() { grep "\"label\":\"[0-9]*/$1/" "$WORK/results.jsonl" | sed -E 's/.*"calls":([0-9]+).*/\1/' | awk '{ s += $1 } END { print s + 0 }'; }
cpu_us_per_call() { awk -v t="$1" -v n="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", n ? 1e6 * t / hz / n : 0 }'; }
ECHO_CPU=$(cpu_us_per_call "$((E1 - E0))" "$(calls_of echo)")
SVC_CPU=$(cpu_us_per_call "$((V1 - V0))" "$(calls_of service)")
ELAPSED=$(( $(date +%s) - START ))
BUSY_END=$(busy)
BUSY_SECONDS=$(wc -l <"$WORK/busy")
LOAD_CPU=$(sed -E 's/.*"client_cpu_s":([0-9.]+).*/\1/' "$WORK/results.jsonl" | awk '{ s += $1 } END { print s + 0 }')
OTHER_PCT=$(awk -v m="$((M1 - M0))" -v s="$((S1 - S0))" -v l="$LOAD_CPU" -v hz="$(getconf CLK_TCK)" \
  -v t="$(awk -v a="$T0" -v b="$T1" 'BEGIN { print b - a }')" -v n="$(nproc)" \
  'BEGIN { o = (m - s) / hz - l; if (o < 0) o = 0; printf "%.0f", 100 * o / (t * n) }')
DISTURBED=""
if [[ $BUSY_SECONDS -gt 0 || $OTHER_PCT -gt 5 ]]; then
  DISTURBED=" — **numbers disturbed, run again on a quiet machine**"
fi

median() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
{
  echo "## gRPC data API vs bare grpc++ echo — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r); $("$MQTTSPECD" --version 2>/dev/null || echo mqttspecd) (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ', with uncommitted changes'); mqttspecd built $(date -u -r "$MQTTSPECD" +%Y-%m-%dT%H:%M:%SZ), plugin $(date -u -r "$PLUGIN" +%H:%M:%SZ)); gRPC $(pkg-config --modversion grpc++ 2>/dev/null || echo '?')"
  echo "- $ROUNDS rounds, echo and service interleaved; $ROWS rows; ${WARMUP} s warm-up, then 1 in flight for ${LAT_S} s and $INFLIGHT in flight ($CLIENTS mqttspec-client names, $LOAD_THREADS load thread(s)) for ${TPUT_S} s; total ${ELAPSED} s; CPU placement: $([[ $PIN == 1 ]] && echo 'servers on CPU 0, load on CPU 1' || echo 'left to the scheduler')"
  echo "- machine at start: $BUSY_START; at end: $BUSY_END; a compiler ran during $BUSY_SECONDS s of the ${ELAPSED} s; other processes used $OTHER_PCT % of the machine during the measurements$DISTURBED"
  echo
  echo "| round | echo p50 | service p50 | × echo (≤ 1.3) | echo req/s | service req/s | × echo (≥ 0.7) |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for round in $(seq "$ROUNDS"); do
    e50=${P50[$round/echo]} s50=${P50[$round/service]} er=${RPS[$round/echo]} sr=${RPS[$round/service]}
    echo "| $round | $e50 µs | $s50 µs | $(ratio "$s50" "$e50")× | $er | $sr | $(ratio "$sr" "$er")× |"
  done
  me50=$(for r in $(seq "$ROUNDS"); do echo -n "${P50[$r/echo]} "; done | median)
  ms50=$(for r in $(seq "$ROUNDS"); do echo -n "${P50[$r/service]} "; done | median)
  mer=$(for r in $(seq "$ROUNDS"); do echo -n "${RPS[$r/echo]} "; done | median)
  msr=$(for r in $(seq "$ROUNDS"); do echo -n "${RPS[$r/service]} "; done | median)
  mrp=$(for r in $(seq "$ROUNDS"); do echo -n "$(ratio "${P50[$r/service]}" "${P50[$r/echo]}") "; done | median)
  mrt=$(for r in $(seq "$ROUNDS"); do echo -n "$(ratio "${RPS[$r/service]}" "${RPS[$r/echo]}") "; done | median)
  echo "| median | $me50 µs | $ms50 µs | $(ratio "$ms50" "$me50")× | $mer | $msr | $(ratio "$msr" "$mer")× |"
  echo
  echo "Server CPU per answered call (all phases): echo ${ECHO_CPU} µs, service ${SVC_CPU} µs ($(ratio "$SVC_CPU" "$ECHO_CPU")×)."
  echo
  echo "Median of the per-round ratios: p50 ${mrp}×, throughput ${mrt}×. p90/p99 and the load generator's CPU are in the JSON lines$([[ -n $OUT ]] && echo " (${OUT%.md}.jsonl)")."
} >"$WORK/report.md"
cat "$WORK/report.md"
if [[ -n $OUT ]]; then
  cp "$WORK/report.md" "$OUT"
  cp "$WORK/results.jsonl" "${OUT%.md}.jsonl"
  log "report written to $OUT"
fi
