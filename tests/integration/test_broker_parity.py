"""Broker parity: embedded mqttspecd routes ordinary MQTT exactly like a bare Mosquitto.

A differential suite. Each broker behaviour is written once, as a scenario that runs real MQTT
clients against a port and returns what they observed: messages as (topic, payload, QoS, retain
flag, MQTT 5 properties), SUBACK / CONNACK / DISCONNECT codes, session-present flags. Every
scenario runs against
  bare      a plain Mosquitto started by the test from the very mosquitto.conf that embedded
            mqttspecd generated, minus its plugin lines (own port, own persistence directory),
            so that the two brokers differ only by the mqttspec plugin, and
  embedded  mqttspecd in embedded mode (Mosquitto 2.0 with the mqttspec plugin),
and the test asserts the same outcome on both, plus what Mosquitto must do (so that both being
broken the same way fails too). MQTT 3.1.1 and 5 (one subTest each) wherever the feature exists
in both. Covered: retained messages (set, replace, clear, retain-as-published, retain handling
0/1/2), wills (network loss, DISCONNECT, retained, will delay), overlapping subscriptions, offline
queueing and redelivery for persistent sessions, session expiry, $SYS and $-topics not matched by
'#', no-local, subscription identifiers, topic aliases, maximum packet size, receive maximum,
shared subscriptions, MQTT 5 request/response properties on ordinary topics, client takeover with
the same id, zero-length client ids (assigned ids), CONNACK flags and properties.

Only ordinary topics are used (parity-<random>/…, never the service's spec/ tree), a fresh random
suffix and fresh client ids per scenario run.

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd \\
       MQTTSPEC_PLUGIN=/abs/path/mqttspec_mosquitto.so python3 -m unittest -v test_broker_parity
(MOSQUITTO=/path/to/mosquitto picks the bare broker's binary; the default is mosquitto from PATH.)
"""

import collections
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness  # first: it makes Debian's paho importable
from harness import Service, free_port, mosquitto_binary, random_suffix, wait_port
from mqtt_packets import mqtt_string as _str, varint as _varint
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes
from paho.mqtt.subscribeoptions import SubscribeOptions

mqtt = harness.mqtt

BOTH = ("3.1.1", "5")
V5 = ("5",)

WAIT = 4.0     # bounded wait for messages that should arrive
SETTLE = 0.3   # after the expected messages: time for unexpected extra ones to show up
QUIET = 0.5    # "nothing arrives"

Msg = collections.namedtuple("Msg", "topic payload qos retain props")
RawMsg = collections.namedtuple("RawMsg", "topic payload qos dup retain pid")
Will = collections.namedtuple("Will", "topic payload qos retain props", defaults=(1, False, None))


# --------------------------------------------------------------------------------------- helpers

def relative(topic, base):
    """`topic` with the scenario's random base replaced by "~" (outcomes of two runs compare)."""
    return "~" + topic[len(base):] if base and topic.startswith(base) else topic


def label(payload):
    """A payload as recorded in outcomes: text, bytes if not UTF-8, its size if long."""
    if len(payload) > 40:
        return f"<{len(payload)} bytes>"
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        return bytes(payload)


def make_props(packet_type, values):
    """A paho Properties of `packet_type` from a dict (None for an empty dict / None)."""
    if not values:
        return None
    p = Properties(packet_type)
    for k, v in values.items():
        setattr(p, k, v)
    return p


def props_dict(p, base=""):
    """The MQTT 5 properties of a received packet as a dict (ResponseTopic made relative)."""
    out = {}
    if p is None:
        return out
    for name in p.names:
        key = name.replace(" ", "")
        if hasattr(p, key):
            v = getattr(p, key)
            out[key] = relative(v, base) if key == "ResponseTopic" else v
    return out


def code_of(rc):
    return int(getattr(rc, "value", rc))


def payloads(msgs):
    return [m.payload for m in msgs]


def by_repr(msgs):
    """Messages in a fixed order, where the order of arrival is not specified."""
    return sorted(msgs, key=repr)


