"""Embedded mode: mqttspecd execs Mosquitto with the mqttspec plugin (broker.mode: embedded).

What the plugin adds to a plain broker, checked from the outside with real MQTT clients: topic
isolation between clients (ACL), consumed requests, refused client ids, answers queued for offline
persistent sessions (also across a restart of the broker process), broker authentication, start-up
failures with clear messages and exit codes, the plugin loaded from a hand-written mosquitto.conf,
MQTT 5 response topic / correlation data, and that the broker keeps routing plain MQTT traffic
while the service is busy.

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd python3 -m unittest -v test_embedded
(every Service here is embedded, whatever MQTTSPEC_MODE says).
"""

import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import (BULK_MODEL, SUBACK_FAILURE, USERS_MODEL, ConnectRefused, Service,
                     ServiceTestCase, SpecClient, free_port, mosquitto_binary, random_suffix,
                     server_env, to_yaml, wait_port)
from mqtt_packets import mqtt_string as _str, varint as _varint

NOT_AUTHORIZED_V311 = 5   # CONNACK return code "not authorised"
BAD_CREDENTIALS_V311 = 4  # CONNACK return code "bad user name or password"
NOT_AUTHORIZED_V5 = 0x87
BAD_CREDENTIALS_V5 = 0x86


def req(op, entity="users", id=None, **kw):
    m = {"id": id or f"{op}-{random_suffix()}", "type": "request", "operation": op,
         "schema": "public", "entity": entity}
    m.update(kw)
    return m


def rows_named(db_path, name):
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT id, name FROM users WHERE name = ?", (name,)).fetchall()
    finally:
        conn.close()


class EmbeddedService(Service):
    def __init__(self, **kw):
        kw.setdefault("mode", "embedded")
        super().__init__(**kw)


class EmbeddedTestCase(ServiceTestCase):
    EXTRA_MODELS = (BULK_MODEL,)
    BROKER_EXTRA = None

    @classmethod
    def make_service(cls):
        return EmbeddedService(extra_models=cls.EXTRA_MODELS, limits=cls.LIMITS,
                               broker_extra=cls.BROKER_EXTRA)

    def quiet(self, seconds=0.5):
        time.sleep(seconds)


# ------------------------------------------------------------------------------ raw MQTT packets
# A few hand-made packets, for the one thing paho cannot do: publish a request and vanish from the
# network before the answer can be read, so that the broker must keep the answer for the session.



class RawMqtt:
    """A minimal MQTT 3.1.1 / 5 client over a plain socket (QoS 1 publish/subscribe only)."""

    def __init__(self, port, client_id, v5=False, clean=False, session_expiry=300,
                 username=None, password=None, timeout=5.0):
        self.v5 = v5
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        flags = 0x02 if clean else 0
        payload = _str(client_id)
        if username is not None:
            flags |= 0x80
            payload += _str(username)
            if password is not None:
                flags |= 0x40
                payload += _str(password)
        var = _str("MQTT") + bytes([5 if v5 else 4, flags]) + struct.pack("!H", 30)
        if v5:
            props = b"\x11" + struct.pack("!I", session_expiry) if not clean else b""
            var += _varint(len(props)) + props
        self._send(0x10, var + payload)
        ptype, body = self.read_packet()
        if ptype != 0x20:
            raise RuntimeError(f"expected CONNACK, got packet type {ptype:#x}")
        self.session_present = bool(body[0] & 1)
        self.connack_rc = body[1]
        self.next_pid = 1

    def _send(self, header, body):
        self.sock.sendall(bytes([header]) + _varint(len(body)) + body)

    def _read_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_packet(self):
        header = self._read_exact(1)[0]
        length, shift = 0, 0
        while True:
            b = self._read_exact(1)[0]
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return header & 0xF0, self._read_exact(length)

    def subscribe(self, topic, qos=1):
        pid, self.next_pid = self.next_pid, self.next_pid + 1
        body = struct.pack("!H", pid) + (b"\x00" if self.v5 else b"") + _str(topic) + bytes([qos])
        self._send(0x82, body)
        while True:
            ptype, body = self.read_packet()
            if ptype == 0x90 and struct.unpack("!H", body[:2])[0] == pid:
                return body[-1]

    def publish_qos1(self, topic, payload):
        """Publishes at QoS 1 and returns once the broker acknowledged it (PUBACK read, nothing
        after it: an answer that arrives in the same segment stays unread and unacknowledged)."""
        pid, self.next_pid = self.next_pid, self.next_pid + 1
        body = _str(topic) + struct.pack("!H", pid) + (b"\x00" if self.v5 else b"") + payload
        self._send(0x32, body)
        while True:
            ptype, body = self.read_packet()
            if ptype == 0x40 and struct.unpack("!H", body[:2])[0] == pid:
                return body[2] if len(body) > 2 else 0

    def drop(self):
        """Closes the TCP connection without DISCONNECT (a network loss for the broker)."""
        try:
            self.sock.close()
        except OSError:
            pass


