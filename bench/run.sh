#!/usr/bin/env bash
# bench/run.sh — measures mqttspec against a bare-broker echo baseline, in one run, on this machine.
#
# Builds nothing. Expects (override with the variables in brackets):
#   build/bin/mqttspecd [MQTTSPECD], build/lib/mqttspec_mosquitto.so [PLUGIN],
#   build/bin/mqttspec_bench [BENCH], build/bin/mqttspec_pq_baseline [BASELINE], `mosquitto` in
#   PATH [MOSQUITTO], and for the PostgreSQL rows tests/pg/pgcluster.sh [PGCLUSTER] with
#   PostgreSQL 15's server binaries (it starts a private cluster as user postgres on a free port).
#
# For every round (ROUNDS, default 3) and QoS 0 and 1 it starts, measures and stops, in turn:
#   echo         plain Mosquitto + `mqttspec_bench echo` (republishes each request, no database)
#   external     plain Mosquitto + mqttspecd (broker.mode: external), SQLite
#   embedded     mqttspecd (broker.mode: embedded: Mosquitto with our plugin), SQLite
#   external-pg  as external, on PostgreSQL (a fresh database of the private cluster)
#   embedded-pg  as embedded, on PostgreSQL
#   …-nolog      (SETUPS / PG_SETUPS external-nolog, embedded-nolog) the same setup with
#                `changes: {enabled: false}`: the change log's cost to writes, in the same run
# then, once per round, the raw baselines (mqttspec_pq_baseline: the same statements through the
# sqlite3 C API / libpq alone, on the table the round's embedded runs left: raw-sqlite, raw-pg =
# one autocommit PQexecPrepared, raw-pg-tx = BEGIN/statement/COMMIT as the adapter sends them,
# raw-pg-pipe = that transaction in libpq's pipeline mode), and at the end embedded once more
# with MQTTSPEC_NO_EVENTFD=1 (answers leave on the broker's tick only).
# Workloads: SQLite with synchronous: normal (SYNCHRONOUS=full for the default), PostgreSQL with pool_size 8 (the throw-away cluster
# runs with fsync=off, synchronous_commit=off; PG_DURABLE=1: both on); the table is pre-filled with 10 000 rows through
# the service: read-by-key, list-20 (filter grp = g on the declared index, limit 20; 40 rows per
# group; not on PostgreSQL unless PG_WORKLOADS says so), then create; `replay` in WORKLOADS /
# PG_WORKLOADS adds, after them, a subscriber that resumes from change_seq 0 (every change of the
# run: the pre-fill and the writes) — changes/s delivered to it, 3 resumes, the median. The load generator uses
# 1 connection × 1 in flight for latency and 4 connections × 16 in flight for throughput.
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
SETUPS=${SETUPS:-"echo external embedded"}  # the SQLite setups (and the echo) run each round
DATABASES=${DATABASES:-"sqlite postgres"}
PG_SETUPS=${PG_SETUPS:-"external embedded"}
PG_WORKLOADS=${PG_WORKLOADS:-read,create}  # list too: PG_WORKLOADS=read,list,create (+50 s)
PG_QOS_LEVELS=${PG_QOS_LEVELS:-$QOS_LEVELS}
PG_POOL=${PG_POOL:-8}
SYNCHRONOUS=${SYNCHRONOUS:-normal}  # SQLite's database.synchronous: normal | full
DEDUP_WINDOW_S=${DEDUP_WINDOW_S:-}  # limits.dedup_window_s (empty: the default, 60; 0: writes are neither deduplicated nor recorded)
PG_DURABLE=${PG_DURABLE:-0}  # 1: the PostgreSQL cluster runs with fsync and synchronous_commit on
if [[ $PG_DURABLE == 1 ]]; then PG_FSYNC="fsync=on, synchronous_commit=on"; else PG_FSYNC="fsync=off, synchronous_commit=off"; fi
ALLOCATOR=${ALLOCATOR:-tcmalloc}  # mqttspecd's broker.allocator: tcmalloc (the default) | system
WORKERS=${WORKERS:-}         # mqttspecd's `workers:` (empty: its default, the number of cores)
PG_WORKERS=${PG_WORKERS:-$WORKERS}  # the same for the PostgreSQL setups
RAW=${RAW:-1}                # the raw-database baselines, once per round
RAW_THREADS=${RAW_THREADS:-8}
RAW_SAMPLES=${RAW_SAMPLES:-5000}
RAW_LAT_S=${RAW_LAT_S:-1}
RAW_TPUT_S=${RAW_TPUT_S:-1}
BASELINE=${BASELINE:-$BUILD/bin/mqttspec_pq_baseline}
PGCLUSTER=${PGCLUSTER:-$ROOT/tests/pg/pgcluster.sh}
has() { [[ " $1 " == *" $2 "* ]]; }  # has LIST WORD
if ! has "$DATABASES" sqlite; then SETUPS=$(has "$SETUPS" echo && echo echo || true); fi
SUT_PIN=""
BENCH_PIN=""
if [[ $PIN == 1 ]]; then
  SUT_PIN="taskset -c 0"
  BENCH_PIN="taskset -c 1"