class Client:
    """A paho client that records what it sees (never reconnects by itself).

    Messages arrive into a list; take() returns those that arrived since the previous take().
    connack is (return/reason code, session present) or None; disconnects lists how the
    connection ended: ("client",) for our own DISCONNECT, else ("closed",) or, for a server
    DISCONNECT with properties, ("DISCONNECT", reason code) — paho 1.6.1 drops the reason code of
    a DISCONNECT without properties, so scenarios that check it use Raw.
    """

    def __init__(self, port, client_id, v5, base, clean=True, expiry=None, will=None,
                 connect_props=None, timeout=5.0):
        self.client_id, self.v5, self.base = client_id, v5, base
        self._cond = threading.Condition()
        self._received = []  # (Msg, monotonic time of arrival)
        self._cursor = 0
        self._subacks = {}
        self.connack = None
        self.connack_props = {}
        self.disconnects = []
        if v5:
            self.m = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5,
                                 reconnect_on_failure=False)
        else:
            self.m = mqtt.Client(client_id=client_id, clean_session=clean,
                                 protocol=mqtt.MQTTv311, reconnect_on_failure=False)
        self.m.on_connect = self._on_connect
        self.m.on_disconnect = self._on_disconnect
        self.m.on_subscribe = self._on_subscribe
        self.m.on_message = self._on_message
        if will is not None:
            self.m.will_set(will.topic, will.payload, will.qos, will.retain,
                            properties=make_props(PacketTypes.WILLMESSAGE, will.props))
        if v5:
            values = dict(connect_props or {})
            if expiry is not None:
                values["SessionExpiryInterval"] = expiry
            self.m.connect("127.0.0.1", port, keepalive=30, clean_start=clean,
                           properties=make_props(PacketTypes.CONNECT, values))
        else:
            self.m.connect("127.0.0.1", port, keepalive=30)
        self.m.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.m.loop_start()
        self._wait(lambda: self.connack is not None or self.disconnects, timeout)
        if self.connack is None:
            self.close()
            raise RuntimeError(f"{client_id}: no CONNACK within {timeout} s")

    # paho callbacks (network thread)
    def _on_connect(self, client, userdata, flags, rc, properties=None):
        with self._cond:
            if self.connack is None:
                self.connack = (code_of(rc), bool((flags or {}).get("session present")))
                self.connack_props = props_dict(properties, self.base)
            self._cond.notify_all()

    def _on_disconnect(self, client, userdata, rc, properties=None):
        with self._cond:
            if isinstance(rc, ReasonCodes):
                self.disconnects.append(("DISCONNECT", rc.value))
            else:
                self.disconnects.append(("client",) if rc == 0 else ("closed",))
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted, *rest):
        with self._cond:
            self._subacks[mid] = [code_of(g) for g in granted]
            self._cond.notify_all()

    def _on_message(self, client, userdata, msg):
        props = props_dict(getattr(msg, "properties", None), self.base) if self.v5 else {}
        m = Msg(relative(msg.topic, self.base), label(msg.payload), msg.qos, bool(msg.retain),
                props)
        with self._cond:
            self._received.append((m, time.monotonic()))
            self._cond.notify_all()

    def _wait(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    @property
    def session_present(self):
        return self.connack[1] if self.connack else None

    # actions
    def subscribe(self, topic, qos=1, no_local=False, rap=False, rh=0, sub_id=None):
        """Subscribes; returns the SUBACK code (granted QoS, >= 0x80: refused), None if none."""
        if self.v5:
            opts = SubscribeOptions(qos=qos, noLocal=no_local, retainAsPublished=rap,
                                    retainHandling=rh)
            props = make_props(PacketTypes.SUBSCRIBE,
                               None if sub_id is None else {"SubscriptionIdentifier": sub_id})
            rc, mid = self.m.subscribe(topic, options=opts, properties=props)
        else:
            rc, mid = self.m.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        self._wait(lambda: mid in self._subacks, WAIT)
        codes = self._subacks.get(mid)
        return codes[0] if codes else None

    def publish(self, topic, payload, qos=1, retain=False, props=None):
        """Publishes; for QoS > 0 waits (bounded) for the broker's acknowledgement."""
        info = self.m.publish(topic, payload, qos, retain,
                              properties=make_props(PacketTypes.PUBLISH, props))
        if qos and info.rc == mqtt.MQTT_ERR_SUCCESS:
            try:
                info.wait_for_publish(WAIT)
            except (RuntimeError, ValueError):
                pass
        return info

    def take(self, n=0, until=None, timeout=WAIT, settle=None):
        """The messages that arrived since the previous take().

        Waits (at most `timeout` s) until n of them arrived or, with `until` (a relative topic or
        a predicate on Msg), one that matches; then `settle` s more, so that extra messages show
        up too. With neither n nor until: a quiet period of QUIET s.
        """
        if isinstance(until, str):
            topic = until
            until = lambda m: m.topic == topic  # noqa: E731
        waiting = bool(n or until)

        def done():
            new = [m for m, _ in self._received[self._cursor:]]
            return any(until(m) for m in new) if until else len(new) >= n
        if waiting:
            self._wait(done, timeout)
        time.sleep(settle if settle is not None else (SETTLE if waiting else QUIET))
        with self._cond:
            new, self._cursor = self._received[self._cursor:], len(self._received)
        return [m for m, _ in new]

    def arrival(self, topic):
        """When the first message on relative `topic` arrived (monotonic), or None."""
        with self._cond:
            return next((t for m, t in self._received if m.topic == topic), None)

    def wait_closed(self, timeout=WAIT):
        """How the connection ended (see disconnects), waiting at most `timeout` s; or None."""
        self._wait(lambda: self.disconnects, timeout)
        with self._cond:
            return self.disconnects[0] if self.disconnects else None

    def drop(self):
        """Closes the TCP connection without DISCONNECT: a network loss for the broker."""
        sock = self.m.socket()
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._wait(lambda: self.disconnects, 2.0)
        self.m.loop_stop()

    def close(self, reason=None, props=None):
        """A normal DISCONNECT (MQTT 5: with reason code and properties), bounded in time."""
        if self.connack is not None and not self.disconnects:
            rc = None if reason is None else ReasonCodes(PacketTypes.DISCONNECT, identifier=reason)
            self.m.disconnect(reasoncode=rc, properties=make_props(PacketTypes.DISCONNECT, props))
            if not self._wait(lambda: self.disconnects, 5.0):
                sock = self.m.socket()
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        self.m.loop_stop()


# A hand-made client for what paho cannot do: leave QoS 1 messages unacknowledged (receive
# maximum, redelivery) and send a zero-length client id with clean session 0.



class Raw:
    """A minimal MQTT 3.1.1 / 5 client over a socket that acknowledges nothing by itself (and,
    unlike paho 1.6.1, sees the reason code of a DISCONNECT without properties)."""

    def __init__(self, port, client_id, v5, base, clean=True, props=None, will=None,
                 timeout=5.0):
        self.v5, self.base = v5, base
        self.buf = b""
        self.closed = False
        self.inbox = []  # RawMsg, unclaimed
        self.next_pid = 1
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        flags, payload = 0x02 if clean else 0, _str(client_id)
        if will is not None:
            flags |= 0x04 | (will.qos << 3) | (0x20 if will.retain else 0)
            if v5:
                payload += self._props(PacketTypes.WILLMESSAGE, will.props)
            payload += _str(will.topic) + struct.pack("!H", len(will.payload)) \
                + will.payload.encode("utf-8")
        var = _str("MQTT") + bytes([5 if v5 else 4, flags]) + struct.pack("!H", 30)
        if v5:
            var += self._props(PacketTypes.CONNECT, props)
        self._send(0x10, var + payload)
        pkt = self._wait(lambda p: p[0] == 0x20, timeout)
        if pkt is None:
            self.drop()
            raise RuntimeError(f"no CONNACK for client id {client_id!r}")
        body = pkt[2]
        self.session_present, self.rc = bool(body[0] & 1), body[1]
        self.connack_props = {}
        if v5 and len(body) > 2:
            p = Properties(PacketTypes.CONNACK)
            p.unpack(body[2:])
            self.connack_props = props_dict(p)

    @staticmethod
    def _props(packet_type, values):
        return (make_props(packet_type, values) or Properties(packet_type)).pack()

    def _send(self, header, body):
        self.sock.sendall(bytes([header]) + _varint(len(body)) + body)

    def _parse(self):
        length, shift, i = 0, 0, 1
        while True:
            if i >= len(self.buf):
                return None
            b = self.buf[i]
            length |= (b & 0x7F) << shift
            shift, i = shift + 7, i + 1
            if not b & 0x80:
                break
        if len(self.buf) < i + length:
            return None
        first, body, self.buf = self.buf[0], self.buf[i:i + length], self.buf[i + length:]
        return first & 0xF0, first & 0x0F, body

    def _read(self, timeout):
        """One packet (type, flags, body), or None after `timeout` s or when the broker closed."""
        deadline = time.monotonic() + timeout
        while True:
            pkt = self._parse()
            if pkt is not None:
                return pkt
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk

    def _publish_of(self, flags, body):
        qos = (flags >> 1) & 3
        (n,) = struct.unpack("!H", body[:2])
        topic, pos, pid = body[2:2 + n].decode("utf-8"), 2 + n, None
        if qos:
            (pid,) = struct.unpack("!H", body[pos:pos + 2])
            pos += 2
        if self.v5:
            pos += Properties(PacketTypes.PUBLISH).unpack(body[pos:])[1]
        return RawMsg(relative(topic, self.base), label(body[pos:]), qos, bool(flags & 8),
                      bool(flags & 1), pid)

    def _wait(self, predicate, timeout):
        """The first packet with predicate true (PUBLISHes on the way go to the inbox)."""
        deadline = time.monotonic() + timeout
        while True:
            pkt = self._read(max(0.0, deadline - time.monotonic()))
            if pkt is None:
                return None
            if predicate(pkt):
                return pkt
            if pkt[0] == 0x30:
                self.inbox.append(self._publish_of(pkt[1], pkt[2]))

    def _pid(self):
        pid, self.next_pid = self.next_pid, self.next_pid + 1
        return pid

    def _acked(self, ptype, pid):
        return lambda p: p[0] == ptype and p[2][:2] == struct.pack("!H", pid)

    def subscribe(self, topic, qos=1):
        pid = self._pid()
        self._send(0x82, struct.pack("!H", pid) + (b"\x00" if self.v5 else b"") + _str(topic)
                   + bytes([qos]))
        pkt = self._wait(self._acked(0x90, pid), WAIT)
        return pkt[2][-1] if pkt else None

    def publish(self, topic, payload, qos=1, props=None):
        """QoS 1: returns the PUBACK's reason code (0 when absent), None without PUBACK.
        QoS 0: returns at once."""
        pid = self._pid() if qos else None
        body = _str(topic) + (struct.pack("!H", pid) if qos else b"")
        if self.v5:
            body += self._props(PacketTypes.PUBLISH, props)
        self._send(0x30 | (qos << 1), body + payload)
        if not qos:
            return None
        pkt = self._wait(self._acked(0x40, pid), WAIT)
        return None if pkt is None else (pkt[2][2] if len(pkt[2]) > 2 else 0)

    def wait_closed(self, timeout=WAIT):
        """How the broker ended the connection: ("DISCONNECT", reason code) or ("closed",);
        None if it is still open after `timeout` s."""
        pkt = self._wait(lambda p: p[0] == 0xE0, timeout)
        if pkt is not None:
            return ("DISCONNECT", pkt[2][0] if pkt[2] else 0)
        return ("closed",) if self.closed else None

    def puback(self, pid):
        self._send(0x40, struct.pack("!H", pid))

    def publishes(self, n=0, timeout=WAIT, settle=None):
        """PUBLISHes received and not yet taken (not acknowledged): waits (bounded) for n, then
        `settle` s more for extra ones; n=0: a quiet period."""
        deadline = time.monotonic() + timeout
        while len(self.inbox) < n and not self.closed:
            pkt = self._read(max(0.0, deadline - time.monotonic()))
            if pkt is None:
                break
            if pkt[0] == 0x30:
                self.inbox.append(self._publish_of(pkt[1], pkt[2]))
        self._wait(lambda p: False, settle if settle is not None else (SETTLE if n else QUIET))
        out, self.inbox = self.inbox, []
        return out

    def drop(self):
        try:
            self.sock.close()
        except OSError:
            pass

    close = drop


def unacked(msgs):
    """Raw PUBLISHes without their packet ids (which are not part of the contract)."""
    return [m._replace(pid=None) for m in msgs]


class Scene:
    """One run of a scenario against one broker: a random topic base and client ids."""

    def __init__(self, port, v5):
        self.port, self.v5 = port, v5
        self.tag = random_suffix()
        self.base = f"parity-{self.tag}"
        self.clients = []

    def t(self, rel=""):
        return f"{self.base}/{rel}" if rel else self.base

    def absolute(self, rel_topic):
        return self.base + rel_topic[1:] if rel_topic.startswith("~") else rel_topic

    def cid(self, name):
        return f"{name}-{self.tag}"

    def client(self, name, v5=None, **kw):
        """A connected Client with id <name>-<tag> (the same name again: the same id)."""
        c = Client(self.port, self.cid(name), self.v5 if v5 is None else v5, self.base, **kw)
        self.clients.append(c)
        return c

    def raw(self, client_id, v5=None, **kw):
        """A connected Raw client with exactly `client_id` (see cid())."""
        c = Raw(self.port, client_id, self.v5 if v5 is None else v5, self.base, **kw)
        self.clients.append(c)
        return c

    def close(self):
        for c in reversed(self.clients):
            try:
                c.close()
            except Exception:  # noqa: BLE001 - best effort, the broker cleans up anyway
                pass


# --------------------------------------------------------------------------------- bare broker

class BareMosquitto:
    """Mosquitto started from embedded mqttspecd's generated mosquitto.conf without the plugin
    lines, on a port and persistence directory of its own."""

    def __init__(self, embedded_conf):
        self.tmp = tempfile.mkdtemp(prefix="mqttspec-parity-")
        os.chmod(self.tmp, 0o755)
        self.port = free_port()
        self.proc = None
        self._log = None
        self.log_path = os.path.join(self.tmp, "mosquitto.log")
        self.conf_path = os.path.join(self.tmp, "mosquitto.conf")
        lines, edits = [], collections.Counter()
        for line in embedded_conf.splitlines():
            word = line.split(" ", 1)[0]
            if word == "plugin" or word.startswith("plugin_opt_"):
                edits["plugin"] += 1
                continue
            if word == "listener":
                line = re.sub(r"^listener \d+", f"listener {self.port}", line)
                edits["listener"] += 1
            elif word == "persistence_location":
                line = f"persistence_location {self.tmp}/"
                edits["persistence_location"] += 1
            lines.append(line)
        if not edits["plugin"] or edits["listener"] != 1 or edits["persistence_location"] != 1:
            raise RuntimeError(f"unexpected generated mosquitto.conf ({dict(edits)}):\n"
                               + embedded_conf)
        self.conf_text = "\n".join(lines) + "\n"

    def start(self, timeout=10.0):
        with open(self.conf_path, "w") as f:
            f.write(self.conf_text)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", self.conf_path],
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.tmp)
        try:
            wait_port(self.port, time.monotonic() + timeout, self.proc, "bare mosquitto")
        except BaseException:
            log = self.log_tail()
            self.stop()
            raise RuntimeError(f"bare mosquitto did not start\n{log}") from None

    def log_tail(self, lines=60):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------- scenarios
