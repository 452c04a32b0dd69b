"""Scale-out (docs/cluster.md): three mqttspecd instances in external mode over one Mosquitto and
one PostgreSQL, real processes.

  - every matching change reaches every subscriber exactly once and in commit order, whichever
    instance serves the subscription and whichever instance (or psql, through the capture
    trigger) made the change; notification seq runs 1, 2, … without a gap;
  - kill -9 of one instance under load: its clients' requests (retried with the same id after a
    time-out, as a client would) are answered by the survivors once one has adopted its partition,
    each write applied once; its subscriptions go on from their checkpoints: after dropping the
    resent ones (same seq, same change_seq) every subscriber has every change, in order, and seq
    has no gap;
  - the same exactly-once delivery with broker.shared_group instead of partitions;
  - configuration refused where scale-out cannot work (SQLite, embedded mode, partitions with a
    shared group).
deploy/cluster/cluster.sh has its own module (test_cluster_deploy.py).

Run: cd tests/integration && MQTTSPEC_PG_URL=… MQTTSPECD=/abs/path/mqttspecd \
     python3 -m unittest -v test_cluster
"""

import copy
import os
import signal
import subprocess
import threading
import time
import unittest

from harness import (USERS_MODEL, Service, SpecClient, exit_code, pg_connect, random_suffix,
                     server_env, to_yaml)

NOTIFY_TIMEOUT = 40.0


def partition_of(client_id, count):
    """server/topics.cc PartitionOf: FNV-1a (32 bits) of the client id, modulo count."""
    h = 2166136261
    for b in client_id.encode():
        h ^= b
        h = (h * 16777619) & 0xFFFFFFFF
    return h % count if count > 1 else 0


def client_id_in(partition, count, prefix):
    while True:
        cid = f"{prefix}-{random_suffix()}"
        if partition_of(cid, count) == partition:
            return cid


