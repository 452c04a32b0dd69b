"""Fault tests with real processes (the hardening issue, point 5). Each fault is one test; the
module honours MQTTSPEC_MODE (external | embedded) and MQTTSPEC_DB (sqlite | postgres), so ctest
runs it in all four combinations; a test that means nothing in one of them skips with a reason.

  SigkillUnderLoad        writers create rows at a steady rate (QoS 1, unique request ids and
                          markers, never resent); the service gets SIGKILL three times mid-load
                          (embedded mode: the broker process, which is the service) and is started
                          again on the same data. Every acknowledged write is in the database
                          exactly once, every unacknowledged one at most once, no answer is an
                          error, and writes are acknowledged again after every restart.
  PostgresRestart         (DB=postgres) a private cluster of the test's own (tests/pg/pgcluster.sh,
                          never the ctest fixture's) is stopped and started again under a steady
                          write and read load: every request is answered within a bound, errors
                          are only `unavailable` (all requests sent while it is down get it), the
                          service recovers without a restart (same process), and acknowledged
                          writes are present exactly once (`unavailable` ones at most once).
  ExternalBrokerRestart   (MODE=external) the broker (made persistent for the test) gets SIGTERM
                          under a QoS 1 load from a persistent-session paho client that keeps
                          publishing while it is down (paho queues); after it is back the service
                          reconnects and resubscribes by itself within a bound, every request is
                          answered (those queued by paho too), and each write is stored once
                          (paho's resends of unacknowledged publishes are deduplicated).
  SlowDatabase            the table one client writes to is locked from outside (SQLite: BEGIN
                          IMMEDIATE on the file; PostgreSQL: LOCK TABLE … IN EXCLUSIVE MODE) for
                          longer than limits.query_timeout_ms: that client's first write answers
                          `timeout`, its queued requests are answered in order once the lock
                          goes, and meanwhile other clients' reads by key stay fast (p99 bound),
                          the service's queue depth (GET /metrics) stays bounded by what was sent
                          and drops back to 0.
  ManyConnections         2 000 MQTT connections open at once (raw sockets, one selector loop),
                          each subscribes and sends one read by key; every one is answered on its
                          own response topic, and all 2 000 are still open at the end (PINGRESP).

Run: cd tests/integration && MQTTSPECD=/abs/build/bin/mqttspecd \\
       MQTTSPEC_PLUGIN=/abs/build/lib/mqttspec_mosquitto.so MQTTSPEC_MODE=embedded|external \\
       [MQTTSPEC_DB=postgres MQTTSPEC_PG_URL_FILE=<dir>/url] \\
       /usr/bin/python3 -m unittest -v test_faults
Timings and counts are printed to stderr as "[faults] …" lines.
"""

import json
import os
import random
import re
import resource
import select
import selectors
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest
import urllib.request

import harness
from harness import (Service, ServiceTestCase, default_db, default_mode, free_port,
                     mosquitto_binary, mqtt, pg_connect, pg_create_database,
                     pg_url_with_database, psycopg2_module, random_suffix, wait_port)
from mqtt_packets import mqtt_string as _str, varint as _varint

PGCLUSTER = os.path.join(harness.REPO, "tests", "pg", "pgcluster.sh")

# The rows the load writes: `marker` is unique per request but deliberately not a unique column,
# so a write applied twice shows as two rows instead of a `conflict`.
FAULTS_MODEL = {
    "name": "public.faults",
    "primary_key": "id",
    "fields": [
        {"name": "id", "type": "integer", "auto_increment": True},
        {"name": "marker", "type": "text", "nullable": False, "index": True},
        {"name": "writer", "type": "text"},
        {"name": "seq", "type": "integer"},
    ],
}

N_CONNECTIONS = 2000


def log(msg):
    sys.stderr.write(f"[faults] {msg}\n")
    sys.stderr.flush()


def setUpModule():
    # 2 000 connections need 2 000+ descriptors here and in the broker, which inherits the limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 16384 if hard == resource.RLIM_INFINITY else min(hard, 16384)
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass


# ----------------------------------------------------------------------------- raw MQTT 3.1.1

def _packet(header, body):
    return bytes([header]) + _varint(len(body)) + body


def connect_packet(client_id, clean=True, keepalive=60):
    return _packet(0x10, _str("MQTT") + bytes([4, 0x02 if clean else 0])
                   + struct.pack("!H", keepalive) + _str(client_id))


def subscribe_packet(pid, topic, qos=1):
    return _packet(0x82, struct.pack("!H", pid) + _str(topic) + bytes([qos]))


def publish_packet(topic, payload, pid, qos=1):
    return _packet(0x30 | (qos << 1), _str(topic) + (struct.pack("!H", pid) if qos else b"")
                   + payload)


def puback_packet(pid):
    return _packet(0x40, struct.pack("!H", pid))


PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