# Each scenario takes a Scene and returns an outcome that does not depend on the random parts.

def scene_retained(s):
    t = s.t("state")
    pub, live = s.client("pub"), s.client("live")
    out = {"live suback": live.subscribe(t)}

    def newcomer(name, n):
        c = s.client(name)
        return c.subscribe(t), c.take(n)
    pub.publish(t, "one", retain=True)
    out["set"] = newcomer("new1", 1)
    pub.publish(t, "two", retain=True)
    out["replaced"] = newcomer("new2", 1)
    pub.publish(t, "", retain=True)
    out["cleared"] = newcomer("new3", 0)
    pub.publish(t, "plain")
    out["after a non-retained publish"] = newcomer("new4", 0)
    out["live"] = live.take(4)
    return out


def scene_retain_as_published(s):
    t = s.t("rap")
    pub, rap, plain = s.client("pub"), s.client("rap"), s.client("plain")
    out = {"subacks": [rap.subscribe(t, rap=True), plain.subscribe(t)]}
    pub.publish(t, "kept", retain=True)
    pub.publish(t, "passing")
    out["retain as published"] = rap.take(2)
    out["default"] = plain.take(2)
    late = s.client("late")
    out["late subscriber"] = (late.subscribe(t), late.take(1))
    return out


def scene_retain_handling(s):
    t = s.t("rh")
    s.client("pub").publish(t, "stored", retain=True)
    out = {}
    for rh, expected in ((0, (1, 1)), (1, (1, 0)), (2, (0, 0))):
        c = s.client(f"rh{rh}")
        out[f"retain handling {rh}"] = [(c.subscribe(t, rh=rh), c.take(n)) for n in expected]
    return out


