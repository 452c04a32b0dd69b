#!/usr/bin/env bash
# bench/run.sh — measures mqttspec against a bare-broker echo baseline, in one run, on this machine.
#
# Builds nothing. Expects (override with the variables in brackets):
#   build/bin/mqttspecd [MQTTSPECD], build/lib/mqttspec_mosquitto.so [PLUGIN],
#   build/bin/mqttspec_bench [BENCH], and `mosquitto` in PATH [MOSQUITTO].
#
# For every round (ROUNDS, default 3) and QoS 0 and 1 it starts, measures and stops, in turn:
#   echo      plain Mosquitto + `mqttspec_bench echo` (republishes each request, no database)
#   external  plain Mosquitto + mqttspecd (broker.mode: external)
#   embedded  mqttspecd (broker.mode: embedded: Mosquitto with our plugin)
# then embedded once more with MQTTSPEC_NO_EVENTFD=1 (answers leave on the broker's tick only).
# Workloads on SQLite (synchronous: normal), table pre-filled with 10 000 rows through the service:
# read-by-key, list-20 (filter grp = g, limit 20; 40 rows per group), then create. The load generator
# uses 1 connection × 1 in flight for latency and 4 connections × 16 in flight for throughput.
#
# Writes the markdown report to OUT (default bench/last-run.md) and the raw samples next to it
# (.tsv). Free loopback ports, a temp dir, every process started and stopped here; each step is
# bounded by `timeout`. Run as root or as a user that may run Mosquitto (the broker configs say
# `user root` only when run as root).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
MQTTSPECD=${MQTTSPECD:-$BUILD/bin/mqttspecd}
PLUGIN=${PLUGIN:-$BUILD/lib/mqttspec_mosquitto.so}
BENCH=${BENCH:-$BUILD/bin/mqttspec_bench}
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || true)}
OUT=${OUT:-$ROOT/bench/last-run.md}
ROUNDS=${ROUNDS:-3}
ROWS=${ROWS:-10000}
WARMUP=${WARMUP:-500}
SAMPLES=${SAMPLES:-5000}     # 1 in flight: this many samples …
LAT_S=${LAT_S:-3}            # … or this many seconds, whichever comes first
TPUT=${TPUT:-20000}          # 4×16 in flight: this many requests …
TPUT_S=${TPUT_S:-3}          # … or this many seconds
CONNS=${CONNS:-4}
INFLIGHT=${INFLIGHT:-16}
WORKLOADS=${WORKLOADS:-read,list,create}  # create last: it grows the table
QOS_LEVELS=${QOS_LEVELS:-"0 1"}
NO_EVENTFD_RUN=${NO_EVENTFD_RUN:-1}
ECHO_LOOP=${ECHO_LOOP:-lib}  # lib: the stock mosquitto_loop_forever client; poll: the driver's own loop
PIN=${PIN:-0}                # 1: everything under test on CPU 0, the load generator on CPU 1
SUT_PIN=""
BENCH_PIN=""
if [[ $PIN == 1 ]]; then
  SUT_PIN="taskset -c 0"
  BENCH_PIN="taskset -c 1"
fi

for f in "$MQTTSPECD" "$PLUGIN" "$BENCH"; do
  [[ -e $f ]] || { echo "run.sh: $f is missing: build the project first (cmake --build build)" >&2; exit 1; }
done
[[ -n $MOSQUITTO && -x $MOSQUITTO ]] || { echo "run.sh: mosquitto not found (apt-get install mosquitto)" >&2; exit 1; }
export MQTTSPEC_PLUGIN=$PLUGIN