class PacketReader:
    """Splits a byte stream into MQTT packets: feed(data) → [(first byte, body)]."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 2:
            length, shift, i = 0, 0, 1
            while True:
                if i >= len(self.buf):
                    return out
                b = self.buf[i]
                length |= (b & 0x7F) << shift
                shift += 7
                i += 1
                if not b & 0x80:
                    break
            if len(self.buf) < i + length:
                return out
            out.append((self.buf[0], bytes(self.buf[i:i + length])))
            del self.buf[:i + length]
        return out


def parse_publish(header, body):
    """(topic, packet id or None, payload) of a PUBLISH."""
    qos = (header >> 1) & 3
    n = struct.unpack("!H", body[:2])[0]
    topic = body[2:2 + n].decode("utf-8", "replace")
    pos, pid = 2 + n, None
    if qos:
        pid = struct.unpack("!H", body[pos:pos + 2])[0]
        pos += 2
    return topic, pid, body[pos:]


def decode_answer(payload):
    try:
        m = json.loads(payload.decode("utf-8"))
        return m if isinstance(m, dict) else {"_raw": payload}
    except (UnicodeDecodeError, ValueError):
        return {"_raw": payload}


# ------------------------------------------------------------------------------- load clients

class LoadClient(threading.Thread):
    """One MQTT client over a raw socket sending requests at a steady rate (QoS 1), pipelined
    (at most max_outstanding recent ones unanswered). A request is sent once, on one connection,
    and never resent; when the connection drops the client connects again (clean session) and
    goes on with new requests. make_request(client, seq) → (request dict, marker or None).

    Records, under self.lock: sent {id: {marker, t, gen, phase}}, answers {id: [(t, message)]},
    unexpected (answers to ids never sent, undecodable payloads, stray packets)."""

    STALE_S = 3.0  # an unanswered request older than this no longer holds back the next ones

    def __init__(self, port, name, make_request, interval=0.02, max_outstanding=200):
        super().__init__(daemon=True, name=name)
        self.port = port
        self.client_id = f"{name}-{random_suffix(6)}"
        self.request_topic = f"spec/{self.client_id}/request"
        self.response_topic = f"spec/{self.client_id}/response"
        self.make_request = make_request
        self.interval = interval
        self.max_outstanding = max_outstanding
        self.lock = threading.Lock()
        self.sent = {}
        self.answers = {}
        self.pending = {}  # id -> send time, unanswered, on the current connection
        self.unexpected = []
        self.connections = 0
        self.phase = 0
        self.seq = 0
        self.last_activity = time.monotonic()
        self.sending = threading.Event()
        self.stopping = threading.Event()
        self.error = None
        self._pid = 0

    # thread
    def run(self):
        try:
            self._run()
        except BaseException:  # noqa: BLE001 - reported by the test
            self.error = traceback.format_exc()

    def _run(self):
        sock, reader = None, None
        next_send = time.monotonic()
        last_tx = time.monotonic()
        while not self.stopping.is_set():
            if sock is None:
                sock, reader = self._connect()
                if sock is None:
                    time.sleep(0.05)
                    continue
                last_tx = time.monotonic()
            now = time.monotonic()
            try:
                if self.sending.is_set() and now >= next_send:
                    next_send += self.interval
                    if next_send < now - self.interval:
                        next_send = now  # no catching up in a burst after a stall
                    if self._outstanding(now) < self.max_outstanding:
                        self._send_one(sock, now)
                        last_tx = now
                if now - last_tx > 20:
                    sock.sendall(PINGREQ)
                    last_tx = now
                wait = 0.05
                if self.sending.is_set():
                    wait = max(0.0, min(wait, next_send - time.monotonic()))
                ready, _, _ = select.select([sock], [], [], wait)
                if ready:
                    data = sock.recv(65536)
                    if not data:
                        raise ConnectionError("closed by the broker")
                    for header, body in reader.feed(data):
                        self._handle(sock, header, body)
            except OSError:
                sock = self._drop(sock)
        if sock is not None:
            try:
                sock.sendall(DISCONNECT)
            except OSError:
                pass
            sock.close()

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    def _connect(self):
        s = None
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2.0)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = PacketReader()
            s.sendall(connect_packet(self.client_id))
            header, body = self._await(s, reader, 0x20)
            if body[1] != 0:
                raise ConnectionError(f"CONNACK {body[1]}")
            s.sendall(subscribe_packet(self._next_pid(), self.response_topic))
            header, body = self._await(s, reader, 0x90)
            if body[-1] >= 0x80:
                raise ConnectionError("SUBACK refused")
            with self.lock:
                self.connections += 1
                self.pending.clear()
            return s, reader
        except (OSError, ConnectionError, IndexError):
            if s is not None:
                s.close()
            return None, None

    def _await(self, s, reader, ptype, timeout=3.0):
        deadline = time.monotonic() + timeout
        while True:
            for header, body in reader.feed(b""):
                if header & 0xF0 == ptype:
                    return header, body
                self._handle(s, header, body)
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionError(f"no packet {ptype:#x}")
            s.settimeout(left)
            data = s.recv(65536)
            if not data:
                raise ConnectionError("closed by the broker")
            reader.buf += data

    def _drop(self, sock):
        with self.lock:
            self.pending.clear()  # never answered now: this connection is gone
        try:
            sock.close()
        except OSError:
            pass
        return None

    def _outstanding(self, now):
        with self.lock:
            return sum(1 for t in self.pending.values() if t > now - self.STALE_S)

    def _send_one(self, sock, now):
        self.seq += 1
        req, marker = self.make_request(self, self.seq)
        rid = req["id"]
        with self.lock:
            self.sent[rid] = {"marker": marker, "t": now, "gen": self.connections,
                              "phase": self.phase}
            self.pending[rid] = now
            self.last_activity = now
        sock.sendall(publish_packet(self.request_topic, json.dumps(req).encode(),
                                    self._next_pid()))

    def _handle(self, sock, header, body):
        ptype = header & 0xF0
        if ptype == 0x30:
            topic, pid, payload = parse_publish(header, body)
            if pid is not None:
                sock.sendall(puback_packet(pid))
            t = time.monotonic()
            msg = decode_answer(payload)
            with self.lock:
                rid = msg.get("id")
                if topic == self.response_topic and isinstance(rid, str) and rid in self.sent:
                    self.answers.setdefault(rid, []).append((t, msg))
                    self.pending.pop(rid, None)
                    self.last_activity = t
                else:
                    self.unexpected.append((topic, msg))
        elif ptype not in (0x40, 0xD0):  # PUBACK of our requests, PINGRESP
            with self.lock:
                self.unexpected.append(("packet", header))

    # control (test thread)
    def drain(self, quiet=1.5, timeout=15.0):
        """Stops sending; waits until every request of the live connection is answered or no
        answer came for `quiet` s (requests lost with a killed service); stops the thread."""
        self.sending.clear()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if not self.pending or time.monotonic() - self.last_activity > quiet:
                    break
            time.sleep(0.05)
        self.stopping.set()
        self.join(10)

    def acked(self, phase=None):
        """Ids answered with success whose row carries the request's marker."""
        with self.lock:
            return [rid for rid, a in self.answers.items()
                    if (phase is None or self.sent[rid]["phase"] == phase)
                    and any(m.get("success") is True for _, m in a)]


def create_request(prefix):
    """make_request for LoadClient: a create of one faults row with a unique marker."""
    def make(client, seq):
        marker = f"{prefix}-{client.client_id}-{seq}"
        return ({"id": f"w{seq}", "operation": "create", "entity": "faults",
                 "data": {"marker": marker, "writer": client.client_id, "seq": seq}}, marker)
    return make


def read_request(record_id):
    def make(client, seq):
        return ({"id": f"r{seq}", "operation": "read", "entity": "users",
                 "record_id": record_id}, None)
    return make


def marker_counts(svc):
    return {m: int(n) for m, n in svc.db_query(
        "SELECT marker, COUNT(*) FROM faults GROUP BY marker")}


# ------------------------------------------------------------------------------------ services