def scene_wills(s):
    watcher = s.client("watch")
    out = {"suback": watcher.subscribe(s.t("will/+"))}
    props = {"ContentType": "text/plain", "UserProperty": [("k", "v")],
             "ResponseTopic": s.t("reply"), "CorrelationData": b"\x01c"} if s.v5 else None
    lost = s.client("lost", will=Will(s.t("will/lost"), "lost", props=props))
    clean = s.client("clean", will=Will(s.t("will/clean"), "clean"))
    kept = s.client("kept", will=Will(s.t("will/kept"), "kept", retain=True))
    lost.drop()
    kept.drop()
    clean.close()
    expected = 2
    if s.v5:
        asked = s.client("asked", will=Will(s.t("will/asked"), "asked"))
        asked.close(reason=0x04)  # Disconnect with Will Message
        expected = 3
    out["wills"] = by_repr(watcher.take(expected))
    late = s.client("late")
    out["late subscriber"] = (late.subscribe(s.t("will/+")), late.take(1))
    return out


def scene_will_delay(s):
    watcher = s.client("watch")
    out = {"suback": watcher.subscribe(s.t("wd/+"))}

    def with_will(name, expiry, delay):
        return s.client(name, clean=False, expiry=expiry,
                        will=Will(s.t(f"wd/{name}"), name, props={"WillDelayInterval": delay}))
    cases = [with_will("delayed", 60, 2), with_will("resumed", 60, 2),
             with_will("atend", 1, 30), with_will("now", 60, 0)]
    dropped = time.monotonic()
    for c in cases:
        c.drop()
    back = s.client("resumed", clean=False, expiry=0)  # back within the delay: no will
    out["resumed session present"] = back.session_present
    # delayed (~2 s), atend (session end, ~1 s) and now; then 1 s more for the resumed one.
    got = watcher.take(3, timeout=6.0, settle=1.0)
    out["wills"] = by_repr(got)

    def when(name):
        t = watcher.arrival(f"~/wd/{name}")
        return "never" if t is None else ("within 1 s" if t - dropped < 1.0 else "after 1 s")
    out["delay 2 s"] = when("delayed")
    out["delay 0"] = when("now")
    out["delay 30 s, session expiry 1 s"] = "never" if watcher.arrival("~/wd/atend") is None \
        else "sent"
    return out


def scene_session_expiry(s):
    watcher, pub = s.client("watch"), s.client("pub")
    out = {"suback": watcher.subscribe(s.t("end"))}
    cases = {  # name: (session expiry at CONNECT, how the connection ends)
        "expiry 1 s": (1, "drop"),
        "expiry 60 s": (60, "disconnect"),
        "expiry 60 s, 0 at DISCONNECT": (60, "disconnect 0"),
        "expiry 0": (0, "disconnect"),
    }
    for i, (name, (expiry, end)) in enumerate(cases.items()):
        # The first case's will (delay 60 s > expiry 1 s) is published when its session ends.
        will = Will(s.t("end"), "ended", props={"WillDelayInterval": 60}) if i == 0 else None
        c = s.client(f"se{i}", clean=False, expiry=expiry, will=will)
        out[f"{name}: suback"] = c.subscribe(s.t(f"se/{i}"))
        if end == "drop":
            c.drop()
        else:
            c.close(props={"SessionExpiryInterval": 0} if end == "disconnect 0" else None)
    for i in range(len(cases)):
        pub.publish(s.t(f"se/{i}"), f"queued {i}")
    out["session end of 'expiry 1 s'"] = watcher.take(1, timeout=5.0)
    for i, name in enumerate(cases):
        back = s.client(f"se{i}", clean=False, expiry=0)
        out[name] = (back.connack, back.take(1 if name == "expiry 60 s" else 0))
    return out