# ------------------------------------------------------------------------------------- isolation

class Isolation(EmbeddedTestCase):
    """Topic isolation between clients (server/embedded/acl.h), one service for the class."""

    def setUp(self):
        super().setUp()
        self.a = self.client("a")

    def assertNoForeign(self, *clients):
        self.quiet()
        for c in clients:
            self.assertEqual(c.foreign_messages(), [],
                             f"{c.client_id} received messages outside its own tree")

    def assertNothingOfOthers(self, client):
        """`client` received nothing inside the service's tree but its own <prefix>/<id>/…"""
        own = f"spec/{client.client_id}/"
        self.assertEqual([(t, m) for t, m, _ in client.history
                          if t.startswith("spec/") and not t.startswith(own)], [],
                         f"{client.client_id} received another client's traffic")

    def test_subscribing_to_another_clients_response_delivers_nothing(self):
        # Granted like in any broker (issue 12): isolation is enforced where messages are
        # delivered, so the filter never carries another client's answers.
        for protocol in ("3.1.1", "5"):
            with self.subTest(protocol=protocol):
                b = self.client("b", protocol=protocol)
                self.assertLess(b.subscribe(self.a.response_topic), SUBACK_FAILURE)
                resp = self.a.request(req("create", data={"name": "secret " + random_suffix()}))
                self.assertOk(resp)
                self.quiet()
                self.assertEqual(b.messages_on(self.a.response_topic), [])
                self.assertNothingOfOthers(b)

    def test_cannot_publish_as_another_client(self):
        b = self.client("b")
        name = "forged " + random_suffix()
        forged = req("create", id="forged-" + random_suffix(), data={"name": name})
        b.publish(self.a.request_topic, forged, qos=1)  # v3.1.1: acknowledged, silently dropped
        self.quiet(1.0)
        self.assertEqual([m for _, m, _ in self.a.drain()], [],
                         "a request B published on A's topic was answered to A")
        self.assertEqual(b.history, [], "B got an answer to a forged request")
        self.assertEqual(rows_named(self.service.db_path, name), [],
                         "a request B published on A's topic was executed")
        # v5: the same, and A's own requests still work.
        b5 = self.client("b5", protocol="5")
        name5 = "forged5 " + random_suffix()
        b5.send_raw(req("create", data={"name": name5}), topic=self.a.request_topic)
        self.quiet(1.0)
        self.assertEqual(rows_named(self.service.db_path, name5), [])
        self.assertEqual(self.a.drain(), [])
        self.assertOk(self.a.request({"type": "request", "id": "own", "operation": "meta",
                                      "entity": "users"}))

    def test_cannot_publish_to_another_clients_response_or_notify(self):
        b = self.client("b")
        b.publish(self.a.response_topic, {"id": "fake", "type": "response", "success": True},
                  qos=1)
        b.publish(f"spec/{self.a.client_id}/notify/sub-1", {"type": "notification"}, qos=1)
        self.quiet()
        self.assertEqual(self.a.history, [], "A received a response B forged")

    def test_will_messages_cannot_reach_another_clients_tree(self):
        self.a.subscribe(f"spec/{self.a.client_id}/notify/+")
        forged = '{"id":"will","type":"response","success":true,"data":"forged"}'
        for topic in (self.a.response_topic, f"spec/{self.a.client_id}/notify/x",
                      self.a.request_topic):
            with self.subTest(will_topic=topic):
                evil = harness.mqtt.Client(client_id="evil-" + random_suffix(),
                                           protocol=harness.mqtt.MQTTv311)
                evil.will_set(topic, forged, qos=1)
                connected = threading.Event()
                evil.on_connect = lambda *a, **k: connected.set()
                evil.connect("127.0.0.1", self.service.port, keepalive=30)
                evil.loop_start()
                try:
                    self.assertTrue(connected.wait(5), "evil client connected")
                    evil.socket().shutdown(socket.SHUT_RDWR)  # network loss: the will is sent
                finally:
                    evil.loop_stop()
        self.quiet()
        self.assertEqual(self.a.history, [], "a will message reached A's tree")
        self.assertEqual(self.a.drain(), [])

    def test_wildcard_subscribers_see_their_own_answers_and_nothing_of_others(self):
        # Issue 12: '#', '+/+/+' and 'spec/#' are granted; the subscriber gets its own responses
        # and notifications and ordinary topics, and nothing of two other clients' traffic.
        a_id = self.a.client_id
        c = self.client("c", protocol="5")
        for other in (self.a, c):
            other.subscribe(f"spec/{other.client_id}/notify/+")
            self.assertOk(other.request(req("subscribe")))
        for protocol in ("3.1.1", "5"):
            with self.subTest(protocol=protocol):
                spy = self.client("spy", protocol=protocol)
                filters = ["#", "+/+/+", "spec/#", "spec/+/response", "spec/+/request",
                           "spec/+/notify/+", "+/#", f"spec/{a_id}/#", f"+/{a_id}/response",
                           "$share/g/spec/#"]
                codes = {f: spy.subscribe(f) for f in filters}
                self.assertEqual({f: code for f, code in codes.items()
                                  if code is None or code >= SUBACK_FAILURE}, {},
                                 "every valid filter is granted")
                self.assertOk(spy.request(req("subscribe", id="own-sub")))
                for other in (self.a, c):
                    self.assertOk(other.request(req("create", data={"name": "x " + random_suffix()})))
                    self.assertOk(other.request(req("read", options={"limit": 1})))
                mine = spy.request(req("create", id="own-create", data={"name": "s " + random_suffix()}))
                self.assertOk(mine)
                topic = "plain/" + random_suffix()
                self.a.publish(topic, {"hello": 1}, qos=1)
                spy.wait_for(lambda t, m, p: t.startswith(f"spec/{spy.client_id}/notify/"), 5,
                             "its own notification")
                spy.wait_for(lambda t, m, p: t == topic, 5, "an ordinary topic through '#'")
                self.quiet()
                self.assertNothingOfOthers(spy)
                self.assertEqual([t for t, _, _ in spy.history if t.endswith("/request")], [])
        # Publishing into another client's tree is still refused.
        before = len(self.a.history)
        c.publish(self.a.response_topic, {"id": "forged", "type": "response", "success": True},
                  qos=1)
        c.publish(f"spec/{a_id}/notify/x", {"type": "notification", "forged": True}, qos=1)
        self.quiet()
        self.assertEqual(self.a.history[before:], [], "a message forged into A's tree reached A")

    def test_requests_are_consumed(self):
        third = self.client("third")
        third.subscribe(self.a.request_topic)  # granted, and delivers nothing
        self.a.subscribe(self.a.request_topic)  # its own request topic: nothing either
        resp = self.a.request(req("read", options={"limit": 1}))
        self.assertOk(resp)
        self.quiet()
        self.assertEqual(third.history, [], "a third party received A's request")
        self.assertEqual(self.a.messages_on(self.a.request_topic), [],
                         "A's request was delivered back to A: requests must be consumed")

    def test_topics_outside_spec_behave_normally(self):
        d, e = self.client("d"), self.client("e", protocol="5")
        self.assertEqual(d.subscribe("sensors/1/temp", qos=1), 1)
        self.assertEqual(d.subscribe("sensors/+/humidity", qos=0), 0)
        e.publish("sensors/1/temp", {"v": 21.5}, qos=1)
        e.publish("sensors/7/humidity", {"v": 40}, qos=0)
        e.publish("other/topic", {"v": 0}, qos=0)
        t, m, _ = d.wait_for(lambda t, m, p: t == "sensors/1/temp", 5, "sensors/1/temp")
        self.assertEqual(m, {"v": 21.5})
        t, m, _ = d.wait_for(lambda t, m, p: t == "sensors/7/humidity", 5, "sensors/7/humidity")
        self.assertEqual(m, {"v": 40})
        # Retained messages work too.
        e.publish("sensors/2/state", {"on": True}, qos=1, retain=True)
        f = self.client("f")
        f.subscribe("sensors/2/state")
        t, m, _ = f.wait_for(lambda t, m, p: t == "sensors/2/state", 5, "the retained message")
        self.assertEqual(m, {"on": True})
        self.quiet(0.3)
        self.assertEqual([t for t, _, _ in d.history if t == "other/topic"], [])

    def test_client_ids_with_wildcards_or_slash_are_refused(self):
        for cid in ("bad+id", "bad#id", "+", "#", "a/b", "spec/+/x", "grpc:svc"):
            for protocol, expected in (("3.1.1", NOT_AUTHORIZED_V311), ("5", NOT_AUTHORIZED_V5)):
                with self.subTest(client_id=cid, protocol=protocol):
                    with self.assertRaises(ConnectRefused) as cm:
                        c = SpecClient(self.service.port, cid, protocol=protocol,
                                       subscribe_response=False)
                        c.close()
                    self.assertEqual(cm.exception.rc, expected)
        self.assertTrue(self.service.alive())
        self.assertOk(self.a.request(req("meta")))


