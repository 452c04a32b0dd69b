#!/usr/bin/python3
"""bench/cluster_latency.py — the Python half of bench/cluster.sh (the scale-out benchmark).

Subcommands (all print to stdout; bench/cluster.sh calls them, they also work by hand):

  ids --conns C --counts 2,3 [--base cb]
      a client-id prefix P such that mqttspec_bench's ids P0 … P<C-1> fall evenly into the
      partitions of every count given (FNV-1a-32(id) % count, server/topics.cc PartitionOf)
  id-in --partition I --count N --prefix X
      the first id X0, X1, … in partition I of N
  cpu --dir DIR --skip S --until T [--interval 0.25] --label L --out FILE.jsonl -- CMD ARGS…
      runs CMD (the load driver) and samples, every interval, utime+stime (/proc/<pid>/stat) of:
      the cluster's PostgreSQL (its postmaster — found through DIR/pg/pgdata — plus every live
      child, plus what the postmaster reaped of exited backends), Mosquitto (DIR/mosquitto/
      mosquitto.pid), each instance (DIR/instance-N.pid), the driver, and the whole machine
      (/proc/stat). The window is [first sample >= S s after CMD started, last sample <= T s
      after]: the driver's start-up and warm-up are before S, its end after T. Appends one JSON
      line: % of one core per component over the window, "other" = the machine's non-idle time
      not accounted for by them. The driver's exit status is returned.
  latency --port P --sub ID --writer ID [--rate 200] [--samples 3000] [--warmup 100] --grp G
          --label L --out FILE.jsonl
      cross-/same-instance notification latency: ID --sub subscribes (mqttspec subscription
      {grp eq G} on items) on the instance of its partition; ID --writer creates rows with grp G,
      open loop at --rate per second; per row: create sent (t_s), its answer received (t_r), its
      notification received (t_n), all time.monotonic_ns() in this process. Also 200 pings of
      each client (round trip to its own instance). Appends one JSON line with percentiles.
  report --tsv FILE --jsonl FILE
      the markdown tables (medians over rounds) of bench/cluster.sh's results, on stdout.

Uses /usr/bin/python3 with Debian's paho-mqtt 1.6.1 (as tests/integration/spec_client.py does).
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time

# ------------------------------------------------------------------------------------ partitions


def partition_of(client_id, count):
    """server/topics.cc PartitionOf: FNV-1a (32 bits) of the client id, modulo count."""
    h = 2166136261
    for b in client_id.encode():
        h ^= b
        h = (h * 16777619) & 0xFFFFFFFF
    return h % count if count > 1 else 0


def balanced_prefix(conns, counts, base):
    for k in range(1, 1_000_000):
        p = f"{base}{k}-"
        ok = True
        for n in counts:
            if conns % n:
                raise SystemExit(f"--conns {conns} is not a multiple of {n}")
            per = [0] * n
            for i in range(conns):
                per[partition_of(f"{p}{i}", n)] += 1
            if any(c != conns // n for c in per):
                ok = False
                break
        if ok:
            return p
    raise SystemExit("no balanced prefix found")


def id_in(partition, count, prefix):
    for k in range(1_000_000):
        cid = f"{prefix}{k}"
        if partition_of(cid, count) == partition:
            return cid
    raise SystemExit("no id found")


# ------------------------------------------------------------------------------------------ CPU

HZ = os.sysconf("SC_CLK_TCK")


def stat_fields(pid):
    """The fields of /proc/<pid>/stat after the command name: [state, ppid, …]; None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()


def proc_table():
    """{pid: (ppid, utime+stime, cutime+cstime)} of every process."""
    t = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            f = stat_fields(e)
            if f:
                t[int(e)] = (int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))
    return t


