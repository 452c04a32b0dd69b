#!/usr/bin/env bash
# A private, throw-away PostgreSQL cluster for the tests.
#
#   pgcluster.sh start <dir>   initdb in a fresh temp dir (as an unprivileged user when run as
#                              root), start the server on a free loopback port, wait until it
#                              accepts connections, print its admin URL and write it to <dir>/url
#                              (postgresql://mqttspec@127.0.0.1:<port>/postgres, trust auth).
#                              A cluster already registered in <dir> is stopped first.
#   pgcluster.sh stop <dir>    stop that cluster (fast, then immediate, then SIGKILL of its
#                              postmaster by pid), remove its data and <dir>. Idempotent.
#   pgcluster.sh status <dir>  exit 0 when the cluster of <dir> is running.
#   pgcluster.sh pause <dir>   stop the server but keep the cluster (for tests of an outage).
#   pgcluster.sh resume <dir>  start a paused cluster again, on the same port.
#   PGCLUSTER_DURABLE=1        start (or resume) it with fsync and synchronous commits on.
#
# Files in <dir>: url, port, pgdata (the cluster's temp dir), user, watchdog.pid, paused. The data
# itself lives in a mktemp dir owned by the server's user, so <dir> may be anywhere (a build tree).
#
# A watchdog stops and removes the cluster when nobody will: when <dir>/url disappears, when the
# owner process dies (PGCLUSTER_OWNER_PID; by default the parent when that is ctest, so an
# interrupted ctest run leaves nothing behind) or after PGCLUSTER_TTL_S seconds (default 10800;
# 0 = no limit).
#
# Environment: PG_BIN (default: /usr/lib/postgresql/15/bin, else pg_config --bindir, else the
# newest /usr/lib/postgresql/*/bin), PGCLUSTER_USER (when root; default postgres, else nobody),
# PGCLUSTER_PORT (a fixed port instead of a free one), PGCLUSTER_TTL_S, PGCLUSTER_OWNER_PID.
set -euo pipefail

