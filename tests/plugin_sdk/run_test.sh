#!/usr/bin/env bash
# Out-of-tree hook plugin build, end to end: installs mqttspec from the build dir $1 into a temp
# prefix (cmake --install), builds tests/plugin_sdk (hello_hooks) against that prefix only with
# find_package(mqttspec 0.1), starts the installed mqttspecd in embedded mode with the plugin, and
# checks with a real MQTT client that the plugin's hooks ran. Also: the README's stand-alone plugin
# project, copied out of README.md and built with its printed commands, loads (by a path relative
# to the configuration file), acts, and initialises once; find_package of a version the package
# does not satisfy fails. The C++ client SDK: its headers and shared library are installed, and
# examples/ (sensor, dashboard) builds against the prefix only and runs against that mqttspecd —
# 20 readings acknowledged, then the dashboard's Mirror view holds exactly those 20 rows.
#
# Usage: tests/plugin_sdk/run_test.sh <mqttspec build dir>     (exit 0 = pass)
# Every step is bounded in time; the temp dir and the server are removed whatever happens.
set -euo pipefail

BUILD=$(cd "${1:?usage: run_test.sh <mqttspec build dir>}" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3  # Debian's: the one with paho-mqtt
[ -x "$PY" ] || PY=python3
TMP=$(mktemp -d "${TMPDIR:-/tmp}/mqttspec-sdk-XXXXXX")
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  if [ -f "$TMP/server.log" ]; then
    echo "----- mqttspecd log (last 60 lines) -----" >&2
    tail -n 60 "$TMP/server.log" >&2
  fi
  exit 1
}
step() { echo "== $*"; }
run_logged() {  # run_logged <log> <seconds> cmd...: runs cmd with a time limit, shows the log on failure
  local log=$1 limit=$2
  shift 2
  if ! timeout "$limit" "$@" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    return 1
  fi
}

step "install $BUILD into a temporary prefix"
run_logged "$TMP/install.log" 180 cmake --install "$BUILD" --prefix "$TMP/prefix" ||
  fail "cmake --install $BUILD failed"
for f in bin/mqttspecd lib/mqttspec/mqttspec_mosquitto.so include/mqttspec/plugin.h \
         lib/cmake/mqttspec/mqttspecConfig.cmake lib/cmake/mqttspec/mqttspecConfigVersion.cmake \
         lib/cmake/mqttspec/mqttspecTargets.cmake lib/mqttspec/plugins/libjwt_auth.so; do
  [ -e "$TMP/prefix/$f" ] || fail "not installed: $f"
done
for f in include/mqttspec/client.h include/mqttspec/backoff.h; do
  [ -e "$TMP/prefix/$f" ] || fail "not installed: $f (the client SDK's headers)"
