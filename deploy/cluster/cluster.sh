#!/usr/bin/env bash
# cluster.sh — a scale-out demo on one machine, on loopback: one Mosquitto (the external broker),
# one PostgreSQL 15 (the one source of truth) and N mqttspecd instances in external mode, each
# answering the clients of its static partition (broker.partition) under a lease (cluster.*).
# deploy/cluster/README.md explains the layout and the production broker configurations.
#
#   cluster.sh start  [DIR]   start everything, wait until every instance is ready, print a summary
#   cluster.sh stop   [DIR]   stop the instances (SIGTERM, then SIGKILL), Mosquitto, PostgreSQL.
#                             Idempotent; the logs stay in DIR.
#   cluster.sh status [DIR]   what runs; exit 0 when everything runs (and every instance is ready)
#
# DIR defaults to /tmp/mqttspec-cluster. Files in DIR:
#   mosquitto/{mosquitto.conf,mosquitto.pid,mosquitto.log,data/}   the broker (owned by user
#                                         mosquitto when run as root: Mosquitto drops to it)
#   pg/                                   tests/pg/pgcluster.sh's files (url, port, pgdata, ...)
#   instance-N.yaml, instance-N.log, instance-N.pid                  one set per instance
#   cluster.env                           BROKER_URL, PG_URL, INSTANCES (for scripts: `. DIR/cluster.env`)
#
# Environment (defaults in brackets):
#   MQTTSPECD                 the daemon [<repo>/build/bin/mqttspecd]
#   MQTTSPECCTL               the admin CLI, used for readiness [next to MQTTSPECD, else <repo>/build/bin]
#   CLUSTER_INSTANCES         number of instances = partitions [3]; 0 = broker and database only
#   CLUSTER_BROKER_PORT       Mosquitto's loopback listener [18830]
#   CLUSTER_ADMIN_PORT_BASE   instance N serves admin.listen on 127.0.0.1:<base+N> [50050 → 50051…]
#   CLUSTER_METRICS_PORT_BASE instance N serves admin.metrics_listen on <base+N> [unset = off]
#   CLUSTER_PG_PORT           a fixed PostgreSQL port [a free one, chosen by pgcluster.sh]
#   CLUSTER_LEASE_MS, CLUSTER_HEARTBEAT_MS   cluster.lease_ms / heartbeat_ms [3000 / 500]
#   CLUSTER_LOG_LEVEL         log.level of the instances [info]
#   CLUSTER_WORKERS           workers per instance [2]
#   CLUSTER_READY_TIMEOUT_S   how long start waits for each instance [60]
#   CLUSTER_STOP_TIMEOUT_S    how long stop waits after SIGTERM before SIGKILL [20]
#   PGCLUSTER_DURABLE=1       PostgreSQL with fsync on (default: off — a throw-away demo database)
#   PGCLUSTER_TTL_S           pgcluster.sh's watchdog limit [0 here = none; pgcluster's own is 3 h]
#
# Runs as root on Debian 12 (apt-get install mosquitto mosquitto-clients postgresql-15), or as an
# ordinary user (then Mosquitto and PostgreSQL run as that user).
set -euo pipefail