die() { echo "pgcluster: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: $0 start|stop|status|pause|resume <dir>"
cmd=$1
dir=$2
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac

find_bin() {
  local b
  for b in "${PG_BIN:-}" /usr/lib/postgresql/15/bin; do
    [ -n "$b" ] && [ -x "$b/pg_ctl" ] && [ -x "$b/initdb" ] && { echo "$b"; return 0; }
  done
  if command -v pg_config >/dev/null 2>&1; then
    b=$(pg_config --bindir 2>/dev/null || true)
    [ -n "$b" ] && [ -x "$b/pg_ctl" ] && [ -x "$b/initdb" ] && { echo "$b"; return 0; }
  fi
  b=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$b" ] && [ -x "$b/pg_ctl" ] && [ -x "$b/initdb" ] && { echo "$b"; return 0; }
  return 1
}

# Runs a command as the cluster's user (root may not run PostgreSQL).
as_user() {
  local user=$1
  shift
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

port_busy() {  # something listens on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    port_busy "$p" || { echo "$p"; return 0; }
  done
  return 1
}

# True if process $1 is alive and its command line contains $2 (guards against reused pids).
pid_is() {
  [[ "$1" =~ ^[0-9]+$ ]] && [ -r "/proc/$1/cmdline" ] &&
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2"
}

postmaster_pid() {  # the postmaster's pid of data dir $1, if its pid file names a live one
  local f="$1/postmaster.pid" pid
  [ -f "$f" ] || return 1
  pid=$(head -n 1 "$f" 2>/dev/null || true)
  pid_is "$pid" "$1" && { echo "$pid"; return 0; }
  return 1
}

# Starts the server of temp dir $1 as user $2 on port $3 and waits until it answers a query
# over TCP. Returns non-zero (server stopped again) if it did not come up.
start_server() {
  local root=$1 user=$2 port=$3 bin i
  bin=$(find_bin) || return 1
  # Throw-away data: no fsync (PGCLUSTER_DURABLE=1: fsync and synchronous commits, as in
  # production — the write benchmark). Loopback only; the socket lives in the cluster's own dir.
  local opts="-p $port -k $root -c listen_addresses=127.0.0.1 -c max_connections=200"
  if [[ ${PGCLUSTER_DURABLE:-0} == 1 ]]; then
    opts+=" -c fsync=on -c synchronous_commit=on -c full_page_writes=on"
  else
    opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  opts+=" -c shared_buffers=32MB"
  if ! as_user "$user" "$bin/pg_ctl" -D "$root/data" -l "$root/pg.log" -w -t 60 -o "$opts" \
       start >/dev/null 2>&1; then
    as_user "$user" "$bin/pg_ctl" -D "$root/data" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
    return 1
  fi
  for i in $(seq 1 100); do
    if as_user "$user" "$bin/psql" -X -q -h 127.0.0.1 -p "$port" -U mqttspec -d postgres \
         -tAc "SELECT 1" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  as_user "$user" "$bin/pg_ctl" -D "$root/data" -m immediate -w -t 10 stop >/dev/null 2>&1 || true
  return 1
}

# Stops the cluster whose temp dir is $1 (run as $2) and removes the temp dir.
stop_cluster() {
  local root=$1 user=$2 bin pid i
  [ -n "$root" ] && [ -d "$root" ] || return 0
  case "$root" in
    */mqttspec-pg.*) ;;
    *) die "refusing to remove $root (not a pgcluster dir)" ;;
  esac
  if pid=$(postmaster_pid "$root/data"); then
    if bin=$(find_bin); then
      as_user "$user" "$bin/pg_ctl" -D "$root/data" -m fast -w -t 20 stop >/dev/null 2>&1 ||
        as_user "$user" "$bin/pg_ctl" -D "$root/data" -m immediate -w -t 10 stop >/dev/null 2>&1 ||
        true
    fi
    for i in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      if [ "$i" -eq 30 ] && pid_is "$pid" "$root/data"; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.2
    done
  fi
  rm -rf "$root"
}

stop_dir() {
  local root="" user="" wd=""
  [ -f "$dir/pgdata" ] && root=$(cat "$dir/pgdata")
  [ -f "$dir/user" ] && user=$(cat "$dir/user")
  [ -f "$dir/watchdog.pid" ] && wd=$(cat "$dir/watchdog.pid")
  if [ "$wd" != "$$" ] && pid_is "$wd" "watchdog $dir "; then
    kill "$wd" 2>/dev/null || true
  fi
  rm -f "$dir/url"
  stop_cluster "$root" "${user:-$(id -un)}"
  rm -rf "$dir"
}

# Stops the cluster once it is orphaned (see the header). Runs detached from the caller.
watchdog() {
  local root=$1 user=$2 owner=$3 ttl=$4 start now
  start=$(date +%s)
  while sleep 2; do
    [ -f "$dir/url" ] || break
    [ "$(cat "$dir/pgdata" 2>/dev/null)" = "$root" ] || break
    if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
      echo "pgcluster: owner $owner is gone; stopping $root" >&2
      break
    fi
    now=$(date +%s)
    if [ "$ttl" -gt 0 ] && [ $((now - start)) -ge "$ttl" ]; then
      echo "pgcluster: $root outlived PGCLUSTER_TTL_S=$ttl; stopping it" >&2
      break
    fi
    # Stopped by someone else (not paused): nothing left to guard.
    [ -f "$dir/paused" ] || postmaster_pid "$root/data" >/dev/null || break
  done
  stop_cluster "$root" "$user"
  if [ "$(cat "$dir/pgdata" 2>/dev/null)" = "$root" ]; then rm -rf "$dir"; fi
}