class BusyServiceKeepsBrokerResponsive(EmbeddedTestCase):
    N = 2000

    def test_plain_messages_flow_while_2000_requests_are_processed(self):
        a = self.client("load")
        d, e = self.client("d"), self.client("e")
        d.subscribe("plain/ping")
        tag = "load-" + random_suffix()
        t0 = time.monotonic()
        for i in range(self.N):
            a.send_raw(req("create", "bulk", id=f"L{i}", data={"n": i, "tag": tag}))
        latencies, answered_when_sent = [], []
        for k in range(10):
            answered_when_sent.append(len(a.messages_on(a.response_topic)))
            sent = time.monotonic()
            e.publish("plain/ping", {"k": k}, qos=0)
            d.wait_for(lambda t, m, p, k=k: t == "plain/ping" and m.get("k") == k, 5,
                       f"plain message {k}")
            latencies.append(time.monotonic() - sent)
            time.sleep(0.02)
        got = a.collect(self.N, timeout=90)
        elapsed = time.monotonic() - t0
        print(f"\n[busy] {self.N} creates answered in {elapsed:.2f} s; plain round trips "
              f"max {max(latencies) * 1000:.1f} ms, answered before each: {answered_when_sent}",
              flush=True)
        self.assertEqual([m.get("id") for m in got], [f"L{i}" for i in range(self.N)])
        self.assertTrue(all(m.get("success") for m in got))
        self.assertLess(answered_when_sent[0], self.N, "the first plain message went out while "
                        "requests were pending")
        self.assertLess(max(latencies), 0.5, f"plain message latencies {latencies}")


