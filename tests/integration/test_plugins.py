"""The four example hook plugins loaded into a running service in embedded mode, checked from the
outside with real MQTT clients and real HS256 tokens (PyJWT):

  jwt_auth          no token / bad signature / another algorithm / expired → CONNACK refused (5)
  tenant_isolation  tenant A cannot read (list, by key), update, delete, be notified of (live
                    or by a resumed subscription's replay), create for, or move a row to tenant B
  rbac              delete needs the admin role
  audit_log         an audit row per create / update / delete, with the token's user_id claim

and that a configuration naming a plugin that cannot be loaded stops start-up with a message
naming the path.

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd MQTTSPEC_PLUGIN_DIR=/abs/build/lib/plugins \
     /usr/bin/python3 -m unittest -v test_plugins
(every Service here is embedded, whatever MQTTSPEC_MODE says).
"""

import base64
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

import harness
from harness import (USERS_MODEL, ConnectRefused, Service, ServiceTestCase, free_port,
                     random_suffix, to_yaml)

try:
    import jwt  # PyJWT (Debian's python3-jwt)
except ImportError:  # pragma: no cover - python3 from PATH may not be Debian's
    import sys
    sys.path.append("/usr/lib/python3/dist-packages")
    import jwt

NOT_AUTHORIZED_V311 = 5  # CONNACK return code "not authorised"

SECRET = "it-secret-" + random_suffix(16)

PLUGIN_DIR = os.environ.get("MQTTSPEC_PLUGIN_DIR") or os.path.join(harness.REPO, "build", "lib",
                                                                     "plugins")

# A tenant-partitioned model (tenant_id nullable, so tenant_isolation may stamp it).
DOCS_MODEL = {
    "name": "public.docs",
    "primary_key": "id",
    "fields": [
        {"name": "id", "type": "integer", "auto_increment": True},
        {"name": "tenant_id", "type": "text"},
        {"name": "title", "type": "text", "nullable": False},
        {"name": "n", "type": "integer"},
    ],
}

# The same with the tenant column declared NOT NULL, as a real schema would.
STRICT_MODEL = {
    "name": "public.notes",
    "primary_key": "id",
    "fields": [
        {"name": "id", "type": "integer", "auto_increment": True},
        {"name": "tenant_id", "type": "text", "nullable": False},
        {"name": "body", "type": "text"},
    ],
}


def plugin_path(name):
    return os.path.join(PLUGIN_DIR, f"lib{name}.so")


def loader_test_plugin(kind):
    """The loader's test plugins (tests/unit/test_plugins/hooks_test_plugin.cc), in lib/test_plugins."""
    return os.path.join(os.path.dirname(PLUGIN_DIR), "test_plugins", f"hooks_test_plugin_{kind}.so")


def token(claims=None, key=SECRET, alg="HS256", exp_in=600, **extra):
    """An encoded JWT; exp_in=None leaves exp out."""
    body = dict(claims or {})
    if exp_in is not None and "exp" not in body:
        body["exp"] = int(time.time()) + exp_in
    body.update(extra)
    return jwt.encode(body, key, algorithm=alg)