WORK=$(mktemp -d /tmp/mqttspec-bench.XXXXXX)
TSV=${OUT%.md}.tsv
: >"$TSV"
PIDS=()

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [[ ${KEEP_WORK:-0} != 1 ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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

forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

# wait_port PORT PID: until 127.0.0.1:PORT accepts a connection (10 s), failing if PID died.
wait_port() {
  local port=$1 pid=$2 i
  for i in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { log "process $pid exited before listening on $port"; return 1; }
    sleep 0.1
  done
  log "nothing listens on 127.0.0.1:$port after 10 s"
  return 1
}

USER_LINE=""
[[ $(id -u) == 0 ]] && USER_LINE="user root"

# start_broker DIR PORT → plain Mosquitto; its pid in BROKER_PID.
start_broker() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  cat >"$dir/mosquitto.conf" <<EOF
per_listener_settings false
set_tcp_nodelay true
listener $port 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
$USER_LINE
EOF
  $SUT_PIN "$MOSQUITTO" -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
  BROKER_PID=$!
  PIDS+=("$BROKER_PID")
}

# service_yaml DIR MODE PORT QOS → the mqttspecd configuration
service_yaml() {
  local dir=$1 mode=$2 port=$3 qos=$4 broker
  if [[ $mode == external ]]; then
    broker="  mode: external
  url: tcp://127.0.0.1:$port
  client_id: mqttspec-server"
  else
    broker="  mode: embedded
  host: 127.0.0.1
  port: $port
  mosquitto: $MOSQUITTO
  data_dir: $dir/broker"
  fi
  cat >"$dir/mqttspec.yaml" <<EOF
broker:
$broker
database:
  driver: sqlite
  path: $dir/bench.db
  synchronous: normal
qos: {request: $qos, response: $qos, notification: $qos}
admin:
  listen: ""
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
}

# measure DIR SETUP QOS PORT ROUND [extra driver args…]
measure() {
  local dir=$1 setup=$2 qos=$3 port=$4 round=$5
  shift 5
  local prefill=$ROWS
  [[ $setup == echo* ]] && prefill=0
  timeout 300 $BENCH_PIN "$BENCH" run --port "$port" --setup "$setup" --qos "$qos" --prefill "$prefill" --rows "$ROWS" \
    --warmup "$WARMUP" --samples "$SAMPLES" --latency-s "$LAT_S" --tput-requests "$TPUT" --tput-s "$TPUT_S" \
    --conns "$CONNS" --inflight "$INFLIGHT" --workloads "$WORKLOADS" --out "$TSV" --label "$round" "$@" || {
    log "the driver failed ($setup, QoS $qos); the last lines of the logs in $dir:"
    tail -n 15 "$dir"/*.log >&2 || true
    exit 1
  }
}

run_echo() {
  local qos=$1 round=$2 dir=$WORK/r$2-echo-q$1 port bpid epid
  port=$("$BENCH" free-port)
  start_broker "$dir" "$port"; bpid=$BROKER_PID
  wait_port "$port" "$bpid"
  $SUT_PIN "$BENCH" echo --port "$port" --qos "$qos" --loop "$ECHO_LOOP" >"$dir/echo.log" 2>&1 &
  epid=$!; PIDS+=("$epid")
  measure "$dir" echo "$qos" "$port" "$round"
  stop_pid "$epid"; forget_pid "$epid"
  stop_pid "$bpid"; forget_pid "$bpid"
}

run_external() {
  local qos=$1 round=$2 dir=$WORK/r$2-external-q$1 port bpid spid
  port=$("$BENCH" free-port)
  start_broker "$dir" "$port"; bpid=$BROKER_PID
  wait_port "$port" "$bpid"
  service_yaml "$dir" external "$port" "$qos"
  $SUT_PIN "$MQTTSPECD" --config "$dir/mqttspec.yaml" >"$dir/mqttspecd.log" 2>&1 &
  spid=$!; PIDS+=("$spid")
  measure "$dir" external "$qos" "$port" "$round"
  stop_pid "$spid"; forget_pid "$spid"
  stop_pid "$bpid"; forget_pid "$bpid"
}

# run_embedded QOS ROUND SETUP-NAME [driver args…]; env for mqttspecd via EMBEDDED_ENV
run_embedded() {
  local qos=$1 round=$2 setup=$3 dir port spid
  shift 3
  dir=$WORK/r$round-$setup-q$qos
  mkdir -p "$dir"
  port=$("$BENCH" free-port)
  service_yaml "$dir" embedded "$port" "$qos"
  env ${EMBEDDED_ENV:-} $SUT_PIN "$MQTTSPECD" --config "$dir/mqttspec.yaml" >"$dir/mqttspecd.log" 2>&1 &
  spid=$!; PIDS+=("$spid")
  wait_port "$port" "$spid"
  measure "$dir" "$setup" "$qos" "$port" "$round" "$@"
  stop_pid "$spid"; forget_pid "$spid"
  LAST_EMBEDDED_LOG=$dir/mqttspecd.log
}

# Other work on the machine (a compiler, say) skews everything: note it.
busy() { echo "load $(cut -d' ' -f1-3 /proc/loadavg), $(pgrep -c -x 'cc1plus|cc1|ld' || true) compiler processes"; }
# Non-idle CPU time of the whole machine, in clock ticks (user nice system irq softirq steal).
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
BUSY_START=$(busy)
TICKS_START=$(machine_ticks)
# Seconds during which a compiler ran while we measured.
( while sleep 1; do pgrep -x 'cc1plus|cc1|ld' >/dev/null && echo busy; done ) >"$WORK/busy" 2>/dev/null &
MONITOR_PID=$!; PIDS+=("$MONITOR_PID")
START=$(date +%s)
log "work dir $WORK; raw results $TSV"
for round in $(seq "$ROUNDS"); do
  for qos in $QOS_LEVELS; do
    log "round $round/$ROUNDS, QoS $qos: echo"
    run_echo "$qos" "$round"
    log "round $round/$ROUNDS, QoS $qos: external"
    run_external "$qos" "$round"
    log "round $round/$ROUNDS, QoS $qos: embedded"
    run_embedded "$qos" "$round" embedded
  done
done

MECHANISM=""
MECHANISM_TICK=""
if [[ -n ${LAST_EMBEDDED_LOG:-} ]]; then
  MECHANISM=$(grep -m1 -E "answers leave|tick only" "$LAST_EMBEDDED_LOG" | sed -E 's/^.* (info|warning) //' || true)
fi
if [[ $NO_EVENTFD_RUN == 1 ]]; then
  # At 1 in flight every answer waits for the next tick (~100 ms): few samples, short warm-up.
  log "embedded with MQTTSPEC_NO_EVENTFD=1 (read-by-key, QoS 0)"
  EMBEDDED_ENV="MQTTSPEC_NO_EVENTFD=1" run_embedded 0 1 embedded-no-eventfd \
    --workloads read --warmup 5 --samples 40 --latency-s 6 --tput-requests "$TPUT" --tput-s "$TPUT_S"
  MECHANISM_TICK=$(grep -m1 -E "answers leave|tick only" "$LAST_EMBEDDED_LOG" | sed -E 's/^.* (info|warning) //' || true)
fi
ELAPSED=$(( $(date +%s) - START ))
BUSY_END=$(busy)
stop_pid "$MONITOR_PID"; forget_pid "$MONITOR_PID"
BUSY_SECONDS=$(wc -l <"$WORK/busy")
# CPU used by everything else = the machine's non-idle time − what our (waited-for) children used.
TICKS_END=$(machine_ticks)
times >"$WORK/times"  # not in a pipeline: that would be a subshell's times
OURS_S=$(tail -1 "$WORK/times" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } print n }')
OTHER_CPU=$(awk -v t0="$TICKS_START" -v t1="$TICKS_END" -v hz="$(getconf CLK_TCK)" -v ours="$OURS_S" -v el="$ELAPSED" -v n="$(nproc)" \
  'BEGIN { o = (t1 - t0) / hz - ours; if (o < 0) o = 0; r = 0; if (el > 0) r = 100 * o / (el * n); printf "%.1f CPU-s (%.0f %% of the machine)", o, r }')
OTHER_PCT=$(sed -E 's/.*\(([0-9]+) %.*/\1/' <<<"$OTHER_CPU")
DISTURBED=""
if [[ $BUSY_SECONDS -gt 0 || ${OTHER_PCT:-0} -gt 5 ]]; then
  DISTURBED=" — **numbers disturbed, run again on a quiet machine**"
fi

{
  echo "## mqttspec benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
  echo "- $("$MOSQUITTO" -h 2>/dev/null | head -1 || true); libmosquitto $(pkg-config --modversion libmosquitto 2>/dev/null || echo '?'); SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1 || echo '?'); $("$MQTTSPECD" --version 2>/dev/null || echo mqttspecd) (git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ', with uncommitted changes'); mqttspecd built $(date -u -r "$MQTTSPECD" +%H:%M:%SZ), plugin $(date -u -r "$PLUGIN" +%H:%M:%SZ))"
  echo "- $ROUNDS round(s), setups interleaved; each cell is the median over the rounds (p50 range in brackets). 1 in flight: $WARMUP warm-up, then $SAMPLES samples or ${LAT_S} s. Throughput: $CONNS connections × $INFLIGHT in flight, 1000 warm-up, then $TPUT requests or ${TPUT_S} s. SQLite synchronous: normal, $ROWS rows pre-filled through the service. Total time ${ELAPSED} s."
  echo "- echo baseline client: libmosquitto, $([[ $ECHO_LOOP == lib ]] && echo 'its stock loop (mosquitto_loop_forever)' || echo 'the driver'"'"'s poll loop'). CPU placement: $([[ $PIN == 1 ]] && echo 'pinned: brokers, echo and mqttspecd on CPU 0, load generator on CPU 1' || echo 'left to the scheduler')."
  echo "- machine at start: $BUSY_START; at end: $BUSY_END; a compiler ran during $BUSY_SECONDS s of the ${ELAPSED} s; other processes used $OTHER_CPU$DISTURBED"
  [[ -n $MECHANISM ]] && echo "- embedded wake-up (from the plugin's log): $MECHANISM"
  if [[ -n $MECHANISM_TICK ]]; then
    echo "- with MQTTSPEC_NO_EVENTFD=1 the log said: $MECHANISM_TICK$([[ $MECHANISM_TICK == *tick* ]] || echo ' — **the variable had no effect**: ignore the embedded-no-eventfd row')"
  fi
  [[ $NO_EVENTFD_RUN == 1 && -z $MECHANISM_TICK ]] && echo "- with MQTTSPEC_NO_EVENTFD=1 the log named no wake-up mechanism"
  echo
  "$BENCH" report "$TSV"
} >"$OUT"
cat "$OUT"
log "report written to $OUT"