# ---------------------------------------------------------------------------- persistent sessions

class PersistentSessions(EmbeddedTestCase):
    SERVICE_PER_TEST = True

    def vanish_after_request(self, client_id, msg, v5=False, subscribe=True):
        raw = RawMqtt(self.service.port, client_id, v5=v5, clean=False)
        try:
            self.assertEqual(raw.connack_rc, 0)
            if subscribe:
                self.assertEqual(raw.subscribe(f"spec/{client_id}/response", qos=1), 1)
            reason = raw.publish_qos1(f"spec/{client_id}/request", SpecClient.encode(msg))
            # v5: 0x10 "no matching subscribers" is a success code too (requests are consumed).
            self.assertLess(reason, 0x80, "PUBACK reason")
        finally:
            raw.drop()

    def come_back(self, client_id, protocol="3.1.1"):
        return self.service.client(client_id, protocol=protocol, clean_session=False,
                                   subscribe_response=False)

    def test_v311_answer_queued_for_an_offline_persistent_session(self):
        cid = "persist-" + random_suffix()
        msg = req("create", id="p1", data={"name": "offline " + random_suffix()})
        self.vanish_after_request(cid, msg)
        x = self.come_back(cid)
        self.assertTrue(x.session_present, "the session was kept")
        row = self.assertOk(x.wait_response("p1", timeout=5), "p1")
        self.assertEqual(row["name"], msg["data"]["name"])
        self.quiet()
        self.assertEqual([m for _, m, _ in x.drain()], [], "exactly one answer")

    def test_v5_answer_queued_for_an_offline_persistent_session(self):
        cid = "persist5-" + random_suffix()
        msg = req("create", id="p5", data={"name": "offline5 " + random_suffix()})
        self.vanish_after_request(cid, msg, v5=True)
        x = self.come_back(cid, protocol="5")
        self.assertTrue(x.session_present, "the session was kept (session expiry 300 s)")
        row = self.assertOk(x.wait_response("p5", timeout=5), "p5")
        self.assertEqual(row["name"], msg["data"]["name"])

    def test_answers_reach_a_client_through_its_subscription_only(self):
        # Answers are routed like any message (issue 15: so the broker's queue limits apply), so
        # a client that subscribed to nothing gets nothing — as with an external broker.
        cid = "nosub-" + random_suffix()
        name = "nosub " + random_suffix()
        x = self.service.client(cid, subscribe_response=False)
        x.send_raw(req("create", id="n1", data={"name": name}))
        deadline = time.monotonic() + 5
        while not rows_named(self.service.db_path, name):
            self.assertLess(time.monotonic(), deadline, "the create was not executed")
            time.sleep(0.05)
        self.quiet()
        self.assertEqual(x.history, [])
        x.subscribe(x.response_topic)
        self.assertOk(x.request(req("read", id="n2", data={"id": rows_named(self.service.db_path, name)[0][0]})))

    def test_clean_session_client_loses_the_answer(self):
        # The contrast: without a persistent session nothing is kept (the write still happened).
        cid = "clean-" + random_suffix()
        name = "clean " + random_suffix()
        raw = RawMqtt(self.service.port, cid, clean=True)
        try:
            raw.publish_qos1(f"spec/{cid}/request", SpecClient.encode(
                req("create", id="c1", data={"name": name})))
        finally:
            raw.drop()
        deadline = time.monotonic() + 5
        while not rows_named(self.service.db_path, name):
            self.assertLess(time.monotonic(), deadline, "the create was not executed")
            time.sleep(0.05)
        x = self.service.client(cid)
        self.assertFalse(x.session_present)
        self.quiet()
        self.assertEqual(x.history, [])

    def test_answer_survives_a_restart_of_the_broker_process(self):
        cid = "restart-" + random_suffix()
        name = "across restart " + random_suffix()
        msg = req("create", id="r1", data={"name": name})
        self.vanish_after_request(cid, msg)
        deadline = time.monotonic() + 5
        while not rows_named(self.service.db_path, name):
            self.assertLess(time.monotonic(), deadline, "the create was not executed")
            time.sleep(0.05)
        time.sleep(0.5)  # the answer is published (queued for the offline session)
        self.service.restart_broker()  # SIGTERM (exit 0 asserted), start again, same data_dir
        self.assertTrue(os.path.exists(os.path.join(self.service.data_dir, "mosquitto.db")))
        x = self.come_back(cid)
        self.assertTrue(x.session_present, "the session survived the restart")
        row = self.assertOk(x.wait_response("r1", timeout=5), "r1")
        self.assertEqual(row["name"], name)
        self.assertEqual(len(rows_named(self.service.db_path, name)), 1, "applied once")


