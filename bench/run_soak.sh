#!/usr/bin/env bash
# bench/run_soak.sh [BUILD_DIR] — the soak: N subscribed clients and a steady write load for D
# seconds against mqttspecd in embedded mode (the default deployment: Mosquitto with the mqttspec
# plugin, one process) on SQLite. Not part of CI.
#
# Expects, in BUILD_DIR (default build/; override each with the variable in brackets):
#   bin/mqttspecd [MQTTSPECD], lib/mqttspec_mosquitto.so [PLUGIN], bin/mqttspec_soak [SOAK],
#   and `mosquitto` in PATH [MOSQUITTO]. The three are copied to a temp dir first, so a rebuild
#   during the run cannot swap them.
#
# Parameters (environment):
#   N (10000)   subscriber clients, each with one subscription {grp eq i % G} on items
#   M (10)      subscriptions each create matches: G = N / M groups
#   W (4)       writer clients
#   R (200)     creates per second, in total, open loop (a create is due at start + k/R)
#   D (600)     seconds of writes
#   INTERVAL (10)  sampling window, seconds
#   PER_PROC (auto) subscribers per load-generator process: libmosquitto needs 3 descriptors per
#               client and the hard limit (ulimit -Hn) cannot be raised by us, so the subscribers
#               are spread over several processes
#   QOS (1)     the QoS of requests, answers and notifications (the service's defaults are 1)
#   SYNCHRONOUS (normal)  SQLite synchronous, as in bench/run.sh (the service's default is full)
#   OUT (bench/last-soak.md)  the report (table, summary, JSON lines); JSONL next to it (.jsonl)
#   KEEP_WORK (0)  1: keep the temp dir (broker log, database, configs)
# A short run that checks the whole path: N=2000 D=60 bench/run_soak.sh
#
# Starts mqttspecd (exec's into Mosquitto: its pid is the process whose VmRSS is sampled), waits
# for the port, runs `mqttspec_soak run`, and stops everything and removes the temp dir on exit.
# Exit status: mqttspec_soak's (0 = no notification lost or duplicated, every create answered
# with success).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
MQTTSPECD=${MQTTSPECD:-$BUILD/bin/mqttspecd}
PLUGIN=${PLUGIN:-$BUILD/lib/mqttspec_mosquitto.so}
SOAK=${SOAK:-$BUILD/bin/mqttspec_soak}
MOSQUITTO=${MOSQUITTO:-$(command -v mosquitto || true)}
N=${N:-10000}
M=${M:-10}
W=${W:-4}
R=${R:-200}
D=${D:-600}
INTERVAL=${INTERVAL:-10}
QOS=${QOS:-1}
SYNCHRONOUS=${SYNCHRONOUS:-normal}
OUT=${OUT:-$ROOT/bench/last-soak.md}
G=$(( N / M > 0 ? N / M : 1 ))

for f in "$MQTTSPECD" "$PLUGIN" "$SOAK"; do
  [[ -e $f ]] || { echo "run_soak.sh: $f is missing (cmake --build … --target mqttspecd mqttspec_mosquitto mqttspec_soak)" >&2; exit 1; }
done
[[ -n $MOSQUITTO && -x $MOSQUITTO ]] || { echo "run_soak.sh: mosquitto not found" >&2; exit 1; }

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
busy() { echo "load $(cut -d' ' -f1-3 /proc/loadavg), $(pgrep -c -x 'cc1plus|cc1|ld' || true) compiler processes"; }

# Descriptors: the broker holds one per client (plus its own few); each load-generator process 3
# per client. Raise the soft limit to the hard one; both sides must fit under it.
HARD=$(ulimit -Hn)
[[ $HARD == unlimited ]] && HARD=1048576
ulimit -n "$HARD"
if (( N + W + 512 > HARD )); then
  echo "run_soak.sh: ulimit -Hn is $HARD: too low for a broker with $N clients" >&2; exit 1
fi
PER_PROC=${PER_PROC:-$(( (HARD - 256) / 3 < 5000 ? (HARD - 256) / 3 : 5000 ))}