def b64url(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def user_token(user, tenant, roles=("user",), **kw):
    return token({"user_id": user, "tenant_id": tenant, "roles": list(roles)}, **kw)


def req(op, entity="docs", **kw):
    m = {"id": f"{op}-{random_suffix()}", "type": "request", "operation": op,
         "schema": "public", "entity": entity}
    m.update(kw)
    return m


def sub_req(entity="docs", filters=None):
    m = req("subscribe", entity)
    m["type"] = "subscription"
    if filters is not None:
        m["options"] = {"filters": filters}
    return m


class PluginService(Service):
    """An embedded Service whose configuration loads hook plugins (hooks.plugins)."""

    def __init__(self, plugins, **kw):
        kw.setdefault("mode", "embedded")
        super().__init__(**kw)
        self.plugins = plugins

    def config_dict(self):
        cfg = super().config_dict()
        cfg["hooks"] = {"plugins": self.plugins}
        return cfg


ALL_FOUR = [
    {"path": plugin_path("jwt_auth"), "options": {"secret": SECRET}},
    {"path": plugin_path("tenant_isolation")},
    {"path": plugin_path("rbac")},
    {"path": plugin_path("audit_log")},
]


class ExamplePlugins(ServiceTestCase):
    """One embedded service with jwt_auth, tenant_isolation, rbac and audit_log."""

    @classmethod
    def make_service(cls):
        for p in ALL_FOUR:
            if not os.path.isfile(p["path"]):
                raise RuntimeError(f"plugin not found: {p['path']} (set MQTTSPEC_PLUGIN_DIR)")
        svc = PluginService(ALL_FOUR, extra_models=(DOCS_MODEL, STRICT_MODEL),
                            client_username=user_token("probe", "probe-tenant"))
        return svc

    # clients
    def connect(self, tok, password=None, prefix="t"):
        """A connected client presenting `tok` as its MQTT username."""
        return self.service.client(f"{prefix}-{random_suffix()}", username=tok, password=password)

    def refused(self, username=None, password=None):
        """Asserts the CONNECT is refused with 'not authorised'; returns nothing."""
        cid = f"bad-{random_suffix()}"
        with self.assertRaises(ConnectRefused, msg=f"connect as {username!r} was accepted") as cm:
            c = harness.SpecClient(self.service.port, cid, username=username, password=password)
            c.close()
        self.assertEqual(cm.exception.rc, NOT_AUTHORIZED_V311)

    def alice(self):  # tenant A, plain user
        return self.connect(user_token("alice", "A"), prefix="alice")

    def anna(self):  # tenant A, admin
        return self.connect(user_token("anna", "A", roles=("user", "admin")), prefix="anna")

    def bob(self):  # tenant B, admin
        return self.connect(user_token("bob", "B", roles=("admin",)), prefix="bob")

    # the database, read-only from outside
    def db_rows(self, sql, args=()):
        conn = sqlite3.connect(f"file:{self.service.db_path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute(sql, args).fetchall()
        finally:
            conn.close()

    def doc(self, doc_id):
        rows = self.db_rows("SELECT id, tenant_id, title, n FROM docs WHERE id = ?", (doc_id,))
        return rows[0] if rows else None

    def create_doc(self, client, title, **data):
        data = dict(title=title, **data)
        return self.assertOk(client.request(req("create", data=data)))

    # ------------------------------------------------------------------------------ jwt_auth

    def test_valid_token_in_username_or_password_connects(self):
        c = self.alice()
        self.assertOk(c.request(req("read")))
        c2 = self.connect("someone", password=user_token("alice", "A"))
        self.assertOk(c2.request(req("read")))

    def test_connect_without_token_is_refused(self):
        self.refused()  # no username at all
        self.refused("alice", "password")  # credentials, but no JWT

    def test_token_with_bad_signature_is_refused(self):
        self.refused(user_token("alice", "A", key="another-secret"))
        # A genuine token whose claims were changed afterwards (tenant A → B).
        good = user_token("alice", "A")
        h, _, s = good.split(".")
        forged = ".".join([h, b64url({"user_id": "alice", "tenant_id": "B", "roles": ["admin"],
                                      "exp": int(time.time()) + 600}), s])
        self.refused(forged)
        self.refused(good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"))

    def test_token_with_another_algorithm_is_refused(self):
        self.refused(user_token("alice", "A", alg="HS512"))
        self.refused(user_token("alice", "A", alg="HS384"))
        claims = {"user_id": "alice", "tenant_id": "A", "exp": int(time.time()) + 600}
        self.refused(jwt.encode(claims, None, algorithm="none"))
        # alg none with the secret's signature part left empty, crafted by hand.
        self.refused(b64url({"alg": "none", "typ": "JWT"}) + "." + b64url(claims) + ".")

    def test_expired_or_not_yet_valid_or_exp_less_token_is_refused(self):
        self.refused(user_token("alice", "A", exp_in=-60))
        self.refused(token({"user_id": "alice", "tenant_id": "A", "nbf": int(time.time()) + 600}))
        self.refused(token({"user_id": "alice", "tenant_id": "A"}, exp_in=None))

    # ----------------------------------------------------------------------- tenant_isolation

    def test_create_is_stamped_with_the_clients_tenant(self):
        a = self.alice()
        row = self.create_doc(a, "a-stamped")
        self.assertEqual(row["tenant_id"], "A")
        self.assertEqual(self.doc(row["id"])[1], "A")
        row2 = self.create_doc(a, "a-explicit", tenant_id="A")
        self.assertEqual(self.doc(row2["id"])[1], "A")

    def test_cannot_create_rows_for_another_tenant(self):
        a = self.alice()
        before = self.db_rows("SELECT COUNT(*) FROM docs")[0][0]
        m = req("create", data={"title": "smuggled", "tenant_id": "B"})
        self.assertError(a.request(m), "forbidden", request=m)
        m2 = req("create", data=[{"title": "ok-1"}, {"title": "smuggled-2", "tenant_id": "B"}])
        self.assertError(a.request(m2), "forbidden", request=m2)
        self.assertEqual(self.db_rows("SELECT COUNT(*) FROM docs")[0][0], before)
        self.assertEqual(self.db_rows("SELECT COUNT(*) FROM docs WHERE title LIKE 'smuggled%' "
                                      "OR title = 'ok-1'")[0][0], 0)

    def test_cannot_read_another_tenants_rows_by_list_or_key(self):
        a, b = self.alice(), self.bob()
        mine = self.create_doc(a, "a-visible")
        theirs = self.create_doc(b, "b-secret")
        self.assertEqual(theirs["tenant_id"], "B")
        rows = self.assertOk(a.request(req("read", options={"limit": 1000})))
        self.assertIn(mine["id"], [r["id"] for r in rows])
        self.assertEqual({r["tenant_id"] for r in rows}, {"A"}, rows)
        # Filters cannot widen it: asking for B, or OR-ing B's row in.
        for filters in (
                [{"column": "tenant_id", "operator": "eq", "value": "B"}],
                [{"column": "id", "operator": "eq", "value": mine["id"]},
                 {"column": "id", "operator": "eq", "value": theirs["id"], "logic_operator": "OR"}],
                [{"column": "tenant_id", "operator": "is_not_null"},
                 {"column": "title", "operator": "eq", "value": "b-secret", "logic_operator": "OR"}],
                [{"logic_operator": "OR", "filters": [
                    {"column": "tenant_id", "operator": "neq", "value": "A"}]}]):
            with self.subTest(filters=filters):
                got = self.assertOk(a.request(req("read", options={"filters": filters})))
                self.assertNotIn(theirs["id"], [r["id"] for r in got])
                self.assertEqual({r["tenant_id"] for r in got} - {"A"}, set(), got)
        m = req("read", record_id=theirs["id"])
        self.assertError(a.request(m), "not_found", request=m)
        m = req("read", data={"id": theirs["id"]})
        self.assertError(a.request(m), "not_found", request=m)
        self.assertEqual(self.assertOk(b.request(req("read", record_id=theirs["id"])))["title"],
                         "b-secret")

    def test_cannot_update_another_tenants_row_or_move_a_row_to_another_tenant(self):
        a, b = self.alice(), self.bob()
        mine = self.create_doc(a, "a-own", n=1)
        theirs = self.create_doc(b, "b-own", n=1)
        m = req("update", record_id=theirs["id"], data={"title": "pwned", "n": 666})
        self.assertError(a.request(m), "not_found", request=m)
        self.assertEqual(self.doc(theirs["id"]), (theirs["id"], "B", "b-own", 1))
        m = req("update", record_id=mine["id"], data={"tenant_id": "B"})
        self.assertError(a.request(m), "forbidden", request=m)
        self.assertEqual(self.doc(mine["id"])[1], "A")
        # Their own row they may update.
        self.assertEqual(self.assertOk(a.request(req("update", record_id=mine["id"],
                                                     data={"n": 2})))["n"], 2)
        self.assertEqual(self.doc(mine["id"]), (mine["id"], "A", "a-own", 2))

    def test_cannot_delete_another_tenants_row(self):
        anna, b = self.anna(), self.bob()  # anna is an admin of tenant A
        theirs = self.create_doc(b, "b-keep")
        m = req("delete", record_id=theirs["id"])
        self.assertError(anna.request(m), "not_found", request=m)
        self.assertIsNotNone(self.doc(theirs["id"]))
        mine = self.create_doc(anna, "a-drop")
        self.assertOk(anna.request(req("delete", record_id=mine["id"])))
        self.assertIsNone(self.doc(mine["id"]))

    def test_not_notified_of_another_tenants_rows(self):
        a, b = self.alice(), self.bob()
        subs = {}
        for name, filters in (
                ("all", None),
                ("wide", [{"column": "tenant_id", "operator": "eq", "value": "B"},
                          {"column": "n", "operator": "gte", "value": 0, "logic_operator": "OR"}])):
            data = self.assertOk(a.request(sub_req(filters=filters)))
            a.subscribe(data["notify_topic"])
            subs[name] = data["notify_topic"]
        bsub = self.assertOk(b.request(sub_req()))
        b.subscribe(bsub["notify_topic"])
        # B's changes: none may reach A.
        theirs = self.create_doc(b, "b-news", n=5)
        self.assertOk(b.request(req("update", record_id=theirs["id"], data={"n": 6})))
        self.assertOk(b.request(req("delete", record_id=theirs["id"])))
        # Then one change of A's own: once its notifications arrived, B's would have too
        # (notifications of a subscription are sent in commit order).
        mine = self.create_doc(a, "a-news", n=1)
        for name, topic in subs.items():
            with self.subTest(subscription=name):
                _, m, _ = a.wait_for(lambda t, m, p, topic=topic: t == topic, 5,
                                     f"notification on {name}")
                self.assertEqual(m.get("data", {}).get("id"), mine["id"], m)
        time.sleep(0.3)
        self.assertEqual(a.foreign_messages(), [])
        for topic in subs.values():
            seen = a.messages_on(topic)
            self.assertEqual([m.get("data", {}).get("tenant_id") for m in seen], ["A"], seen)
        # B saw its own three changes, and not A's create.
        bseen = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(bseen) < 3:
            bseen = b.messages_on(bsub["notify_topic"])
            time.sleep(0.05)
        time.sleep(0.3)
        bseen = b.messages_on(bsub["notify_topic"])
        self.assertEqual([(m.get("operation"), m.get("data", {}).get("tenant_id")) for m in bseen],
                         [("create", "B"), ("update", "B"), ("delete", "B")], bseen)

    def test_a_resumed_subscription_replays_only_the_clients_tenant(self):
        a, b = self.alice(), self.bob()
        since = a.request(req("read"))["metadata"]["change_seq"]
        theirs = self.create_doc(b, "b-replay", n=5)
        self.assertOk(b.request(req("update", record_id=theirs["id"], data={"n": 6})))
        mine = self.create_doc(a, "a-replay", n=1)
        self.assertOk(b.request(req("delete", record_id=theirs["id"])))
        a.subscribe(f"spec/{a.client_id}/notify/+")
        wide = [{"column": "tenant_id", "operator": "eq", "value": "B"},
                {"column": "n", "operator": "gte", "value": 0, "logic_operator": "OR"}]
        for name, filters in (("all", None), ("wide", wide)):
            with self.subTest(subscription=name):
                m = sub_req(filters=filters)
                m.setdefault("options", {})["since_change_seq"] = since
                data = self.assertOk(a.request(m))
                topic = data["notify_topic"]
                a.wait_for(lambda t, m, p, topic=topic: t == topic
                           and m.get("operation") == "replay_complete", 5, "the marker")
                seen = a.messages_on(topic)
                self.assertEqual([(n["operation"], n.get("data", {}).get("id")) for n in seen],
                                 [("create", mine["id"]), ("replay_complete", None)], seen)
                self.assertEqual(seen[-1]["replayed"], 1)

    def test_not_null_tenant_column_is_stamped_too(self):
        # tenant_isolation sets tenant_id on create; with the column declared NOT NULL the
        # client still need not (and must not have to) send it.
        a = self.alice()
        m = req("create", entity="notes", data={"body": "hello"})
        row = self.assertOk(a.request(m))
        self.assertEqual(row["tenant_id"], "A")

    # ----------------------------------------------------------------------------------- rbac

    def test_delete_needs_the_admin_role(self):
        a = self.alice()  # roles: user
        row = self.create_doc(a, "a-undeletable")
        m = req("delete", record_id=row["id"])
        err = self.assertError(a.request(m), "forbidden", request=m)
        self.assertIn("admin", err["message"])
        self.assertIsNotNone(self.doc(row["id"]))
        # No role claim at all: also refused.
        c = self.connect(token({"user_id": "carl", "tenant_id": "A"}))
        self.assertError(c.request(req("delete", record_id=row["id"])), "forbidden")
        self.assertIsNotNone(self.doc(row["id"]))
        # An admin of the same tenant may.
        self.assertOk(self.anna().request(req("delete", record_id=row["id"])))
        self.assertIsNone(self.doc(row["id"]))

    def test_other_operations_do_not_need_admin(self):
        a = self.alice()
        row = self.create_doc(a, "a-plain")
        self.assertOk(a.request(req("update", record_id=row["id"], data={"n": 3})))
        self.assertOk(a.request(req("read", record_id=row["id"])))

    # ------------------------------------------------------------------------------ audit_log

    def audit_rows(self, record_id):
        return self.db_rows(
            "SELECT operation, entity, record_id, user_id, client_id, data, at FROM audit_log "
            "WHERE entity = 'public.docs' AND record_id = ? ORDER BY id", (str(record_id),))

    def test_audit_rows_for_create_update_delete_with_the_user_id_claim(self):
        anna = self.anna()
        row = self.create_doc(anna, "audited", n=1)
        self.assertOk(anna.request(req("update", record_id=row["id"], data={"n": 2})))
        self.assertOk(anna.request(req("delete", record_id=row["id"])))
        rows = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(rows) < 3:
            rows = self.audit_rows(row["id"])
            time.sleep(0.05)
        self.assertEqual([(r[0], r[1], r[2], r[3], r[4]) for r in rows],
                         [(op, "public.docs", str(row["id"]), "anna", anna.client_id)
                          for op in ("create", "update", "delete")], rows)
        created = json.loads(rows[0][5])
        self.assertEqual((created["id"], created["title"], created["tenant_id"], created["n"]),
                         (row["id"], "audited", "A", 1))
        self.assertEqual(json.loads(rows[1][5])["n"], 2)
        for r in rows:
            self.assertRegex(r[6], harness.ISO_UTC_MS)

    def test_twin_reports_run_as_updates_by_the_device(self):
        # docs/protocol.md §13: an app's request and a device's report are updates of
        # mqttspec.twin by their own identities (jwt_auth's user_id); an equal report again is
        # nothing, so no audit row.
        anna = self.anna()
        dev = self.connect(user_token("sensor-7", "A"), prefix="dev")
        rid = f"{dev.client_id}/fw"
        self.assertOk(anna.request(req("update", entity="twin", schema="mqttspec",
                                       record_id=rid, data={"request": {"v": 2}})))
        topic = f"spec/{dev.client_id}/twin/reports/fw"
        dev.publish(topic, '{"v": 2}', qos=1)
        dev.publish(topic, '{"v": 2}', qos=1)

        def rows():
            return self.db_rows(
                "SELECT operation, user_id, client_id FROM audit_log "
                "WHERE entity = 'mqttspec.twin' AND record_id = ? ORDER BY id", (rid,))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(rows()) < 2:
            time.sleep(0.05)
        time.sleep(0.3)
        self.assertEqual(rows(), [("update", "anna", anna.client_id),
                                  ("update", "sensor-7", dev.client_id)])
        # rbac: deleting a twin key needs the admin role, like any delete.
        self.assertError(dev.request(req("delete", entity="twin", schema="mqttspec",
                                         record_id=rid)), "forbidden")

    def test_refused_operations_leave_no_audit_row(self):
        a, b = self.alice(), self.bob()
        row = self.create_doc(a, "a-refused")
        theirs = self.create_doc(b, "b-refused")
        self.assertError(a.request(req("delete", record_id=row["id"])), "forbidden")  # rbac
        self.assertError(a.request(req("update", record_id=theirs["id"], data={"n": 9})),
                         "not_found")  # tenant
        self.assertError(a.request(req("create", data={"title": "x", "tenant_id": "B"})),
                         "forbidden")
        time.sleep(0.2)
        self.assertEqual([r[0] for r in self.audit_rows(row["id"])], ["create"])
        self.assertEqual([(r[0], r[3]) for r in self.audit_rows(theirs["id"])], [("create", "bob")])

    def test_audit_log_is_closed_to_every_client(self):
        # Issue 21, the README's own setup: the audit model is client_access none, so no client —
        # plain user or admin, of any tenant — reads, forges, changes, deletes, subscribes to or
        # even describes audit rows; the plugin still writes them.
        anna, bob = self.anna(), self.bob()
        brian = self.connect(user_token("brian", "B"), prefix="brian")  # tenant B, no admin
        row = self.create_doc(anna, "audit-secret", n=7)
        deadline = time.monotonic() + 5
        while not self.audit_rows(row["id"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        before = self.db_rows("SELECT * FROM audit_log ORDER BY id")
        self.assertTrue(before)
        audit_id = before[0][0]
        forged = {"at": "2026-01-01T00:00:00.000Z", "client_id": anna.client_id, "user_id": "anna",
                  "operation": "delete", "entity": "public.docs", "record_id": str(row["id"])}
        attempts = [
            (brian, req("read", "audit_log")),
            (brian, req("read", "audit_log", record_id=str(audit_id))),
            (brian, req("meta", "audit_log")),
            (brian, req("create", "audit_log", data=forged)),
            (brian, req("update", "audit_log", record_id=str(audit_id), data={"user_id": "x"})),
            (bob, req("delete", "audit_log", record_id=str(audit_id))),
            (bob, sub_req("audit_log")),
            (anna, req("read", "audit_log")),
        ]
        for client, msg in attempts:
            with self.subTest(client=client.client_id.split("-")[0], op=msg["operation"]):
                err = self.assertError(client.request(msg), "forbidden")
                self.assertEqual(err["message"],
                                 "public.audit_log is not accessible to clients")
        self.assertEqual(self.db_rows("SELECT * FROM audit_log WHERE id <= ? ORDER BY id",
                                      (before[-1][0],)), before, "no audit row changed")
        self.assertEqual(self.db_rows("SELECT COUNT(*) FROM audit_log WHERE user_id = 'x' "
                                      "OR operation = 'delete' AND record_id = ?",
                                      (str(row["id"]),))[0][0], 0, "nothing forged")
        # And the plugin keeps writing: this update is audited.
        self.assertOk(anna.request(req("update", record_id=row["id"], data={"n": 8})))
        deadline = time.monotonic() + 5
        while len(self.audit_rows(row["id"])) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual([r[0] for r in self.audit_rows(row["id"])], ["create", "update"])

    def test_audit_log_is_not_itself_audited(self):
        anna = self.anna()
        self.create_doc(anna, "audit-of-audit")
        n = self.db_rows("SELECT COUNT(*) FROM audit_log WHERE entity = 'public.audit_log'")[0][0]
        self.assertEqual(n, 0)


# ------------------------------------------------------------------------------ start-up failures

class PluginStartupFailures(harness.FailingStartTestCase):
    """A plugin that cannot be loaded or initialised stops start-up with a message naming it."""

    TMP_PREFIX = "mqttspec-it-plugins-"

    def run_server(self, plugins, timeout=15):
        """Runs mqttspecd (embedded) with `plugins`; returns (exit code, output, port, seconds).
        Fails if it is still running after `timeout` s (i.e. it started instead of failing)."""
        port = free_port()
        cfg = {"broker": {"mode": "embedded", "host": "127.0.0.1", "port": port,
                          "data_dir": os.path.join(self.tmp, "data")},
               "database": {"driver": "sqlite", "path": os.path.join(self.tmp, "t.db")},
               "admin": {"listen": ""}, "models": [USERS_MODEL, DOCS_MODEL],
               "hooks": {"plugins": plugins}}
        t0 = time.monotonic()
        rc, out = self.run_config(cfg, timeout)
        return rc, out, port, time.monotonic() - t0

    def assertRefusedStart(self, plugins, path):
        rc, out, port, elapsed = self.run_server(plugins)
        self.assertNotEqual(rc, 0, out)
        self.assertEqual(rc, 2, out)
        self.assertIn(path, out, "the message names the plugin's path")
        self.assertLess(elapsed, 10, "fails quickly")
        with self.assertRaises(OSError, msg="nothing may listen on the broker port"):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return rc, out

    def test_nonexistent_plugin_stops_start_up(self):
        path = os.path.join(self.tmp, "no", "such", "libplugin.so")
        rc, out = self.assertRefusedStart([{"path": path}], path)
        self.assertEqual(rc, 2, out)  # documented: a refused plugin is a configuration error

    def test_a_plugin_for_another_abi_exits_2_at_start_as_under_check_config(self):
        path = loader_test_plugin("wrong_abi")
        rc, out = self.assertRefusedStart([{"path": path}], path)
        self.assertEqual(rc, 2, out)
        self.assertIn("built for plugin ABI", out)

    def test_plugin_whose_init_fails_stops_start_up(self):
        path = plugin_path("jwt_auth")
        self.assertTrue(os.path.isfile(path), f"{path} missing (set MQTTSPEC_PLUGIN_DIR)")
        rc, out = self.assertRefusedStart([{"path": path}], path)  # no secret: init fails
        self.assertIn("secret", out)
        self.assertEqual(rc, 2, out)  # init runs inside the embedded broker: same exit code
        rc, out = self.assertRefusedStart([{"path": plugin_path("rbac"),
                                            "options": {"operations": "drop"}}],
                                          plugin_path("rbac"))
        self.assertEqual(rc, 2, out)

    def test_file_that_is_no_plugin_stops_start_up(self):
        path = os.path.join(self.tmp, "libfake.so")
        with open(path, "w") as f:
            f.write("not a shared library\n")
        rc, out = self.assertRefusedStart([{"path": path}], path)
        self.assertEqual(rc, 2, out)

    def test_check_config_reports_a_missing_or_foreign_plugin(self):
        missing = os.path.join(self.tmp, "no", "such", "libplugin.so")
        fake = os.path.join(self.tmp, "libfake.so")
        with open(fake, "w") as f:
            f.write("not a shared library\n")
        for path in (missing, fake):
            conf = os.path.join(self.tmp, "check.yaml")
            with open(conf, "w") as f:
                f.write(to_yaml({"hooks": {"plugins": [{"path": path}]}}))
            r = subprocess.run([self.binary, "--check-config", "--config", conf],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
            self.assertIn(path, r.stderr)
        with open(conf, "w") as f:  # a real plugin passes without its init running
            f.write(to_yaml({"hooks": {"plugins": [{"path": plugin_path("rbac")}]}}))
        r = subprocess.run([self.binary, "--check-config", "--config", conf],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


class PluginInitAndPaths(harness.FailingStartTestCase):
    """A plugin's init runs once per serving process (issue 21); a relative plugin path is
    relative to the configuration file, not to the working directory."""

    TMP_PREFIX = "mqttspec-it-plugin-init-"

    def serve(self, mode):
        conf_dir = os.path.join(self.tmp, mode, "conf")
        os.makedirs(os.path.join(conf_dir, "hooks"))
        shutil.copy(loader_test_plugin("ok"), os.path.join(conf_dir, "hooks", "counting.so"))
        init_log = os.path.join(self.tmp, mode, "inits.log")
        port = free_port()
        broker = {"mode": "embedded", "host": "127.0.0.1", "port": port,
                  "data_dir": os.path.join(self.tmp, mode, "data")}
        if mode == "external":
            broker_proc = subprocess.Popen(
                [harness.mosquitto_binary(), "-p", str(port)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(broker_proc)
            harness.wait_port(port, time.monotonic() + 10, broker_proc, "mosquitto")
            broker = {"mode": "external", "url": f"tcp://127.0.0.1:{port}",
                      "client_id": "srv-" + random_suffix()}
        cfg = {"broker": broker, "admin": {"listen": ""},
               "database": {"driver": "sqlite", "path": os.path.join(self.tmp, mode, "t.db")},
               "models": [USERS_MODEL],
               "hooks": {"plugins": [{"path": "hooks/counting.so",  # relative to conf_dir
                                      "options": {"field": "status", "value": "hooked",
                                                  "init_log": init_log}}]}}
        conf = os.path.join(conf_dir, "mqttspec.yaml")
        with open(conf, "w") as f:
            f.write(to_yaml(cfg))
        elsewhere = os.path.join(self.tmp, mode, "cwd")
        os.makedirs(elsewhere)
        log = open(os.path.join(self.tmp, mode, "log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen([self.binary, "--config", conf], cwd=elsewhere, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=harness.server_env())
        self.procs.append(proc)
        if mode == "embedded":
            harness.wait_port(port, time.monotonic() + 10, proc, "mqttspecd")
        c = None
        for _ in range(50):
            try:
                c = harness.SpecClient(port, "init-" + random_suffix())
                resp = c.request(req("create", "users", data={"name": "counted"}), timeout=0.5)
                break
            except AssertionError:
                c.close()
                c = None
        self.assertIsNotNone(c, "the service never answered")
        c.close()
        self.assertEqual(resp["data"]["status"], "hooked", "the plugin was loaded and acts")
        with open(init_log) as f:
            inits = f.read().split()
        self.assertEqual(inits, ["init", str(proc.pid)], "exactly one init, in the serving process")
        proc.terminate()
        self.assertEqual(proc.wait(10), 0)

    def test_one_init_in_embedded_mode_and_a_path_relative_to_the_config_file(self):
        self.serve("embedded")

    def test_one_init_in_external_mode(self):
        self.serve("external")

    def test_check_config_finds_a_relative_plugin_next_to_the_config_file(self):
        conf_dir = os.path.join(self.tmp, "c")
        os.makedirs(os.path.join(conf_dir, "lib"))
        shutil.copy(loader_test_plugin("ok"), os.path.join(conf_dir, "lib", "p.so"))
        conf = os.path.join(conf_dir, "m.yaml")
        with open(conf, "w") as f:
            f.write(to_yaml({"hooks": {"plugins": [{"path": "lib/p.so"}]}}))
        r = subprocess.run([self.binary, "--check-config", "--config", conf], cwd=self.tmp,
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
