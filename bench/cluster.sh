#!/usr/bin/env bash
# bench/cluster.sh — the scale-out benchmark (issue 18): 1, 2 and 3 mqttspecd instances in
# external mode over one Mosquitto and one PostgreSQL, started by deploy/cluster/cluster.sh, under
# the same client load, on this machine; plus commit → notification latency across instances.
#
#   bench/cluster.sh            one command, as root; ≈ 12 min with the defaults. Writes $OUT.md
#                               (the tables), $OUT.tsv (mqttspec_bench's lines) and $OUT.jsonl (CPU
#                               samples, latency records); OUT defaults to bench/results/<date>-cluster.
#                               `cluster_latency.py report --tsv $OUT.tsv --jsonl $OUT.jsonl` redoes
#                               the tables. Exits non-zero when a cluster does not start or a driver
#                               fails; error answers and lost messages are counted in the tables.
# The follow-ups of bench/RESULTS.md "Scale-out (issue 18)":
#   WORKLOADS="" CONFIGS="nc1 c1 c2 c3" ROUNDS=2 NOTIFY_ROUNDS="1 2" OUT=…notify bench/cluster.sh
#   PG_PROBE=1 [PG_DURABLE=1] CONFIGS="nc1 c1 c2 c3" ROUNDS=1 WORKLOADS=create NOTIFY_CONFIGS="" \
#     OUT=…lockprobe bench/cluster.sh
#   IDLE_S=10 WORKLOADS="" NOTIFY_CONFIGS="" CONFIGS="nc1 c1 c2 c3" ROUNDS=1 OUT=…idle bench/cluster.sh
#
# Setups (CONFIGS, each a fresh cluster: fresh PostgreSQL, fresh Mosquitto, fresh instances):
#   nc1     1 instance, cluster.enabled: false (no log lock, no log follower: the pre-scale-out
#           single instance), broker.partition count 1
#   c1      1 instance, cluster.enabled: true, partition {0, 1}
#   c2, c3  2 / 3 instances, cluster.enabled: true, partitions {i, N}
#   c1w6    (optional) c1 with 6 workers: as many worker threads as c3 has in total
# The instance configs are exactly deploy/cluster/cluster.sh's (pool_size 4, CLUSTER_WORKERS
# workers, lease 3000 / heartbeat 500, QoS 1 defaults) plus the bench model public.items, which a
# wrapper around mqttspecd appends to DIR/instance-N.yaml before it execs the real binary (and, for
# nc1, turns `enabled: true` under cluster: into false).
#
# Per setup and round: pre-fill 10 000 rows (batch creates through the service), then per workload
# (read-by-key, then create): a latency run (1 client, 1 in flight, LAT_SAMPLES or LAT_S) and a
# throughput run (CONNS clients × INFLIGHT in flight for TPUT_S seconds) under `cluster_latency.py
# cpu`, which samples utime+stime of PostgreSQL (postmaster + backends), Mosquitto, every instance,
# the driver and the whole machine over [1 s, TPUT_S s] of the run. The client ids (mqttspec_bench
# --client-prefix P: P0 … P<CONNS-1>) are chosen so that FNV-1a-32(id) % N puts exactly CONNS/N of
# them in each partition, for N = 2 and 3 alike. Setups are interleaved round by round.
# In round 1, right after the pre-fill (before the load), the notification latency
# (cluster_latency.py latency): a subscriber in partition 0 and a writer in partition 0 ("same")
# or partition 1 ("cross"), LAT_RATE creates/s, NOTIFY_SAMPLES samples; "same" also on nc1 and c1.
#
# Every cluster started here is stopped (deploy/cluster/cluster.sh stop) after its setup and on any
# exit (trap). The binaries are copied aside first, so a rebuild during the run cannot mix builds.
#
# Knobs (environment, defaults in brackets): CONFIGS ["nc1 c1 c2 c3 c1w6"], ROUNDS [3], CONNS [48],
# INFLIGHT [2], TPUT_S [12], LAT_SAMPLES [2000], LAT_S [3], ROWS [10000], WORKERS [2] (per instance,
# = CLUSTER_WORKERS), WORKLOADS ["read create"; "" = notification latency only], LAT_RATE [200],
# NOTIFY_SAMPLES [3000], NOTIFY_CONFIGS ["nc1 c1 c2 c3"; "" = none], NOTIFY_ROUNDS ["1": the rounds
# that measure it],
# PG_PROBE [0] (1: also sample the log lock in PostgreSQL during the throughput runs — pg_locks /
# pg_stat_activity ~50×/s from one more connection; off by default because it costs CPU),
# IDLE_S [0] (> 0: after the pre-fill, the CPU of the idle cluster over IDLE_S seconds — heartbeats,
# the followers' once-a-second reads),
# PG_DURABLE [0] (1: PostgreSQL with fsync on), OUT [bench/results/<date>-cluster], KEEP_WORK [0],
# BUILD [build], PYTHON [/usr/bin/python3].
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
PYTHON=${PYTHON:-/usr/bin/python3}
HELPER=$ROOT/bench/cluster_latency.py
CLUSTER_SH=$ROOT/deploy/cluster/cluster.sh
CONFIGS=${CONFIGS:-"nc1 c1 c2 c3 c1w6"}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-48}
INFLIGHT=${INFLIGHT:-2}
TPUT_S=${TPUT_S:-12}
LAT_SAMPLES=${LAT_SAMPLES:-2000}
LAT_S=${LAT_S:-3}
ROWS=${ROWS:-10000}
WORKERS=${WORKERS:-2}
LAT_RATE=${LAT_RATE:-200}
NOTIFY_SAMPLES=${NOTIFY_SAMPLES:-3000}
NOTIFY_CONFIGS=${NOTIFY_CONFIGS-"nc1 c1 c2 c3"}
WORKLOADS=${WORKLOADS-"read create"}
PG_PROBE=${PG_PROBE:-0}
NOTIFY_ROUNDS=${NOTIFY_ROUNDS:-1}
IDLE_S=${IDLE_S:-0}
PG_DURABLE=${PG_DURABLE:-0}
OUT=${OUT:-$ROOT/bench/results/$(date -u +%F)-cluster}
OUT=${OUT%.md}

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { log "cluster bench: $*"; exit 1; }

