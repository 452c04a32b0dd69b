#!/usr/bin/env bash
# bench/run_sdk.sh — the C++ client SDK's overhead: read-by-key round trips through the SDK
# (mqttspec_sdk_bench) against the raw benchmark client (mqttspec_bench run, libmosquitto, its own
# poll loop), the same service, the same table, alternating in each round.
#
# Builds nothing. Expects build/bin/mqttspecd [MQTTSPECD], build/bin/mqttspec_bench [BENCH],
# build/bin/mqttspec_sdk_bench [SDK_BENCH], build/lib/mqttspec_mosquitto.so next to mqttspecd's
# build, `mosquitto` in PATH. Starts one embedded mqttspecd (SQLite, synchronous: normal, QoS 1)
# on a free loopback port in a temp dir, pre-fills ROWS rows, then ROUNDS rounds of: raw, sdk.
# 1 in flight for latency; 1 connection × INFLIGHT in flight for throughput (the SDK is one
# connection, so the raw client gets one too). Writes OUT (default bench/last-sdk-run.md) and the
# TSV beside it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
MQTTSPECD=${MQTTSPECD:-$BUILD/bin/mqttspecd}
BENCH=${BENCH:-$BUILD/bin/mqttspec_bench}
SDK_BENCH=${SDK_BENCH:-$BUILD/bin/mqttspec_sdk_bench}
OUT=${OUT:-$ROOT/bench/last-sdk-run.md}
ROUNDS=${ROUNDS:-3}
ROWS=${ROWS:-10000}
SAMPLES=${SAMPLES:-5000}
LAT_S=${LAT_S:-3}
TPUT=${TPUT:-20000}
TPUT_S=${TPUT_S:-3}
INFLIGHT=${INFLIGHT:-16}

for f in "$MQTTSPECD" "$BENCH" "$SDK_BENCH"; do
  [[ -x $f ]] || { echo "run_sdk.sh: $f missing (build it first)" >&2; exit 1; }
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mqttspec-sdkbench-XXXXXX")
TSV=${OUT%.md}.tsv
: >"$TSV"
PID=""
cleanup() {
  [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

PORT=$("$BENCH" free-port)
cat >"$TMP/mqttspec.yaml" <<YAML
broker: {mode: embedded, host: 127.0.0.1, port: $PORT, data_dir: $TMP/broker}
database: {driver: sqlite, path: $TMP/bench.db, synchronous: normal}
qos: {request: 1, response: 1, notification: 1}
admin: {listen: ""}
log: {level: warn}
models:
  - name: public.items
    primary_key: id
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: grp, type: integer, nullable: false, index: true}
      - {name: name, type: text, nullable: false}
      - {name: score, type: real}
      - {name: created_at, type: timestamp, default: now}
YAML
"$MQTTSPECD" --config "$TMP/mqttspec.yaml" >"$TMP/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  sleep 0.1
done

prefill=$ROWS
for round in $(seq "$ROUNDS"); do
  timeout 300 "$BENCH" run --port "$PORT" --setup raw --qos 1 --prefill "$prefill" --rows "$ROWS" \
    --workloads read --warmup 500 --samples "$SAMPLES" --latency-s "$LAT_S" \
    --tput-requests "$TPUT" --tput-s "$TPUT_S" --conns 1 --inflight "$INFLIGHT" --out "$TSV" \
    --label "$round"
  prefill=0
  timeout 300 "$SDK_BENCH" --port "$PORT" --rows "$ROWS" --warmup 500 --samples "$SAMPLES" \
    --latency-s "$LAT_S" --tput-requests "$TPUT" --tput-s "$TPUT_S" --inflight "$INFLIGHT" \
    --out "$TSV" --label "$round"
done

# Medians over the rounds, and SDK ÷ raw.
/usr/bin/python3 - "$TSV" "$OUT" "$ROUNDS" "$INFLIGHT" <<'PY'
import statistics, sys
tsv, out, rounds, inflight = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
rows = {}
for line in open(tsv):
    f = line.rstrip("\n").split("\t")
    rows.setdefault(f[0], []).append((float(f[4]), float(f[5]), float(f[7]), float(f[8]), int(f[10])))
med = {k: [statistics.median(x[i] for x in v) for i in range(4)] + [sum(x[4] for x in v)]
       for k, v in rows.items()}
r, s = med["raw"], med["sdk"]
lines = [f"read-by-key, embedded mqttspecd (SQLite), QoS 1, {rounds} rounds (medians); "
         f"throughput with 1 connection × {inflight} in flight",
         "",
         "| client | p50 µs (1 in flight) | p99 µs | req/s | p50 µs under load | errors |",
         "|---|---:|---:|---:|---:|---:|",
         f"| raw (mqttspec_bench, libmosquitto) | {r[0]:.1f} | {r[1]:.1f} | {r[2]:.0f} | {r[3]:.1f} | {r[4]} |",
         f"| SDK (mqttspec::Client) | {s[0]:.1f} | {s[1]:.1f} | {s[2]:.0f} | {s[3]:.1f} | {s[4]} |",
         f"| SDK ÷ raw | {s[0]/r[0]:.2f}× | {s[1]/r[1]:.2f}× | {s[2]/r[2]:.2f}× | {s[3]/r[3]:.2f}× | |",
         ""]
open(out, "w").write("\n".join(lines))
print("\n".join(lines))
PY
