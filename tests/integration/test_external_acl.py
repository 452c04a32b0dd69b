"""External mode against a stand-alone Mosquitto configured with deploy/mosquitto.external.conf
and deploy/mosquitto.acl (used unchanged; only the listener, the password file path and the ACL
file path of the .conf are replaced, plus test-only lines: no persistence, log to stdout, user
root). mqttspecd connects as user mqttspec-server; devices get answers and cannot read or forge
each other's traffic.

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd python3 -m unittest -v test_external_acl
(external mode whatever MQTTSPEC_MODE says).
"""

import os
import re
import shutil
import sqlite3
import subprocess
import time
import unittest

from harness import (REPO, ConnectRefused, Service, ServiceTestCase, SpecClient,
                     free_port, mosquitto_binary, random_suffix, wait_port)

DEPLOY = os.path.join(REPO, "deploy")
CONF = os.path.join(DEPLOY, "mosquitto.external.conf")
ACL = os.path.join(DEPLOY, "mosquitto.acl")

SERVER_USER = "mqttspec-server"
SERVER_PASSWORD = "srv-" + random_suffix(12)
DEVICE_USER, DEVICE_PASSWORD = "device", "dev-" + random_suffix(12)
OTHER_USER, OTHER_PASSWORD = "other-device", "oth-" + random_suffix(12)
VICTIM_USER, VICTIM_PASSWORD = "victim", "vic-" + random_suffix(12)


def req(op, entity="users", id=None, **kw):
    m = {"id": id or f"{op}-{random_suffix()}", "type": "request", "operation": op,
         "schema": "public", "entity": entity}
    m.update(kw)
    return m


def substitute(text, pattern, replacement):
    new, n = re.subn(pattern, replacement, text, flags=re.M)
    if n != 1:
        raise AssertionError(f"{CONF}: expected exactly one line matching {pattern!r}, found {n}")
    return new