die() { echo "cluster: $*" >&2; exit 1; }
note() { echo "cluster: $*" >&2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
pgcluster="$repo/tests/pg/pgcluster.sh"

cmd=${1:-}
dir=${2:-/tmp/mqttspec-cluster}
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
dir=${dir%/}
if [ -z "$dir" ] || [ "$dir" = "/" ]; then die "refusing DIR '/'"; fi

instances=${CLUSTER_INSTANCES:-3}
broker_port=${CLUSTER_BROKER_PORT:-18830}
admin_base=${CLUSTER_ADMIN_PORT_BASE:-50050}
metrics_base=${CLUSTER_METRICS_PORT_BASE:-}
lease_ms=${CLUSTER_LEASE_MS:-3000}
heartbeat_ms=${CLUSTER_HEARTBEAT_MS:-500}
log_level=${CLUSTER_LOG_LEVEL:-info}
workers=${CLUSTER_WORKERS:-2}
ready_timeout=${CLUSTER_READY_TIMEOUT_S:-60}
stop_timeout=${CLUSTER_STOP_TIMEOUT_S:-20}

for v in instances broker_port admin_base lease_ms heartbeat_ms workers ready_timeout stop_timeout; do
  [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a number (got '${!v}')"
done
[ -z "$metrics_base" ] || [[ $metrics_base =~ ^[0-9]+$ ]] || die "CLUSTER_METRICS_PORT_BASE must be a number"
[ "$instances" -le 64 ] || die "CLUSTER_INSTANCES: at most 64 (broker.partition.count)"

mqttspecd=${MQTTSPECD:-$repo/build/bin/mqttspecd}
if [ -n "${MQTTSPECCTL:-}" ]; then
  mqttspecctl=$MQTTSPECCTL
elif [ -x "$(dirname "$mqttspecd")/mqttspecctl" ]; then
  mqttspecctl="$(dirname "$mqttspecd")/mqttspecctl"
else
  mqttspecctl="$repo/build/bin/mqttspecctl"
fi

mosq_dir="$dir/mosquitto"
mosq_conf="$mosq_dir/mosquitto.conf"
mosq_pidf="$mosq_dir/mosquitto.pid"
mosq_log="$mosq_dir/mosquitto.log"
pg_dir="$dir/pg"
broker_url="tcp://127.0.0.1:$broker_port"

# ---------------------------------------------------------------------------------------- helpers

port_busy() {  # something listens on 127.0.0.1:$1 (ss: without connecting, so no log noise)
  if command -v ss >/dev/null 2>&1; then
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# True if process $1 is alive and its command line contains $2 (guards against reused pids).
pid_is() {
  [[ "$1" =~ ^[0-9]+$ ]] && [ -r "/proc/$1/cmdline" ] &&
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

pid_of() {  # the pid in file $1 if it names a live process whose command line contains $2
  local pid
  [ -f "$1" ] || return 1
  pid=$(head -n 1 "$1" 2>/dev/null || true)
  pid_is "$pid" "$2" || return 1
  echo "$pid"
}

# Stops the process of pid file $1 (command line containing $2): SIGTERM, up to $3 seconds,
# then SIGKILL. Removes the pid file. Quiet when nothing runs.
stop_pid() {
  local pidf=$1 pattern=$2 wait_s=$3 name=$4 pid i
  if pid=$(pid_of "$pidf" "$pattern"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < wait_s * 10; i++)); do
      pid_is "$pid" "$pattern" || break
      sleep 0.1
    done
    if pid_is "$pid" "$pattern"; then
      note "$name (pid $pid) still runs ${wait_s}s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do pid_is "$pid" "$pattern" || break; sleep 0.1; done
    fi
    echo "stopped $name (pid $pid)"
  fi
  rm -f "$pidf"
}

instance_conf() { echo "$dir/instance-$1.yaml"; }
instance_log() { echo "$dir/instance-$1.log"; }
instance_pidf() { echo "$dir/instance-$1.pid"; }
admin_port() { echo $((admin_base + $1)); }

# The instances a previous start left in DIR (their pid files), so stop works whatever
# CLUSTER_INSTANCES says now.
known_instances() {
  local f n
  for f in "$dir"/instance-*.pid "$dir"/instance-*.yaml; do
    [ -e "$f" ] || continue
    n=${f##*/instance-}
    n=${n%.*}
    if [[ $n =~ ^[0-9]+$ ]]; then echo "$n"; fi
  done | sort -nu
}

# GetStatus of instance $1 as one JSON line, or nothing (unreachable / no mqttspecctl).
instance_status_json() {
  [ -x "$mqttspecctl" ] || return 1
  "$mqttspecctl" --addr "127.0.0.1:$(admin_port "$1")" --json --timeout 2 status 2>/dev/null
}

# Ready: the admin API answers and says database and broker are up (GetStatus: database_ok,
# broker_ok — the health thread's view, the same as grpc.health.v1 SERVING). Without mqttspecctl:
# the external transport's log line "taking requests on …".
instance_ready() {
  local json
  if [ -x "$mqttspecctl" ]; then
    json=$(instance_status_json "$1") || return 1
    grep -q '"database_ok": *true' <<<"$json" && grep -q '"broker_ok": *true' <<<"$json"
  else
    grep -q 'taking requests on' "$(instance_log "$1")" 2>/dev/null
  fi
}

mosquitto_user() {  # the user Mosquitto drops to when started as root
  if [ "$(id -u)" -eq 0 ]; then
    if id -u mosquitto >/dev/null 2>&1; then echo mosquitto; else echo nobody; fi
  else
    id -un
  fi
}

# --------------------------------------------------------------------------------- the components

write_mosquitto_conf() {
  local user
  user=$(mosquitto_user)
  rm -rf "$mosq_dir/data"
  mkdir -p "$mosq_dir/data"
  cat >"$mosq_conf" <<EOF
# Written by deploy/cluster/cluster.sh: the external broker of the scale-out demo.
# Started as root, Mosquitto drops to user '$user' before it opens the listener and the
# persistence files: $mosq_dir and data/ belong to that user.
per_listener_settings false
# Mandatory for mqttspec (otherwise ~40 ms per QoS 1 round trip, see deploy/mosquitto.external.conf).
set_tcp_nodelay true
listener $broker_port 127.0.0.1

# Demo only: anyone on this machine may connect, under any client id, and read any topic. To
# isolate clients as in production (deploy/README.md, "External mode against a stand-alone
# Mosquitto"):
#   1. allow_anonymous false, and a password file with one user per device and one per instance:
#        mosquitto_passwd -c -b $mosq_dir/passwd mqttspec-instance-1 'secret-1'   (-c: first only)
#        mosquitto_passwd -b $mosq_dir/passwd mqttspec-instance-2 'secret-2'  … and each device
#      password_file $mosq_dir/passwd
#   2. a copy of deploy/mosquitto.acl whose server block ("user mqttspec-server" and its three
#      "topic" lines) is repeated once per instance user (mqttspec-instance-1, -2, -3):
#      acl_file $mosq_dir/mosquitto.acl
#   3. both files readable by user '$user' (chown $user $mosq_dir/passwd $mosq_dir/mosquitto.acl;
#      chmod 0640), and broker.username / broker.password in each instance-N.yaml.
allow_anonymous true

# The instances' persistent sessions (broker.clean_session: false) keep requests that arrive while
# an instance restarts. Every instance subscribes to every request (partition mode), so each of
# them may queue up to this many while it is away.
persistence true
persistence_location $mosq_dir/data/
autosave_interval 60
max_queued_messages 10000

log_dest stderr
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
log_timestamp_format %Y-%m-%dT%H:%M:%S
EOF
  if [ "$(id -u)" -eq 0 ]; then
    chown -R "$user" "$mosq_dir"
    chmod 0750 "$mosq_dir"
    chmod 0640 "$mosq_conf"
    chgrp "$(id -gn "$user")" "$mosq_conf" 2>/dev/null || true
  fi
}

start_mosquitto() {
  command -v mosquitto >/dev/null 2>&1 ||
    die "mosquitto not found (Debian: apt-get install mosquitto mosquitto-clients)"
  local pid i user
  write_mosquitto_conf
  user=$(mosquitto_user)
  if [ "$(id -u)" -eq 0 ] && ! runuser -u "$user" -- test -w "$mosq_dir/data"; then
    die "user $user cannot reach $mosq_dir/data (a parent directory closed to others?): choose another DIR"
  fi
  : >"$mosq_log"
  # setsid: the broker outlives this script and the terminal. The log is opened here (as the
  # caller), so Mosquitto needs no right on it after it dropped to its user.
  setsid mosquitto -c "$mosq_conf" </dev/null >>"$mosq_log" 2>&1 &
  pid=$!
  echo "$pid" >"$mosq_pidf"
  for ((i = 0; i < 100; i++)); do
    port_busy "$broker_port" && pid_is "$pid" "$mosq_conf" && return 0
    pid_is "$pid" "$mosq_conf" || break
    sleep 0.1
  done
  tail -n 20 "$mosq_log" >&2 || true
  die "Mosquitto did not start on 127.0.0.1:$broker_port (log: $mosq_log)"
}

start_postgres() {
  [ -x "$pgcluster" ] || die "$pgcluster not found or not executable"
  local url
  # No watchdog time limit unless asked: the demo cluster lives until `cluster.sh stop`.
  url=$(PGCLUSTER_TTL_S=${PGCLUSTER_TTL_S:-0} PGCLUSTER_PORT=${CLUSTER_PG_PORT:-} \
        PGCLUSTER_OWNER_PID="" "$pgcluster" start "$pg_dir" | tail -n 1) ||
    die "PostgreSQL did not start (tests/pg/pgcluster.sh start $pg_dir)"
  [ -f "$pg_dir/url" ] || die "pgcluster.sh wrote no $pg_dir/url"
  pg_url=$(cat "$pg_dir/url")
  [ "$url" = "$pg_url" ] || note "pgcluster printed '$url', $pg_dir/url says '$pg_url'; using the file"
}

write_instance_conf() {
  local n=$1 conf metrics=""
  conf=$(instance_conf "$n")
  [ -n "$metrics_base" ] && metrics="127.0.0.1:$((metrics_base + n))"
  cat >"$conf" <<EOF
# Written by deploy/cluster/cluster.sh: instance $n of $instances. Every instance has its own MQTT
# client id, partition, instance id and admin port, and the same database and models.
broker:
  mode: external
  host: 127.0.0.1
  port: $broker_port
  url: $broker_url
  client_id: mqttspec-instance-$n     # must differ per instance: the broker keeps one session per id
  clean_session: false                # requests for this instance wait at the broker while it restarts
  partition: {index: $((n - 1)), count: $instances}   # subscribes to spec/+/request (no \$share) and
                                      # answers the clients whose id hashes into its partition(s)
database:
  driver: postgres
  url: $pg_url
  pool_size: 4
cluster:
  enabled: true
  instance_id: instance-$n
  lease_ms: $lease_ms                      # a dead instance's partition is adopted once its lease runs out
  heartbeat_ms: $heartbeat_ms
admin:
  listen: 127.0.0.1:$(admin_port "$n")
  metrics_listen: "$metrics"
log:
  level: $log_level
workers: $workers
models:
  - name: public.devices
    primary_key: id
    fields:
      - {name: id, type: integer, auto_increment: true}
      - {name: name, type: text, nullable: false}
      - {name: room, type: text, index: true}
      - {name: temperature, type: real}
EOF
}

start_instance() {
  local n=$1 pid
  : >"$(instance_log "$n")"
  # Working directory DIR: anything relative an instance writes lands there.
  (cd "$dir" && exec setsid "$mqttspecd" --config "$(instance_conf "$n")" \
     </dev/null >>"$(instance_log "$n")" 2>&1) &
  pid=$!
  echo "$pid" >"$(instance_pidf "$n")"
}

wait_ready() {  # instances $@ ready within ready_timeout, else the log tail of the first that is not
  local n deadline pending=("$@") still
  deadline=$((SECONDS + ready_timeout))
  while :; do
    still=()
    for n in "${pending[@]}"; do
      # Gone, not merely not yet exec'd (until then its command line is this script's).
      if ! kill -0 "$(head -n 1 "$(instance_pidf "$n")" 2>/dev/null || echo 0)" 2>/dev/null; then
        note "instance-$n exited during start-up; the end of $(instance_log "$n"):"
        tail -n 30 "$(instance_log "$n")" >&2 || true
        return 1
      fi
      instance_ready "$n" || still+=("$n")
    done
    [ ${#still[@]} -eq 0 ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      for n in "${still[@]}"; do
        note "instance-$n not ready after ${ready_timeout}s; the end of $(instance_log "$n"):"
        tail -n 30 "$(instance_log "$n")" >&2 || true
        [ -x "$mqttspecctl" ] && note "admin status: $(instance_status_json "$n" || echo unreachable)"
      done
      return 1
    fi
    pending=("${still[@]}")
    sleep 0.25
  done
}

# ---------------------------------------------------------------------------------------- commands

anything_running() {
  local n
  pid_of "$mosq_pidf" "$mosq_conf" >/dev/null && return 0
  "$pgcluster" status "$pg_dir" >/dev/null 2>&1 && return 0
  for n in $(known_instances); do
    pid_of "$(instance_pidf "$n")" "$(instance_conf "$n")" >/dev/null && return 0
  done
  return 1
}

do_stop() {
  local n pids=()
  # Instances first (in parallel: each answers what it took, then leaves), then the broker
  # (so a stopping instance can still hand its session back), then the database.
  for n in $(known_instances); do
    stop_pid "$(instance_pidf "$n")" "$(instance_conf "$n")" "$stop_timeout" "instance-$n" &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || true; done
  stop_pid "$mosq_pidf" "$mosq_conf" 10 "mosquitto"
  if [ -e "$pg_dir" ]; then
    "$pgcluster" stop "$pg_dir" && echo "stopped postgresql ($pg_dir)"
  fi
  rm -f "$dir/cluster.env"
}

on_start_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    note "start failed; stopping what was started (the logs stay in $dir)"
    do_stop >&2 || true
  fi
}

do_start() {
  local n p ports=()
  anything_running && die "a cluster already runs in $dir (cluster.sh status $dir; cluster.sh stop $dir)"
  if [ "$instances" -gt 0 ]; then
    [ -x "$mqttspecd" ] || die "$mqttspecd not found (build it, or set MQTTSPECD)"
    [ -x "$mqttspecctl" ] ||
      note "$mqttspecctl not found: readiness is taken from the log line 'taking requests on'"
  fi
  ports=("$broker_port")
  for ((n = 1; n <= instances; n++)); do
    ports+=("$(admin_port "$n")")
    [ -n "$metrics_base" ] && ports+=($((metrics_base + n)))
  done
  for p in "${ports[@]}"; do
    port_busy "$p" && die "port $p on 127.0.0.1 is taken (see the CLUSTER_*_PORT* variables)"
  done

  mkdir -p "$dir"
  # Remove what an earlier run of a different size left, so stop and status see this run only.
  rm -f "$dir"/instance-*.yaml "$dir"/instance-*.pid
  # From here on a failure stops whatever was started (the logs stay).
  trap on_start_exit EXIT

  start_postgres
  echo "postgresql: $pg_url"
  start_mosquitto
  echo "mosquitto:  $broker_url (pid $(cat "$mosq_pidf"))"

  for ((n = 1; n <= instances; n++)); do write_instance_conf "$n"; done
  # A configuration the binary refuses (exit 2, naming the key) stops here, before anything waits.
  for ((n = 1; n <= instances; n++)); do
    if ! out=$("$mqttspecd" --config "$(instance_conf "$n")" --check-config 2>&1); then
      echo "$out" >&2
      die "$mqttspecd refuses $(instance_conf "$n") (see above)"
    fi
  done

  if [ "$instances" -gt 0 ]; then
    # All together, as a deployment starts them (the schema migration runs under a PostgreSQL
    # advisory lock, so concurrent starts create it once).
    local all=()
    for ((n = 1; n <= instances; n++)); do start_instance "$n"; all+=("$n"); done
    wait_ready "${all[@]}" || die "not every instance became ready"
    for n in "${all[@]}"; do echo "instance-$n: ready (pid $(cat "$(instance_pidf "$n")"))"; done
  fi

  {
    echo "BROKER_URL=$broker_url"
    echo "PG_URL=$pg_url"
    echo "INSTANCES=$instances"
  } >"$dir/cluster.env"
  trap - EXIT
  summary
}

summary() {
  local n pid
  echo
  echo "mqttspec cluster in $dir"
  echo "  broker    $broker_url   mosquitto pid $(pid_of "$mosq_pidf" "$mosq_conf" || echo '?'), log $mosq_log"
  echo "  database  $pg_url"
  for ((n = 1; n <= instances; n++)); do
    pid=$(pid_of "$(instance_pidf "$n")" "$(instance_conf "$n")" || echo '?')
    echo "  instance-$n  pid $pid  partition $((n - 1))/$instances  admin 127.0.0.1:$(admin_port "$n")  log $(instance_log "$n")"
  done
  [ "$instances" -gt 0 ] || return 0
  cat <<EOF

Try it (Debian's mosquitto-clients; -i is the client id, which picks the partition):
  mosquitto_rr -h 127.0.0.1 -p $broker_port -i me -t spec/me/request -e spec/me/response \\
    -m '{"id":"1","type":"request","operation":"create","entity":"devices","data":{"name":"t1","room":"lab","temperature":21.5}}'
  $mqttspecctl --addr 127.0.0.1:$(admin_port 1) status
Stop it:
  $here/cluster.sh stop $dir
EOF
}

do_status() {
  local n pid ok=0 json url
  if pid=$(pid_of "$mosq_pidf" "$mosq_conf"); then
    if port_busy "$broker_port"; then
      echo "mosquitto   running  pid $pid  $broker_url"
    else
      echo "mosquitto   running  pid $pid  but 127.0.0.1:$broker_port does not answer"; ok=1
    fi
  else
    echo "mosquitto   stopped"; ok=1
  fi
  if "$pgcluster" status "$pg_dir" >/dev/null 2>&1; then
    url=$(cat "$pg_dir/url" 2>/dev/null || echo '?')
    echo "postgresql  running  $url"
  else
    echo "postgresql  stopped"; ok=1
  fi
  for n in $(known_instances); do
    if pid=$(pid_of "$(instance_pidf "$n")" "$(instance_conf "$n")"); then
      if json=$(instance_status_json "$n"); then
        if grep -q '"database_ok": *true' <<<"$json" && grep -q '"broker_ok": *true' <<<"$json"; then
          echo "instance-$n  ready    pid $pid  admin 127.0.0.1:$(admin_port "$n")"
        else
          echo "instance-$n  running  pid $pid  not ready: $json"; ok=1
        fi
      elif [ -x "$mqttspecctl" ]; then
        echo "instance-$n  running  pid $pid  admin 127.0.0.1:$(admin_port "$n") does not answer"; ok=1
      else
        echo "instance-$n  running  pid $pid"
      fi
    else
      echo "instance-$n  stopped  (log $(instance_log "$n"))"; ok=1
    fi
  done
  return $ok
}

case "$cmd" in
  start) do_start ;;
  stop) do_stop ;;
  status) do_status ;;
  *) die "usage: $0 start|stop|status [DIR]   (DIR default /tmp/mqttspec-cluster)" ;;
esac