WORK=$(mktemp -d /tmp/mqttspec-soak.XXXXXX)
SPID=""
GPID=""
cleanup() {
  local pid i
  for pid in $GPID $SPID; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  if [[ ${KEEP_WORK:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK/bin" "$WORK/lib" "$WORK/broker"
# What runs is these copies: describe them now (a rebuild or a commit during the run changes the
# originals, not the copies).
BUILT="mqttspecd built $(date -u -r "$MQTTSPECD" +%Y-%m-%dT%H:%M:%SZ), plugin $(date -u -r "$PLUGIN" +%Y-%m-%dT%H:%M:%SZ)"
GIT="git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ', with uncommitted changes')"
cp "$MQTTSPECD" "$WORK/bin/mqttspecd"
cp "$PLUGIN" "$WORK/lib/mqttspec_mosquitto.so"
cp "$SOAK" "$WORK/bin/mqttspec_soak"
export MQTTSPEC_PLUGIN=$WORK/lib/mqttspec_mosquitto.so

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$WORK/mqttspec.yaml" <<EOF
broker:
  mode: embedded
  host: 127.0.0.1
  port: $PORT
  mosquitto: $MOSQUITTO
  data_dir: $WORK/broker
database:
  driver: sqlite
  path: $WORK/soak.db
  synchronous: $SYNCHRONOUS
qos: {request: $QOS, response: $QOS, notification: $QOS}
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

BUSY_START=$(busy)
START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log "machine: $BUSY_START; descriptors: ulimit -n $(ulimit -n)"
"$WORK/bin/mqttspecd" --config "$WORK/mqttspec.yaml" >"$WORK/mqttspecd.log" 2>&1 &
SPID=$!
for i in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  kill -0 "$SPID" 2>/dev/null || { tail -20 "$WORK/mqttspecd.log" >&2; exit 1; }
  sleep 0.1
done
COMM=$(cat "/proc/$SPID/comm")
[[ $COMM == mosquitto ]] || { echo "run_soak.sh: pid $SPID is '$COMM', not mosquitto" >&2; exit 1; }
MAXCONN=$(awk '$1 == "max_connections" { print $2 }' "$WORK/broker/mosquitto.conf" | head -1)
if [[ -n $MAXCONN && $MAXCONN -ge 0 && $MAXCONN -lt $(( N + W )) ]]; then
  echo "run_soak.sh: the generated mosquitto.conf says max_connections $MAXCONN < $(( N + W ))" >&2; exit 1
fi
BROKER_NOFILE=$(awk '/Max open files/ { print $4 }' "/proc/$SPID/limits")
log "mqttspecd → mosquitto pid $SPID on port $PORT; max_connections ${MAXCONN:-unset (unlimited)}; its descriptor limit $BROKER_NOFILE"

set +e
"$WORK/bin/mqttspec_soak" run --port "$PORT" --qos "$QOS" --service-pid "$SPID" \
  --subscribers "$N" --groups "$G" --writers "$W" --rate "$R" --duration "$D" \
  --interval "$INTERVAL" --per-proc "$PER_PROC" --json "$WORK/soak.jsonl" >"$WORK/soak.out" &
GPID=$!
wait "$GPID"
RC=$?
GPID=""
set -e
BUSY_END=$(busy)
kill -0 "$SPID" 2>/dev/null || log "the service exited during the run"
DROPPED=$(grep -c -i 'dropped' "$WORK/mqttspecd.log" || true)
ERRORS=$(grep -c -E '\[(error|critical)\]|Error' "$WORK/mqttspecd.log" || true)

{
  echo "## mqttspec soak — $START"
  echo
  echo "- command: \`N=$N M=$M W=$W R=$R D=$D INTERVAL=$INTERVAL QOS=$QOS SYNCHRONOUS=$SYNCHRONOUS bench/run_soak.sh $BUILD\`"
  echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r); at start: $BUSY_START; at end: $BUSY_END"
  echo "- $("$MOSQUITTO" -h 2>/dev/null | head -1 || true); $("$WORK/bin/mqttspecd" --version 2>/dev/null || echo mqttspecd) ($GIT at the start; $BUILT)"
  echo "- embedded mode, SQLite synchronous: $SYNCHRONOUS, QoS $QOS everywhere, admin.listen off; broker max_connections ${MAXCONN:-unset (unlimited)}, descriptor limit $BROKER_NOFILE; load generator: $PER_PROC subscribers per process"
  echo "- broker log: $DROPPED lines mentioning 'dropped', $ERRORS error lines"
  cat "$WORK/soak.out"
} >"$OUT"
cp "$WORK/soak.jsonl" "${OUT%.md}.jsonl" 2>/dev/null || true
cat "$OUT"
if (( DROPPED + ERRORS > 0 )); then
  log "the broker's log ($DROPPED dropped, $ERRORS errors), last matching lines:"
  grep -i -E 'dropped|\[(error|critical)\]|Error' "$WORK/mqttspecd.log" | tail -5 >&2 || true
fi
log "report written to $OUT (exit $RC)"
exit "$RC"