def pid_from(path, must_contain):
    try:
        with open(path) as f:
            pid = int(f.readline().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode()
    except (OSError, ValueError):
        return None
    return pid if must_contain in cmd else None


def cluster_pids(d):
    out = {}
    pm = None
    try:
        with open(os.path.join(d, "pg", "pgdata")) as f:
            root = f.read().strip()
        pm = pid_from(os.path.join(root, "data", "postmaster.pid"), root)
    except OSError:
        pass
    out["postmaster"] = pm
    out["mosquitto"] = pid_from(os.path.join(d, "mosquitto", "mosquitto.pid"), "mosquitto.conf")
    insts = {}
    for name in sorted(os.listdir(d)):
        m = re.fullmatch(r"instance-(\d+)\.pid", name)
        if m:
            pid = pid_from(os.path.join(d, name), f"instance-{m.group(1)}.yaml")
            if pid:
                insts[f"instance-{m.group(1)}"] = pid
    out["instances"] = insts
    return out


def machine_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal
    irq = v[5] + v[6]
    busy = v[0] + v[1] + v[2] + irq + (v[7] if len(v) > 7 else 0)
    return busy, busy + v[3] + v[4], irq


def sample(pids, driver):
    """Ticks so far of each component. PostgreSQL: the postmaster's own and reaped children's
    time plus its live children's; the driver: the process started and all its descendants."""
    t = proc_table()
    s = {"t": time.monotonic()}
    pm = pids["postmaster"]
    pg = 0
    if pm in t:
        pg = t[pm][1] + t[pm][2] + sum(v[1] for v in t.values() if v[0] == pm)
    s["postgres"] = pg
    mq = pids["mosquitto"]
    s["mosquitto"] = t[mq][1] if mq in t else 0
    for name, pid in pids["instances"].items():
        s[name] = t[pid][1] if pid in t else 0
    if driver not in t:
        s["driver"] = None
    else:
        tree, frontier = {driver}, [driver]
        while frontier:
            kids = [p for p, v in t.items() if v[0] in frontier and p not in tree]
            tree.update(kids)
            frontier = kids
        s["driver"] = sum(t[p][1] for p in tree)
    me = os.getpid()
    s["sampler"] = t[me][1] if me in t else 0
    s["machine"], s["machine_all"], s["machine_irq"] = machine_ticks()
    return s


# The log lock (adapters/sql_builder.h kLogLock = 0x6d71747473706563) as pg_locks shows a bigint
# advisory lock: classid = high 32 bits, objid = low 32 bits, objsubid 1.
LOCK_SQL = """SELECT
  (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1836151924
     AND objid = 1936745827 AND objsubid = 1 AND granted),
  (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 1836151924
     AND objid = 1936745827 AND objsubid = 1 AND NOT granted),
  (SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()
     AND backend_type = 'client backend')"""


class PgProbe:
    """Samples, pg_hz times a second, whether a backend holds the log lock, how many wait for it
    and how many client backends are active (one connection of its own, autocommit)."""

    def __init__(self, url, hz):
        sys.path.append("/usr/lib/python3/dist-packages")
        import psycopg2
        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True
        self.period = 1.0 / hz
        self.samples = []  # (t, held, waiting, active)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        cur = self.conn.cursor()
        while not self.stop.is_set():
            cur.execute(LOCK_SQL)
            held, waiting, active = cur.fetchone()
            self.samples.append((time.monotonic(), held, waiting, active))
            self.stop.wait(self.period)

    def finish(self, t0, t1):
        self.stop.set()
        self.thread.join()
        self.conn.close()
        xs = [x for x in self.samples if t0 <= x[0] <= t1]
        if not xs:
            return None
        n = len(xs)
        return {"samples": n, "lock_held_frac": round(sum(1 for x in xs if x[1]) / n, 3),
                "lock_waiters_mean": round(sum(x[2] for x in xs) / n, 2),
                "lock_waiters_max": max(x[2] for x in xs),
                "active_backends_mean": round(sum(x[3] for x in xs) / n, 2)}


def cmd_cpu(a, rest):
    pids = cluster_pids(a.dir)
    probe = PgProbe(a.pg_url, a.pg_hz) if a.pg_url else None
    proc = subprocess.Popen(rest)
    start = time.monotonic()
    samples = [sample(pids, proc.pid)]
    while proc.poll() is None:
        time.sleep(a.interval)
        s = sample(pids, proc.pid)
        if s["driver"] is not None and proc.poll() is None:
            samples.append(s)
        if time.monotonic() - start > a.timeout:
            proc.kill()
            print(f"cpu {a.label}: the driver ran longer than {a.timeout} s: killed", file=sys.stderr)
    rc = proc.wait()
    inside = [s for s in samples if a.skip <= s["t"] - start <= a.until]
    rec = {"kind": "cpu", "label": a.label, "driver_rc": rc, "samples": len(inside)}
    if len(inside) >= 2:
        s0, s1 = inside[0], inside[-1]
        wall = s1["t"] - s0["t"]
        pct = {}
        for k in s0:
            if k in ("t", "machine", "machine_all", "machine_irq"):
                continue
            pct[k] = 100.0 * (s1[k] - s0[k]) / HZ / wall
        ours = sum(v for k, v in pct.items() if k != "sampler")
        machine = 100.0 * (s1["machine"] - s0["machine"]) / HZ / wall
        cores = 100.0 * (s1["machine_all"] - s0["machine_all"]) / HZ / wall
        irq = 100.0 * (s1["machine_irq"] - s0["machine_irq"]) / HZ / wall
        # Tick accounting without CONFIG_IRQ_TIME_ACCOUNTING: a tick in softirq (loopback TCP)
        # counts for the process it interrupted, and for the machine's softirq column; so
        # "other" = machine − ours, and "softirq" is for information only (part of the others).
        pct["other"] = max(0.0, machine - ours - pct["sampler"])
        pct["softirq_info"] = irq
        rec.update(window_s=round(wall, 3), window_from_s=round(s0["t"] - start, 3),
                   pct={k: round(v, 1) for k, v in pct.items()}, total_pct=round(ours, 1),
                   machine_pct=round(machine, 1), machine_capacity_pct=round(cores, 1))
        if probe:
            rec["pg_probe"] = probe.finish(s0["t"], s1["t"])
            probe = None
    else:
        rec["error"] = "the driver ended before the window (no two samples inside it)"
    if probe:
        probe.finish(0, 0)
    with open(a.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    if "pct" in rec:
        print(f"cpu {a.label}: " + ", ".join(f"{k} {v:.0f}%" for k, v in rec["pct"].items()) +
              f" | ours {rec['total_pct']:.0f}% machine {rec['machine_pct']:.0f}% of "
              f"{rec['machine_capacity_pct']:.0f}% over {rec['window_s']:.1f} s", file=sys.stderr)
    if rec.get("pg_probe"):
        print(f"pg {a.label}: {rec['pg_probe']}", file=sys.stderr)
    return rc


# -------------------------------------------------------------------------------------- latency


def import_paho():
    """paho-mqtt, from Debian's dist-packages if this python3 does not have it."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        import paho.mqtt.client as mqtt
    return mqtt


class Client:
    """One paho client: spec/<id>/response and (subscriber) spec/<id>/notify/+, QoS 1."""

    def __init__(self, mqtt, port, cid, on_message):
        self.cid = cid
        self.req = f"spec/{cid}/request"
        self.cond = threading.Condition()
        self.subacks = set()
        self.connected = False
        self.c = mqtt.Client(client_id=cid, clean_session=True, protocol=mqtt.MQTTv311)
        self.c.max_inflight_messages_set(1000)
        self.c.max_queued_messages_set(0)
        self.c.on_connect = self._on_connect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_message = on_message
        self.c.connect("127.0.0.1", port, keepalive=60)
        self.c.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.c.loop_start()
        self.wait(lambda: self.connected, 10, "CONNACK")

    def _on_connect(self, c, u, flags, rc):
        if rc != 0:
            raise SystemExit(f"{self.cid}: connect refused rc={rc}")
        with self.cond:
            self.connected = True
            self.cond.notify_all()

    def _on_subscribe(self, c, u, mid, granted):
        with self.cond:
            self.subacks.add(mid)
            self.cond.notify_all()

    def wait(self, pred, timeout, what):
        end = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = end - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"{self.cid}: no {what} within {timeout} s")
                self.cond.wait(left)

    def subscribe(self, topic):
        rc, mid = self.c.subscribe(topic, 1)
        self.wait(lambda: mid in self.subacks, 10, f"SUBACK for {topic}")

    def send(self, payload):
        self.c.publish(self.req, payload, qos=1)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def pcts(xs_ns):
    if not xs_ns:
        return None
    xs = sorted(xs_ns)

    def q(p):
        return round(xs[min(len(xs) - 1, int(p * len(xs)))] / 1e6, 3)

    return {"n": len(xs), "p50": q(0.50), "p90": q(0.90), "p99": q(0.99), "max": round(xs[-1] / 1e6, 3),
            "mean": round(statistics.fmean(xs) / 1e6, 3)}


def cmd_latency(a):
    mqtt = import_paho()
    lock = threading.Lock()
    answers = {}  # request id -> (t_recv, body)
    notes = {}  # k -> t_recv
    seqs = []
    bad = []

    def on_any(client, userdata, msg):
        now = time.monotonic_ns()
        try:
            body = json.loads(msg.payload)
        except ValueError:
            return
        with lock:
            if body.get("type") == "notification":
                data = body.get("data") or {}
                name = data.get("name", "")
                if body.get("operation") == "create" and name.startswith(a.label + ":"):
                    k = int(name.split(":")[1])
                    if k not in notes:
                        notes[k] = now
                    seqs.append(body.get("seq"))
                return
            rid = body.get("id")
            if isinstance(rid, str):
                answers[rid] = (now, body)
                if body.get("type") == "response" and not body.get("success"):
                    bad.append(body)

    sub = Client(mqtt, a.port, a.sub, on_any)
    sub.subscribe(f"spec/{a.sub}/response")
    sub.subscribe(f"spec/{a.sub}/notify/+")
    wr = Client(mqtt, a.port, a.writer, on_any) if a.writer != a.sub else sub
    if wr is not sub:
        wr.subscribe(f"spec/{a.writer}/response")

    def round_trip(cl, rid, payload, timeout=10):
        cl.send(payload)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with lock:
                if rid in answers:
                    return answers[rid][1]
            time.sleep(0.0005)
        raise SystemExit(f"{cl.cid}: no answer to {rid} within {timeout} s")

    def pings(cl, n):
        out = []
        for i in range(n):
            rid = f"{a.label}-ping-{cl.cid}-{i}"
            t0 = time.monotonic_ns()
            round_trip(cl, rid, json.dumps({"id": rid, "type": "ping"}))
            with lock:
                out.append(answers[rid][0] - t0)
        return out

    ping_sub = pings(sub, 200)
    ping_wr = pings(wr, 200) if wr is not sub else ping_sub
    sid = f"{a.label}-subscribe"
    ans = round_trip(sub, sid, json.dumps({
        "id": sid, "type": "subscription", "operation": "subscribe", "entity": "items",
        "options": {"filters": [{"column": "grp", "operator": "eq", "value": a.grp}]}}))
    if not ans.get("success"):
        raise SystemExit(f"subscribe failed: {ans}")
    subscription_id = ans["data"]["subscription_id"]

    total = a.warmup + a.samples
    sent = [0] * total
    pids = cluster_pids(a.dir) if a.dir else None
    cpu0 = sample(pids, os.getpid()) if pids else None
    lag = []
    period = 1e9 / a.rate
    t0 = time.monotonic_ns() + 50_000_000
    for k in range(total):
        due = t0 + int(k * period)
        while True:
            now = time.monotonic_ns()
            if now >= due:
                break
            time.sleep(min(0.002, (due - now) / 1e9))
        rid = f"{a.label}-c{k}"
        payload = json.dumps({"id": rid, "type": "request", "operation": "create",
                              "entity": "items",
                              "data": {"grp": a.grp, "name": f"{a.label}:{k}", "score": k + 0.5}},
                             separators=(",", ":"))
        now = time.monotonic_ns()
        sent[k] = now
        lag.append(now - due)
        wr.send(payload)
    cpu1 = sample(pids, os.getpid()) if pids else None
    end = time.monotonic() + 20
    while time.monotonic() < end:
        with lock:
            got_a = sum(1 for k in range(total) if f"{a.label}-c{k}" in answers)
            got_n = len(notes)
        if got_a == total and got_n == total:
            break
        time.sleep(0.05)
    uid = f"{a.label}-unsubscribe"
    try:
        round_trip(sub, uid, json.dumps({"id": uid, "type": "subscription",
                                         "operation": "unsubscribe",
                                         "subscription_id": subscription_id}), timeout=5)
    except SystemExit:
        pass
    if wr is not sub:
        wr.close()
    sub.close()

    resp, notif, n_minus_r, brief, lost_a, lost_n = [], [], [], [], 0, 0
    with lock:
        for k in range(a.warmup, total):
            r = answers.get(f"{a.label}-c{k}")
            n = notes.get(k)
            if r is None:
                lost_a += 1
            if n is None:
                lost_n += 1
            if r is None or n is None:
                continue
            rs = r[0] - sent[k]
            ns = n - sent[k]
            resp.append(rs)
            notif.append(ns)
            n_minus_r.append(n - r[0])
            brief.append(ns - rs // 2)
        gaps = sum(1 for x, y in zip(seqs, seqs[1:]) if y != x + 1)
    ping_p50 = statistics.median(ping_wr) if ping_wr else 0
    est = [d + ping_p50 // 2 for d in n_minus_r]
    rec = {"kind": "latency", "label": a.label, "sub": a.sub, "writer": a.writer,
           "rate": a.rate, "samples": a.samples, "warmup": a.warmup, "errors": len(bad),
           "first_error": bad[0] if bad else None, "lost_answers": lost_a,
           "lost_notifications": lost_n, "seq_gaps": gaps,
           "ping_sub_ms": pcts(ping_sub), "ping_writer_ms": pcts(ping_wr),
           "send_lag_ms": pcts(lag[a.warmup:]),
           "response_ms": pcts(resp), "notification_ms": pcts(notif),
           "notify_minus_response_ms": pcts(n_minus_r),
           "commit_to_notify_brief_ms": pcts(brief),
           "commit_to_notify_est_ms": pcts(est)}
    if cpu0 and cpu1:
        wall = cpu1["t"] - cpu0["t"]
        pct = {k: round(100.0 * (cpu1[k] - cpu0[k]) / HZ / wall, 1) for k in cpu0
               if k not in ("t", "machine_all", "machine_irq", "sampler")}
        # "driver" here is this process (the Python clients); others = machine − all of ours
        pct["other"] = round(max(0.0, pct["machine"] - sum(v for k, v in pct.items()
                                                           if k != "machine")), 1)
        rec["cpu_pct"] = pct
    with open(a.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    r, n, e = rec["response_ms"], rec["notification_ms"], rec["commit_to_notify_est_ms"]
    print(f"latency {a.label}: response p50 {r['p50']} p99 {r['p99']} ms | notification p50 "
          f"{n['p50']} p99 {n['p99']} ms | commit→notify est. p50 {e['p50']} p99 {e['p99']} ms | "
          f"lost {lost_a}/{lost_n}, gaps {gaps}, errors {len(bad)}", file=sys.stderr)
    return 1 if (bad or lost_a or lost_n) else 0


# --------------------------------------------------------------------------------------- report

TSV_COLS = ["setup", "qos", "workload", "lat_n", "lat_p50", "lat_p99", "tput_n", "rps",
            "tput_p50", "tput_p99", "errors", "lost", "label"]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def rng(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def fmt(x, d=0):
    if x is None:
        return "–"
    return f"{x:,.{d}f}".replace(",", " ")


def cmd_report(a):
    rows = []
    with open(a.tsv) as f:
        for line in f:
            v = line.rstrip("\n").split("\t")
            if len(v) != len(TSV_COLS):
                continue
            r = dict(zip(TSV_COLS, v))
            for k in ("lat_p50", "lat_p99", "rps", "tput_p50", "tput_p99"):
                r[k] = float(r[k])
            for k in ("lat_n", "tput_n", "errors", "lost"):
                r[k] = int(r[k])
            rows.append(r)
    recs = [json.loads(x) for x in open(a.jsonl) if x.strip()]
    cpu = {r["label"]: r for r in recs if r["kind"] == "cpu"}
    lat = [r for r in recs if r["kind"] == "latency"]
    meta = [r for r in recs if r["kind"] == "meta"]

    # labels: <cfg>/r<round>/<lat|tput>
    def parse(label):
        cfg, rnd, what = label.split("/")
        return cfg, int(rnd[1:]), what

    cfgs = []
    for r in rows:
        c = parse(r["label"])[0]
        if c not in cfgs:
            cfgs.append(c)
    # (cfgs with throughput rows; the idle table below lists its own)
    out = []
    p = out.append
    if meta:
        m = meta[-1]
        p(f"Run: {m.get('started')} → {m.get('ended', '?')}, {m.get('rounds')} round(s), "
          f"{m.get('conns')} connections × {m.get('inflight')} in flight, "
          f"{m.get('tput_s')} s per throughput run, QoS 1, workers {m.get('workers')} per instance, "
          f"PostgreSQL {m.get('pg')}; machine: {m.get('machine')}.\n")
    for wl in ("read-by-key", "create"):
        if not any(r["workload"] == wl for r in rows):
            continue
        base = {}
        for c in cfgs:
            t = [r for r in rows if r["workload"] == wl and parse(r["label"])[0] == c
                 and parse(r["label"])[2] == "tput"]
            base[c] = med([r["rps"] for r in t])
        p(f"\n**{wl}** — throughput at {meta[-1].get('conns') if meta else '?'}×"
          f"{meta[-1].get('inflight') if meta else '?'} in flight (median of rounds, range in "
          "brackets), latency at 1 in flight (one client)\n")
        p("| setup | req/s | × c1 | × nc1 | p50 / p99 ms at load | p50 / p99 µs, 1 in flight | "
          "errors / lost |")
        p("|---|---:|---:|---:|---:|---:|---:|")
        for c in cfgs:
            t = [r for r in rows if r["workload"] == wl and parse(r["label"])[0] == c
                 and parse(r["label"])[2] == "tput"]
            l1 = [r for r in rows if r["workload"] == wl and parse(r["label"])[0] == c
                  and parse(r["label"])[2] == "lat"]
            if not t:
                continue
            lo, hi = rng([r["rps"] for r in t])
            x1 = base[c] / base["c1"] if base.get("c1") else None
            xn = base[c] / base["nc1"] if base.get("nc1") else None
            p(f"| {c} | {fmt(base[c])} ({fmt(lo)}–{fmt(hi)}) | "
              f"{fmt(x1, 2)}× | {fmt(xn, 2)}× | "
              f"{fmt(med([r['tput_p50'] for r in t]) / 1000, 1)} / "
              f"{fmt(med([r['tput_p99'] for r in t]) / 1000, 1)} | "
              f"{fmt(med([r['lat_p50'] for r in l1]))} / {fmt(med([r['lat_p99'] for r in l1]))} | "
              f"{sum(r['errors'] for r in t + l1)} / {sum(r['lost'] for r in t + l1)} |")
        # CPU table
        p(f"\nCPU during the {wl} throughput runs, % of one core (median of rounds; the machine "
          "has 200 %), and CPU per request\n")
        p("| setup | PostgreSQL | Mosquitto | instances (each) | driver | ours total | others | "
          "machine busy (of capacity) | µs CPU / req: PG · broker · instances · driver · all |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in cfgs:
            labs = [r["label"] for r in rows if r["workload"] == wl and parse(r["label"])[0] == c
                    and parse(r["label"])[2] == "tput"]
            cs = [cpu.get(lb.replace("/tput", f"/cpu-{wl}")) for lb in labs]
            cs = [x for x in cs if x and "pct" in x]
            if not cs:
                continue
            rps = {lb: next(r["rps"] for r in rows if r["label"] == lb and r["workload"] == wl)
                   for lb in labs}
            names = sorted(k for k in cs[0]["pct"] if k.startswith("instance-"))

            def m(k):
                return med([x["pct"].get(k) for x in cs])

            inst_each = " · ".join(fmt(m(n)) for n in names)
            inst_sum = sum(m(n) or 0 for n in names)

            def per_req(k_or_sum):
                vals = []
                for x, lb in zip(cs, labs):
                    r = rps[lb]
                    if not r:
                        continue
                    if k_or_sum == "instances":
                        v = sum(x["pct"].get(n, 0) for n in names)
                    elif k_or_sum == "all":
                        v = x["total_pct"]
                    else:
                        v = x["pct"].get(k_or_sum, 0)
                    vals.append(v / 100.0 / r * 1e6)
                return med(vals)

            p(f"| {c} | {fmt(m('postgres'))} | {fmt(m('mosquitto'))} | {inst_each} "
              f"(Σ {fmt(inst_sum)}) | {fmt(m('driver'))} | **{fmt(med([x['total_pct'] for x in cs]))}** | "
              f"{fmt(m('other'))} | {fmt(med([x['machine_pct'] for x in cs]))} "
              f"({fmt(med([x['machine_capacity_pct'] for x in cs]))}) | {fmt(per_req('postgres'))} · {fmt(per_req('mosquitto'))} · "
              f"{fmt(per_req('instances'))} · {fmt(per_req('driver'))} · "
              f"**{fmt(per_req('all'))}** |")
    idle = [(lb, r) for lb, r in cpu.items() if lb.endswith("/cpu-idle") and "pct" in r]
    if idle:
        p("\n**Idle cluster** (no client load, after the pre-fill; % of one core)\n")
        p("| setup | PostgreSQL | Mosquitto | instances (each) | machine busy |")
        p("|---|---:|---:|---:|---:|")
        for lb, r in idle:
            names = sorted(k for k in r["pct"] if k.startswith("instance-"))
            p(f"| {parse(lb)[0]} (round {parse(lb)[1]}) | {r['pct']['postgres']:.1f} | "
              f"{r['pct']['mosquitto']:.1f} | " + " · ".join(f"{r['pct'][n]:.1f}" for n in names) +
              f" | {r['machine_pct']:.1f} |")
    probes = [(lb, r) for lb, r in cpu.items() if r.get("pg_probe")]
    if probes:
        p("\n**The log lock** (PG_PROBE=1: pg_locks / pg_stat_activity sampled ~50×/s over the "
          "same window; medians of rounds)\n")
        p("| setup | workload | req/s | lock held (fraction of samples) | backends waiting for it, "
          "mean / max | active client backends, mean |")
        p("|---|---|---:|---:|---:|---:|")
        for c in cfgs:
            for wl in ("read-by-key", "create"):
                xs = [r for lb, r in probes if parse(lb)[0] == c and lb.endswith("cpu-" + wl)]
                if not xs:
                    continue
                rps = med([next((t["rps"] for t in rows if t["workload"] == wl and
                                 t["label"] == lb.replace("/cpu-" + wl, "/tput")), None)
                           for lb, r in probes if parse(lb)[0] == c and lb.endswith("cpu-" + wl)])
                pr = [x["pg_probe"] for x in xs]
                p(f"| {c} | {wl} | {fmt(rps)} | {fmt(med([x['lock_held_frac'] for x in pr]), 2)} | "
                  f"{fmt(med([x['lock_waiters_mean'] for x in pr]), 2)} / "
                  f"{max(x['lock_waiters_max'] for x in pr)} | "
                  f"{fmt(med([x['active_backends_mean'] for x in pr]), 2)} |")
    if lat:
        p("\n**Notification latency** — a writer creates rows at "
          f"{lat[0]['rate']}/s ({lat[0]['samples']} samples after {lat[0].get('warmup', 100)} "
          "warm-up), one subscriber with a matching subscription; ms, measured in the client "
          "process (time.monotonic_ns)\n")
        p("| case | create sent → answer p50 / p90 / p99 | sent → notification p50 / p90 / p99 | "
          "notification − answer p50 / p90 / p99 | commit → notification, est. (a) p50 / p90 / p99 | "
          "brief's est. (b) p50 / p99 | ping RTT p50 (writer) | lost / gaps | machine busy / others, % |")
        p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in lat:
            def t3(k):
                x = r[k]
                return f"{x['p50']:.2f} / {x['p90']:.2f} / {x['p99']:.2f}" if x else "–"
            b = r["commit_to_notify_brief_ms"]
            p(f"| {r['label']} | {t3('response_ms')} | {t3('notification_ms')} | "
              f"{t3('notify_minus_response_ms')} | {t3('commit_to_notify_est_ms')} | "
              f"{b['p50']:.2f} / {b['p99']:.2f} | {r['ping_writer_ms']['p50']:.2f} | "
              f"{r['lost_answers'] + r['lost_notifications']} / {r['seq_gaps']} | "
              + (f"{r['cpu_pct']['machine']:.0f} / {r['cpu_pct']['other']:.0f} |" if r.get("cpu_pct")
                 else "– |"))
    print("\n".join(out))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sp = ap.add_subparsers(dest="cmd", required=True)
    x = sp.add_parser("ids")
    x.add_argument("--conns", type=int, required=True)
    x.add_argument("--counts", default="2,3")
    x.add_argument("--base", default="cb")
    x = sp.add_parser("id-in")
    x.add_argument("--partition", type=int, required=True)
    x.add_argument("--count", type=int, required=True)
    x.add_argument("--prefix", required=True)
    x = sp.add_parser("cpu")
    x.add_argument("--dir", required=True)
    x.add_argument("--skip", type=float, default=1.0)
    x.add_argument("--until", type=float, required=True)
    x.add_argument("--interval", type=float, default=0.25)
    x.add_argument("--timeout", type=float, default=300)
    x.add_argument("--pg-url", default="", help="also sample the log lock (PgProbe)")
    x.add_argument("--pg-hz", type=float, default=50)
    x.add_argument("--label", required=True)
    x.add_argument("--out", required=True)
    x = sp.add_parser("latency")
    x.add_argument("--port", type=int, required=True)
    x.add_argument("--sub", required=True)
    x.add_argument("--writer", required=True)
    x.add_argument("--rate", type=float, default=200)
    x.add_argument("--samples", type=int, default=3000)
    x.add_argument("--warmup", type=int, default=100)
    x.add_argument("--grp", type=int, required=True)
    x.add_argument("--dir", default="", help="the cluster's DIR: CPU of its parts over the run")
    x.add_argument("--label", required=True)
    x.add_argument("--out", required=True)
    x = sp.add_parser("report")
    x.add_argument("--tsv", required=True)
    x.add_argument("--jsonl", required=True)
    argv = sys.argv[1:]
    rest = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    a = ap.parse_args(argv)
    if a.cmd == "ids":
        print(balanced_prefix(a.conns, [int(c) for c in a.counts.split(",") if c], a.base))
        return 0
    if a.cmd == "id-in":
        print(id_in(a.partition, a.count, a.prefix))
        return 0
    if a.cmd == "cpu":
        if not rest:
            ap.error("cpu: the command after --")
        return cmd_cpu(a, rest)
    if a.cmd == "latency":
        return cmd_latency(a)
    if a.cmd == "report":
        return cmd_report(a)
    return 2


if __name__ == "__main__":
    sys.exit(main())