fi

NEED=("$MQTTSPECD" "$PLUGIN" "$BENCH")
[[ $RAW == 1 ]] && NEED+=("$BASELINE")
for f in "${NEED[@]}"; do
  [[ -e $f ]] || { echo "run.sh: $f is missing: build the project first (cmake --build build)" >&2; exit 1; }
done
[[ -n $MOSQUITTO && -x $MOSQUITTO ]] || { echo "run.sh: mosquitto not found (apt-get install mosquitto)" >&2; exit 1; }
export MQTTSPEC_PLUGIN=$PLUGIN

WORK=$(mktemp -d /tmp/mqttspec-bench.XXXXXX)
TSV=${OUT%.md}.tsv
: >"$TSV"
PIDS=()
PGDIR=""

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  # The private PostgreSQL cluster goes too, on every exit (its watchdog also stops it if this
  # script is killed outright: PGCLUSTER_OWNER_PID below).
  if [[ -n $PGDIR ]]; then "$PGCLUSTER" stop "$PGDIR" || log "pgcluster stop failed: see $PGDIR"; fi
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

# service_yaml DIR MODE PORT QOS [PG-URL] → the mqttspecd configuration (SQLite in DIR, or
# PostgreSQL at PG-URL)
service_yaml() {
  local dir=$1 mode=$2 port=$3 qos=$4 pgurl=${5:-} broker database workers=$WORKERS
  if [[ $mode == external ]]; then
    broker="  mode: external
  url: tcp://127.0.0.1:$port
  client_id: mqttspec-server
  allocator: $ALLOCATOR"
  else
    broker="  mode: embedded
  host: 127.0.0.1
  port: $port
  mosquitto: $MOSQUITTO
  allocator: $ALLOCATOR
  data_dir: $dir/broker"
  fi
  if [[ -n $pgurl ]]; then
    workers=$PG_WORKERS
    database="  driver: postgres
  url: $pgurl
  pool_size: $PG_POOL"
  else
    database="  driver: sqlite
  path: $dir/bench.db
  synchronous: $SYNCHRONOUS"
  fi
  cat >"$dir/mqttspec.yaml" <<EOF
broker:
$broker
database:
$database
qos: {request: $qos, response: $qos, notification: $qos}
${DEDUP_WINDOW_S:+limits: {dedup_window_s: $DEDUP_WINDOW_S\}}
${CHANGES_ENABLED:+changes: {enabled: $CHANGES_ENABLED\}}
admin:
  listen: ""
log:
  level: info
EOF
  cat "$ROOT/bench/items_model.yaml" >>"$dir/mqttspec.yaml"
  if [[ -n $workers ]]; then echo "workers: $workers" >>"$dir/mqttspec.yaml"; fi
}

# fresh_pg_db NAME → prints the URL of a new, empty database NAME in the private cluster
fresh_pg_db() {
  timeout 60 psql "$PG_ADMIN_URL" -XqAtc "CREATE DATABASE \"$1\"" >/dev/null ||
    { log "CREATE DATABASE $1 failed"; exit 1; }
  echo "$PG_BASE_URL/$1"
}

# without_replay LIST → the comma-separated workload LIST without `replay` (a setup without the
# change log cannot resume)
without_replay() { tr ',' '\n' <<<"$1" | grep -vx replay | paste -sd, -; }

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