class MetricsService(Service):
    """A Service with the Prometheus endpoint on (admin.metrics_listen)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.metrics_port = free_port()

    def config_dict(self):
        cfg = super().config_dict()
        cfg["admin"]["metrics_listen"] = f"127.0.0.1:{self.metrics_port}"
        return cfg

    def metric(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=3) as r:
            text = r.read().decode()
        m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
        return float(m.group(1)) if m else None


class TunedBrokerService(Service):
    """External mode: the harness's Mosquitto configuration (spec_service.Service._start_broker)
    plus `broker_conf` lines, and with persistent=True persistence in <tmp>/broker-data, so that
    sessions and their queued messages survive a SIGTERM and restart of the broker."""

    def __init__(self, broker_conf="", persistent=False, **kw):
        super().__init__(**kw)
        self.broker_conf = broker_conf
        self.persistent = persistent

    def _start_broker(self, timeout, port=None):
        self.port = port or free_port()
        conf = os.path.join(self.tmp, "mosquitto.conf")
        extra = self.broker_conf
        if self.persistent:
            pdir = os.path.join(self.tmp, "broker-data")
            os.makedirs(pdir, exist_ok=True)
            extra += f"persistence true\npersistence_location {pdir}/\nautosave_interval 60\n"
        else:
            extra += "persistence false\n"
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\n"
                    "allow_anonymous true\n"
                    "set_tcp_nodelay true\n"
                    + extra +
                    "log_dest stdout\n"
                    "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
                    "user root\n")
        os.chmod(conf, 0o644)
        out = open(self.broker_log_path, "ab")
        self._files.append(out)
        self.broker = subprocess.Popen([mosquitto_binary(), "-c", conf], stdout=out,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_port(self.port, time.monotonic() + timeout, self.broker, "mosquitto")


class PrivatePgService(Service):
    """A Service on a fresh database of the PostgreSQL cluster of `admin_url` (not the
    fixture's)."""

    def __init__(self, admin_url, **kw):
        super().__init__(db="postgres", **kw)
        self.cluster_admin_url = admin_url

    def _create_pg_database(self):
        self.pg_admin_url = self.cluster_admin_url
        self.pg_database = pg_create_database(self.pg_admin_url)
        self.pg_url = pg_url_with_database(self.pg_admin_url, self.pg_database)


def pg_unavailable():
    """Why a private PostgreSQL cluster cannot be started here, or None."""
    if not os.path.isfile(PGCLUSTER):
        return f"{PGCLUSTER} missing"
    bins = [os.environ.get("PG_BIN", ""), "/usr/lib/postgresql/15/bin"]
    if os.path.isdir("/usr/lib/postgresql"):
        bins += [os.path.join("/usr/lib/postgresql", v, "bin")
                 for v in os.listdir("/usr/lib/postgresql")]
    if not any(b and os.access(os.path.join(b, "pg_ctl"), os.X_OK) for b in bins) \
            and not shutil.which("pg_config"):
        return "no PostgreSQL server binaries"
    try:
        psycopg2_module()
    except ImportError:
        return "no python3-psycopg2"
    return None


class PrivatePgCluster:
    """A throw-away cluster of this test (tests/pg/pgcluster.sh in a temp dir, as user postgres on
    a free port), so that stopping it never touches the ctest fixture's cluster."""

    def __init__(self):
        self.parent = tempfile.mkdtemp(prefix="mqttspec-faults-pg-")
        self.dir = os.path.join(self.parent, "pg")
        self.url = None

    def run(self, cmd, timeout=120):
        env = dict(os.environ, PGCLUSTER_OWNER_PID=str(os.getpid()), PGCLUSTER_TTL_S="900")
        r = subprocess.run([PGCLUSTER, cmd, self.dir], capture_output=True, text=True,
                           timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"pgcluster.sh {cmd}: exit {r.returncode}: {r.stderr}")
        return r.stdout.strip()

    def start(self):
        self.url = self.run("start").splitlines()[-1]

    def stop(self):
        try:
            self.run("stop")
        finally:
            shutil.rmtree(self.parent, ignore_errors=True)


class TableWriteLock:
    """Blocks writes to the faults table from outside the service, reads stay possible: SQLite
    BEGIN IMMEDIATE on the file (WAL: the one writer waits, readers go on); PostgreSQL LOCK TABLE
    IN EXCLUSIVE MODE (only ACCESS SHARE, i.e. reads, passes)."""

    def __init__(self, svc):
        self.svc = svc
        self.conn = None

    def acquire(self):
        if self.svc.postgres:
            self.conn = pg_connect(self.svc.pg_url)
            with self.conn.cursor() as cur:
                cur.execute("LOCK TABLE public.faults IN EXCLUSIVE MODE")
        else:
            self.conn = sqlite3.connect(self.svc.db_path, timeout=5, isolation_level=None)
            self.conn.execute("BEGIN IMMEDIATE")

    def release(self):
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.rollback() if self.svc.postgres else conn.execute("ROLLBACK")
        finally:
            conn.close()


# --------------------------------------------------------------------------------------- tests

class FaultTestCase(ServiceTestCase):
    """A service per test, started by the test itself (start_service), stopped at cleanup with
    the usual check (SIGTERM → exit 0); its logs are printed when the test fails."""

    SERVICE_PER_TEST = True

    def setUp(self):
        unittest.TestCase.setUp(self)  # not ServiceTestCase's: each test starts its own service

    def start_service(self, cls=Service, **kw):
        svc = cls(**kw)
        svc.start(timeout=20)
        self.service = svc
        self.addCleanup(svc.stop)
        return svc

    def start_load(self, clients):
        for c in clients:
            c.start()
            self.addCleanup(c.stopping.set)
        deadline = time.monotonic() + 10
        while any(c.connections == 0 for c in clients):
            self.assertLess(time.monotonic(), deadline, "load clients did not connect")
            time.sleep(0.02)
        for c in clients:
            c.sending.set()

    def kill_service(self, svc):
        """SIGKILL to mqttspecd (embedded mode: the broker process, which is the service)."""
        proc, svc.server = svc.server, None
        self.assertIsNone(proc.poll(), f"mqttspecd died before the kill\n{svc.log_tail()}")
        proc.kill()
        proc.wait(5)
        self.assertEqual(proc.returncode, -9)

    def assertNoLoadErrors(self, clients):
        for c in clients:
            self.assertIsNone(c.error, f"{c.client_id} crashed: {c.error}")
            self.assertEqual(c.unexpected[:5], [], f"{c.client_id}: unexpected messages")

    def assertDrainedEachAnsweredOnceWithSuccess(self, writers):
        """Drains the writers; none crashed or got stray messages, every answer is a success and
        no request was answered twice."""
        for w in writers:
            w.drain()
        self.assertNoLoadErrors(writers)
        errors = [(w.client_id, rid, m) for w in writers for rid, a in w.answers.items()
                  for _, m in a if m.get("success") is not True]
        self.assertEqual(errors[:5], [], f"{len(errors)} error answers")
        twice = [(w.client_id, rid) for w in writers for rid, a in w.answers.items() if len(a) > 1]
        self.assertEqual(twice, [], "requests answered more than once")

    def assertExactlyOnce(self, svc, clients):
        """Every acknowledged write is present exactly once; every other one at most once; no
        row that no request made. Returns (acknowledged, others, others present)."""
        counts = marker_counts(svc)
        acked, others = set(), set()
        for c in clients:
            with c.lock:
                for rid, info in c.sent.items():
                    if info["marker"] is None:
                        continue
                    ok = [m for _, m in c.answers.get(rid, ()) if m.get("success") is True]
                    if ok:
                        self.assertTrue(all((m.get("data") or {}).get("marker") == info["marker"]
                                            for m in ok), ok)
                        acked.add(info["marker"])
                    else:
                        others.add(info["marker"])
        twice = {m: counts.get(m, 0) for m in acked if counts.get(m, 0) != 1}
        self.assertEqual(twice, {}, f"acknowledged writes not present exactly once "
                                    f"(marker: rows), of {len(acked)} acknowledged")
        dup = {m: counts[m] for m in others if counts.get(m, 0) > 1}
        self.assertEqual(dup, {}, "unacknowledged writes present more than once")
        strays = set(counts) - acked - others
        self.assertEqual(strays, set(), "rows no request made")
        return acked, others, {m for m in others if counts.get(m, 0) == 1}


class SigkillUnderLoad(FaultTestCase):
    KILLS = 3

    def test_sigkill_under_write_load_keeps_acknowledged_writes_exactly_once(self):
        svc = self.start_service(extra_models=(FAULTS_MODEL,))
        run = random_suffix(6)
        writers = [LoadClient(svc.port, f"kw{i}", create_request(run), interval=0.004)
                   for i in range(4)]  # 4 × 250 creates/s
        self.start_load(writers)
        t0 = time.monotonic()
        restarts = []
        for k in range(self.KILLS):
            time.sleep(random.uniform(1.5, 2.5))
            self.assertGreater(sum(len(w.acked(phase=k)) for w in writers), 0,
                               f"no write acknowledged in phase {k}\n{svc.log_tail()}")
            self.kill_service(svc)
            for w in writers:
                w.phase = k + 1
            t_kill = time.monotonic()
            time.sleep(0.2)
            svc._start_server(20)  # same config, port, data_dir and database
            restarts.append(time.monotonic() - t_kill)
        time.sleep(2.0)
        self.assertDrainedEachAnsweredOnceWithSuccess(writers)
        for k in range(self.KILLS + 1):
            self.assertGreater(sum(len(w.acked(phase=k)) for w in writers), 0,
                               f"no write acknowledged in phase {k} (after kill {k})")
        acked, others, present = self.assertExactlyOnce(svc, writers)
        sent = sum(len(w.sent) for w in writers)
        log(f"sigkill [{svc.mode}/{svc.db}]: {sent} creates sent in {time.monotonic() - t0:.1f} s, "
            f"{len(acked)} acknowledged, {len(others)} unacknowledged ({len(present)} of them "
            f"applied), {self.KILLS} kills, restarts took "
            + ", ".join(f"{r:.2f}" for r in restarts) + " s, reconnections "
            + str([w.connections for w in writers]))
        self.assertTrue(svc.alive())


class SigkillUnderFullSpeedWrites(FaultTestCase):
    """Group commit under SIGKILL: four clients write as fast as the service answers (64 in
    flight each), so commits are shared by many writes when the kill lands; every acknowledged
    write is present exactly once — on SQLite with synchronous full and normal. In external mode
    the kill also loses PUBACKs of requests already committed: the broker redelivers them to the
    restarted service, which answers them from their record instead of applying them again."""
    KILLS = 2

    def run_rounds(self, database_extra):
        svc = self.start_service(extra_models=(FAULTS_MODEL,), database_extra=database_extra)
        run = random_suffix(6)
        writers = [LoadClient(svc.port, f"fw{i}", create_request(run), interval=0.0002,
                              max_outstanding=64) for i in range(4)]
        self.start_load(writers)
        for k in range(self.KILLS):
            time.sleep(random.uniform(1.0, 1.5))
            self.kill_service(svc)
            for w in writers:
                w.phase = k + 1
            time.sleep(0.2)
            svc._start_server(20)
        time.sleep(1.5)
        self.assertDrainedEachAnsweredOnceWithSuccess(writers)
        acked, others, present = self.assertExactlyOnce(svc, writers)
        self.assertGreater(len(acked), 100, "too few writes acknowledged to mean anything")
        log(f"sigkill at full speed [{svc.mode}/{svc.db} {database_extra}]: "
            f"{sum(len(w.sent) for w in writers)} creates sent, {len(acked)} acknowledged, "
            f"{len(others)} unacknowledged ({len(present)} of them applied), {self.KILLS} kills")

    @unittest.skipIf(default_db() == "postgres", "SQLite's synchronous modes")
    def test_sqlite_synchronous_full(self):
        self.run_rounds({"synchronous": "full"})

    @unittest.skipIf(default_db() == "postgres", "SQLite's synchronous modes")
    def test_sqlite_synchronous_normal(self):
        self.run_rounds({"synchronous": "normal"})

    @unittest.skipUnless(default_db() == "postgres", "PostgreSQL only (MQTTSPEC_DB=postgres)")
    def test_postgres(self):
        self.run_rounds({})


class WritesRepeatedAfterACrash(FaultTestCase):
    """A client whose answers were lost with the service sends its writes again — same client id,
    request ids and bytes — to the restarted service: each is answered as done and none is
    applied a second time (the database's record of each write; the in-memory dedup cache died
    with the process). Also what a broker's QoS 1 redelivery after a SIGKILL amounts to."""

    def test_writes_repeated_after_sigkill_are_answered_and_not_applied_again(self):
        svc = self.start_service(extra_models=(FAULTS_MODEL,))
        run = random_suffix(6)
        c = svc.client(client_id=f"rep-{run}")
        create = {"id": "c1", "operation": "create", "entity": "faults",
                  "data": {"marker": f"{run}-a", "writer": "rep", "seq": 1}}
        batch = {"id": "c2", "operation": "create", "entity": "faults",
                 "data": [{"marker": f"{run}-b", "seq": 2}, {"marker": f"{run}-c", "seq": 3}]}
        first = self.assertOk(c.request(create), "c1")
        firsts = self.assertOk(c.request(batch), "c2")
        update = {"id": "u1", "operation": "update", "entity": "faults",
                  "record_id": first["id"], "data": {"seq": 10}}
        delete = {"id": "d1", "operation": "delete", "entity": "faults",
                  "record_id": firsts[1]["id"]}
        self.assertOk(c.request(update), "u1")
        self.assertOk(c.request(delete), "d1")
        c.close()
        self.kill_service(svc)
        svc._start_server(20)
        c = svc.client(client_id=f"rep-{run}")
        again = self.assertOk(c.request(create), "c1")
        self.assertEqual(again["id"], first["id"])
        self.assertEqual(again["seq"], 10)  # the row as it is now
        agains = self.assertOk(c.request(batch), "c2")
        self.assertEqual([agains[0]["id"], agains[1]], [firsts[0]["id"], None])  # c: deleted
        self.assertEqual(self.assertOk(c.request(update), "u1")["seq"], 10)
        self.assertOk(c.request(delete), "d1")
        self.assertEqual(marker_counts(svc), {f"{run}-a": 1, f"{run}-b": 1})
        # The same request id with other bytes is a new write.
        create["data"]["marker"] = f"{run}-d"
        self.assertOk(c.request(create), "c1")
        self.assertEqual(marker_counts(svc).get(f"{run}-d"), 1)
        self.assertTrue(svc.alive())


@unittest.skipUnless(default_db() == "postgres", "PostgreSQL only (MQTTSPEC_DB=postgres)")
class PostgresRestart(FaultTestCase):
    OUTAGE_S = 3.0
    ANSWER_BOUND_S = 6.0  # every request answered within this (query_timeout_ms is 5000)

    def setUp(self):
        super().setUp()
        reason = pg_unavailable()
        if reason:
            self.skipTest(reason)
        self.cluster = PrivatePgCluster()
        self.addCleanup(self.cluster.stop)  # after the service's stop (cleanups run LIFO)
        self.cluster.start()

    def test_postgres_restart_under_load_answers_unavailable_then_recovers(self):
        svc = self.start_service(PrivatePgService, admin_url=self.cluster.url,
                                 extra_models=(FAULTS_MODEL,))
        pid = svc.server.pid
        seed = svc.client()
        uid = self.assertOk(seed.request({"id": "u", "operation": "create", "entity": "users",
                                          "data": {"name": "reader target"}}))["id"]
        run = random_suffix(6)
        clients = [LoadClient(svc.port, f"pw{i}", create_request(run), interval=0.03)
                   for i in range(3)]
        clients.append(LoadClient(svc.port, "pr", read_request(uid), interval=0.03))
        self.start_load(clients)

        time.sleep(1.5)
        t_pause = time.monotonic()
        self.cluster.run("pause")  # pg_ctl stop -m fast: sessions are terminated
        t_down = time.monotonic()
        try:
            time.sleep(self.OUTAGE_S)
        finally:
            t_resume = time.monotonic()
            self.cluster.run("resume")
        t_up = time.monotonic()
        # Successes resume by themselves: the same service process, no restart.
        deadline = t_up + 20
        first_ok = None
        while first_ok is None and time.monotonic() < deadline:
            for c in clients:
                with c.lock:
                    oks = [t for rid, a in c.answers.items() for t, m in a
                           if m.get("success") is True and c.sent[rid]["t"] > t_up]
                if oks:
                    first_ok = min(oks) if first_ok is None else min(first_ok, min(oks))
            time.sleep(0.05)
        self.assertIsNotNone(first_ok, "no success within 20 s of PostgreSQL coming back\n"
                             + svc.log_tail())
        time.sleep(1.5)
        for c in clients:
            c.drain(quiet=self.ANSWER_BOUND_S)
        self.assertNoLoadErrors(clients)
        self.assertEqual(svc.server.pid, pid)
        self.assertTrue(svc.alive(), "the service died with PostgreSQL")

        codes, latencies, down_codes, late_errors = {}, [], {}, []
        unanswered = []
        for c in clients:
            self.assertEqual(c.connections, 1, "the load clients' connections dropped")
            for rid, info in c.sent.items():
                a = c.answers.get(rid)
                if not a:
                    unanswered.append((c.client_id, rid))
                    continue
                self.assertEqual(len(a), 1, f"{rid} answered {len(a)} times")
                t, m = a[0]
                latencies.append(t - info["t"])
                code = "ok" if m.get("success") is True else (m.get("error") or {}).get("code")
                codes[code] = codes.get(code, 0) + 1
                if code != "ok":
                    self.assertError(m, "unavailable", msg=f"{c.client_id} {rid}")
                if t_down <= info["t"] and t <= t_resume:
                    down_codes[code] = down_codes.get(code, 0) + 1
                if info["t"] > first_ok + 1.0 and code != "ok":
                    late_errors.append((rid, m))
        self.assertEqual(unanswered[:5], [], f"{len(unanswered)} requests never answered")
        self.assertLess(max(latencies), self.ANSWER_BOUND_S, "an answer took too long")
        self.assertGreater(down_codes.get("unavailable", 0), 10, down_codes)
        self.assertEqual(set(down_codes), {"unavailable"},
                         "requests sent and answered while PostgreSQL was down")
        self.assertEqual(late_errors[:5], [], "errors after the recovery")
        writers = clients[:3]
        acked, others, present = self.assertExactlyOnce(svc, writers)
        latencies.sort()
        log(f"postgres restart [{svc.mode}]: answers {codes}; while down {down_codes}; stop took "
            f"{t_down - t_pause:.2f} s, start {t_up - t_resume:.2f} s; first success "
            f"{first_ok - t_up:.2f} s after it was back; latency p50 "
            f"{latencies[len(latencies) // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms; "
            f"{len(acked)} writes acknowledged, {len(others)} not ({len(present)} of them "
            "applied all the same)")


@unittest.skipUnless(default_mode() == "external",
                     "external mode only: in embedded mode the broker is the service "
                     "(its SIGKILL and restart: SigkillUnderLoad)")
@unittest.skipIf(os.environ.get("MQTTSPEC_TEST_SANITIZER_LOG_DIR"),
                 "sanitizer build: a broker restart under load hits Paho C 1.3.12's use-after-free "
                 "of a failed QoS 1 publish (SECURITY.md §3); TSan reports it and the instrumented "
                 "process then missed its reconnect once in CI-like load; the plain build runs it")
class ExternalBrokerRestart(FaultTestCase):
    DOWN_S = 2.0
    RECONNECT_BOUND_S = 15.0

    def stop_broker(self, svc):
        svc.broker.terminate()
        self.assertEqual(svc.broker.wait(10), 0)

    def test_broker_restart_under_load_reconnects_resubscribes_and_answers_queued(self):
        # The harness's broker has no persistence; this one keeps the sessions (the service's
        # subscription, the client's) and their queued messages across a SIGTERM and restart.
        svc = self.start_service(TunedBrokerService, mode="external", persistent=True,
                                 extra_models=(FAULTS_MODEL,),
                                 broker_extra={"reconnect": {"min_s": 0.2, "max_s": 1.0}})
        pid = svc.server.pid

        cid = "bq-" + random_suffix()
        response_topic = f"spec/{cid}/response"
        lock = threading.Lock()
        sent, answers, connects = {}, {}, []
        client = mqtt.Client(client_id=cid, clean_session=False, protocol=mqtt.MQTTv311)
        client.reconnect_delay_set(0.1, 0.5)
        client.max_queued_messages_set(0)

        def on_connect(cl, userdata, flags, rc):
            with lock:
                connects.append((time.monotonic(), rc, flags.get("session present")))
            cl.subscribe(response_topic, 1)
            try:
                cl.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass

        def on_message(cl, userdata, msg):
            m = decode_answer(msg.payload)
            with lock:
                answers.setdefault(m.get("id"), []).append((time.monotonic(), m))

        client.on_connect = on_connect
        client.on_message = on_message
        client.connect("127.0.0.1", svc.port, keepalive=30)
        client.loop_start()
        self.addCleanup(client.loop_stop)
        self.addCleanup(client.disconnect)
        deadline = time.monotonic() + 5
        while not connects:
            self.assertLess(time.monotonic(), deadline, "the load client did not connect")
            time.sleep(0.02)
        time.sleep(0.2)  # its SUBACK

        run = random_suffix(6)
        sending = threading.Event()
        sending.set()
        rcs = {}

        def load():
            seq = 0
            while sending.is_set():
                seq += 1
                rid = f"b{seq}"
                marker = f"{run}-{seq}"
                with lock:
                    sent[rid] = (time.monotonic(), marker)
                info = client.publish(f"spec/{cid}/request", json.dumps(
                    {"id": rid, "operation": "create", "entity": "faults",
                     "data": {"marker": marker, "writer": cid, "seq": seq}}), qos=1)
                rcs[info.rc] = rcs.get(info.rc, 0) + 1  # NO_CONN while down: paho queues it
                time.sleep(0.025)

        loader = threading.Thread(target=load, daemon=True)
        loader.start()
        self.addCleanup(sending.clear)
        time.sleep(1.5)
        with lock:
            before = len(answers)
        self.assertGreater(before, 10, "no answers before the restart")

        t_stop = time.monotonic()
        self.stop_broker(svc)  # SIGTERM: mosquitto saves its sessions and queues
        t_down = time.monotonic()
        time.sleep(self.DOWN_S)
        with lock:
            down_ids = [rid for rid, (t, _) in sent.items() if t > t_down]
        svc._start_broker(10, port=svc.port)  # the same configuration and persistence file
        t_up = time.monotonic()

        def answered_after(t0):
            with lock:
                ts = [a[0][0] for rid, a in answers.items()
                      if rid in sent and sent[rid][0] > t0]
            return min(ts) if ts else None

        deadline = t_up + 30
        first = None
        while first is None and time.monotonic() < deadline:
            first = answered_after(t_up)
            time.sleep(0.05)
        self.assertIsNotNone(first, "no request published after the broker came back was "
                             "answered within 30 s\n" + svc.log_tail())
        time.sleep(1.5)
        sending.clear()
        loader.join(5)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with lock:
                missing = [rid for rid in sent if rid not in answers]
            if not missing:
                break
            time.sleep(0.1)
        with lock:
            missing = sorted((rid for rid in sent if rid not in answers),
                             key=lambda r: int(r[1:]))
            sent_snapshot, answers_snapshot = dict(sent), dict(answers)
        with open(svc.server_log_path, errors="replace") as f:
            server_log = f.read()
        reconnected = re.findall(r"connected to broker \S+ after (\d+) failed attempt", server_log)
        first_down_answer = min((a[0][0] for rid, a in answers_snapshot.items()
                                 if rid in down_ids), default=None)
        log(f"broker restart: {len(sent_snapshot)} requests ({len(down_ids)} published while "
            f"the broker was down; publish rc {rcs}), stop took {t_down - t_stop:.2f} "
            f"s, first answer to a request published after the restart "
            f"{first - t_up:.2f} s after the broker was back, first answer to one queued by paho "
            + (f"{first_down_answer - t_up:.2f} s" if first_down_answer else "none")
            + f"; client connects {[(round(t - t_up, 2), rc, sp) for t, rc, sp in connects]}; "
            f"service reconnections (failed attempts) {reconnected}; "
            f"{sum(len(a) > 1 for a in answers_snapshot.values())} answered twice")
        self.assertEqual(missing[:10], [], f"{len(missing)} requests never answered "
                                           f"(of {len(down_ids)} published while down)")
        self.assertLess(first - t_up, self.RECONNECT_BOUND_S)
        errors = [m for a in answers_snapshot.values() for _, m in a
                  if m.get("success") is not True]
        self.assertEqual(errors[:5], [], f"{len(errors)} error answers\n" + svc.log_tail())
        self.assertEqual(svc.server.pid, pid)
        self.assertTrue(svc.alive())
        self.assertIn("lost the broker connection", server_log)
        self.assertGreaterEqual(server_log.count("taking requests on"), 2,
                                "the service did not subscribe again")
        counts = marker_counts(svc)
        wrong = {rid: counts.get(marker, 0) for rid, (_, marker) in sent_snapshot.items()
                 if counts.get(marker, 0) != 1}
        self.assertEqual(wrong, {}, "writes not stored exactly once (id: rows)")


class SlowDatabase(FaultTestCase):
    QUERY_TIMEOUT_MS = 1500
    # The first write times out 1.5 s after it reaches the database (under load and TSan 0.3 s
    # after it was sent); the others, queued behind it, wait up to 1.5 s more and get through
    # when the lock goes at 2.6 s.
    HOLD_S = 2.6
    ALONE_S = 0.8      # the first write's head start: it must be running when the rest arrive
    QUEUED = 10        # writes the slow client sends at once
    READERS = 4

    def test_slow_statement_keeps_other_clients_fast_and_queues_bounded(self):
        svc = self.start_service(MetricsService, extra_models=(FAULTS_MODEL,),
                                 limits={"query_timeout_ms": self.QUERY_TIMEOUT_MS})
        seed = svc.client()
        uids = [self.assertOk(seed.request({"id": f"u{i}", "operation": "create",
                                            "entity": "users", "data": {"name": f"r{i}"}}))["id"]
                for i in range(self.READERS)]
        stop = threading.Event()
        samples = [[] for _ in range(self.READERS)]  # (t sent, latency, message)
        problems = []

        def reader(i):
            c = svc.client(f"fast{i}-{random_suffix(6)}")
            n = 0
            while not stop.is_set():
                n += 1
                t = time.monotonic()
                try:
                    m = c.request({"id": f"q{n}", "operation": "read", "entity": "users",
                                   "record_id": uids[i]}, timeout=10)
                except AssertionError as e:
                    problems.append(str(e))
                    return
                samples[i].append((t, time.monotonic() - t, m))
                time.sleep(0.01)

        depths = []

        def sampler():
            while not stop.is_set():
                try:
                    depths.append((time.monotonic(), svc.metric("mqttspec_queue_depth")))
                except OSError as e:
                    problems.append(f"metrics: {e}")
                time.sleep(0.1)

        threads = [threading.Thread(target=reader, args=(i,), daemon=True)
                   for i in range(self.READERS)]
        threads.append(threading.Thread(target=sampler, daemon=True))
        for t in threads:
            t.start()
        self.addCleanup(stop.set)
        slow = svc.client(f"slow-{random_suffix(6)}")
        time.sleep(0.5)

        lock = TableWriteLock(svc)
        self.addCleanup(lock.release)
        lock.acquire()
        t_lock = time.monotonic()
        ids = [f"s{i}" for i in range(self.QUEUED)]
        markers = {rid: f"slow-{rid}-{random_suffix(6)}" for rid in ids}
        # The first write goes alone: it is a batch of its own, stuck on the lock until it times
        # out. The rest, sent while it waits, share the next batch (had they arrived together,
        # one batch would hold them all — with synchronous=normal the commit waits for requests
        # waiting to start — and would time out as one). Its head start must cover its way to
        # the database on a loaded machine: 0.2 s did not once in CI, under TSan in external
        # mode (every answer a timeout, the ten in one batch).
        t_sent = None
        for rid in ids:
            slow.send_raw({"id": rid, "operation": "create", "entity": "faults",
                           "data": {"marker": markers[rid], "writer": slow.client_id}})
            if t_sent is None:
                t_sent = time.monotonic()
                time.sleep(self.ALONE_S)
        got = []  # (arrival time, answer) of the slow client

        def collect():
            for _ in ids:
                try:
                    m = slow.wait_for(lambda t, m, p: t == slow.response_topic, 15,
                                      "a slow answer")[1]
                except AssertionError as e:
                    problems.append(str(e))
                    return
                got.append((time.monotonic(), m))
        collector = threading.Thread(target=collect, daemon=True)
        collector.start()
        time.sleep(max(0.0, t_sent + self.HOLD_S - time.monotonic()))
        lock.release()
        t_release = time.monotonic()
        collector.join(20)
        self.assertEqual(len(got), len(ids), f"the slow client's answers: {problems}")
        t_done = got[-1][0]
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(15)
        deadline = time.monotonic() + 5
        final_depth = svc.metric("mqttspec_queue_depth")
        while final_depth and time.monotonic() < deadline:
            time.sleep(0.1)
            final_depth = svc.metric("mqttspec_queue_depth")

        # The slow client: answered in order; the first timed out, the rest went through after.
        self.assertEqual([m.get("id") for _, m in got], ids, "answers out of order")
        first_t, first = got[0]
        self.assertError(first, "timeout")
        # Ended by limits.query_timeout_ms, not by the lock going away.
        self.assertGreater(first_t - t_sent, self.QUERY_TIMEOUT_MS / 1000 * 0.8)
        self.assertLess(first_t, t_release - 0.1, "the first write was not timed out")
        codes = ["ok" if m.get("success") is True else (m.get("error") or {}).get("code")
                 for _, m in got]
        self.assertEqual(set(codes) - {"ok", "timeout"}, set(), codes)
        arrivals = [round(t - t_sent, 2) for t, _ in got]
        self.assertEqual(codes[-1], "ok",
                         f"{codes}, answered at {arrivals} s (all at once: the first write had "
                         f"not reached the database {self.ALONE_S} s after it was sent, and the "
                         f"rest joined its batch)")
        self.assertTrue(all(t >= t_release - 0.2 for (t, _), c in zip(got, codes) if c == "ok"),
                        "a write went through while the table was locked")
        counts = marker_counts(svc)
        self.assertEqual({rid for rid, c in zip(ids, codes) if c == "ok"},
                         {rid for rid in ids if counts.get(markers[rid]) == 1})
        self.assertEqual({rid: counts[markers[rid]] for rid in ids if counts.get(markers[rid], 0)
                          not in (0, 1)}, {})

        # The other clients: never waited for the slow one.
        self.assertEqual(problems, [])
        during = [lat for s in samples for t, lat, m in s if t_lock <= t <= t_release]
        every = sorted(lat for s in samples for _, lat, _ in s)
        for s in samples:
            for _, _, m in s:
                self.assertOk(m)
        self.assertGreater(len(during), 20, "too few reads while the table was locked")
        during.sort()
        p99 = every[int(len(every) * 0.99)]
        p99_during = during[int(len(during) * 0.99)]
        self.assertLess(p99_during, 0.5, f"p99 of reads while the table was locked: "
                                         f"{p99_during * 1000:.0f} ms")
        self.assertLess(p99, 0.5)
        self.assertLess(during[-1], 1.5)

        # Queues: bounded by what was sent (the slow client's writes, one read per reader).
        max_depth = max(d for _, d in depths if d is not None)
        self.assertLessEqual(max_depth, self.QUEUED + self.READERS + 2, depths)
        self.assertGreaterEqual(max_depth, self.QUEUED - 2, "the slow writes never queued?")
        self.assertEqual(final_depth, 0)
        log(f"slow database [{svc.mode}/{svc.db}]: slow client's answers {codes}, first "
            f"after {first_t - t_sent:.2f} s, last {t_done - t_release:.2f} s after the lock "
            f"went; other clients: {len(every)} reads ({len(during)} while locked), p50 "
            f"{every[len(every) // 2] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, p99 while "
            f"locked {p99_during * 1000:.1f} ms, max {every[-1] * 1000:.1f} ms; queue depth max "
            f"{max_depth:.0f}, final {final_depth:.0f}")


class ManyConnections(FaultTestCase):
    CONNECTING_AT_ONCE = 100  # below the broker's listen backlog
    EXTERNAL_BROKER_CONF = f"max_queued_messages {2 * N_CONNECTIONS}\n"  # "" = Mosquitto's 1000

    def test_two_thousand_simultaneous_connections_each_answered(self):
        n = N_CONNECTIONS
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < n + 300:
            self.skipTest(f"RLIMIT_NOFILE {soft} < {n + 300} and cannot be raised")
        if default_mode() == "external":
            # Mosquitto's default max_queued_messages (1000) would drop the requests of the burst
            # beyond ~1 020 queued for the service's session ("Outgoing messages are being dropped
            # for client mqttspec-server-…"): those clients would never be answered. A broker in
            # front of mqttspec needs a larger queue for the service (see the report).
            svc = self.start_service(TunedBrokerService, broker_conf=self.EXTERNAL_BROKER_CONF)
        else:
            svc = self.start_service()
        seed = svc.client()
        user = self.assertOk(seed.request({"id": "u", "operation": "create", "entity": "users",
                                           "data": {"name": "read by all"}}))
        run = random_suffix(5)
        sel = selectors.DefaultSelector()
        conns = []
        closed = []
        self.addCleanup(self._close_all, sel, conns)

        class Conn:
            pass

        def on_event(c, mask):
            if c.state == "tcp":
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise AssertionError(f"{c.id}: connect failed: {os.strerror(err)}")
                c.sock.send(connect_packet(c.id))
                c.state = "connack"
                sel.modify(c.sock, selectors.EVENT_READ, c)
                return
            try:
                data = c.sock.recv(65536)
            except ConnectionError:
                data = b""
            if not data:
                closed.append((c.id, c.state))
                sel.unregister(c.sock)
                c.state = "closed"
                return
            for header, body in c.reader.feed(data):
                ptype = header & 0xF0
                if ptype == 0x20:
                    self.assertEqual(body[1], 0, f"{c.id}: CONNACK {body[1]}")
                    c.state = "connected"
                elif ptype == 0x90:
                    self.assertLess(body[-1], 0x80, f"{c.id}: SUBACK refused")
                    c.subacked = True
                elif ptype == 0x30:
                    topic, pid, payload = parse_publish(header, body)
                    if pid is not None:
                        c.sock.send(puback_packet(pid))
                    c.answers.append((time.monotonic(), topic, decode_answer(payload)))
                elif ptype == 0xD0:
                    c.pong = True

        def pump(timeout):
            for key, mask in sel.select(timeout):
                on_event(key.data, mask)

        t0 = time.monotonic()
        deadline = t0 + 30
        started = 0
        while True:
            connecting = sum(1 for c in conns if c.state in ("tcp", "connack"))
            while started < n and connecting < self.CONNECTING_AT_ONCE:
                c = Conn()
                c.id = f"mc{run}-{started}"
                c.state, c.reader, c.answers, c.subacked, c.pong = "tcp", PacketReader(), [], \
                    False, False
                c.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                c.sock.setblocking(False)
                c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                c.sock.connect_ex(("127.0.0.1", svc.port))
                sel.register(c.sock, selectors.EVENT_WRITE, c)
                conns.append(c)
                started += 1
                connecting += 1
            if started == n and connecting == 0:
                break
            self.assertLess(time.monotonic(), deadline,
                            f"{sum(c.state == 'connected' for c in conns)} of {n} connected "
                            f"within 30 s")
            pump(0.2)
        self.assertEqual(closed, [], "connections closed by the broker")
        self.assertEqual(sum(c.state == "connected" for c in conns), n)
        t_connected = time.monotonic()

        # Every connection subscribes and sends one read by key, all at once.
        for c in conns:
            req = {"id": f"q-{c.id}", "operation": "read", "entity": "users",
                   "record_id": user["id"]}
            data = (subscribe_packet(1, f"spec/{c.id}/response")
                    + publish_packet(f"spec/{c.id}/request", json.dumps(req).encode(), 2))
            self.assertEqual(c.sock.send(data), len(data))
        t_sent = time.monotonic()
        deadline = t_sent + 30
        while sum(1 for c in conns if c.answers) < n and time.monotonic() < deadline:
            pump(0.2)
        t_answered = time.monotonic()
        missing = [c.id for c in conns if not c.answers]
        self.assertEqual(missing[:5], [], f"{len(missing)} of {n} connections got no answer "
                                          "within 30 s")
        for c in conns:
            self.assertTrue(c.subacked, c.id)
            self.assertEqual(len(c.answers), 1, f"{c.id}: {c.answers}")
            _, topic, m = c.answers[0]
            self.assertEqual(topic, f"spec/{c.id}/response")
            self.assertEqual(m.get("id"), f"q-{c.id}")
            self.assertEqual(self.assertOk(m), user)
        latencies = sorted(c.answers[0][0] - t_sent for c in conns)

        # All of them are still open: each answers a PINGREQ.
        for c in conns:
            c.sock.send(PINGREQ)
        deadline = time.monotonic() + 10
        while not all(c.pong for c in conns) and time.monotonic() < deadline:
            pump(0.2)
        self.assertEqual(closed, [], "connections closed by the broker")
        self.assertEqual(sum(c.pong for c in conns), n, "not every connection is still open")
        self.assertTrue(svc.alive())
        log(f"{n} connections [{svc.mode}/{svc.db}]: connected in {t_connected - t0:.2f} s, "
            f"all {n} answered {t_answered - t_sent:.2f} s after the burst (latency p50 "
            f"{latencies[n // 2] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms); "
            f"RLIMIT_NOFILE {soft}")

    @staticmethod
    def _close_all(sel, conns):
        for c in conns:
            try:
                if c.state != "closed":
                    c.sock.send(DISCONNECT)
            except OSError:
                pass
            try:
                c.sock.close()
            except OSError:
                pass
        sel.close()


if __name__ == "__main__":
    unittest.main()