done
# The SDK's shared library goes to CMAKE_INSTALL_LIBDIR: lib, or lib/<multiarch> (a /usr prefix).
CLIENT_LIBDIR=""
for d in "$TMP/prefix/lib" "$TMP/prefix"/lib/*-linux-gnu "$TMP/prefix/lib64"; do
  if [ -e "$d/libmqttspec_client.so" ]; then
    CLIENT_LIBDIR=$d
    break
  fi
done
[ -n "$CLIENT_LIBDIR" ] || fail "not installed: lib/libmqttspec_client.so (the client SDK)"
[ -e "$CLIENT_LIBDIR/libmqttspec_client.so.0" ] ||
  fail "not installed: $CLIENT_LIBDIR/libmqttspec_client.so.0 (the SDK's soname)"

step "configure and build hello_hooks out of tree against the prefix"
run_logged "$TMP/configure.log" 120 cmake -S "$HERE" -B "$TMP/build" \
  -DCMAKE_PREFIX_PATH="$TMP/prefix" -DCMAKE_BUILD_TYPE=Release ||
  fail "configuring tests/plugin_sdk with find_package(mqttspec 0.1) failed"
grep -q "plugin ABI [0-9]" "$TMP/configure.log" || fail "the package reported no plugin ABI version"
run_logged "$TMP/build.log" 180 cmake --build "$TMP/build" || fail "building hello_hooks failed"
PLUGIN="$TMP/build/libhello_hooks.so"
[ -f "$PLUGIN" ] || fail "no $PLUGIN after the build"
if grep -rq -- "-I$REPO/include" "$TMP/build/CMakeFiles/hello_hooks.dir/flags.make"; then
  fail "hello_hooks was compiled against the source tree's include/, not the installed header"
fi
grep -q -- "$TMP/prefix/include" "$TMP/build/CMakeFiles/hello_hooks.dir/flags.make" ||
  fail "hello_hooks was not compiled against the installed include/"

step "build the README's stand-alone plugin project exactly as printed"
mkdir -p "$TMP/readme/my_hooks"
PREFIX="$TMP/prefix" "$PY" - "$REPO/README.md" "$TMP/readme" <<'PYEOF' || fail "the README's plugin project blocks"
import os, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
blocks = dict(re.findall(r"<!-- plugin-project: (\S+) -->\n```\w*\n(.*?)```", text, re.S))
if sorted(blocks) != ["CMakeLists.txt", "build.sh", "my_hooks.cc"]:
    sys.exit(f"README plugin-project blocks: {sorted(blocks)}")
for name in ("CMakeLists.txt", "my_hooks.cc"):
    with open(os.path.join(sys.argv[2], "my_hooks", name), "w") as f:
        f.write(blocks[name])
# The build commands as printed, minus the install (done above), into our prefix.
cmds = [l for l in blocks["build.sh"].splitlines() if l.strip() and "cmake --install" not in l]
with open(os.path.join(sys.argv[2], "build.sh"), "w") as f:
    f.write("set -e\n" + "\n".join(cmds).replace("/opt/mqttspec", os.environ["PREFIX"]) + "\n")
PYEOF
(cd "$TMP/readme" && run_logged "$TMP/readme-build.log" 300 bash build.sh) ||
  fail "the README's plugin project did not build as printed"
README_PLUGIN="$TMP/readme/my_hooks/build/libmy_hooks.so"
[ -f "$README_PLUGIN" ] || fail "no $README_PLUGIN after the README's build commands"

step "find_package(mqttspec 9.0) must fail"
if timeout 120 cmake -S "$HERE" -B "$TMP/build-v9" -DCMAKE_PREFIX_PATH="$TMP/prefix" \
     -DHELLO_MQTTSPEC_VERSION=9.0 >"$TMP/v9.log" 2>&1; then
  fail "find_package(mqttspec 9.0) was satisfied by mqttspec 0.1"
fi

step "configure and build examples/ (client SDK) out of tree against the prefix"
run_logged "$TMP/examples-configure.log" 120 cmake -S "$REPO/examples" -B "$TMP/build-ex" \
  -DCMAKE_PREFIX_PATH="$TMP/prefix" -DCMAKE_BUILD_TYPE=Release ||
  fail "configuring examples/ with find_package(mqttspec 0.1) failed"
run_logged "$TMP/examples-build.log" 300 cmake --build "$TMP/build-ex" ||
  fail "building examples/ against the installed mqttspec::client failed"
SENSOR="$TMP/build-ex/mqttspec_example_sensor"
DASHBOARD="$TMP/build-ex/mqttspec_example_dashboard"
[ -x "$SENSOR" ] && [ -x "$DASHBOARD" ] || fail "no example programs in $TMP/build-ex"
for t in mqttspec_example_sensor mqttspec_example_dashboard; do
  flags="$TMP/build-ex/CMakeFiles/$t.dir/flags.make"
  if grep -q -- "$REPO/include" "$flags"; then
    fail "$t was compiled against the source tree's include/, not the installed headers"
  fi
  grep -q -- "$TMP/prefix/include" "$flags" || fail "$t was not compiled against the installed include/"
done
# They run on the installed library (their RPATH names it; the library path makes sure of it).
EXAMPLE_ENV=(env "LD_LIBRARY_PATH=$CLIENT_LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
# (ldd's output first, then grep: `ldd | grep -q` fails under pipefail when grep, done at the
# first match, closes the pipe while ldd still writes — SIGPIPE.)
linked=$("${EXAMPLE_ENV[@]}" ldd "$SENSOR")
grep -q "libmqttspec_client.so.0 => $CLIENT_LIBDIR/" <<<"$linked" ||
  fail "the sensor does not load the installed libmqttspec_client: $(grep client <<<"$linked")"

step "start the installed mqttspecd (embedded) with the plugin"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TEXT="hello-$RANDOM$RANDOM"
cat >"$TMP/mqttspecd.yaml" <<YAML
broker: {mode: embedded, host: 127.0.0.1, port: $PORT, data_dir: "$TMP/data"}
database: {driver: sqlite, path: "$TMP/sdk.db", synchronous: normal}
admin: {listen: ""}
log: {level: info}
models:
  - name: public.greetings
    primary_key: id
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: name, type: text, nullable: false}
      - {name: greeting, type: text}
  - name: public.orders
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: tenant_id, type: text}
  - name: public.readings     # examples/: the sensor writes it, the dashboard mirrors it
    primary_key: id
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: sensor, type: text, nullable: false, index: true}
      - {name: value, type: real}
      - {name: taken_at, type: timestamp}
hooks:
  plugins:
    - path: "$PLUGIN"
      options: {text: "$TEXT", entity: greetings}
    - path: readme/my_hooks/build/libmy_hooks.so   # the README's project; relative to this file
YAML
# MQTTSPEC_PLUGIN unset: the installed mqttspecd must find its broker plugin in the prefix.
(unset MQTTSPEC_PLUGIN; cd "$TMP" && exec "$TMP/prefix/bin/mqttspecd" --config "$TMP/mqttspecd.yaml") \
  >"$TMP/server.log" 2>&1 </dev/null &
SERVER_PID=$!

step "check with a real MQTT client that the hooks ran"
timeout 60 "$PY" - "$REPO/tests/integration" "$PORT" "$TEXT" "$TMP/sdk.db" "$SERVER_PID" <<'PYEOF' ||
import os, sqlite3, sys, time
sys.path.insert(0, sys.argv[1])
import harness
port, text, db, pid = int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])

def alive():
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False

deadline = time.monotonic() + 20
while True:  # the broker's listener, then a pong
    if not alive():
        sys.exit("mqttspecd exited before serving")
    try:
        c = harness.SpecClient(port, "sdk-" + harness.random_suffix())
        break
    except Exception as e:  # noqa: BLE001 - not listening yet
        if time.monotonic() > deadline:
            sys.exit(f"cannot connect: {e}")
        time.sleep(0.1)
try:
    while True:
        c.send_raw({"type": "ping", "id": "p"})
        try:
            c.wait_for(lambda t, m, p: m.get("id") == "p", 0.5, "pong")
            break
        except AssertionError:
            if time.monotonic() > deadline:
                sys.exit("no pong")

    def ok(msg):
        r = c.request(msg)
        if r.get("success") is not True:
            sys.exit(f"request {msg!r} failed: {r!r}")
        return r["data"]

    made = ok({"id": "c1", "operation": "create", "entity": "greetings", "data": {"name": "ann"}})
    if made.get("greeting") != text:
        sys.exit(f"BeforeCreate hook did not set greeting: {made!r} (expected {text!r})")
    own = ok({"id": "c2", "operation": "create", "entity": "greetings",
              "data": {"name": "bob", "greeting": "mine"}})
    if own.get("greeting") != "mine":
        sys.exit(f"BeforeCreate hook overwrote a given greeting: {own!r}")
    got = ok({"id": "r1", "operation": "read", "entity": "greetings", "record_id": made["id"]})
    if got.get("greeting") != text + " (read)":
        sys.exit(f"AfterRead hook did not change the answer: {got!r}")
    rows = ok({"id": "r2", "operation": "read", "entity": "greetings"})
    if sorted(r["greeting"] for r in rows) != sorted([text + " (read)", "mine (read)"]):
        sys.exit(f"AfterRead hook on a list read: {rows!r}")
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    stored = conn.execute("SELECT greeting FROM greetings WHERE id = ?", (made["id"],)).fetchone()
    conn.close()
    if stored != (text,):
        sys.exit(f"stored greeting is {stored!r}, expected {text!r}")
    # The README's plugin: a client without a tenant reads no orders.
    r = c.request({"id": "o1", "operation": "read", "entity": "orders"})
    if r.get("success") is not False or r["error"] != {"code": "forbidden", "message": "no tenant"}:
        sys.exit(f"the README's plugin did not refuse a read without a tenant: {r!r}")
    print("hooks ran: created", made, "read", got)
finally:
    c.close()
PYEOF
  fail "the plugin's hooks did not run as expected"
grep -q "hello_hooks: ready" "$TMP/server.log" || fail "no 'hello_hooks: ready' in the server log"
grep -q "loaded hook plugin $PLUGIN" "$TMP/server.log" || fail "no 'loaded hook plugin $PLUGIN' in the log"
grep -q "my_hooks: ready" "$TMP/server.log" || fail "no 'my_hooks: ready' in the server log"
[ "$(grep -c "my_hooks: ready" "$TMP/server.log")" -eq 1 ] || fail "the README plugin's init ran more than once"

step "the client SDK examples: the sensor writes 20 readings, the dashboard mirrors them"
SENSOR_ID="sensor-$RANDOM$RANDOM"
run_logged "$TMP/sensor.log" 60 "${EXAMPLE_ENV[@]}" "$SENSOR" --uri "tcp://127.0.0.1:$PORT" --id "$SENSOR_ID" \
  --count 20 --interval-ms 20 --timeout-ms 20000 || fail "the sensor example did not exit 0"
[ "$(grep -c ': id [0-9]' "$TMP/sensor.log")" -eq 20 ] || {
  cat "$TMP/sensor.log" >&2
  fail "the sensor example printed no id for some of its 20 readings"
}
if ! timeout 30 "${EXAMPLE_ENV[@]}" "$DASHBOARD" --uri "tcp://127.0.0.1:$PORT" --id "dash-$RANDOM$RANDOM" \
     --where "sensor=$SENSOR_ID" --seconds 3 >"$TMP/view.jsonl" 2>"$TMP/dashboard.log"; then
  tail -n 40 "$TMP/dashboard.log" >&2
  fail "the dashboard example did not exit 0"
fi
# Its final view is the table: the same keys and rows as SQLite holds for this sensor.
"$PY" - "$TMP/view.jsonl" "$TMP/sdk.db" "$SENSOR_ID" <<'PYEOF' || fail "the dashboard's view is not the table"
import json, sqlite3, sys
view = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8")]
conn = sqlite3.connect(f"file:{sys.argv[2]}?mode=ro", uri=True, timeout=5)
table = conn.execute("SELECT id, sensor, taken_at FROM readings WHERE sensor = ? ORDER BY id",
                     (sys.argv[3],)).fetchall()
conn.close()
got = [(v["key"], v["row"]["sensor"], v["row"]["taken_at"]) for v in view]
if len(view) != 20 or got != table:
    sys.exit(f"view of {len(view)} rows {got!r}\n!= table {table!r}")
print("dashboard view: 20 rows, as in the table")
PYEOF

step "stop mqttspecd (SIGTERM): exit 0 within 10 s"
kill -TERM "$SERVER_PID"
for _ in $(seq 100); do
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$SERVER_PID" 2>/dev/null && fail "mqttspecd still running 10 s after SIGTERM"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
[ "$rc" -eq 0 ] || fail "mqttspecd exited with $rc after SIGTERM"
echo "PASS: out-of-tree plugin built with find_package(mqttspec) and its hooks ran; the client SDK examples built against the prefix and ran"
