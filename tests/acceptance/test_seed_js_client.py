"""Acceptance: the seed README's JavaScript (MQTT.js) client example, run with node against a real
Mosquitto + mqttspecd after a create, reads the active users successfully.

Runs `npm install --no-audit --no-fund` here first when node_modules is missing (npm registry).
Run: cd tests/acceptance && MQTTSPECD=/abs/path/mqttspecd python3 -m unittest -v test_seed_js_client
"""

import fcntl
import os
import re
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from harness import ServiceTestCase, random_suffix  # noqa: E402

CLIENT = os.path.join(HERE, "seed_js_client.js")


def ensure_node_modules(test):
    node, npm = shutil.which("node"), shutil.which("npm")
    test.assertIsNotNone(node, "node is required (Debian package nodejs)")
    # ctest runs this module in several variants at once: one installs, the others wait for it
    # (npm writes node_modules/.package-lock.json last, so its presence means a whole install).
    with open(os.path.join(HERE, ".npm-install.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.isfile(os.path.join(HERE, "node_modules", ".package-lock.json")):
            return node
        test.assertIsNotNone(npm, "npm is required to install MQTT.js")
        try:
            proc = subprocess.run([npm, "install", "--no-audit", "--no-fund"], cwd=HERE,
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=240)
        except subprocess.TimeoutExpired:
            test.fail("npm install did not finish in 240 s")
        test.assertEqual(proc.returncode, 0, "npm install failed:\n"
                         + proc.stdout.decode("utf-8", "replace")
                         + proc.stderr.decode("utf-8", "replace"))
    return node


class SeedJsClient(ServiceTestCase):
    SERVICE_PER_TEST = True

    def test_seed_js_client_reads_active_users(self):
        node = ensure_node_modules(self)
        c = self.client("setup")
        created = []
        for data in ({"name": "JS Reader", "email": "js-reader@example.com"},
                     {"name": "JS Inactive", "email": "js-inactive@example.com",
                      "status": "inactive"}):
            resp = c.request({"id": "create-" + random_suffix(), "type": "request",
                              "operation": "create", "schema": "public", "entity": "users",
                              "data": data})
            created.append(self.assertOk(resp))
        active = created[0]

        client_id = "client-abc123-" + random_suffix()
        try:
            proc = subprocess.run([node, CLIENT, "127.0.0.1", str(self.service.port), client_id],
                                  cwd=HERE, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=30)
        except subprocess.TimeoutExpired as e:
            self.fail(f"seed JS client did not finish in 30 s; output: {e.stdout!r} {e.stderr!r}")
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, f"stdout:\n{out}\nstderr:\n{err}")
        self.assertIn("Connected to MQTT broker", out)
        # console.log prints the message with util.inspect (not JSON): check it field by field.
        received = out.split("Received:", 1)
        self.assertEqual(len(received), 2, out)
        body = received[1]
        self.assertRegex(body, r"\bid: 'msg-1'")
        self.assertRegex(body, r"\btype: 'response'")
        self.assertRegex(body, r"\bsuccess: true")
        self.assertNotRegex(body, r"\berror:")
        self.assertIn("Response data:", body)
        data = body.split("Response data:", 1)[1]
        self.assertRegex(data, rf"\bid: {active['id']}\b")
        self.assertRegex(data, r"\bname: 'JS Reader'")
        self.assertRegex(data, r"\bemail: 'js-reader@example.com'")
        self.assertRegex(data, r"\bstatus: 'active'")
        self.assertRegex(data, rf"\bcreated_at: '{re.escape(active['created_at'])}'")
        self.assertNotIn("JS Inactive", out, "the filter status eq active applies")
        self.assertRegex(body, r"total: 1\b")
        self.assertRegex(body, r"count: 1\b")


if __name__ == "__main__":
    unittest.main()