# run_external QOS ROUND [DB]: DB sqlite (default) or postgres
run_external() {
  local qos=$1 round=$2 db=${3:-sqlite} suffix=${4:-} setup=external dir port bpid spid pgurl="" workloads=$WORKLOADS
  if [[ $db == postgres ]]; then setup=external-pg; workloads=$PG_WORKLOADS; fi
  setup=$setup$suffix
  [[ $suffix == -nolog ]] && workloads=$(without_replay "$workloads")
  dir=$WORK/r$round-$setup-q$qos
  mkdir -p "$dir"
  [[ $db == postgres ]] && pgurl=$(fresh_pg_db "r${round}_${setup//-/_}_q$qos")
  port=$("$BENCH" free-port)
  start_broker "$dir" "$port"; bpid=$BROKER_PID
  wait_port "$port" "$bpid"
  service_yaml "$dir" external "$port" "$qos" "$pgurl"
  $SUT_PIN "$MQTTSPECD" --config "$dir/mqttspec.yaml" >"$dir/mqttspecd.log" 2>&1 &
  spid=$!; PIDS+=("$spid")
  measure "$dir" "$setup" "$qos" "$port" "$round" --workloads "$workloads"
  stop_pid "$spid"; forget_pid "$spid"
  stop_pid "$bpid"; forget_pid "$bpid"
}

# run_embedded QOS ROUND SETUP-NAME [driver args…]; env for mqttspecd via EMBEDDED_ENV; a setup
# named *-pg runs on a fresh PostgreSQL database (its URL left in LAST_PG_URL), else on SQLite
# (the file left in LAST_SQLITE_DB)
run_embedded() {
  local qos=$1 round=$2 setup=$3 dir port spid pgurl=""
  shift 3
  dir=$WORK/r$round-$setup-q$qos
  mkdir -p "$dir"
  if [[ $setup == *-pg || $setup == *-pg-* ]]; then
    pgurl=$(fresh_pg_db "r${round}_${setup//-/_}_q$qos")
    set -- --workloads "$PG_WORKLOADS" "$@"
  fi
  if [[ $setup == *-nolog ]]; then
    set -- "$@" --workloads "$(without_replay "$([[ -n $pgurl ]] && echo "$PG_WORKLOADS" || echo "$WORKLOADS")")"
  fi
  port=$("$BENCH" free-port)
  service_yaml "$dir" embedded "$port" "$qos" "$pgurl"
  env ${EMBEDDED_ENV:-} $SUT_PIN "$MQTTSPECD" --config "$dir/mqttspec.yaml" >"$dir/mqttspecd.log" 2>&1 &
  spid=$!; PIDS+=("$spid")
  wait_port "$port" "$spid"
  measure "$dir" "$setup" "$qos" "$port" "$round" "$@"
  stop_pid "$spid"; forget_pid "$spid"
  if [[ -n $pgurl ]]; then LAST_PG_URL=$pgurl; else LAST_EMBEDDED_LOG=$dir/mqttspecd.log; LAST_SQLITE_DB=$dir/bench.db; fi
}

# run_raw ROUND: the raw baselines on the tables the round's first embedded runs left
run_raw() {
  local round=$1 sqlite_db=${RAW_SQLITE_DB:-} pg_url=${RAW_PG_URL:-}
  local args=(--rows "$ROWS" --warmup "$WARMUP" --samples "$RAW_SAMPLES" --latency-s "$RAW_LAT_S"
    --threads "$RAW_THREADS" --tput-s "$RAW_TPUT_S" --out "$TSV" --label "$round")
  if [[ -n $sqlite_db ]]; then
    timeout 120 $BENCH_PIN "$BASELINE" sqlite --path "$sqlite_db" "${args[@]}" ||
      { log "the raw SQLite baseline failed"; exit 1; }
  fi
  if [[ -n $pg_url ]]; then
    timeout 120 $BENCH_PIN "$BASELINE" pg --url "$pg_url" "${args[@]}" ||
      { log "the raw PostgreSQL baseline failed"; exit 1; }
  fi
}

