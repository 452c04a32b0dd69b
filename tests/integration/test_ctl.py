"""mqttspecctl, the command-line client of the gRPC front (admin.listen), run as a subprocess
against a real mqttspecd in both broker modes: every command with its good and bad cases, table
and --json output, the exit codes (0 ok, 1 error answer, 2 usage, 3 unreachable), the
MQTTSPECCTL_ADDR / MQTTSPECCTL_TOKEN defaults, and watch ending cleanly on SIGINT. The service
loads the audit_log example plugin, so `hooks` and `models` have something of a plugin to show.

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd MQTTSPEC_PLUGIN=/abs/.../mqttspec_mosquitto.so \\
       MQTTSPEC_PLUGIN_DIR=/abs/build/lib/plugins MQTTSPECCTL=/abs/path/mqttspecctl \\
       /usr/bin/python3 -m unittest -v test_ctl
MQTTSPECCTL defaults to <repo>/build/bin/mqttspecctl, MQTTSPEC_PLUGIN_DIR to <repo>/build/lib/plugins.
"""

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import unittest

import harness
from harness import ServiceTestCase, free_port, random_suffix
from test_grpc import TOKEN, GrpcService

CTL = os.environ.get("MQTTSPECCTL") or os.path.join(harness.REPO, "build", "bin", "mqttspecctl")
PLUGIN_DIR = os.environ.get("MQTTSPEC_PLUGIN_DIR") or os.path.join(harness.REPO, "build", "lib",
                                                                     "plugins")
AUDIT_LOG = os.path.join(PLUGIN_DIR, "libaudit_log.so")
USERS_FIELDS = ["id", "name", "email", "status", "created_at"]


def run_ctl(*args, env=None, timeout=20):
    """Runs mqttspecctl with exactly `args`; MQTTSPECCTL_* come only from `env`."""
    if not (os.path.isfile(CTL) and os.access(CTL, os.X_OK)):
        raise RuntimeError(f"mqttspecctl not found or not executable: {CTL} (set MQTTSPECCTL)")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("MQTTSPECCTL_")}
    full_env.update(env or {})
    return subprocess.run([CTL, *args], capture_output=True, text=True, timeout=timeout,
                          env=full_env, stdin=subprocess.DEVNULL)


