"""The MQTT side of the mqttspec test harness: SpecClient, one client of the service (requests on
<prefix>/<id>/request, answers on <prefix>/<id>/response, every wait bounded in time), and what
the suites check answers against (ISO_UTC_MS, ERROR_CODES, SUBACK_FAILURE).

Uses paho-mqtt 1.6.1 (Debian's python3-paho-mqtt); importing this module makes Debian's paho
importable from a python3 that is not Debian's (e.g. pyenv), so `mqtt` and the paho modules can
be imported after it. PAHO_DIR is the directory to put on PYTHONPATH for a child python3 that
needs the same paho.
"""

import json
import os
import re
import socket
import sys
import threading
import time

try:
    import paho.mqtt.client as mqtt
except ImportError:  # python3 from PATH may not be Debian's (e.g. pyenv): use Debian's paho
    for _p in ("/usr/lib/python3/dist-packages",):
        if os.path.isdir(os.path.join(_p, "paho")) and _p not in sys.path:
            sys.path.append(_p)
    import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

PAHO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(mqtt.__file__))))

ISO_UTC_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

ERROR_CODES = {
    "invalid_json", "invalid_message", "invalid_operation", "model_not_found", "unknown_column",
    "invalid_filter", "invalid_option", "invalid_value", "not_found", "conflict", "forbidden",
    "hook_error", "payload_too_large", "rate_limited", "too_many_subscriptions", "timeout",
    "unavailable", "internal", "resync_required",
}


class ConnectRefused(RuntimeError):
    """The broker answered CONNECT with a non-zero return/reason code (self.rc, an int)."""

    def __init__(self, client_id, rc):
        super().__init__(f"MQTT connect of {client_id} failed: rc={rc}")
        self.rc = rc


SUBACK_FAILURE = 0x80  # a SUBACK return/reason code >= 0x80 means "refused"