class DeployAclService(Service):
    """Service (external mode) whose broker runs the deploy/ configuration.

    hardened=True also turns on the conf's commented-out `use_username_as_clientid true`."""

    def __init__(self, hardened=False, **kw):
        super().__init__(mode="external",
                         broker_extra={"username": SERVER_USER, "password": SERVER_PASSWORD},
                         client_username=DEVICE_USER, client_password=DEVICE_PASSWORD, **kw)
        self.hardened = hardened
        if hardened:  # the broker replaces client ids by usernames: the probe must match
            self.probe_client_id = DEVICE_USER

    def _start_broker(self, timeout, port=None):
        self.port = port or free_port()
        pw = os.path.join(self.tmp, "mqttspec.passwd")
        if not os.path.exists(pw):
            tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            for i, (user, password) in enumerate(((SERVER_USER, SERVER_PASSWORD),
                                                  (DEVICE_USER, DEVICE_PASSWORD),
                                                  (OTHER_USER, OTHER_PASSWORD),
                                                  (VICTIM_USER, VICTIM_PASSWORD))):
                subprocess.run([tool, "-b"] + (["-c"] if i == 0 else []) + [pw, user, password],
                               check=True, capture_output=True, stdin=subprocess.DEVNULL,
                               timeout=30)
            os.chmod(pw, 0o644)
        with open(CONF) as f:
            text = f.read()
        text = substitute(text, r"^listener\s+1883\b.*$", f"listener {self.port} 127.0.0.1")
        text = substitute(text, r"^password_file\s+\S+$", f"password_file {pw}")
        text = substitute(text, r"^acl_file\s+\S+$", f"acl_file {ACL}")
        if self.hardened:
            text = substitute(text, r"^#\s*use_username_as_clientid true$",
                              "use_username_as_clientid true")
        text += ("\n# test only\npersistence false\nlog_dest stdout\n"
                 "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
        if os.geteuid() == 0:
            text += "user root\n"  # as root the broker would drop to user mosquitto
        conf = os.path.join(self.tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(text)
        os.chmod(conf, 0o644)
        log = open(self.broker_log_path, "ab")
        self._files.append(log)
        self.broker = subprocess.Popen([mosquitto_binary(), "-c", conf], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_port(self.port, time.monotonic() + timeout, self.broker, "mosquitto")


class ExternalAcl(ServiceTestCase):
    @classmethod
    def make_service(cls):
        return DeployAclService()

    def setUp(self):
        super().setUp()
        self.a = self.client("a")

    def other(self, prefix="b", client_id=None, **kw):
        kw.setdefault("username", OTHER_USER)
        kw.setdefault("password", OTHER_PASSWORD)
        return self.service.client(client_id or f"{prefix}-{random_suffix()}", **kw)

    def rows_named(self, name):
        conn = sqlite3.connect(f"file:{self.service.db_path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT id FROM users WHERE name = ?", (name,)).fetchall()
        finally:
            conn.close()

    def a_is_busy(self, n=3):
        for i in range(n):
            self.assertOk(self.a.request(req("create", data={"name": f"a{i} {random_suffix()}"})))

    def test_client_gets_answers(self):
        name = "acl " + random_suffix()
        row = self.assertOk(self.a.request(req("create", data={"name": name})))
        self.assertEqual(row["name"], name)
        self.assertEqual(self.assertOk(self.a.request(req("read", data={"id": row["id"]}))), row)
        c5 = self.client("v5", protocol="5")
        self.assertOk(c5.request(req("meta")))

    def test_cannot_read_another_clients_responses(self):
        spy = self.other("spy")
        for topic in (self.a.response_topic, "spec/+/response", "spec/#", "#",
                      f"spec/{self.a.client_id}/#", "spec/+/notify/#", "$share/g/spec/#"):
            code = spy.subscribe(topic)  # Mosquitto may grant it: delivery is checked per message
            print(f"\n[external acl] SUBACK {topic}: {code:#x}", end="", flush=True)
        self.a_is_busy()
        time.sleep(0.5)
        self.assertEqual(spy.foreign_messages(), [], "a client read another client's traffic")

    def test_wildcard_client_id_cannot_widen_its_patterns(self):
        # With id "+", spec/%c/response would read spec/+/response: Mosquitto refuses ACL checks
        # of ids with '+' or '#'.
        try:
            evil = self.other(client_id="+", subscribe_response=False)
        except ConnectRefused as e:
            print(f"\n[external acl] client id '+' refused at CONNECT (rc {e.rc})", flush=True)
            return  # refused outright: even better
        evil.subscribe("spec/+/response")
        evil.subscribe("spec/+/notify/#")
        self.a_is_busy()
        time.sleep(0.5)
        self.assertEqual(evil.history, [], "client id '+' read other clients' responses")

    def test_cannot_publish_as_another_client(self):
        b = self.other()
        name = "forged " + random_suffix()
        b.publish(self.a.request_topic, req("create", data={"name": name}), qos=1)
        time.sleep(1.0)
        self.assertEqual(self.rows_named(name), [], "B's request on A's topic was executed")
        self.assertEqual(self.a.history, [], "A received an answer to B's forged request")
        self.assertEqual(b.history, [])

    def test_cannot_forge_responses_or_notifications(self):
        b = self.other()
        b.publish(self.a.response_topic, {"id": "x", "type": "response", "success": True}, qos=1)
        b.publish(f"spec/{self.a.client_id}/notify/sub-1", {"type": "notification"}, qos=1)
        self.a.subscribe(f"spec/{self.a.client_id}/notify/+")
        b.publish(f"spec/{self.a.client_id}/notify/sub-2", {"type": "notification"}, qos=1)
        time.sleep(0.5)
        self.assertEqual(self.a.history, [], "A received a message forged by B")

    def test_requests_are_readable_by_the_service_only(self):
        spy = self.other("spy")
        spy.subscribe(self.a.request_topic)
        spy.subscribe("spec/+/request")
        self.a.subscribe(self.a.request_topic)  # not even its own requests
        self.a_is_busy()
        time.sleep(0.5)
        self.assertEqual(spy.history, [], "a client read another client's requests")
        self.assertEqual(self.a.messages_on(self.a.request_topic), [])

    def twin_row(self, record_id):
        conn = sqlite3.connect(f"file:{self.service.db_path}?mode=ro", uri=True, timeout=5)
        try:
            return conn.execute("SELECT request, report, in_sync FROM mqttspec_twin WHERE id = ?",
                                (record_id,)).fetchall()
        finally:
            conn.close()

    def test_device_twin_is_isolated_by_the_deploy_acl(self):
        # A's twin (A is the device): the service reads its reports and gets and writes its
        # requests; B can neither read A's requests nor report or get in A's name.
        a, b = self.a, self.other("spy")
        for topic in ("spec/+/twin/requests/+", f"spec/{a.client_id}/twin/#", "spec/#"):
            b.subscribe(topic)
        a.subscribe(f"spec/{a.client_id}/twin/requests/+")
        app = self.client("app")
        rid = f"{a.client_id}/fw"
        self.assertOk(app.request(req("update", entity="twin", schema="mqttspec", record_id=rid,
                                      data={"request": {"v": 2}})))
        topic = f"spec/{a.client_id}/twin/requests/fw"
        self.assertEqual(a.wait_for(lambda t, m, p: t == topic, 5, "the request")[1], {"v": 2})
        a.publish(f"spec/{a.client_id}/twin/reports/fw", '{"v": 2}', qos=1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.twin_row(rid)[0][2] != 1:
            time.sleep(0.05)
        self.assertEqual(self.twin_row(rid), [('{"v":2}', '{"v":2}', 1)])
        b.publish(f"spec/{a.client_id}/twin/reports/fw", '{"v": 666}', qos=1)
        b.publish(f"spec/{a.client_id}/twin/get", '["fw"]', qos=1)
        time.sleep(1.0)
        self.assertEqual(self.twin_row(rid), [('{"v":2}', '{"v":2}', 1)], "B reported for A")
        self.assertEqual(len(a.messages_on(topic)), 1, "B's get reached A's requests")
        self.assertEqual(b.foreign_messages(), [], "B read A's twin traffic")

    def test_topics_outside_spec_are_closed_by_this_acl(self):
        # deploy/mosquitto.acl opens nothing outside spec/ (documented there).
        b = self.other()
        b.subscribe("sensors/1/temp")
        self.a.publish("sensors/1/temp", {"v": 1}, qos=1)
        time.sleep(0.5)
        self.assertEqual(b.history, [])

    def test_authentication_required(self):
        port = self.service.port
        for kw in ({}, {"username": DEVICE_USER, "password": "wrong"},
                   {"username": SERVER_USER, "password": "wrong"},
                   {"username": "nobody", "password": DEVICE_PASSWORD}):
            with self.subTest(**kw):
                with self.assertRaises(ConnectRefused) as cm:
                    SpecClient(port, "anon-" + random_suffix(), subscribe_response=False,
                               **kw).close()
                self.assertIn(cm.exception.rc, (4, 5))


class ExternalAclClientIdsAreNotIdentities(ServiceTestCase):
    """What the ACL alone cannot stop, and what `use_username_as_clientid true` fixes.

    %c is whatever id a client chooses. Any client allowed to connect may therefore (1) choose
    another client's id (the broker drops the older connection; the newcomer reads that id's
    responses) or (2) choose an id with '/' such as "victim/notify", whose own request topic
    spec/victim/notify/request lies inside the victim's notify tree: the victim, subscribed to
    spec/victim/notify/+, receives whatever it publishes there. With use_username_as_clientid
    every client's id is its (password-checked) username, which closes both.
    """

    @classmethod
    def make_service(cls):
        return DeployAclService(hardened=True)

    def test_hardened_conf_serves_and_isolates(self):
        victim = self.service.client(VICTIM_USER, username=VICTIM_USER, password=VICTIM_PASSWORD)
        self.assertOk(victim.request(req("meta")))
        self.assertEqual(victim.subscribe(f"spec/{VICTIM_USER}/notify/+"), 1)
        # (2) an id with '/' is replaced by the username: no way into the notify tree
        evil = self.service.client(f"{VICTIM_USER}/notify", username=OTHER_USER,
                                   password=OTHER_PASSWORD, subscribe_response=False)
        evil.publish(f"spec/{VICTIM_USER}/notify/request", {"type": "notification"}, qos=1)
        # (1) taking over the victim's id: the id becomes the username, the victim stays
        thief = self.service.client(VICTIM_USER, username=OTHER_USER, password=OTHER_PASSWORD,
                                    subscribe_response=False)
        thief.subscribe(f"spec/{VICTIM_USER}/response")
        for i in range(3):
            self.assertOk(victim.request(req("create", data={"name": f"v{i}"})))
        time.sleep(0.5)
        self.assertEqual(victim.foreign_messages(), [])
        self.assertEqual(victim.messages_on(f"spec/{VICTIM_USER}/notify/request"), [],
                         "a forged notification reached the victim")
        self.assertEqual(thief.history, [], "another user read the victim's responses")


if __name__ == "__main__":
    unittest.main()
