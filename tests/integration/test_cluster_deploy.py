"""deploy/cluster/cluster.sh (docs/cluster.md): start — one Mosquitto, one PostgreSQL, three
partitioned instances —, a client of every partition answered, status, stop (twice).

Its own module: the demo's instances serve gRPC (admin.listen, and cluster.sh's readiness asks
mqttspecctl), so like the other gRPC-driven tests it is not run under ThreadSanitizer
(scripts/test-sanitizers).

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd python3 -m unittest -v test_cluster_deploy
"""

import os
import shutil
import socket
import subprocess
import tempfile
import unittest

from harness import SpecClient, free_port
from test_cluster import client_id_in


def free_port_run(n):
    """A base port p such that p … p+n-1 on 127.0.0.1 are all free right now (cluster.sh gives
    the instances CLUSTER_ADMIN_PORT_BASE + 0, 1, 2: checking only the base let an instance
    meet a port another test had just taken, in CI)."""
    for _ in range(200):
        base = free_port()
        if base + n > 65535:
            continue
        held = []
        try:
            for p in range(base, base + n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError(f"no run of {n} free ports found")


class DeployScriptTest(unittest.TestCase):
    """deploy/cluster/cluster.sh: start (Mosquitto, PostgreSQL, three instances), status, stop."""

    def test_start_status_stop(self):
        if os.environ.get("MQTTSPEC_MODE", "external") == "embedded":
            self.skipTest("the demo runs in external mode")
        script = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "cluster",
                              "cluster.sh")
        tmp = tempfile.mkdtemp(prefix="mqttspec-cluster-it-")
        os.chmod(tmp, 0o755)
        work = os.path.join(tmp, "c")
        port, admin = free_port(), free_port_run(3)
        # Not server_env(): no sanitizer runtime preloaded into PostgreSQL and Mosquitto (no
        # plugin is loaded in external mode; mqttspecd links its own).
        env = dict(os.environ, CLUSTER_BROKER_PORT=str(port),
                   CLUSTER_ADMIN_PORT_BASE=str(admin), CLUSTER_LEASE_MS="1000",
                   CLUSTER_HEARTBEAT_MS="200")
        if os.environ.get("MQTTSPECD"):
            env["MQTTSPECCTL"] = os.environ.get("MQTTSPECCTL") or os.path.join(
                os.path.dirname(os.environ["MQTTSPECD"]), "mqttspecctl")

        def run(*args, timeout=180):
            return subprocess.run(["bash", script, *args, work], env=env, capture_output=True,
                                  text=True, timeout=timeout)
        try:
            r = run("start")
            for _ in range(2):  # a port taken between our check and the bind: new ports, again
                said = r.stdout + r.stderr
                if r.returncode == 0 or not ("cannot listen" in said or "in use" in said):
                    break
                run("stop")
                port, admin = free_port(), free_port_run(3)
                env.update(CLUSTER_BROKER_PORT=str(port), CLUSTER_ADMIN_PORT_BASE=str(admin))
                r = run("start")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertEqual(run("status").returncode, 0)
            answered = set()
            for p in range(3):  # a client of every partition is answered
                c = SpecClient(port, client_id_in(p, 3, "demo"))
                try:
                    m = c.request({"id": "p", "type": "ping"}, timeout=5)
                    self.assertEqual(m.get("type"), "pong")
                    answered.add(p)
                finally:
                    c.close()
            self.assertEqual(answered, {0, 1, 2})
        finally:
            r = run("stop")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertNotEqual(run("status").returncode, 0, "everything stopped")
            self.assertEqual(run("stop").returncode, 0, "stop is idempotent")
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