for f in "$BUILD/bin/mqttspecd" "$BUILD/bin/mqttspecctl" "$BUILD/bin/mqttspec_bench" "$CLUSTER_SH" "$HELPER"; do
  [[ -e $f ]] || die "$f is missing"
done
"$PYTHON" -c 'import sys; sys.path.append("/usr/lib/python3/dist-packages"); import paho.mqtt.client' ||
  die "$PYTHON cannot import paho-mqtt (apt-get install python3-paho-mqtt)"

WORK=$(mktemp -d /tmp/mqttspec-cluster-bench.XXXXXX)
chmod 755 "$WORK"  # Mosquitto, started as root, drops to user mosquitto and needs to reach DIR
DIR=$WORK/cluster
STARTED=0
cleanup() {
  local rc=$?
  if [[ $STARTED == 1 ]]; then
    log "stopping the cluster in $DIR"
    "$CLUSTER_SH" stop "$DIR" >>"$WORK/cluster-sh.log" 2>&1 || log "cluster.sh stop failed (see $WORK/cluster-sh.log)"
  fi
  if [[ $rc != 0 ]]; then
    log "failed (exit $rc); logs kept in $WORK"
  elif [[ ${KEEP_WORK:-0} != 1 ]]; then
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The binaries, copied aside; mqttspecd behind a wrapper that adds the bench model.
mkdir -p "$WORK/bin"
cp "$BUILD/bin/mqttspecd" "$WORK/bin/mqttspecd.real"
cp "$BUILD/bin/mqttspecctl" "$BUILD/bin/mqttspec_bench" "$WORK/bin/"
BENCH=$WORK/bin/mqttspec_bench
cat >"$WORK/bin/mqttspecd" <<'EOF'
#!/usr/bin/env bash
# bench/cluster.sh's wrapper: appends the bench model to the instance config cluster.sh wrote
# (once), for BENCH_CLUSTER_ENABLED=false turns cluster.enabled off, then execs the real daemon
# with the same arguments (so cluster.sh's pid checks, which look for the config path, still hold).
conf=""
prev=""
for a in "$@"; do [[ $prev == --config ]] && conf=$a; prev=$a; done
if [[ -n $conf && -f $conf ]] && ! grep -q 'public.items' "$conf"; then
  cat >>"$conf" <<'YAML'
  # appended by bench/cluster.sh: the model of bench/run.sh
  - name: public.items
    primary_key: id
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: grp, type: integer, nullable: false, index: true}
      - {name: name, type: text, nullable: false}
      - {name: score, type: real}
      - {name: created_at, type: timestamp, default: now}