def scene_offline_queue(s):
    one, two, zero = s.t("q/one"), s.t("q/two"), s.t("q/zero")
    durable = s.client("durable", clean=False, expiry=300)
    out = {"subacks": [durable.subscribe(one, 1), durable.subscribe(two, 2),
                       durable.subscribe(zero, 0)]}
    transient = s.client("transient", clean=True)
    out["transient suback"] = transient.subscribe(one, 1)
    durable.close()
    transient.close()
    pub = s.client("pub")
    pub.publish(one, "a", qos=1)
    pub.publish(two, "b", qos=2)
    pub.publish(one, "c", qos=0)   # QoS 0 for an offline client: not queued
    pub.publish(zero, "d", qos=1)  # granted QoS 0: not queued
    pub.publish(one, "e", qos=1)
    back = s.client("durable", clean=False, expiry=300)
    out["durable"] = (back.connack, back.take(3))
    again = s.client("transient", clean=True)
    out["transient"] = (again.connack, again.take(0))
    pub.publish(one, "live", qos=1)
    out["durable, live after reconnect"] = back.take(1)
    out["transient, live after reconnect"] = again.take(0)
    back.close(props={"SessionExpiryInterval": 0} if s.v5 else None)
    return out


def scene_redelivery(s):
    t = s.t("redeliver")
    session = {"clean": False, "props": {"SessionExpiryInterval": 300} if s.v5 else None}
    r = s.raw(s.cid("r"), **session)
    out = {"suback": r.subscribe(t, 1)}
    pub = s.client("pub")
    pub.publish(t, "m1")
    pub.publish(t, "m2")
    out["first delivery (not acknowledged)"] = unacked(r.publishes(2))
    r.drop()
    again = s.raw(s.cid("r"), **session)
    out["session present"] = (again.rc, again.session_present)
    redelivered = again.publishes(2)
    out["redelivered"] = unacked(redelivered)
    for m in redelivered:
        again.puback(m.pid)
    out["after the acknowledgements"] = unacked(again.publishes(0))
    return out


def scene_overlapping(s):
    c, pub = s.client("c"), s.client("pub")
    out = {"subacks": [c.subscribe(s.t("o/#"), 0), c.subscribe(s.t("o/+/c"), 1),
                       c.subscribe(s.t("o/b/c"), 2)]}
    pub.publish(s.t("o/b/c"), "x", qos=2)
    pub.publish(s.t("o/b/d"), "y", qos=1)
    out["received"] = by_repr(c.take(until="~/o/b/d"))
    return out


def scene_dollar_topics(s):
    marker, own_dollar = s.t("marker"), f"${s.base}/x"
    hash_, plus, sys_, dollar = (s.client("hash"), s.client("plus"), s.client("sys"),
                                 s.client("dollar"))
    out = {"subacks": {"#": hash_.subscribe("#", 0),
                       "+/broker/version": plus.subscribe("+/broker/version", 0),
                       "$SYS/#": sys_.subscribe("$SYS/#", 0),
                       "$<base>/#": dollar.subscribe(f"${s.base}/#", 0)}}
    pub = s.client("pub")
    pub.publish(own_dollar, "d", qos=1)
    pub.publish(marker, "m", qos=1)

    def ours_or_dollar(msgs):  # '#' also brings the retained messages of earlier scenarios
        return [(m.topic, m.payload) for m in msgs if m.topic.startswith(("~", "$"))]
    out["#"] = sorted(set(ours_or_dollar(hash_.take(until="~/marker"))))
    out["+/broker/version"] = plus.take(0)
    got = sys_.take(until="$SYS/broker/version")
    out["$SYS/#: $SYS/broker/version"] = [(m.payload, m.retain) for m in got
                                          if m.topic == "$SYS/broker/version"]
    out["$SYS/#: topics outside $SYS/"] = [m.topic for m in got
                                           if not m.topic.startswith("$SYS/")]
    out["$<base>/#"] = [(m.topic.replace(s.base, "<base>"), m.payload) for m in dollar.take(1)]
    return out


def scene_no_local(s):
    me, other = s.client("me"), s.client("other")
    out = {"subacks": [me.subscribe(s.t("nl"), no_local=True), me.subscribe(s.t("local")),
                       other.subscribe(s.t("nl"))]}
    me.publish(s.t("nl"), "mine")
    me.publish(s.t("local"), "mine, local")
    other.publish(s.t("nl"), "theirs")
    out["me"] = by_repr(me.take(2))
    out["other"] = by_repr(other.take(2))
    return out


def scene_subscription_identifiers(s):
    c, pub = s.client("c"), s.client("pub")
    out = {"subacks": [c.subscribe(s.t("si/#"), sub_id=5), c.subscribe(s.t("si/+/x"), sub_id=7),
                       c.subscribe(s.t("si/plain/+"))]}
    for rel, payload in (("si/a/x", "ax"), ("si/b/y", "by"), ("si/plain/z", "pz")):
        pub.publish(s.t(rel), payload)
    out["received"] = by_repr(c.take(until="~/si/plain/z"))
    out["resubscribed without an identifier"] = c.subscribe(s.t("si/#"))
    pub.publish(s.t("si/b/y"), "by again")
    out["after"] = c.take(1)
    return out


def scene_topic_aliases(s):
    rx, tx = s.client("rx"), s.client("tx")
    out = {"suback": rx.subscribe(s.t("ta/#")),
           "TopicAliasMaximum": tx.connack_props.get("TopicAliasMaximum")}
    for topic, payload, alias in ((s.t("ta/one"), "1", 1), ("", "2", 1), (s.t("ta/two"), "3", 1),
                                  ("", "4", 1), (s.t("ta/three"), "5", 2), ("", "6", 2),
                                  ("", "7", 1)):
        tx.publish(topic, payload, props={"TopicAlias": alias})
    out["received"] = rx.take(7)
    over = s.raw(s.cid("over"))
    over.publish(s.t("ta/over"), b"x", qos=0, props={"TopicAlias": 11})
    out["alias above the maximum"] = over.wait_closed()
    unknown = s.raw(s.cid("unknown"))
    unknown.publish("", b"y", qos=0, props={"TopicAlias": 3})
    out["alias never set"] = unknown.wait_closed()
    out["received after those"] = rx.take(0)
    return out


def scene_maximum_packet_size(s):
    small, pub = s.client("small", connect_props={"MaximumPacketSize": 256}), s.client("pub")
    out = {"suback": small.subscribe(s.t("mps"))}
    for n in (50, 200, 300, 1000):
        pub.publish(s.t("mps"), "x" * n)
    pub.publish(s.t("mps"), "end")
    out["received"] = small.take(until=lambda m: m.payload == "end")
    out["still connected"] = small.disconnects == []
    pub.publish(s.t("mps-retained"), "y" * 1000, retain=True)
    late = s.client("late", connect_props={"MaximumPacketSize": 256})
    out["too big retained"] = (late.subscribe(s.t("mps-retained")), late.take(0))
    return out


