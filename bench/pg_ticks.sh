# Sourced by bench scripts. pg_ticks: the CPU of the PostgreSQL server whose postmaster is PG_PM,
# in clock ticks. The server is no child of ours (pg_ctl daemonizes it): its CPU = the
# postmaster's and its live children's own time + what the postmaster reaped of exited backends.
PG_PM=${PG_PM:-}
pg_ticks() {
  local p t=0 x
  [[ -n $PG_PM ]] || { echo 0; return; }
  for p in $PG_PM $(pgrep -P "$PG_PM" || true); do
    x=$(sed -E 's/^.*\) //' "/proc/$p/stat" 2>/dev/null | awk -v pm=$([[ $p == "$PG_PM" ]] && echo 1 || echo 0) \
      '{ s = $12 + $13; if (pm) s += $14 + $15; print s }') || continue
    t=$((t + ${x:-0}))
  done
  echo "$t"
}