YAML
  if [[ ${BENCH_CLUSTER_ENABLED:-true} == false ]]; then
    sed -i 's/^  enabled: true$/  enabled: false   # bench\/cluster.sh: the non-cluster baseline/' "$conf"
  fi
fi
exec "$(dirname "$0")/mqttspecd.real" "$@"
EOF
chmod +x "$WORK/bin/mqttspecd"

PORT=$("$BENCH" free-port)
ADMIN_BASE=""
for try in $(seq 1 50); do
  b=$((40000 + RANDOM % 20000))
  busy=0
  for i in 1 2 3; do ss -Hltn "sport = :$((b + i))" | grep -q . && busy=1; done
  [[ $busy == 0 ]] && { ADMIN_BASE=$b; break; }
done
[[ -n $ADMIN_BASE ]] || die "no free admin port range"

PREFIX=$("$PYTHON" "$HELPER" ids --conns "$CONNS" --counts 2,3)
TSV=$OUT.tsv
JSONL=$OUT.jsonl
MD=$OUT.md
mkdir -p "$(dirname "$OUT")"
: >"$TSV"
: >"$JSONL"
T_START=$(date -u +%FT%TZ)
log "work dir $WORK, broker port $PORT, admin ports $((ADMIN_BASE + 1))…, client ids ${PREFIX}0…${PREFIX}$((CONNS - 1))"

# start_cluster CFG: nc1 | cN | cNwW
start_cluster() {
  local cfg=$1 n w=$WORKERS enabled=true
  case $cfg in
    nc1) n=1; enabled=false ;;
    c[0-9]) n=${cfg#c} ;;
    c[0-9]w[0-9]*) n=${cfg:1:1}; w=${cfg#c?w} ;;
    *) die "unknown setup '$cfg' (nc1, c1, c2, c3, c1w6 …)" ;;
  esac
  STARTED=1
  local attempt
  for attempt in 1 2; do
    if BENCH_CLUSTER_ENABLED=$enabled MQTTSPECD=$WORK/bin/mqttspecd MQTTSPECCTL=$WORK/bin/mqttspecctl \
        CLUSTER_INSTANCES=$n CLUSTER_BROKER_PORT=$PORT CLUSTER_ADMIN_PORT_BASE=$ADMIN_BASE \
        CLUSTER_WORKERS=$w CLUSTER_LOG_LEVEL=info PGCLUSTER_DURABLE=$PG_DURABLE PGCLUSTER_TTL_S=3600 \
        "$CLUSTER_SH" start "$DIR" >>"$WORK/cluster-sh.log" 2>&1; then
      break
    fi
    tail -n 12 "$WORK/cluster-sh.log" >&2
    # cluster.sh stops what it started when start fails. One retry (a start can fail for
    # reasons of the machine — a port taken meanwhile — not of the code measured).
    [[ $attempt == 1 ]] || die "cluster.sh start failed twice ($cfg)"
    log "cluster.sh start failed ($cfg); retrying once"
    "$CLUSTER_SH" stop "$DIR" >>"$WORK/cluster-sh.log" 2>&1 || true
  done
  NINST=$n
  grep -q 'public.items' "$DIR/instance-1.yaml" || die "the wrapper did not add the model"
  if [[ $enabled == false ]]; then
    grep -q 'enabled: false' "$DIR/instance-1.yaml" || die "the wrapper did not turn the cluster off"
  fi
}