def scene_receive_maximum(s):
    r = s.raw(s.cid("r"), props={"ReceiveMaximum": 2})
    out = {"suback": r.subscribe(s.t("rm"), 1)}
    pub = s.client("pub")
    for i in range(5):
        pub.publish(s.t("rm"), f"m{i}")
    first = r.publishes(2)
    out["before any PUBACK"] = payloads(first)
    if first:
        r.puback(first[0].pid)
    second = r.publishes(1)
    out["after one PUBACK"] = payloads(second)
    rest, pending = [], first[1:] + second
    deadline = time.monotonic() + WAIT
    while pending and time.monotonic() < deadline:
        for m in pending:
            r.puback(m.pid)
        pending = r.publishes(1, timeout=1.0, settle=0.1)
        rest += pending
    out["after acknowledging everything"] = payloads(rest)
    return out


def scene_shared(s):
    g1, g2, plain, pub = s.client("g1"), s.client("g2"), s.client("plain"), s.client("pub")
    shared = f"$share/grp/{s.t('sh')}"
    out = {"subacks": [g1.subscribe(shared), g2.subscribe(shared), plain.subscribe(s.t("sh"))]}
    for i in range(10):
        pub.publish(s.t("sh"), str(i))
    out["plain subscriber"] = payloads(plain.take(10))
    out["group members"] = sorted([payloads(g1.take(0)), payloads(g2.take(0, settle=0.0))])
    return out


def scene_request_response(s):
    responder, requester = s.client("responder"), s.client("requester")
    legacy = s.client("legacy", v5=False)
    out = {"subacks": [responder.subscribe(s.t("rr/req")), requester.subscribe(s.t("rr/resp")),
                       legacy.subscribe(s.t("rr/req"))]}
    requester.publish(s.t("rr/req"), "question", props={
        "ResponseTopic": s.t("rr/resp"), "CorrelationData": b"\x00corr\xff",
        "UserProperty": [("a", "1"), ("b", "2"), ("a", "3")], "ContentType": "text/plain",
        "PayloadFormatIndicator": 1, "MessageExpiryInterval": 60})
    got = responder.take(1)
    for m in got:
        responder.publish(s.absolute(m.props.get("ResponseTopic", "~/nowhere")), "answer",
                          props={"CorrelationData": m.props.get("CorrelationData", b""),
                                 "UserProperty": [("r", "x")]})

    def expiry_checked(msgs):  # the broker may count the interval down
        out = []
        for m in msgs:
            p = dict(m.props)
            if "MessageExpiryInterval" in p:
                p["MessageExpiryInterval"] = 0 < p["MessageExpiryInterval"] <= 60
            out.append(m._replace(props=p))
        return out
    out["request (MQTT 5 subscriber)"] = expiry_checked(got)
    out["request (MQTT 3.1.1 subscriber)"] = legacy.take(1)
    out["response"] = requester.take(1)
    return out


def scene_takeover(s):
    watcher, pub = s.client("watch"), s.client("pub")
    out = {"suback": watcher.subscribe(s.t("tk/+"))}
    for name, clean in (("continued", False), ("clean", True)):
        old = s.raw(s.cid(name), clean=False, will=Will(s.t(f"tk/{name}"), f"{name} gone"),
                    props={"SessionExpiryInterval": 60} if s.v5 else None)
        old.subscribe(s.t(f"data/{name}"))
        new = s.client(name, clean=clean, expiry=60)  # the same client id
        closed = old.wait_closed()
        pub.publish(s.t(f"data/{name}"), "after takeover")
        out[name] = {"new connection": new.connack, "old connection": closed,
                     "new gets": new.take(0 if clean else 1), "old gets": old.publishes(0)}
        new.close(props={"SessionExpiryInterval": 0} if s.v5 else None)
    out["wills"] = by_repr(watcher.take(1))
    return out


AUTO_ID = re.compile(r"auto-[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
                     r"[0-9A-Fa-f]{12}")


def scene_zero_length_client_id(s):
    out, assigned = {}, []
    for name, clean in (("clean", True), ("persistent", False)):
        props = {"SessionExpiryInterval": 60} if s.v5 and not clean else None
        r = s.raw("", clean=clean, props=props)
        aid = r.connack_props.get("AssignedClientIdentifier")
        assigned.append(aid)
        case = {"connack": (r.rc, r.session_present),
                "assigned id": None if aid is None else bool(AUTO_ID.fullmatch(aid))}
        if r.rc == 0:
            case["suback"] = r.subscribe(s.t(f"z/{name}"), 1)
            case["puback"] = r.publish(s.t(f"z/{name}"), b"hello")
            case["round trip"] = unacked(r.publishes(1))
        else:
            r.publishes(0, timeout=0, settle=0.5)
            case["closed after CONNACK"] = r.closed
        out[name] = case
    if s.v5:
        out["two assigned ids differ"] = len(set(assigned)) == 2
    return out


def scene_connack(s):
    fresh = s.client("fresh", clean=True)
    first = s.client("persist", clean=False, expiry=120)
    first.close()
    again = s.client("persist", clean=False, expiry=120)
    out = {name: (c.connack, c.connack_props)
           for name, c in (("clean", fresh), ("persistent, first", first),
                           ("persistent, again", again))}
    again.close(props={"SessionExpiryInterval": 0} if s.v5 else None)
    return out


# -------------------------------------------------------------------------------------- tests