class Cluster:
    """Service() runs the broker, the database and instance 0; instances 1…n-1 are more
    mqttspecd processes with the same configuration but their own MQTT client id, instance id
    and (partitioned) partition index."""

    def __init__(self, n=3, partitioned=True, lease_ms=1500, heartbeat_ms=200):
        self.n = n
        self.partitioned = partitioned
        broker = ({"partition": {"index": 0, "count": n}} if partitioned
                  else {"shared_group": "mqttspec-" + random_suffix()})
        self.base = Service(mode="external", db="postgres", broker_extra=broker,
                            config_extra={"cluster": {"enabled": True,
                                                      "instance_id": "instance-0",
                                                      "lease_ms": lease_ms,
                                                      "heartbeat_ms": heartbeat_ms}})
        self.base.models[0] = dict(USERS_MODEL, capture="triggers")
        self.peers = {}
        self._logs = []

    def start(self):
        if self.partitioned:
            self.base.probe_client_id = client_id_in(0, self.n, "probe")
        self.base.start(timeout=20)
        for i in range(1, self.n):
            self.start_instance(i)

    def config_for(self, i):
        cfg = copy.deepcopy(self.base.config_dict())
        cfg["broker"]["client_id"] = f"{self.base.server_client_id}-{i}"
        if self.partitioned:
            cfg["broker"]["partition"] = {"index": i, "count": self.n}
        cfg["cluster"]["instance_id"] = f"instance-{i}"
        return cfg

    def log_path(self, i):
        return (self.base.server_log_path if i == 0
                else os.path.join(self.base.tmp, f"instance-{i}.log"))

    def start_instance(self, i, timeout=20.0):
        conf = os.path.join(self.base.tmp, f"instance-{i}.yaml")
        with open(conf, "w") as f:
            f.write(to_yaml(self.config_for(i)))
        log = open(self.log_path(i), "ab")
        self._logs.append(log)
        proc = subprocess.Popen([self.base.server_binary, "--config", conf], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=self.base.tmp, env=server_env())
        self.peers[i] = proc
        probe_id = (client_id_in(i, self.n, "probe") if self.partitioned
                    else "probe-" + random_suffix())
        probe = SpecClient(self.base.port, probe_id)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"instance {i} exited with {proc.returncode}\n"
                                       + self.log_tail(i))
                try:
                    m = probe.request({"type": "ping", "id": "p"}, timeout=0.5)
                    if m.get("type") == "pong":
                        break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"instance {i} did not answer ping\n"
                                           + self.log_tail(i)) from None
        finally:
            probe.close()
        # Its partition answered: its lease is in the database too.
        self.wait_instances(i + 1)

    def wait_instances(self, n, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            rows = self.base.db_query("SELECT count(*) FROM mqttspec.instances")
            if rows[0][0] >= n or time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def log_tail(self, i, lines=60):
        try:
            with open(self.log_path(i), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def kill(self, i):
        proc = self.base.server if i == 0 else self.peers[i]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if i == 0:
            self.base.server = None

    def client(self, partition, prefix="c"):
        cid = (client_id_in(partition, self.n, prefix) if self.partitioned
               else f"{prefix}-{random_suffix()}")
        return self.base.client(cid)

    def stop(self):
        problems = []
        for i, proc in self.peers.items():
            if proc.poll() is not None:
                if proc.returncode != -signal.SIGKILL:
                    problems.append(f"instance {i} had exited with {proc.returncode}")
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                rc = exit_code(proc.pid, proc.wait(15))
                if rc != 0:
                    problems.append(f"instance {i} exited with {rc}\n" + self.log_tail(i))
            except subprocess.TimeoutExpired:
                proc.kill()
                problems.append(f"instance {i} did not stop within 15 s\n" + self.log_tail(i))
        for log in self._logs:
            log.close()
        if self.base.server is None:
            self.base.server = subprocess.Popen(["true"])  # killed: nothing to stop
            self.base.server.wait()
            self.base.server = None
        self.base.stop()
        if problems:
            raise AssertionError("\n".join(problems))


def subscribe(client, tag):
    client.subscribe(f"spec/{client.client_id}/notify/+", qos=1)
    r = client.request({"id": "s-" + random_suffix(), "type": "subscription",
                        "operation": "subscribe", "schema": "public", "entity": "users",
                        "options": {"filters": [{"column": "name", "operator": "starts_with",
                                                 "value": tag}]}}, timeout=10)
    assert r.get("success"), r
    return r["data"]["notify_topic"]


def subscribers_on_every_partition(cluster, tag, per_partition=2):
    """(client, notify topic) of `per_partition` subscribers of the tag's rows per partition."""
    out = []
    for p in range(cluster.n):
        for _ in range(per_partition):
            c = cluster.client(p, "sub")
            out.append((c, subscribe(c, tag)))
    return out


def notes(client, topic):
    return [m for m in client.messages_on(topic) if m.get("type") == "notification"]


def request_retrying(client, msg, deadline):
    """A request retried with the same id on time-out until `deadline` (a client whose
    instance died)."""
    while True:
        try:
            return client.request(msg, timeout=2.0)
        except AssertionError:
            if time.monotonic() > deadline:
                raise


class ClusterTest(unittest.TestCase):
    def setUp(self):
        if os.environ.get("MQTTSPEC_MODE", "external") == "embedded":
            self.skipTest("scale-out runs in external mode")
        if not (os.environ.get("MQTTSPEC_PG_URL") or os.environ.get("MQTTSPEC_PG_URL_FILE")):
            self.skipTest("needs PostgreSQL (MQTTSPEC_PG_URL)")

    def start_cluster(self, **kw):
        cluster = Cluster(**kw)
        cluster.start()
        self.addCleanup(cluster.stop)
        return cluster

    def logged(self, cluster, tag):
        """change_seq of every logged change of the tag's rows, in order (the truth)."""
        rows = cluster.base.db_query(
            "SELECT change_seq FROM mqttspec.changes WHERE data->>'name' LIKE ? "
            "ORDER BY change_seq", (tag + "%",))
        return [r[0] for r in rows]

    def wait_all(self, subscribers, expected, dedup=False):
        deadline = time.monotonic() + NOTIFY_TIMEOUT
        while True:
            short = []
            for client, topic in subscribers:
                got = notes(client, topic)
                if dedup:
                    got = list({m["seq"]: m for m in got}.values())
                if len(got) < len(expected):
                    short.append((client.client_id, len(got)))
            if not short:
                return
            if time.monotonic() > deadline:
                self.fail(f"subscribers short of {len(expected)} notifications: {short}")
            time.sleep(0.1)

    def check_delivery(self, subscribers, expected, dedup=False):
        time.sleep(0.5)  # anything extra would have arrived by now
        for client, topic in subscribers:
            got = notes(client, topic)
            if dedup:  # a resent notification repeats its seq and its change
                by_seq = {}
                for m in got:
                    if m["seq"] in by_seq:
                        self.assertEqual(by_seq[m["seq"]]["change_seq"], m["change_seq"],
                                         f"{client.client_id}: seq {m['seq']} reused")
                    by_seq[m["seq"]] = m
                got = [by_seq[s] for s in sorted(by_seq)]
            self.assertEqual([m["change_seq"] for m in got], expected,
                             f"{client.client_id}: not every change once, in commit order")
            self.assertEqual([m["seq"] for m in got], list(range(1, len(expected) + 1)),
                             f"{client.client_id}: seq has a gap")

    def run_writers(self, cluster, tag, writers, per_writer, deadline_s=60, pause=0.0):
        errors = []

        def write(w, client):
            deadline = time.monotonic() + deadline_s
            try:
                for k in range(per_writer):
                    base = f"w{w}-{k}"
                    r = request_retrying(client, {
                        "id": base + "-c", "type": "request", "operation": "create",
                        "schema": "public", "entity": "users",
                        "data": {"name": f"{tag}{base}", "status": "new"}}, deadline)
                    assert r.get("success"), r
                    rid = r["data"]["id"]
                    if k % 3 == 1:
                        r = request_retrying(client, {
                            "id": base + "-u", "type": "request", "operation": "update",
                            "schema": "public", "entity": "users", "record_id": rid,
                            "data": {"status": "changed"}}, deadline)
                        assert r.get("success"), r
                    if k % 5 == 4:
                        r = request_retrying(client, {
                            "id": base + "-d", "type": "request", "operation": "delete",
                            "schema": "public", "entity": "users", "record_id": rid},
                            deadline)
                        assert r.get("success"), r
                    if pause:
                        time.sleep(pause)
            except Exception as e:  # noqa: BLE001 - reported by the test
                errors.append(f"writer {w}: {e}")

        threads = [threading.Thread(target=write, args=(w, c)) for w, c in enumerate(writers)]
        for t in threads:
            t.start()
        return threads, errors

    def psql_writes(self, cluster, tag, n=20):
        conn = pg_connect(cluster.base.pg_url, autocommit=True)
        try:
            cur = conn.cursor()
            for k in range(n):
                cur.execute("INSERT INTO public.users (name, status) VALUES (%s, 'psql') "
                            "RETURNING id", (f"{tag}psql-{k}",))
                rid = cur.fetchone()[0]
                if k % 2:
                    cur.execute("UPDATE public.users SET status = 'psql-changed' WHERE id = %s",
                                (rid,))
                if k % 4 == 3:
                    cur.execute("DELETE FROM public.users WHERE id = %s", (rid,))
        finally:
            conn.close()

    def test_every_change_reaches_every_subscriber_once_in_commit_order(self):
        cluster = self.start_cluster()
        tag = "t" + random_suffix()
        subscribers = subscribers_on_every_partition(cluster, tag)
        writers = [cluster.client(p, "writer") for p in range(cluster.n)]
        threads, errors = self.run_writers(cluster, tag, writers, per_writer=30)
        self.psql_writes(cluster, tag)
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        expected = self.logged(cluster, tag)
        self.assertEqual(len(expected), 3 * (30 + 10 + 6) + 20 + 10 + 5)
        self.wait_all(subscribers, expected)
        self.check_delivery(subscribers, expected)
        # The service's own writes were logged once: the trigger left them to it.
        rows = cluster.base.db_query(
            "SELECT count(*) FROM mqttspec.changes WHERE data->>'name' LIKE ?", (tag + "w%",))
        self.assertEqual(rows[0][0], 3 * (30 + 10 + 6))

    def test_kill_one_instance_under_load(self):
        cluster = self.start_cluster()
        tag = "k" + random_suffix()
        subscribers = subscribers_on_every_partition(cluster, tag)
        writers = [cluster.client(p, "writer") for p in range(cluster.n)]
        threads, errors = self.run_writers(cluster, tag, writers, per_writer=60, pause=0.03)
        time.sleep(1.0)
        cluster.kill(2)
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        # Every write applied once, however often it was sent.
        rows = cluster.base.db_query(
            "SELECT count(*) FROM public.users WHERE name LIKE ?", (tag + "%",))
        self.assertEqual(rows[0][0], 3 * (60 - 12))
        expected = self.logged(cluster, tag)
        self.assertEqual(len(expected), 3 * (60 + 20 + 12))
        self.wait_all(subscribers, expected, dedup=True)
        self.check_delivery(subscribers, expected, dedup=True)
        adopted = "adopting its" in cluster.log_tail(0, 400) + cluster.log_tail(1, 400)
        self.assertTrue(adopted, "no survivor adopted instance-2")

    def test_shared_group_delivers_every_change_once(self):
        cluster = self.start_cluster(partitioned=False)
        tag = "g" + random_suffix()
        subscribers = []
        for _ in range(6):
            c = cluster.client(0, "sub")
            subscribers.append((c, subscribe(c, tag)))
        writers = [cluster.client(0, "writer") for _ in range(3)]
        threads, errors = self.run_writers(cluster, tag, writers, per_writer=20)
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        expected = self.logged(cluster, tag)
        self.assertEqual(len(expected), 3 * (20 + 7 + 4))
        self.wait_all(subscribers, expected)
        self.check_delivery(subscribers, expected)


class ClusterConfigTest(unittest.TestCase):
    def refused(self, config_extra=None, broker_extra=None, mode="external", db="sqlite",
                models=None):
        svc = Service(mode=mode, db=db, config_extra=config_extra, broker_extra=broker_extra)
        if models:
            svc.models = models
        svc.tmp = svc.tmp or __import__("tempfile").mkdtemp(prefix="mqttspec-it-")
        svc.port = 1
        conf = os.path.join(svc.tmp, "c.yaml")
        with open(conf, "w") as f:
            f.write(to_yaml(svc.config_dict()))
        r = subprocess.run([svc.server_binary, "--config", conf, "--check-config"], capture_output=True,
                           text=True, timeout=30, env=server_env())
        __import__("shutil").rmtree(svc.tmp, ignore_errors=True)
        self.assertNotEqual(r.returncode, 0)
        return r.stdout + r.stderr

    def test_refusals(self):
        out = self.refused(config_extra={"cluster": {"enabled": True}})
        self.assertIn("cluster.enabled", out)
        self.assertIn("postgres", out)
        out = self.refused(models=[dict(USERS_MODEL, capture="triggers")])
        self.assertIn("capture: triggers", out)
        out = self.refused(broker_extra={"partition": {"index": 3, "count": 3}})
        self.assertIn("broker.partition.index", out)
        out = self.refused(broker_extra={"partition": {"index": 0, "count": 2},
                                         "shared_group": "g"})
        self.assertIn("exclude each other", out)


if __name__ == "__main__":
    unittest.main()
