"""Acceptance: the seed README's Python (paho-mqtt) client example, run as a subprocess against a
real Mosquitto + mqttspecd, creates a user successfully.

Run: cd tests/acceptance && MQTTSPECD=/abs/path/mqttspecd python3 -m unittest -v test_seed_python_client
"""

import ast
import os
import re
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402
from harness import ISO_UTC_MS, ServiceTestCase, random_suffix  # noqa: E402

CLIENT = os.path.join(HERE, "seed_python_client.py")


class SeedPythonClient(ServiceTestCase):
    SERVICE_PER_TEST = True

    def run_client(self, client_id, timeout=30):
        env = dict(os.environ)
        # The seed imports paho.mqtt.client: make Debian's paho importable for any python3.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (harness.PAHO_DIR, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        try:
            proc = subprocess.run(
                [sys.executable, CLIENT, "127.0.0.1", str(self.service.port), client_id],
                env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            self.fail(f"seed client did not finish in {timeout} s; output: {e.stdout!r} "
                      f"{e.stderr!r}")
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, f"stdout:\n{out}\nstderr:\n{err}")
        return out

    def test_seed_python_client_creates_a_user(self):
        client_id = "client-python-" + random_suffix()
        out = self.run_client(client_id)
        self.assertIn("Connected with result code 0", out)
        prefix = f"Received on spec/{client_id}/response: "
        lines = [ln for ln in out.splitlines() if ln.startswith(prefix)]
        self.assertEqual(len(lines), 1, out)
        message = ast.literal_eval(lines[0][len(prefix):])  # the seed prints the dict's repr
        self.assertEqual(message.get("id"), "msg-create-1", message)
        self.assertEqual(message.get("type"), "response", message)
        self.assertIs(message.get("success"), True, message)
        row = message.get("data")
        self.assertIsInstance(row, dict, message)
        self.assertEqual(set(row), {"id", "name", "email", "status", "created_at"})
        self.assertIsInstance(row["id"], int)
        self.assertEqual((row["name"], row["email"], row["status"]),
                         ("Python User", "python@example.com", "active"))
        self.assertRegex(row["created_at"], ISO_UTC_MS)
        # The row is really stored.
        c = self.client("verify")
        stored = c.request({"id": "v", "type": "request", "operation": "read",
                            "schema": "public", "entity": "users", "data": {"id": row["id"]}})
        self.assertEqual(self.assertOk(stored, "v"), row)
        self.assertEqual(re.findall(r"'success': (\w+)", out), ["True"])


if __name__ == "__main__":
    unittest.main()