class BrokerParity(unittest.TestCase):
    """One embedded mqttspecd and one bare Mosquitto for the class; every test runs its scenario
    on both and compares."""

    service = None
    bare = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.service = Service(mode="embedded")
        cls.service.start()
        cls.addClassCleanup(cls.service.stop)
        with open(os.path.join(cls.service.data_dir, "mosquitto.conf")) as f:
            cls.bare = BareMosquitto(f.read())
        cls.addClassCleanup(cls.bare.stop)
        cls.bare.start()

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result is not None else 0
        try:
            return super().run(result)
        finally:
            if result is not None and len(result.failures) + len(result.errors) > before:
                sys.stderr.write(f"\n===== logs for {self.id()} =====\n")
                if self.service is not None:
                    sys.stderr.write(self.service.log_tail(40) + "\n")
                if self.bare is not None:
                    sys.stderr.write("----- bare mosquitto log -----\n"
                                     + self.bare.log_tail(40) + "\n")

    def check(self, scenario, protocols=BOTH):
        """Runs `scenario` on the bare broker and on embedded mqttspecd for each protocol;
        asserts equal outcomes and returns {protocol: outcome of the bare broker}."""
        outcomes = {}
        for protocol in protocols:
            with self.subTest(protocol=protocol):
                results = {}
                for name, port in (("bare", self.bare.port), ("embedded", self.service.port)):
                    scene = Scene(port, protocol == "5")
                    try:
                        results[name] = scenario(scene)
                    finally:
                        scene.close()
                outcomes[protocol] = results["bare"]
                self.assertEqual(results["embedded"], results["bare"],
                                 f"MQTT {protocol}: embedded mqttspecd (first) differs from bare "
                                 "Mosquitto (second)")
        return outcomes

    def each(self, outcomes):
        """(protocol, v5, outcome) for the sanity checks of what Mosquitto must do."""
        for protocol, out in outcomes.items():
            yield protocol, protocol == "5", out

    # ------------------------------------------------------------------------- retained
    def test_retained_set_replace_clear(self):
        for protocol, v5, out in self.each(self.check(scene_retained)):
            with self.subTest(protocol=protocol, check="mosquitto"):
                self.assertEqual(out["set"], (1, [Msg("~/state", "one", 1, True, {})]))
                self.assertEqual(out["replaced"], (1, [Msg("~/state", "two", 1, True, {})]))
                self.assertEqual(out["cleared"], (1, []))
                self.assertEqual(out["after a non-retained publish"], (1, []))
                self.assertEqual([(m.payload, m.retain) for m in out["live"]],
                                 [("one", False), ("two", False), ("", False),
                                  ("plain", False)])

    def test_retain_as_published(self):
        for _, _, out in self.each(self.check(scene_retain_as_published, V5)):
            self.assertEqual([(m.payload, m.retain) for m in out["retain as published"]],
                             [("kept", True), ("passing", False)])
            self.assertEqual([(m.payload, m.retain) for m in out["default"]],
                             [("kept", False), ("passing", False)])
            self.assertEqual([(m.payload, m.retain) for m in out["late subscriber"][1]],
                             [("kept", True)])

    def test_retain_handling(self):
        for _, _, out in self.each(self.check(scene_retain_handling, V5)):
            counts = {k: [len(msgs) for _, msgs in v] for k, v in out.items()}
            self.assertEqual(counts, {"retain handling 0": [1, 1], "retain handling 1": [1, 0],
                                      "retain handling 2": [0, 0]})

    # ---------------------------------------------------------------------------- wills
    def test_wills(self):
        for protocol, v5, out in self.each(self.check(scene_wills)):
            with self.subTest(protocol=protocol, check="mosquitto"):
                self.assertEqual(sorted(m.payload for m in out["wills"]),
                                 ["asked", "kept", "lost"] if v5 else ["kept", "lost"],
                                 "wills on network loss (and MQTT 5 reason 0x04), not on "
                                 "DISCONNECT")
                self.assertEqual([(m.payload, m.retain) for m in out["late subscriber"][1]],
                                 [("kept", True)])
                if v5:
                    lost = next(m for m in out["wills"] if m.payload == "lost")
                    self.assertEqual(lost.props.get("ContentType"), "text/plain")
                    self.assertEqual(lost.props.get("ResponseTopic"), "~/reply")

    def test_will_delay(self):
        for _, _, out in self.each(self.check(scene_will_delay, V5)):
            self.assertIs(out["resumed session present"], True)
            self.assertEqual(sorted(m.payload for m in out["wills"]), ["atend", "delayed", "now"])
            self.assertEqual(out["delay 2 s"], "after 1 s")
            self.assertEqual(out["delay 0"], "within 1 s")

    # ------------------------------------------------------------------------- sessions
    def test_session_expiry(self):
        for _, _, out in self.each(self.check(scene_session_expiry, V5)):
            self.assertEqual(payloads(out["session end of 'expiry 1 s'"]), ["ended"])
            self.assertEqual(out["expiry 1 s"], ((0, False), []))
            self.assertEqual(out["expiry 60 s"][0], (0, True))
            self.assertEqual(payloads(out["expiry 60 s"][1]), ["queued 1"])
            self.assertEqual(out["expiry 60 s, 0 at DISCONNECT"], ((0, False), []))
            self.assertEqual(out["expiry 0"], ((0, False), []))

    def test_offline_queueing_for_persistent_sessions(self):
        for protocol, v5, out in self.each(self.check(scene_offline_queue)):
            with self.subTest(protocol=protocol, check="mosquitto"):
                self.assertEqual(out["durable"][0], (0, True))
                got = [(m.payload, m.qos) for m in out["durable"][1]]
                self.assertEqual(sorted(got), [("a", 1), ("b", 2), ("e", 1)])
                self.assertLess(got.index(("a", 1)), got.index(("e", 1)), "in order per topic")
                self.assertEqual(out["transient"], ((0, False), []))
                self.assertEqual(payloads(out["durable, live after reconnect"]), ["live"])

    def test_unacknowledged_messages_redelivered(self):
        for protocol, v5, out in self.each(self.check(scene_redelivery)):
            with self.subTest(protocol=protocol, check="mosquitto"):
                self.assertEqual(payloads(out["first delivery (not acknowledged)"]), ["m1", "m2"])
                self.assertEqual(out["session present"], (0, True))
                self.assertEqual([(m.payload, m.dup) for m in out["redelivered"]],
                                 [("m1", True), ("m2", True)])
                self.assertEqual(out["after the acknowledgements"], [])

    # -------------------------------------------------------------------- subscriptions
    def test_overlapping_subscriptions(self):
        for protocol, v5, out in self.each(self.check(scene_overlapping)):
            with self.subTest(protocol=protocol, check="mosquitto"):
                self.assertEqual(out["subacks"], [0, 1, 2])
                x = [m.qos for m in out["received"] if m.payload == "x"]
                self.assertTrue(x, "the overlapping topic is delivered")
                self.assertEqual(max(x), 2)
                self.assertEqual([m.qos for m in out["received"] if m.payload == "y"], [0])

    def test_dollar_topics_not_matched_by_wildcards(self):
        for protocol, v5, out in self.each(self.check(scene_dollar_topics)):
            with self.subTest(protocol=protocol, check="mosquitto"):
                self.assertEqual(out["#"], [("~/marker", "m")], "'#' matches no $-topic")
                self.assertEqual(out["+/broker/version"], [])
                [(version, retained)] = out["$SYS/#: $SYS/broker/version"]
                self.assertTrue(version.startswith("mosquitto version"), version)
                self.assertIs(retained, True)
                self.assertEqual(out["$SYS/#: topics outside $SYS/"], [])

    def test_no_local(self):
        for _, _, out in self.each(self.check(scene_no_local, V5)):
            self.assertEqual([(m.topic, m.payload) for m in out["me"]],
                             [("~/local", "mine, local"), ("~/nl", "theirs")])
            self.assertEqual(sorted(payloads(out["other"])), ["mine", "theirs"])

    def test_subscription_identifiers(self):
        for _, _, out in self.each(self.check(scene_subscription_identifiers, V5)):
            ids = {}
            for m in out["received"]:
                ids.setdefault(m.payload, set()).update(m.props.get("SubscriptionIdentifier", []))
            self.assertEqual(ids, {"ax": {5, 7}, "by": {5}, "pz": {5}})
            self.assertEqual([m.props.get("SubscriptionIdentifier") for m in out["after"]],
                             [None])

    def test_shared_subscriptions(self):
        for protocol, v5, out in self.each(self.check(scene_shared)):
            with self.subTest(protocol=protocol, check="mosquitto"):
                everything = [str(i) for i in range(10)]
                self.assertEqual(out["plain subscriber"], everything)
                g1, g2 = out["group members"]
                self.assertEqual(sorted(g1 + g2, key=int), everything, "each message once")
                self.assertTrue(g1 and g2, "both members get messages")

    # ----------------------------------------------------------------------- MQTT 5 only
    def test_topic_aliases(self):
        for _, _, out in self.each(self.check(scene_topic_aliases, V5)):
            self.assertEqual(out["TopicAliasMaximum"], 10)
            self.assertEqual([(m.topic, m.payload) for m in out["received"]],
                             [("~/ta/one", "1"), ("~/ta/one", "2"), ("~/ta/two", "3"),
                              ("~/ta/two", "4"), ("~/ta/three", "5"), ("~/ta/three", "6"),
                              ("~/ta/two", "7")])
            self.assertEqual(out["alias above the maximum"], ("DISCONNECT", 0x94))
            self.assertIsNotNone(out["alias never set"])
            self.assertEqual(out["received after those"], [])

    def test_maximum_packet_size(self):
        for _, _, out in self.each(self.check(scene_maximum_packet_size, V5)):
            self.assertEqual(payloads(out["received"]), ["<50 bytes>", "<200 bytes>", "end"])
            self.assertIs(out["still connected"], True)
            self.assertEqual(out["too big retained"], (1, []))

    def test_receive_maximum(self):
        for _, _, out in self.each(self.check(scene_receive_maximum, V5)):
            self.assertEqual(out["before any PUBACK"], ["m0", "m1"], "Receive Maximum 2")
            # Mosquitto 2.0.11 then sends up to Receive Maximum new messages per PUBACK (m2 and
            # m3 here, 3 in flight): not asserted, the comparison with bare Mosquitto covers it.
            self.assertTrue(out["after one PUBACK"], "a PUBACK lets the next message go")
            self.assertEqual(out["before any PUBACK"] + out["after one PUBACK"]
                             + out["after acknowledging everything"],
                             ["m0", "m1", "m2", "m3", "m4"], "each message once, in order")

    def test_request_response_properties(self):
        for _, _, out in self.each(self.check(scene_request_response, V5)):
            [req] = out["request (MQTT 5 subscriber)"]
            self.assertEqual(req.props.get("ResponseTopic"), "~/rr/resp")
            self.assertEqual(req.props.get("CorrelationData"), b"\x00corr\xff")
            self.assertEqual(req.props.get("UserProperty"), [("a", "1"), ("b", "2"), ("a", "3")])
            self.assertEqual(req.props.get("ContentType"), "text/plain")
            self.assertEqual(req.props.get("PayloadFormatIndicator"), 1)
            self.assertIs(req.props.get("MessageExpiryInterval"), True)
            self.assertEqual(out["request (MQTT 3.1.1 subscriber)"],
                             [Msg("~/rr/req", "question", 1, False, {})])
            [resp] = out["response"]
            self.assertEqual((resp.payload, resp.props.get("CorrelationData"),
                              resp.props.get("UserProperty")),
                             ("answer", b"\x00corr\xff", [("r", "x")]))

    # ------------------------------------------------------------------------ client ids
    def test_client_takeover(self):
        for protocol, v5, out in self.each(self.check(scene_takeover)):
            with self.subTest(protocol=protocol, check="mosquitto"):
                for name, present in (("continued", True), ("clean", False)):
                    case = out[name]
                    self.assertEqual(case["new connection"], (0, present), name)
                    # MQTT 5 allows a DISCONNECT 0x8E first; Mosquitto 2.0.11 just closes.
                    self.assertIn(case["old connection"],
                                  [("closed",), ("DISCONNECT", 0x8E)] if v5 else [("closed",)],
                                  name)
                    self.assertEqual(case["old gets"], [], name)
                self.assertEqual(payloads(out["continued"]["new gets"]), ["after takeover"])

    def test_zero_length_client_id(self):
        for protocol, v5, out in self.each(self.check(scene_zero_length_client_id)):
            with self.subTest(protocol=protocol, check="mosquitto"):
                self.assertEqual(out["clean"]["connack"], (0, False))
                self.assertEqual(payloads(out["clean"]["round trip"]), ["hello"])
                if v5:
                    self.assertIs(out["clean"]["assigned id"], True)
                    self.assertIs(out["persistent"]["assigned id"], True)
                    self.assertEqual(out["persistent"]["connack"], (0, False))
                    self.assertIs(out["two assigned ids differ"], True)
                else:
                    self.assertIsNone(out["clean"]["assigned id"])
                    self.assertEqual(out["persistent"]["connack"], (2, False),
                                     "identifier rejected")
                    self.assertIs(out["persistent"]["closed after CONNACK"], True)

    def test_connack(self):
        for protocol, v5, out in self.each(self.check(scene_connack)):
            with self.subTest(protocol=protocol, check="mosquitto"):
                self.assertEqual([out[k][0] for k in ("clean", "persistent, first",
                                                      "persistent, again")],
                                 [(0, False), (0, False), (0, True)])


if __name__ == "__main__":
    unittest.main()