def default_sigint():
    """In the child before exec: SIGINT as in a foreground job (a background shell job, e.g. a
    test run started with `&`, inherits SIGINT ignored, and an ignored signal never arrives)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def parse_table(text):
    """The rows of an aligned table as dicts keyed by its upper-case header (cut at the header's
    column starts, so empty cells are kept)."""
    lines = text.splitlines()
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    rows = []
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
        rows.append(dict(zip(names, cells)))
    return rows


def parse_fields(text):
    """`key:   value` lines as a dict (the block up to the first blank line)."""
    out = {}
    for line in text.split("\n\n")[0].splitlines():
        key, value = line.split(":", 1)
        out[key] = value.strip()
    return out


class CtlService(GrpcService):
    """mqttspecd with admin.listen, admin.token and the audit_log hook plugin."""

    def config_dict(self):
        cfg = super().config_dict()
        cfg["hooks"] = {"plugins": [{"path": AUDIT_LOG}]}
        return cfg


class CtlBase(ServiceTestCase):
    MODE = "external"

    @classmethod
    def make_service(cls):
        if not os.path.isfile(AUDIT_LOG):
            raise RuntimeError(f"plugin not found: {AUDIT_LOG} (set MQTTSPEC_PLUGIN_DIR)")
        return CtlService(mode=cls.MODE)

    @property
    def addr(self):
        return f"127.0.0.1:{self.service.grpc_port}"

    def ctl(self, *args, token=TOKEN, **kw):
        """mqttspecctl --addr <service> [--token T] args…"""
        pre = ["--addr", self.addr] + (["--token", token] if token is not None else [])
        return run_ctl(*pre, *args, **kw)

    def ok(self, *args, **kw):
        """stdout of a command that must succeed."""
        r = self.ctl(*args, **kw)
        self.assertEqual(r.returncode, 0, f"mqttspecctl {' '.join(args)}: {r.stderr}{r.stdout}")
        return r.stdout

    def ok_json(self, *args, **kw):
        out = self.ok("--json", *args, **kw)
        self.assertEqual(len(out.splitlines()), 1, f"one JSON object, one line: {out!r}")
        return json.loads(out)

    def fails(self, rc, *args, **kw):
        """The one-line stderr of a command that must exit with `rc` and print nothing."""
        r = self.ctl(*args, **kw)
        self.assertEqual(r.returncode, rc, f"mqttspecctl {' '.join(args)}: {r.stderr}{r.stdout}")
        self.assertEqual(r.stdout, "")
        self.assertEqual(len(r.stderr.splitlines()), 1, f"one error line: {r.stderr!r}")
        return r.stderr.strip()

    def create_user(self, name, **fields):
        return self.ok_json("create", "users", json.dumps({"name": name, **fields}))["data"]

    def mqtt_request(self, client, **msg):
        msg = {"id": "r-" + random_suffix(), "type": "request", **msg}
        return self.assertOk(client.request(msg))

    # ----------------------------------------------------------------------------- admin

    def test_status_shows_the_mode_and_health(self):
        status = self.ok_json("status")
        self.assertEqual((status["mode"], status["database"]), (self.MODE, "sqlite"))
        self.assertIs(status["database_ok"], True)
        self.assertIs(status["broker_ok"], True)
        self.assertTrue(status["version"])
        self.assertGreaterEqual(int(status["models"]), 2, "users and the plugin's audit_log")
        for key in ("uptime_seconds", "clients_connected", "subscriptions"):
            self.assertIn(key, status, "zero values are printed too")
        fields = parse_fields(self.ok("status"))
        self.assertEqual((fields["mode"], fields["database_ok"]), (self.MODE, "true"))

    def test_clients_lists_a_client_that_made_a_request(self):
        c = self.client("cl")
        self.mqtt_request(c, operation="read", entity="users", options={"limit": 1})
        clients = {x["client_id"]: x for x in self.ok_json("clients")["clients"]}
        self.assertIn(c.client_id, clients)
        me = clients[c.client_id]
        self.assertGreaterEqual(int(me["requests"]), 1)
        self.assertIs(me["connected"], self.MODE == "embedded",
                      "a live connection is known in embedded mode only")
        rows = {r["CLIENT"]: r for r in parse_table(self.ok("clients"))}
        self.assertEqual(rows[c.client_id]["CONNECTED"], str(self.MODE == "embedded").lower())

    def test_kick_disconnects_a_client_in_embedded_mode_only(self):
        c = self.client("kick")
        self.mqtt_request(c, operation="read", entity="users", options={"limit": 1})
        gone = threading.Event()
        c._mqtt.on_disconnect = lambda *a: gone.set()
        if self.MODE == "external":
            err = self.fails(1, "kick", c.client_id)
            self.assertRegex(err, r"^error: failed_precondition: \S")
            self.assertFalse(gone.wait(0.3))
            return
        out = self.ok("kick", c.client_id)
        self.assertIn(c.client_id, out)
        self.assertTrue(gone.wait(5), "the broker did not disconnect the client")
        self.assertRegex(self.fails(1, "kick", "nobody-" + random_suffix()),
                         r"^error: not_found: \S")

    def test_subs_lists_and_unsub_ends_a_subscription(self):
        c = self.client("sub")
        c.subscribe(f"spec/{c.client_id}/notify/+")
        filters = [{"column": "status", "operator": "eq", "value": "watched"}]
        sid = self.mqtt_request(c, type="subscription", operation="subscribe", entity="users",
                                options={"filters": filters})["subscription_id"]
        subs = self.ok_json("subs", "--client", c.client_id)["subscriptions"]
        self.assertEqual([s["subscription_id"] for s in subs], [sid])
        self.assertEqual((subs[0]["schema"], subs[0]["entity"]), ("public", "users"))
        self.assertIn("watched", subs[0]["filters_json"])
        rows = parse_table(self.ok("subs", "--entity", "users"))
        self.assertIn(sid, [r["ID"] for r in rows])
        self.assertEqual(self.ok_json("subs", "--entity", "nope")["subscriptions"], [])
        self.assertIn(sid, self.ok("unsub", sid))
        self.assertEqual(self.ok_json("subs", "--client", c.client_id)["subscriptions"], [])
        self.assertRegex(self.fails(1, "unsub", sid), r"^error: not_found: \S")

    def test_models_and_model(self):
        models = {m["name"]: m for m in self.ok_json("models")["models"]}
        self.assertEqual(models["public.users"]["primary_key"], "id")
        self.assertEqual(models["public.audit_log"]["client_access"], "none")
        rows = {r["NAME"]: r for r in parse_table(self.ok("models"))}
        self.assertEqual((rows["public.users"]["KEY"], rows["public.users"]["FIELDS"]), ("id", "5"))
        for name in ("users", "public.users"):
            model = self.ok_json("model", name)
            self.assertEqual(model["name"], "public.users")
            self.assertEqual([f["name"] for f in model["fields"]], USERS_FIELDS)
            key = model["fields"][0]
            self.assertEqual((key["primary"], key["auto_increment"], key["type"]),
                             (True, True, "integer"))
        out = self.ok("model", "users")
        self.assertEqual(parse_fields(out)["primary_key"], "id")
        fields = parse_table(out.split("\n\n", 1)[1])
        self.assertEqual([f["FIELD"] for f in fields], USERS_FIELDS)
        self.assertEqual(fields[3]["DEFAULT"], "active")
        self.assertRegex(self.fails(1, "model", "nope"), r"^error: (model_)?not_found: \S")

    def test_hooks_lists_the_plugins_hooks(self):
        hooks = self.ok_json("hooks")["hooks"]
        audit = sorted(h["hook"] for h in hooks if "audit_log" in h["plugin"])
        self.assertEqual(audit, ["AfterCreate", "AfterDelete", "AfterUpdate"])
        rows = parse_table(self.ok("hooks"))
        self.assertEqual(sorted(r["HOOK"] for r in rows if "audit_log" in r["PLUGIN"]), audit)

    def test_metrics(self):
        self.create_user("metrics " + random_suffix())
        samples = self.ok_json("metrics")["samples"]
        self.assertTrue(samples)
        for s in samples:
            self.assertTrue(s["name"])
            self.assertIsInstance(s["labels"], dict)
            self.assertIsInstance(s["value"], (int, float))
        rows = parse_table(self.ok("metrics"))
        self.assertEqual(len(rows), len(samples))
        self.assertEqual(sorted({r["NAME"] for r in rows}), sorted({s["name"] for s in samples}))

    def start_watch(self, *args):
        """mqttspecctl … watch args…, its stdout lines in a queue."""
        cmd = [CTL, "--addr", self.addr, "--token", TOKEN, *args]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             stdin=subprocess.DEVNULL, preexec_fn=default_sigint)
        lines = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(x) for x in p.stdout], daemon=True)
        reader.start()

        def cleanup():
            if p.poll() is None:
                p.kill()
                p.wait(5)
            reader.join(5)
            p.stdout.close()
            p.stderr.close()
        self.addCleanup(cleanup)
        return p, lines

    def wait_line(self, p, lines, predicate, poke, timeout=10):
        """Calls poke() until a line with predicate(line) arrives (the stream is set up
        asynchronously: the first events may precede it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if p.poll() is not None:
                self.fail(f"watch exited with {p.returncode}: {p.stderr.read()}")
            poke()
            try:
                while True:
                    line = lines.get(timeout=0.5)
                    if predicate(line):
                        return line
            except queue.Empty:
                pass
        self.fail("no matching event line")

    def stop_watch(self, p):
        p.send_signal(signal.SIGINT)
        self.assertEqual(p.wait(5), 0, "watch exits 0 on Ctrl-C")
        self.assertEqual(p.stderr.read(), "")

    def test_watch_prints_json_lines_until_sigint(self):
        p, lines = self.start_watch("--json", "watch", "--kind", "request", "--entity", "users")
        name = "watched " + random_suffix()

        def is_mine(line):
            e = json.loads(line)
            return e["kind"] == "request" and e["operation"] == "read"
        line = self.wait_line(p, lines, is_mine,
                              lambda: self.ok("--json", "read", "users", "--filter",
                                              f"name:eq:{name}"))
        event = json.loads(line)
        self.assertEqual((event["schema"], event["entity"], event["code"], event["front"]),
                         ("public", "users", "ok", "grpc"))
        self.assertRegex(event["timestamp"], harness.ISO_UTC_MS)
        self.assertIn("mqttspecctl", event["client_id"])
        self.stop_watch(p)

    def test_watch_table_shows_changes(self):
        p, lines = self.start_watch("watch", "--kind", "change")
        header = lines.get(timeout=10)
        self.assertEqual(header.split()[:6], ["TIME", "KIND", "CLIENT", "ENTITY", "OPERATION",
                                              "CODE"])
        name = "change " + random_suffix()
        line = self.wait_line(p, lines, lambda x: " create " in x,
                              lambda: self.create_user(name))
        self.assertEqual(line.split()[1:3], ["change", "public.users"])
        self.stop_watch(p)

    # ----------------------------------------------------------------------------- data

    def test_create_read_update_delete(self):
        name = "crud " + random_suffix()
        row = self.create_user(name, email=f"{name}@x")
        self.assertEqual((row["name"], row["status"]), (name, "active"))
        rid = str(int(row["id"]))
        answer = self.ok_json("read", "users", rid)
        self.assertEqual(set(answer), {"data", "metadata"})
        self.assertEqual(answer["data"]["name"], name)
        fields = parse_fields(self.ok("read", "users", rid))
        self.assertEqual(list(fields), USERS_FIELDS, "key: value lines in model order")
        self.assertEqual(fields["email"], f"{name}@x")
        updated = self.ok_json("update", "users", rid, '{"status": "away"}')["data"]
        self.assertEqual(updated["status"], "away")
        self.assertEqual(parse_fields(self.ok("update", "users", rid, '{"status": "back"}'))
                         ["status"], "back")
        self.assertEqual(self.ok_json("delete", "users", rid)["data"], {"deleted": True,
                                                                        "id": int(rid)})
        self.assertRegex(self.fails(1, "read", "users", rid), r"^error: not_found: \S")
        self.assertRegex(self.fails(1, "delete", "users", rid), r"^error: not_found: \S")
        self.assertRegex(self.fails(1, "update", "users", rid, '{"status": "x"}'),
                         r"^error: not_found: \S")

    def test_read_with_filter_sort_limit_offset(self):
        tag = "fs" + random_suffix()
        ids = [int(self.create_user(f"{tag}-{i}", status=f"s{i % 2}")["id"]) for i in (1, 2, 3)]
        mine = ["--filter", f"name:starts_with:{tag}-"]
        got = self.ok_json("read", "users", *mine, "--sort", "id:desc", "--limit", "2")
        self.assertEqual([r["name"] for r in got["data"]], [f"{tag}-3", f"{tag}-2"])
        meta = dict(got["metadata"])
        self.assertGreaterEqual(meta.pop("change_seq"), 3)  # the three creates, at least
        self.assertEqual(meta, {"total": 3, "count": 2, "limit": 2, "offset": 0})
        got = self.ok_json("read", "users", *mine, "--sort", "id", "--offset", "1")["data"]
        self.assertEqual([int(r["id"]) for r in got], ids[1:])
        # numbers are sent as numbers, `in` takes a list, filters combine with AND
        got = self.ok_json("read", "users", *mine, "--filter", f"id:in:{ids[0]},{ids[2]}",
                           "--filter", f"id:gt:{ids[0]}")["data"]
        self.assertEqual([int(r["id"]) for r in got], [ids[2]])
        got = self.ok_json("read", "users", *mine, "--filter", "email:is_null",
                           "--filter", "status:eq:s1", "--sort", "name:DESC")["data"]
        self.assertEqual([r["name"] for r in got], [f"{tag}-3", f"{tag}-1"])
        # the table: a header of the model's columns, one line a row; the count on stderr
        r = self.ctl("read", "users", *mine, "--limit", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines()[0].split(), [f.upper() for f in USERS_FIELDS])
        rows = parse_table(r.stdout)
        self.assertEqual([row["NAME"] for row in rows], [f"{tag}-1", f"{tag}-2"])
        self.assertEqual(rows[0]["EMAIL"], "<null>")
        self.assertEqual(r.stderr.strip(), "2 of 3 rows")

    def test_filter_values_are_typed_and_quotes_keep_text(self):
        digits = "9" + str(int(time.time() * 1000))
        self.create_user(digits)
        got = self.ok_json("read", "users", "--filter", f'name:eq:"{digits}"')["data"]
        self.assertEqual([r["name"] for r in got], [digits])
        self.assertRegex(self.fails(1, "read", "users", "--filter", f"name:eq:{digits}"),
                         r"^error: invalid_value: \S", "a bare number is a number")
        self.assertRegex(self.fails(1, "read", "users", "--filter", "nme:eq:x"),
                         r"^error: unknown_column: \S")

    def test_create_many_and_errors_of_the_service(self):
        tag = "batch" + random_suffix()
        rows = self.ok_json("create", "users", json.dumps([{"name": f"{tag}-a"},
                                                          {"name": f"{tag}-b"}]))["data"]
        self.assertEqual([r["name"] for r in rows], [f"{tag}-a", f"{tag}-b"])
        table = parse_table(self.ok("read", "users", "--filter", f"name:starts_with:{tag}"))
        self.assertEqual([r["NAME"] for r in table], [f"{tag}-a", f"{tag}-b"])
        self.assertRegex(self.fails(1, "create", "users", '{"email": "x@y"}'),
                         r"^error: invalid_value: \S")
        self.assertRegex(self.fails(1, "read", "nope"), r"^error: model_not_found: \S")
        self.assertRegex(self.fails(1, "read", "users", "--schema", "other"),
                         r"^error: model_not_found: \S")
        self.assertEqual(self.ok_json("read", "users", "--schema", "public", "--limit", "1")
                         ["metadata"]["limit"], 1)

    # ----------------------------------------------------------------------- exit codes

    def test_usage_errors_exit_2(self):
        cases = [
            ("read", "users", "--filter", "name"),
            ("read", "users", "--filter", ":eq:x"),
            ("read", "users", "--filter", "name::x"),
            ("read", "users", "--sort", "id:up"),
            ("read", "users", "--limit", "-1"),
            ("create", "users", "{bad"),
            ("update", "users", "1", "not json"),
            ("create", "users"),
            ("update", "users", "1"),
            ("delete", "users"),
            ("read",),
            ("kick",),
            ("model",),
            ("watch", "--kind", "everything"),
            ("frobnicate",),
            (),
            ("--timeout", "0", "status"),
        ]
        for args in cases:
            with self.subTest(args=args):
                self.assertRegex(self.fails(2, *args), r"^mqttspecctl: \S")
        self.assertEqual(self.fails(2, "frobnicate"),
                         "mqttspecctl: unknown command 'frobnicate' (see --help)")

    def test_a_wrong_or_missing_token_exits_1_unauthenticated(self):
        for token in ("wrong", None):
            for args in (("status",), ("read", "users")):
                with self.subTest(token=token, args=args):
                    self.assertRegex(self.fails(1, *args, token=token),
                                     r"^error: unauthenticated: \S")

    def test_environment_gives_the_defaults_and_flags_win(self):
        env = {"MQTTSPECCTL_ADDR": self.addr, "MQTTSPECCTL_TOKEN": TOKEN}
        r = run_ctl("--json", "read", "users", "--limit", "1", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("metadata", json.loads(r.stdout))
        r = run_ctl("status", "--json", env=env)  # global options may follow the command
        self.assertEqual((r.returncode, json.loads(r.stdout)["mode"]), (0, self.MODE), r.stderr)
        r = run_ctl("--token", "wrong", "status", env=env)
        self.assertEqual(r.returncode, 1, r.stderr)
        r = run_ctl("--addr", self.addr, "status",
                    env={"MQTTSPECCTL_ADDR": "127.0.0.1:1", "MQTTSPECCTL_TOKEN": TOKEN})
        self.assertEqual(r.returncode, 0, r.stderr)


class CtlExternal(CtlBase):
    MODE = "external"


class CtlEmbedded(CtlBase):
    MODE = "embedded"


del CtlBase  # only the two concrete classes run


class CtlWithoutDaemon(unittest.TestCase):
    """What needs no daemon: unreachable addresses, help, and usage errors found before any
    connection is tried."""

    def test_an_unreachable_daemon_exits_3(self):
        addr = f"127.0.0.1:{free_port()}"
        for args in (("status",), ("read", "users"), ("watch",)):
            with self.subTest(args=args):
                t0 = time.monotonic()
                r = run_ctl("--addr", addr, *args)
                self.assertEqual(r.returncode, 3, r.stderr)
                self.assertEqual(r.stderr.strip(), f"mqttspecctl: cannot reach mqttspecd at {addr}")
                self.assertLess(time.monotonic() - t0, 6)
        r = run_ctl("status", env={"MQTTSPECCTL_ADDR": addr})
        self.assertEqual((r.returncode, r.stderr.strip()),
                         (3, f"mqttspecctl: cannot reach mqttspecd at {addr}"))

    def test_usage_errors_come_before_connecting(self):
        addr = f"127.0.0.1:{free_port()}"
        for args in (("read", "users", "--filter", "x"), ("create", "users", "[1,")):
            with self.subTest(args=args):
                r = run_ctl("--addr", addr, *args)
                self.assertEqual(r.returncode, 2, r.stderr)

    def test_help_and_version(self):
        r = run_ctl("--help")
        self.assertEqual(r.returncode, 0)
        for command in ("status", "clients", "kick", "subs", "unsub", "models", "model", "hooks",
                        "metrics", "watch", "read", "create", "update", "delete"):
            self.assertRegex(r.stdout, rf"\n\s+{command}\s")
        r = run_ctl("read", "--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--filter", r.stdout)
        r = run_ctl("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout.strip(), r"^\d+\.\d+\.\d+$")


if __name__ == "__main__":
    unittest.main()