stop_cluster() {
  "$CLUSTER_SH" stop "$DIR" >>"$WORK/cluster-sh.log" 2>&1 || log "cluster.sh stop failed"
  STARTED=0
  # Keep the instance logs of the setup (cluster.sh keeps them in DIR, the next start truncates).
  for f in "$DIR"/instance-*.log; do [[ -e $f ]] && cp "$f" "$WORK/$CUR-$(basename "$f")"; done
  return 0
}

# driver LABEL WORKLOAD CONNS INFLIGHT SAMPLES LAT_S TPUT_REQUESTS TPUT_S [extra…]
driver() {
  local label=$1 wl=$2 conns=$3 infl=$4 samples=$5 lat_s=$6 treq=$7 ts=$8
  shift 8
  timeout 300 "$BENCH" run --port "$PORT" --setup "$CUR" --qos 1 --workloads "$wl" \
    --client-prefix "$PREFIX" --conns "$conns" --inflight "$infl" --rows "$ROWS" \
    --samples "$samples" --latency-s "$lat_s" --tput-requests "$treq" --tput-s "$ts" \
    --out "$TSV" --label "$label" "$@"
}

run_setup() {
  local cfg=$1 round=$2 wl w
  CUR=$cfg
  log "== $cfg, round $round"
  start_cluster "$cfg"
  # The pre-fill (not recorded: its line goes to a scratch file).
  timeout 300 "$BENCH" run --port "$PORT" --setup "$cfg-prefill" --qos 1 --workloads read \
    --client-prefix "${PREFIX}fill" --conns 1 --inflight 1 --prefill "$ROWS" --rows "$ROWS" \
    --warmup 1 --samples 1 --latency-s 0.5 --tput-requests 1 --tput-s 0.5 \
    --out "$WORK/prefill.tsv" --label x || die "pre-fill failed ($cfg)"
  if [[ $IDLE_S != 0 ]]; then
    sleep 2
    "$PYTHON" "$HELPER" cpu --dir "$DIR" --skip 0.5 --until "$IDLE_S" --label "$cfg/r$round/cpu-idle" \
      --out "$JSONL" -- sleep "$IDLE_S.5" || die "idle run failed ($cfg)"
  fi
  # Notification latency first: on the pre-filled table, before any heavy load (whose after-effects
  # — autovacuum, the trim of the dedup records — would otherwise land in it).
  if [[ " $NOTIFY_ROUNDS " == *" $round "* ]] && [[ " $NOTIFY_CONFIGS " == *" $cfg "* ]]; then
    local nlabel=$cfg
    [[ $NOTIFY_ROUNDS == 1 ]] || nlabel=$cfg-r$round
    local sub ws wc
    sub=$("$PYTHON" "$HELPER" id-in --partition 0 --count "$NINST" --prefix lsub)
    ws=$("$PYTHON" "$HELPER" id-in --partition 0 --count "$NINST" --prefix lwsame)
    "$PYTHON" "$HELPER" latency --port "$PORT" --sub "$sub" --writer "$ws" --rate "$LAT_RATE" \
      --samples "$NOTIFY_SAMPLES" --grp 900001 --label "$nlabel-same" --out "$JSONL" --dir "$DIR" ||
      log "notification latency ($cfg same) reported losses or errors"
    if [[ $NINST -ge 2 ]]; then
      wc=$("$PYTHON" "$HELPER" id-in --partition 1 --count "$NINST" --prefix lwcross)
      "$PYTHON" "$HELPER" latency --port "$PORT" --sub "$sub" --writer "$wc" --rate "$LAT_RATE" \
        --samples "$NOTIFY_SAMPLES" --grp 900002 --label "$nlabel-cross" --out "$JSONL" --dir "$DIR" ||
        log "notification latency ($cfg cross) reported losses or errors"
    fi
  fi
  local probe=()
  [[ $PG_PROBE == 1 ]] && probe=(--pg-url "$(cat "$DIR/pg/url")")
  for w in $WORKLOADS; do
    wl=$([[ $w == read ]] && echo read-by-key || echo create)
    # 1 in flight: one client (P0), its own instance.
    driver "$cfg/r$round/lat" "$w" 1 1 "$LAT_SAMPLES" "$LAT_S" 1 0.2 --warmup 300 ||
      die "latency run failed ($cfg $w)"
    # Throughput, CPU sampled over [1 s, TPUT_S s] of the driver's run (it needs ~0.2-0.5 s to
    # connect and warm up; the throughput phase then lasts TPUT_S s).
    "$PYTHON" "$HELPER" cpu --dir "$DIR" --skip 1.0 --until "$TPUT_S" --label "$cfg/r$round/cpu-$wl" \
      --out "$JSONL" "${probe[@]}" -- \
      "$BENCH" run --port "$PORT" --setup "$cfg" --qos 1 --workloads "$w" \
        --client-prefix "$PREFIX" --conns "$CONNS" --inflight "$INFLIGHT" --rows "$ROWS" \
        --warmup 1 --samples 1 --latency-s 0.1 --tput-requests 2000000 --tput-s "$TPUT_S" \
        --out "$TSV" --label "$cfg/r$round/tput" || die "throughput run failed ($cfg $w)"
  done
  # Errors in the instances' logs (warning level and up) are worth a look.
  grep -h -E '^[0-9T:.-]+ (error|critical) ' "$DIR"/instance-*.log 2>/dev/null | head -n 5 >&2 || true
  stop_cluster
}

machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r)"
for round in $(seq 1 "$ROUNDS"); do
  for cfg in $CONFIGS; do run_setup "$cfg" "$round"; done
done
T_END=$(date -u +%FT%TZ)
pgdesc=$([[ $PG_DURABLE == 1 ]] && echo "15, fsync on" || echo "15 (tests/pg/pgcluster.sh: fsync off, synchronous_commit off)")
"$PYTHON" - "$JSONL" <<EOF
import json, sys
rec = {"kind": "meta", "started": "$T_START", "ended": "$T_END", "rounds": $ROUNDS, "conns": $CONNS,
       "inflight": $INFLIGHT, "tput_s": $TPUT_S, "workers": $WORKERS, "pg": "$pgdesc",
       "machine": "$machine", "configs": "$CONFIGS", "client_prefix": "$PREFIX",
       "workloads": "$WORKLOADS", "notify_configs": "$NOTIFY_CONFIGS", "pg_probe": $PG_PROBE,
       "mqttspecd": "$(stat -c %y "$BUILD/bin/mqttspecd" | cut -d. -f1)",
       "git": "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"}
open(sys.argv[1], "a").write(json.dumps(rec) + "\n")
EOF
{
  echo "# Scale-out benchmark, $T_START → $T_END"
  echo
  echo "bench/cluster.sh (CONFIGS=\"$CONFIGS\" ROUNDS=$ROUNDS CONNS=$CONNS INFLIGHT=$INFLIGHT TPUT_S=$TPUT_S WORKERS=$WORKERS WORKLOADS=\"$WORKLOADS\" NOTIFY_CONFIGS=\"$NOTIFY_CONFIGS\" PG_PROBE=$PG_PROBE), git $(git -C "$ROOT" rev-parse --short HEAD), mqttspecd built $(stat -c %y "$BUILD/bin/mqttspecd" | cut -d. -f1)."
  echo
  "$PYTHON" "$HELPER" report --tsv "$TSV" --jsonl "$JSONL"
} >"$MD"
log "done: $MD"
cat "$MD"