# -------------------------------------------------------------------------------------------- auth

class Authentication(EmbeddedTestCase):
    USER, PASSWORD = "device-1", "s3cret-" + random_suffix()

    @classmethod
    def make_service(cls):
        pw_dir = tempfile.mkdtemp(prefix="mqttspec-pw-")
        cls.addClassCleanup(shutil.rmtree, pw_dir, True)  # runs after the service's stop
        os.chmod(pw_dir, 0o755)
        path = os.path.join(pw_dir, "passwd")
        passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        subprocess.run([passwd, "-b", "-c", path, cls.USER, cls.PASSWORD], check=True,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        os.chmod(path, 0o644)
        return EmbeddedService(extra_models=cls.EXTRA_MODELS,
                               broker_extra={"allow_anonymous": False, "password_file": path},
                               client_username=cls.USER, client_password=cls.PASSWORD)

    def connect(self, protocol="3.1.1", **kw):
        return SpecClient(self.service.port, "auth-" + random_suffix(), protocol=protocol,
                          subscribe_response=False, **kw)

    def test_generated_conf(self):
        with open(os.path.join(self.service.data_dir, "mosquitto.conf")) as f:
            conf = f.read()
        self.assertIn("allow_anonymous false\n", conf)
        self.assertRegex(conf, r"(?m)^password_file /\S+/passwd$")

    def test_without_credentials_refused(self):
        for protocol, codes in (("3.1.1", (NOT_AUTHORIZED_V311,)),
                                ("5", (NOT_AUTHORIZED_V5, BAD_CREDENTIALS_V5))):
            with self.subTest(protocol=protocol):
                with self.assertRaises(ConnectRefused) as cm:
                    self.connect(protocol).close()
                self.assertIn(cm.exception.rc, codes)

    def test_wrong_password_refused(self):
        for protocol, codes in (("3.1.1", (BAD_CREDENTIALS_V311, NOT_AUTHORIZED_V311)),
                                ("5", (BAD_CREDENTIALS_V5, NOT_AUTHORIZED_V5))):
            for user, pw in ((self.USER, "wrong"), (self.USER, None), ("nobody", self.PASSWORD)):
                with self.subTest(protocol=protocol, user=user, password=pw):
                    with self.assertRaises(ConnectRefused) as cm:
                        self.connect(protocol, username=user, password=pw).close()
                    self.assertIn(cm.exception.rc, codes)

    def test_right_password_served(self):
        for protocol in ("3.1.1", "5"):
            with self.subTest(protocol=protocol):
                c = self.client("ok", protocol=protocol)  # the service's credentials
                name = "auth " + random_suffix()
                row = self.assertOk(c.request(req("create", data={"name": name})))
                self.assertEqual(row["name"], name)


# ---------------------------------------------------------------------------------- MQTT 5 props

class BrokerSettings(EmbeddedTestCase):
    """broker.max_connections and broker.max_keepalive reach the broker (issue 12)."""

    BROKER_EXTRA = {"max_connections": 3, "max_keepalive": 20}

    def test_max_connections_reaches_the_broker(self):
        # Only the configuration is asserted: Mosquitto 2.0.11 counts a client's clean disconnect
        # twice, so its limit drifts upwards (fixed upstream in 2.0.12, "Fix `max_connections`
        # option not being correctly counted"); a bare 2.0.11 broker does the same.
        with open(os.path.join(self.service.data_dir, "mosquitto.conf")) as f:
            self.assertRegex(f.read(), rf"(?m)^listener {self.service.port} 127\.0\.0\.1\n"
                                       r"max_connections 3$")

    def test_max_keepalive_is_told_to_mqtt5_clients(self):
        c = SpecClient(self.service.port, "ka-" + random_suffix(), protocol="5")  # asks for 30 s
        try:
            self.assertEqual(getattr(c.connack_properties, "ServerKeepAlive", None), 20)
        finally:
            c.close()


class Mqtt5ResponseTopic(EmbeddedTestCase):
    def setUp(self):
        super().setUp()
        self.c5 = self.client("v5", protocol="5")
        self.user = self.assertOk(self.c5.request(req("create",
                                                      data={"name": "V " + random_suffix()})))

    def send(self, msg, response_topic=None, correlation=None):
        props = harness.v5_properties(response_topic=response_topic,
                                      correlation_data=correlation)
        self.c5.send_raw(msg, properties=props)

    def test_response_topic_in_own_tree_and_correlation_echoed(self):
        alt = f"spec/{self.c5.client_id}/replies/x"
        corr = b"\x00corr-\xff" + random_suffix().encode()
        # A subscription to the reply topic is not needed (answers are addressed to the client
        # id); the ACL refuses it today (only response and notify/+ may be subscribed), which is
        # printed, not asserted.
        code = self.c5.subscribe(alt)
        print(f"\n[mqtt5] SUBACK for {alt}: {code:#x}", end=" ", flush=True)
        self.send(req("read", id="rt-1", data={"id": self.user["id"]}), alt, corr)
        t, m, p = self.c5.wait_for(lambda t, m, p: m.get("id") == "rt-1", 5, "answer on " + alt)
        self.assertEqual(t, alt)
        self.assertEqual(m.get("data"), self.user)
        self.assertEqual(getattr(p, "CorrelationData", None), corr)
        self.quiet(0.3)
        self.assertEqual([x for _, x, _ in self.c5.drain() if x.get("id") == "rt-1"], [],
                         "answered once, on the Response Topic only")

    def test_correlation_without_response_topic(self):
        self.send(req("meta", id="rt-2"), None, b"only-corr")
        t, m, p = self.c5.wait_for(lambda t, m, p: m.get("id") == "rt-2", 5)
        self.assertEqual(t, self.c5.response_topic)
        self.assertEqual(getattr(p, "CorrelationData", None), b"only-corr")

    def test_no_correlation_no_property(self):
        self.send(req("meta", id="rt-3"))
        t, m, p = self.c5.wait_for(lambda t, m, p: m.get("id") == "rt-3", 5)
        self.assertEqual(t, self.c5.response_topic)
        self.assertFalse(hasattr(p, "CorrelationData") and p.CorrelationData, p)

    def test_response_topic_outside_own_tree_not_honoured(self):
        other = self.client("other")
        watcher = self.client("watcher")
        watcher.subscribe("evil/target")
        for i, topic in enumerate((other.response_topic, "evil/target",
                                   f"spec/{self.c5.client_id}/+", f"spec/{self.c5.client_id}",
                                   f"spec/{self.c5.client_id}x/response")):
            with self.subTest(response_topic=topic):
                rid = f"rt-out-{i}"
                self.send(req("meta", id=rid), topic, b"c")
                t, m, p = self.c5.wait_for(lambda t, m, p: m.get("id") == rid, 5)
                self.assertEqual(t, self.c5.response_topic, "answered on the own response topic")
        self.quiet()
        self.assertEqual(other.history, [])
        self.assertEqual(watcher.history, [])


# ------------------------------------------------------------------------------- start-up failures

class FileLimit(unittest.TestCase):
    def test_the_broker_gets_the_hard_open_files_limit(self):
        """Started from a shell with a soft limit of 1024, the broker refused its ~1000th client
        ("denied access by tcpd"); mqttspecd raises the soft limit to the hard one for itself and
        the broker it execs."""
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard <= 256:
            self.skipTest(f"hard limit {hard} is too low to tell")
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        try:
            svc = EmbeddedService()
            svc.start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        self.addCleanup(svc.stop)
        with open(f"/proc/{svc.server.pid}/limits") as f:
            line = next(l for l in f if l.startswith("Max open files"))
        self.assertEqual(line.split()[3], str(hard), line)


class Allocator(unittest.TestCase):
    """broker.allocator: the process that serves — the broker mqttspecd execs (embedded), or
    mqttspecd itself, exec'd again (external) — runs with tcmalloc preloaded (the default), or with
    glibc's malloc (system). Its mappings tell which one it runs with."""

    def start(self, allocator=None, mode="embedded"):
        svc = Service(mode=mode, broker_extra={"allocator": allocator} if allocator else None)
        svc.start()
        self.addCleanup(svc.stop)
        with open(f"/proc/{svc.server.pid}/maps") as f:
            maps = f.read()
        with open(svc.server_log_path, encoding="utf-8", errors="replace") as f:
            log = f.read()
        return svc, maps, log

    def test_the_broker_runs_with_tcmalloc_by_default(self):
        svc, maps, log = self.start()
        if "this build has none" in log:
            self.skipTest("a build without tcmalloc (sanitizers): " + log[-300:])
        self.assertIn("malloc: tcmalloc (", log)
        self.assertIn("libtcmalloc_minimal.so", maps)
        # … and serves with it.
        resp = svc.client().request(req("create", data={"name": "T"}))
        self.assertIs(resp.get("success"), True, resp)

    def test_system_leaves_glibcs_malloc(self):
        svc, maps, log = self.start("system")
        self.assertIn("malloc: glibc's malloc (broker.allocator: system)", log)
        self.assertNotIn("libtcmalloc", maps)

    def test_external_mode_runs_with_tcmalloc_or_without(self):
        svc, maps, log = self.start(mode="external")
        if "this build has none" in log:
            self.skipTest("a build without tcmalloc (sanitizers): " + log[-300:])
        self.assertIn("(malloc: tcmalloc (", log)
        self.assertEqual(log.count("mqttspecd 0."), 1, log)  # exec'd again before its first line
        self.assertIn("libtcmalloc_minimal.so", maps)
        resp = svc.client().request(req("create", data={"name": "T"}))
        self.assertIs(resp.get("success"), True, resp)
        svc, maps, log = self.start("system", mode="external")
        self.assertIn("(malloc: glibc's malloc (broker.allocator: system))", log)
        self.assertNotIn("libtcmalloc", maps)


class StartupFailures(harness.FailingStartTestCase):
    def run_server(self, broker, timeout=15):
        """Runs mqttspecd with an embedded config; returns (exit code, output). Fails if it runs
        for `timeout` s (i.e. it started serving instead of failing)."""
        cfg = {"broker": dict({"mode": "embedded", "host": "127.0.0.1",
                               "data_dir": os.path.join(self.tmp, "data")}, **broker),
               "database": {"driver": "sqlite", "path": os.path.join(self.tmp, "t.db")},
               "admin": {"listen": ""}, "models": [USERS_MODEL]}
        return self.run_config(cfg, timeout)

    def test_port_already_taken(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            port = s.getsockname()[1]
            t0 = time.monotonic()
            rc, out = self.run_server({"port": port})
            elapsed = time.monotonic() - t0
        self.assertEqual(rc, 1, out)
        self.assertIn("broker.port", out)
        self.assertIn(str(port), out)
        self.assertLess(elapsed, 5, "fails quickly")

    def test_websocket_port_already_taken(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            ws = s.getsockname()[1]
            rc, out = self.run_server({"port": free_port(), "websocket_port": ws})
        self.assertEqual(rc, 1, out)
        self.assertIn("broker.websocket_port", out)

    def test_mosquitto_binary_missing(self):
        rc, out = self.run_server({"port": free_port(), "mosquitto": "/nonexistent"})
        self.assertEqual(rc, 1, out)
        self.assertIn("broker.mosquitto", out)

    def test_configuration_errors_exit_2(self):
        for broker in ({"port": "abc"}, {"prot": 1883}, {"allow_anonymous": "maybe"},
                       {"allocator": "jemalloc"}):
            with self.subTest(broker=broker):
                rc, out = self.run_server(broker)
                self.assertEqual(rc, 2, out)
                key = "broker." + next(iter(broker))
                self.assertIn(key, out)


# ------------------------------------------------------------------ plugin in a hand-written conf

class PluginInHandWrittenConf(unittest.TestCase):
    """The plugin hosted by a Mosquitto started by hand (`mosquitto -c FILE`), no mqttspecd."""

    def setUp(self):
        self.plugin = os.environ.get("MQTTSPEC_PLUGIN") or os.path.join(
            os.path.dirname(os.path.dirname(harness.default_server_binary())), "lib",
            "mqttspec_mosquitto.so")
        self.assertTrue(os.path.isfile(self.plugin),
                        f"plugin not found: {self.plugin} (set MQTTSPEC_PLUGIN)")
        self.tmp = tempfile.mkdtemp(prefix="mqttspec-it-plugin-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        os.chmod(self.tmp, 0o755)
        self.port = free_port()
        self.yaml_path = os.path.join(self.tmp, "mqttspec.yaml")
        with open(self.yaml_path, "w") as f:
            f.write(to_yaml({"database": {"driver": "sqlite",
                                          "path": os.path.join(self.tmp, "t.db"),
                                          "synchronous": "normal"},
                             "admin": {"listen": ""}, "models": [USERS_MODEL],
                             "log": {"level": "info"}}))

    def start_broker(self, conf_text):
        """Starts mosquitto -c with conf_text; returns (process, function returning its log)."""
        conf = os.path.join(self.tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(conf_text)
        log_path = os.path.join(self.tmp, "broker.log")
        log = open(log_path, "wb")
        proc = subprocess.Popen([mosquitto_binary(), "-c", conf], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp,
                                env=server_env())

        def stop():
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            log.close()
        self.addCleanup(stop)

        def log_text():
            with open(log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        try:
            wait_port(self.port, time.monotonic() + 10, proc, "mosquitto with the plugin")
        except BaseException:
            print("\n----- broker log -----\n" + log_text(), flush=True)
            raise
        return proc, log_text

    def hand_conf(self, *extra):
        return ("per_listener_settings false\n"
                "set_tcp_nodelay true\n"
                "user root\n"
                f"listener {self.port} 127.0.0.1\n"
                + "".join(line + "\n" for line in extra) +
                "persistence false\n"
                "log_dest stdout\n"
                f"plugin {self.plugin}\n"
                f"plugin_opt_config {self.yaml_path}\n")

    def serve_with(self, conf_text):
        """Runs mosquitto -c with conf_text; checks it serves requests, enforces the ACL and
        exits 0 on SIGTERM."""
        proc, log_text = self.start_broker(conf_text)
        try:
            c = SpecClient(self.port, "hand-" + random_suffix())
            self.addCleanup(c.close)
            ready = None
            for _ in range(40):  # the plugin's first TICK installs the wake-up
                try:
                    ready = c.request({"type": "ping", "id": "hp"}, timeout=0.5)
                    break
                except AssertionError:
                    pass
            self.assertEqual((ready or {}).get("type"), "pong")
            row = c.request(req("create", data={"name": "Hand Written"}))
            self.assertIs(row.get("success"), True, row)
            again = c.request(req("read", data={"id": row["data"]["id"]}))
            self.assertEqual(again.get("data"), row["data"])
            spy = SpecClient(self.port, "hand-spy-" + random_suffix())
            self.addCleanup(spy.close)
            self.assertLess(spy.subscribe("spec/#"), SUBACK_FAILURE)
            c.request(req("read", options={"limit": 1}))
            time.sleep(0.3)
            self.assertEqual([t for t, _, _ in spy.history if t.startswith("spec/")], [],
                             "the ACL is active: nothing of another client reaches spec/#")
        except BaseException:
            print("\n----- broker log -----\n" + log_text(), flush=True)
            raise
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0, log_text())
        self.assertIn("serving spec/+/request inside the broker", log_text())

    def test_mosquitto_c_with_the_plugin_serves_requests(self):
        self.serve_with(self.hand_conf("allow_anonymous true"))

    def check_broker_auth(self, yaml_broker):
        """Mosquitto's own allow_anonymous false + password_file, the plugin's YAML with
        `yaml_broker` as its broker: section: only the right password gets in."""
        pw = os.path.join(self.tmp, "passwd")
        subprocess.run([shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b",
                        "-c", pw, "dev", "secret"], check=True, capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL)
        os.chmod(pw, 0o644)
        if yaml_broker:
            with open(self.yaml_path) as f:
                text = f.read()
            with open(self.yaml_path, "w") as f:
                f.write(text + to_yaml({"broker": {k: (pw if v == "PW" else v)
                                                   for k, v in yaml_broker.items()}}))
        proc, log_text = self.start_broker(self.hand_conf("allow_anonymous false",
                                                          f"password_file {pw}"))
        verdicts = {}
        for label, kw in (("anonymous", {}), ("wrong password", {"username": "dev",
                                                                 "password": "wrong"}),
                          ("unknown user", {"username": "nobody", "password": "secret"}),
                          ("right password", {"username": "dev", "password": "secret"})):
            try:
                SpecClient(self.port, "hw-" + random_suffix(), subscribe_response=False,
                           **kw).close()
                verdicts[label] = "accepted"
            except ConnectRefused as e:
                verdicts[label] = f"refused (rc {e.rc})"
        self.assertEqual({k: v.split(" ")[0] for k, v in verdicts.items()},
                         {"anonymous": "refused", "wrong password": "refused",
                          "unknown user": "refused", "right password": "accepted"},
                         f"verdicts {verdicts}\n{log_text()}")

    def test_broker_auth_with_the_yaml_mirroring_it(self):
        # The documented way (deploy/README.md): the YAML repeats allow_anonymous/password_file.
        self.check_broker_auth({"allow_anonymous": False, "password_file": "PW"})

    def test_broker_auth_still_enforced_with_a_default_yaml(self):
        # The plugin must not override the authentication of the Mosquitto it is loaded into:
        # its BASIC_AUTH has no password file of its own here and must defer to the broker's.
        self.check_broker_auth(None)

    def test_deploy_template_matches_what_mqttspecd_writes_and_works(self):
        with open(os.path.join(harness.REPO, "deploy", "mosquitto.embedded.conf")) as f:
            template = f.read()
        active = [ln.split()[0] for ln in template.splitlines()
                  if ln.strip() and not ln.lstrip().startswith("#")]
        commented = {ln.lstrip("#").split()[0] for ln in template.splitlines()
                     if re.match(r"^#[a-z_]+ \S", ln)}
        # What mqttspecd writes for a default configuration (websocket/password/user optional).
        svc = EmbeddedService()
        svc.start()
        try:
            with open(os.path.join(svc.data_dir, "mosquitto.conf")) as f:
                generated = [ln.split()[0] for ln in f.read().splitlines()
                             if ln.strip() and not ln.startswith("#")]
        finally:
            svc.stop()
        optional = {"user"}  # written only when mqttspecd runs as root
        self.assertEqual([d for d in generated if d not in optional], active,
                         "deploy/mosquitto.embedded.conf: the same directives, in the same order")
        self.assertLessEqual({"user", "password_file", "protocol"}, commented)

        def sub(text, pattern, replacement):
            new, n = re.subn(pattern, replacement, text, flags=re.M)
            self.assertEqual(n, 1, f"template line {pattern!r}")
            return new
        text = sub(template, r"^listener 1883 127\.0\.0\.1$", f"listener {self.port} 127.0.0.1")
        text = sub(text, r"^persistence_location \S+$",
                   f"persistence_location {self.tmp}/")
        text = sub(text, r"^plugin \S+$", f"plugin {self.plugin}")
        text = sub(text, r"^plugin_opt_config \S+$", f"plugin_opt_config {self.yaml_path}")
        if os.geteuid() == 0:
            text = sub(text, r"^#user root$", "user root")
        self.serve_with(text)


if __name__ == "__main__":
    unittest.main()