class SpecClient:
    """One MQTT client of the service: requests on spec/<id>/request, answers on spec/<id>/response.

    clean_session=False keeps the session on the broker (v3.1.1 clean session 0; v5 clean start 0
    with session_expiry seconds, default 300). username/password are sent when username is set.
    subscribe_response=False skips the subscription to the response topic (then no answer
    arrives). tls: keyword arguments of paho's tls_set (ca_certs, certfile, keyfile) for a TLS
    listener; transport="websockets" for a WebSocket listener.
    """

    def __init__(self, port, client_id, protocol="3.1.1", prefix="spec", host="127.0.0.1",
                 connect_timeout=5.0, clean_session=True, username=None, password=None,
                 session_expiry=None, subscribe_response=True, tls=None, transport="tcp"):
        self.client_id = client_id
        self.prefix = prefix
        self.request_topic = f"{prefix}/{client_id}/request"
        self.response_topic = f"{prefix}/{client_id}/response"
        self.v5 = protocol in ("5", "5.0", mqtt.MQTTv5)
        self._cond = threading.Condition()
        self._inbox = []  # unclaimed (topic, message, properties), in arrival order
        self.history = []  # everything received, in arrival order
        self._connected = None
        self.connack_rc = None  # the CONNACK's return/reason code, as an int
        self.connack_properties = None
        self.session_present = None
        self._subacks = {}  # mid -> granted QoS / reason codes (ints)
        if self.v5:
            self._mqtt = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5,
                                     transport=transport)
        else:
            self._mqtt = mqtt.Client(client_id=client_id, clean_session=clean_session,
                                     protocol=mqtt.MQTTv311, transport=transport)
        if tls is not None:
            self._mqtt.tls_set(**tls)
        if username is not None:
            self._mqtt.username_pw_set(username, password)
        self._mqtt.on_connect = self._on_connect
        self._mqtt.on_subscribe = self._on_subscribe
        self._mqtt.on_message = self._on_message
        self._closed = False
        deadline = time.monotonic() + connect_timeout
        if self.v5:
            props = None
            if not clean_session:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = 300 if session_expiry is None else session_expiry
            self._mqtt.connect(host, port, keepalive=30, clean_start=clean_session,
                               properties=props)
        else:
            self._mqtt.connect(host, port, keepalive=30)
        try:  # Nagle + delayed ACK costs ~40 ms per QoS 1 round trip (MOSQUITTO.md §6)
            self._mqtt.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        self._mqtt.loop_start()
        with self._cond:
            while self._connected is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        if self._connected is not True:
            self.close()
            if self.connack_rc is not None:
                raise ConnectRefused(client_id, self.connack_rc)
            raise RuntimeError(f"MQTT connect of {client_id} failed: {self._connected}")
        if subscribe_response:
            self.subscribe(self.response_topic, timeout=max(0.5, deadline - time.monotonic()))

    # paho callbacks (network thread)
    def _on_connect(self, client, userdata, flags, rc, properties=None):
        code = getattr(rc, "value", rc)
        with self._cond:
            if self._connected is None:  # the first CONNACK decides (paho retries after refusals)
                self.connack_rc = int(code)
                self.connack_properties = properties  # MQTT 5 CONNACK properties, or None
                self.session_present = bool((flags or {}).get("session present"))
                self._connected = True if code == 0 else f"rc={rc}"
            self._cond.notify_all()

    def _on_subscribe(self, client, userdata, mid, granted, *rest):
        codes = [int(getattr(g, "value", g)) for g in (granted or ())]
        with self._cond:
            self._subacks[mid] = codes
            self._cond.notify_all()

    def _on_message(self, client, userdata, msg):
        try:
            message = json.loads(msg.payload.decode("utf-8"))
            if not isinstance(message, dict):
                message = {"_raw": msg.payload}
        except (UnicodeDecodeError, ValueError, RecursionError):
            message = {"_raw": msg.payload}
        entry = (msg.topic, message, getattr(msg, "properties", None))
        with self._cond:
            self._inbox.append(entry)
            self.history.append(entry)
            self._cond.notify_all()

    def subscribe(self, topic, qos=1, timeout=5.0):
        """Subscribes and waits for the SUBACK; returns its code (granted QoS, >= 0x80: refused)."""
        rc, mid = self._mqtt.subscribe(topic, qos)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"subscribe {topic}: rc={rc}")
        deadline = time.monotonic() + timeout
        with self._cond:
            while mid not in self._subacks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no SUBACK for {topic}")
                self._cond.wait(left)
            codes = self._subacks[mid]
        return codes[0] if codes else None

    def publish(self, topic, payload, qos=0, retain=False, timeout=5.0):
        """A plain MQTT publish (any topic); for QoS > 0 waits until the broker acknowledged it."""
        info = self._mqtt.publish(topic, self.encode(payload), qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish to {topic} failed: rc={info.rc}")
        if qos > 0:
            info.wait_for_publish(timeout)
            if not info.is_published():
                raise RuntimeError(f"publish to {topic}: no acknowledgement within {timeout} s")
        return info

    # sending
    @staticmethod
    def encode(msg):
        if isinstance(msg, (bytes, bytearray)):
            return bytes(msg)
        if isinstance(msg, str):
            return msg.encode("utf-8")
        return json.dumps(msg, separators=(",", ":")).encode("utf-8")

    @staticmethod
    def expected_id(msg):
        """The id the response must echo: the request's string id, else ""."""
        if isinstance(msg, dict):
            v = msg.get("id", "")
            return v if isinstance(v, str) else ""
        try:
            parsed = json.loads(SpecClient.encode(msg).decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return ""
        if isinstance(parsed, dict) and isinstance(parsed.get("id"), str):
            return parsed["id"]
        return ""

    def send_raw(self, payload, qos=1, topic=None, properties=None):
        info = self._mqtt.publish(topic or self.request_topic, self.encode(payload), qos=qos,
                                  properties=properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish failed: rc={info.rc}")
        return info

    def wait_for(self, predicate, timeout=5.0, what="a response"):
        """The first unclaimed message (topic, message, properties) with predicate true; claimed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, entry in enumerate(self._inbox):
                    if predicate(*entry):
                        del self._inbox[i]
                        return entry
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [m for _, m, _ in self._inbox][:5]
                    raise AssertionError(
                        f"{self.client_id}: no {what} within {timeout} s (unclaimed: {seen!r})")
                self._cond.wait(left)

    def wait_response(self, ids, timeout=5.0, topic=None):
        """The response on `topic` (default: our response topic) whose id is in `ids`."""
        if isinstance(ids, str):
            ids = (ids,)
        topic = topic or self.response_topic

        def match(t, m, p):
            return t == topic and m.get("id") in ids
        return self.wait_for(match, timeout, f"response with id in {list(ids)!r}")[1]

    def request(self, msg, timeout=5.0, qos=1, accept_ids=None):
        """Publishes `msg` (dict, str or bytes) and returns the response that echoes its id.

        Payloads without a usable id are answered with id "" (PROTOCOL.md §Requests); then the
        next response with id "" is taken. accept_ids widens the set of ids taken as the answer.
        """
        ids = {self.expected_id(msg)}
        if accept_ids:
            ids |= set(accept_ids)
        self.send_raw(msg, qos=qos)
        return self.wait_response(tuple(ids), timeout)

    def drain(self):
        """Unclaimed messages, cleared."""
        with self._cond:
            out, self._inbox = self._inbox, []
        return out

    def messages_on(self, topic):
        """Everything received so far on `topic` (claimed or not)."""
        with self._cond:
            return [m for t, m, _ in self.history if t == topic]

    def foreign_messages(self):
        """Everything received so far outside this client's own <prefix>/<id>/ tree."""
        own = f"{self.prefix}/{self.client_id}/"
        with self._cond:
            return [(t, m) for t, m, _ in self.history if not t.startswith(own)]

    def collect(self, n, timeout=10.0, topic=None):
        """The next n messages on `topic` (default: responses), in arrival order."""
        topic = topic or self.response_topic
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.client_id}: got {len(out)} of {n} messages")
            out.append(self.wait_for(lambda t, m, p: t == topic, left)[1])
        return out

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            self._mqtt.disconnect()
        except Exception:  # noqa: BLE001 - best effort
            pass
        try:
            self._mqtt.loop_stop()
        except Exception:  # noqa: BLE001
            pass


def v5_properties(response_topic=None, correlation_data=None):
    props = Properties(PacketTypes.PUBLISH)
    if response_topic is not None:
        props.ResponseTopic = response_topic
    if correlation_data is not None:
        props.CorrelationData = correlation_data
    return props