# Other work on the machine (a compiler, say) skews everything: note it.
busy() { echo "load $(cut -d' ' -f1-3 /proc/loadavg), $(pgrep -c -x 'cc1plus|cc1|ld' || true) compiler processes"; }
# Non-idle CPU time of the whole machine, in clock ticks (user nice system irq softirq steal).
machine_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
# CHILDREN_CPU = CPU seconds used so far by this script's waited-for children (`times`' second
# line). Not in $(…) or a pipeline: a subshell's `times` knows none of our children.
children_cpu() {
  times >"$WORK/times"
  CHILDREN_CPU=$(tail -1 "$WORK/times" | awk '{ n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } print n }')
}
source "$ROOT/bench/pg_ticks.sh"  # pg_ticks: the server's CPU (PG_PM, set below)

if has "$DATABASES" postgres; then
  [[ -x $PGCLUSTER ]] || { log "$PGCLUSTER not found"; exit 1; }
  command -v psql >/dev/null || { log "psql not found (postgresql-client-15)"; exit 1; }
  PGDIR=$WORK/pg
  log "starting a private PostgreSQL cluster"
  PG_ADMIN_URL=$(PGCLUSTER_DURABLE=$PG_DURABLE PGCLUSTER_OWNER_PID=$$ "$PGCLUSTER" start "$PGDIR")
  PG_BASE_URL=${PG_ADMIN_URL%/*}
  PG_PM=$(head -1 "$(cat "$PGDIR/pgdata")/data/postmaster.pid")
  PG_VERSION=$(psql "$PG_ADMIN_URL" -XqAtc "SHOW server_version")
  if [[ $PIN == 1 ]]; then
    for p in $PG_PM $(pgrep -P "$PG_PM"); do taskset -a -p -c 0 "$p" >/dev/null; done
  fi
fi

BUSY_START=$(busy)
TICKS_START=$(machine_ticks)
children_cpu; OURS_START=$CHILDREN_CPU
PG_TICKS_START=$(pg_ticks)
# Seconds during which a compiler ran while we measured.
( while sleep 1; do pgrep -x 'cc1plus|cc1|ld' >/dev/null && echo busy; done ) >"$WORK/busy" 2>/dev/null &
MONITOR_PID=$!; PIDS+=("$MONITOR_PID")
START=$(date +%s)
log "work dir $WORK; raw results $TSV"
for round in $(seq "$ROUNDS"); do
  RAW_SQLITE_DB=""; RAW_PG_URL=""; LAST_SQLITE_DB=""; LAST_PG_URL=""
  for qos in $QOS_LEVELS; do
    if has "$SETUPS" echo; then
      log "round $round/$ROUNDS, QoS $qos: echo"
      run_echo "$qos" "$round"
    fi
    if has "$SETUPS" external; then
      log "round $round/$ROUNDS, QoS $qos: external"
      run_external "$qos" "$round"
    fi
    if has "$SETUPS" embedded; then
      log "round $round/$ROUNDS, QoS $qos: embedded"
      run_embedded "$qos" "$round" embedded
    fi
    if has "$SETUPS" external-nolog; then
      log "round $round/$ROUNDS, QoS $qos: external-nolog"
      CHANGES_ENABLED=false run_external "$qos" "$round" sqlite -nolog
    fi
    if has "$SETUPS" embedded-nolog; then
      log "round $round/$ROUNDS, QoS $qos: embedded-nolog"
      CHANGES_ENABLED=false run_embedded "$qos" "$round" embedded-nolog
    fi
    if has "$DATABASES" postgres && has "$PG_QOS_LEVELS" "$qos"; then
      if has "$PG_SETUPS" external; then
        log "round $round/$ROUNDS, QoS $qos: external-pg"
        run_external "$qos" "$round" postgres
      fi
      if has "$PG_SETUPS" embedded; then
        log "round $round/$ROUNDS, QoS $qos: embedded-pg"
        run_embedded "$qos" "$round" embedded-pg
      fi
      if has "$PG_SETUPS" external-nolog; then
        log "round $round/$ROUNDS, QoS $qos: external-pg-nolog"
        CHANGES_ENABLED=false run_external "$qos" "$round" postgres -nolog
      fi
      if has "$PG_SETUPS" embedded-nolog; then
        log "round $round/$ROUNDS, QoS $qos: embedded-pg-nolog"
        CHANGES_ENABLED=false run_embedded "$qos" "$round" embedded-pg-nolog
      fi
    fi
    # The raw baselines run on the tables the first embedded runs of the round left.
    [[ -n $RAW_SQLITE_DB ]] || RAW_SQLITE_DB=$LAST_SQLITE_DB
    [[ -n $RAW_PG_URL ]] || RAW_PG_URL=$LAST_PG_URL
  done
  if [[ $RAW == 1 ]]; then
    log "round $round/$ROUNDS: raw database baselines"
    run_raw "$round"
  fi
done

# The disk's commit cost, in the same run: fdatasync after each 4 KiB append, in the work dir
# (the SQLite files' file system), 500 times; p50 and p99 in µs.
FSYNC_US=$(python3 - "$WORK" <<'PY'
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
block, t = b"x" * 4096, []
for _ in range(500):
    a = time.perf_counter_ns(); os.write(fd, block); os.fdatasync(fd); t.append(time.perf_counter_ns() - a)
os.close(fd); os.unlink(path); t.sort()
print(f"p50 {t[len(t) // 2] / 1000:.0f} µs, p99 {t[len(t) * 99 // 100] / 1000:.0f} µs")
PY
)
log "fdatasync of a 4 KiB append: $FSYNC_US"

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
PG_TICKS_END=$(pg_ticks)
children_cpu
OURS_S=$(awk -v a="$OURS_START" -v b="$CHILDREN_CPU" -v hz="$(getconf CLK_TCK)" -v p0="$PG_TICKS_START" -v p1="$PG_TICKS_END" \
  'BEGIN { printf "%.1f", b - a + (p1 - p0) / hz }')
PG_CPU=$(awk -v hz="$(getconf CLK_TCK)" -v p0="$PG_TICKS_START" -v p1="$PG_TICKS_END" 'BEGIN { printf "%.1f", (p1 - p0) / hz }')
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
  echo "- $ROUNDS round(s), setups interleaved; each cell is the median over the rounds (p50 range in brackets). 1 in flight: $WARMUP warm-up, then $SAMPLES samples or ${LAT_S} s. Throughput: $CONNS connections × $INFLIGHT in flight, 1000 warm-up, then $TPUT requests or ${TPUT_S} s. SQLite synchronous: $SYNCHRONOUS, $ROWS rows pre-filled through the service; fdatasync of a 4 KiB append on this disk: $FSYNC_US. The serving process's malloc (broker.allocator: the embedded broker, mqttspecd in external mode): $ALLOCATOR (the echo's Mosquitto and its client, and the external setups' Mosquitto: glibc's).${DEDUP_WINDOW_S:+ limits.dedup_window_s: $DEDUP_WINDOW_S.} Total time ${ELAPSED} s."
  if [[ -n $PGDIR ]]; then
    echo "- PostgreSQL $PG_VERSION (private cluster of tests/pg/pgcluster.sh: $PG_FSYNC, shared_buffers=32MB), a fresh database per setup, pool_size $PG_POOL, workers ${PG_WORKERS:-default (= cores)}; setups external-pg and embedded-pg at QoS $PG_QOS_LEVELS, workloads $PG_WORKLOADS. The server used $PG_CPU CPU-s (counted as ours below)."
  fi
  [[ $RAW == 1 ]] && echo "- raw baselines (mqttspec_pq_baseline, once per round on the table the round's embedded run left): $WARMUP warm-up, then $RAW_SAMPLES statements or ${RAW_LAT_S} s on 1 connection; then $RAW_THREADS connections (threads) for ${RAW_TPUT_S} s. libpq $(pkg-config --modversion libpq 2>/dev/null || echo '?')."
  echo "- echo baseline client: libmosquitto, $([[ $ECHO_LOOP == lib ]] && echo 'its stock loop (mosquitto_loop_forever)' || echo 'the driver'"'"'s poll loop'). CPU placement: $([[ $PIN == 1 ]] && echo "pinned: brokers, echo, mqttspecd$([[ -n $PGDIR ]] && echo ' and PostgreSQL') on CPU 0, load generator$([[ $RAW == 1 ]] && echo ' and raw baselines') on CPU 1" || echo 'left to the scheduler')."
  echo "- machine at start: $BUSY_START; at end: $BUSY_END; a compiler ran during $BUSY_SECONDS s of the ${ELAPSED} s; we used $OURS_S CPU-s (PostgreSQL included), other processes $OTHER_CPU$DISTURBED"
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