case "$cmd" in
  start)
    bin=$(find_bin) || die "PostgreSQL server binaries not found (PG_BIN," \
      "/usr/lib/postgresql/15/bin): scripts/setup --no-build installs postgresql-15"
    [ -d "$dir" ] && stop_dir  # a cluster left from an earlier run
    mkdir -p "$dir"
    user=$(id -un)
    if [ "$(id -u)" -eq 0 ]; then
      user=${PGCLUSTER_USER:-postgres}
      id -u "$user" >/dev/null 2>&1 || user=nobody
    fi
    root=$(mktemp -d "${TMPDIR:-/tmp}/mqttspec-pg.XXXXXX")
    echo "$root" >"$dir/pgdata"
    echo "$user" >"$dir/user"
    [ "$(id -u)" -eq 0 ] && chown "$user" "$root"
    chmod 700 "$root"
    ready=""
    trap '[ -n "$ready" ] || { stop_cluster "$root" "$user"; rm -rf "$dir"; }' EXIT
    trap 'exit 1' INT TERM
    if ! as_user "$user" "$bin/initdb" -D "$root/data" -U mqttspec --auth=trust --no-locale \
         -E UTF8 --no-sync >"$root/initdb.log" 2>&1; then
      cat "$root/initdb.log" >&2
      die "initdb failed"
    fi
    started=""
    for attempt in 1 2 3 4 5; do
      port=${PGCLUSTER_PORT:-$(free_port)} || die "no free port"
      # A failure is most likely a lost race for the port: try another one.
      if start_server "$root" "$user" "$port"; then
        started=1
        break
      fi
      [ -n "${PGCLUSTER_PORT:-}" ] && break
    done
    if [ -z "$started" ]; then
      tail -n 30 "$root/pg.log" >&2 || true
      die "the server did not start (or does not accept connections)"
    fi
    url="postgresql://mqttspec@127.0.0.1:$port/postgres"
    echo "$port" >"$dir/port"
    owner=${PGCLUSTER_OWNER_PID:-}
    if [ -z "$owner" ] && [ "$(cat "/proc/$PPID/comm" 2>/dev/null)" = "ctest" ]; then
      owner=$PPID
    fi
    ttl=${PGCLUSTER_TTL_S:-10800}
    echo "$url" >"$dir/url.tmp" && mv "$dir/url.tmp" "$dir/url"
    # Detached: no inherited stdio (ctest waits for its pipes to close), its own session.
    setsid "$0" watchdog "$dir" "$root" "$user" "$owner" "$ttl" \
      </dev/null >>"$root/watchdog.log" 2>&1 &
    echo $! >"$dir/watchdog.pid"
    ready=1
    trap - EXIT INT TERM
    echo "$url"
    ;;
  stop)
    stop_dir
    ;;
  pause)
    [ -f "$dir/pgdata" ] && [ -f "$dir/user" ] || die "no cluster in $dir"
    root=$(cat "$dir/pgdata")
    bin=$(find_bin) || die "PostgreSQL server binaries not found"
    touch "$dir/paused"
    as_user "$(cat "$dir/user")" "$bin/pg_ctl" -D "$root/data" -m fast -w -t 30 stop >/dev/null
    ;;
  resume)
    [ -f "$dir/pgdata" ] && [ -f "$dir/user" ] && [ -f "$dir/port" ] || die "no cluster in $dir"
    root=$(cat "$dir/pgdata")
    start_server "$root" "$(cat "$dir/user")" "$(cat "$dir/port")" ||
      { tail -n 30 "$root/pg.log" >&2 || true; die "the server did not start again"; }
    rm -f "$dir/paused"
    ;;
  status)
    [ -f "$dir/url" ] && [ -f "$dir/pgdata" ] || exit 1
    postmaster_pid "$(cat "$dir/pgdata")/data" >/dev/null
    ;;
  watchdog)  # internal: watchdog <dir> <root> <user> <owner> <ttl>
    [ $# -eq 6 ] || die "usage: $0 watchdog <dir> <root> <user> <owner> <ttl>"
    watchdog "$3" "$4" "$5" "$6"
    ;;
  *)
    die "usage: $0 start|stop|status|pause|resume <dir>"
    ;;
esac
