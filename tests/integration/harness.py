"""Shared helpers for the mqttspec integration and acceptance tests.

Starts the service in a temp dir, talks to it with paho-mqtt 1.6.1 (Debian's python3-paho-mqtt)
and tears everything down again, with every wait bounded in time. Only the standard library and
paho are used. Two modes (Service(mode=…), default from MQTTSPEC_MODE):
  external  a real Mosquitto broker plus mqttspecd as its client (broker.mode: external)
  embedded  mqttspecd alone (broker.mode: embedded): it execs Mosquitto with the mqttspec plugin,
            so the service's process is the broker (one PID, one log)
Two databases (Service(db=…), default from MQTTSPEC_DB):
  sqlite    a SQLite file in the service's temp dir (database.driver: sqlite)
  postgres  a fresh database of its own on a PostgreSQL server (database.driver: postgres),
            created at start and dropped at stop; read from outside with Debian's
            python3-psycopg2. Service.db_snapshot() and Service.db_query() work on both.

Environment:
  MQTTSPECD           absolute path of the server binary (default: <repo>/build/bin/mqttspecd)
  MOSQUITTO           broker binary (default: mosquitto from PATH, then /usr/sbin/mosquitto)
  MQTTSPEC_MODE       external (default) | embedded: the mode of Service() when none is given
  MQTTSPEC_KEEP_TMP   if set, the temp dirs are kept (and their paths printed)
  MQTTSPEC_LOG_LEVEL  mqttspecd's log.level (default: info)
  MQTTSPEC_DB         sqlite (default) | postgres: the database of Service() when none is given
  MQTTSPEC_PG_URL     postgres: the server's admin URL (postgresql://user@host:port/postgres) …
  MQTTSPEC_PG_URL_FILE  … or a file holding it (written by tests/pg/pgcluster.sh start <dir>)
"""

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

try:
    import paho.mqtt.client as mqtt
except ImportError:  # python3 from PATH may not be Debian's (e.g. pyenv): use Debian's paho
    for _p in ("/usr/lib/python3/dist-packages",):
        if os.path.isdir(os.path.join(_p, "paho")) and _p not in sys.path:
            sys.path.append(_p)
    import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PAHO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(mqtt.__file__))))

ISO_UTC_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

ERROR_CODES = {
    "invalid_json", "invalid_message", "invalid_operation", "model_not_found", "unknown_column",
    "invalid_filter", "invalid_option", "invalid_value", "not_found", "conflict", "forbidden",
    "hook_error", "payload_too_large", "rate_limited", "too_many_subscriptions", "timeout",
    "unavailable", "internal",
}

# The model of PROTOCOL.md §Configuration, exactly.
USERS_MODEL = {
    "name": "public.users",
    "primary_key": "id",
    "fields": [
        {"name": "id", "type": "integer", "auto_increment": True},
        {"name": "name", "type": "text", "nullable": False},
        {"name": "email", "type": "text", "unique": True},
        {"name": "status", "type": "text", "default": "active"},
        {"name": "created_at", "type": "timestamp", "default": "now"},
    ],
}

# A model with every field type; all but id and label are nullable.
THINGS_MODEL = {
    "name": "public.things",
    "primary_key": "id",
    "fields": [
        {"name": "id", "type": "integer", "auto_increment": True},
        {"name": "label", "type": "text", "nullable": False},
        {"name": "qty", "type": "integer"},
        {"name": "price", "type": "real"},
        {"name": "active", "type": "boolean"},
        {"name": "seen_at", "type": "timestamp"},
        {"name": "payload", "type": "json"},
        {"name": "note", "type": "text"},
    ],
}

# Many small rows (limit tests, ordering tests).
BULK_MODEL = {
    "name": "public.bulk",
    "primary_key": "id",
    "fields": [
        {"name": "id", "type": "integer", "auto_increment": True},
        {"name": "n", "type": "integer", "nullable": False},
        {"name": "tag", "type": "text"},
    ],
}


def default_mode():
    """The mode of a Service() that names none: $MQTTSPEC_MODE, else external."""
    mode = os.environ.get("MQTTSPEC_MODE", "").strip().lower() or "external"
    if mode not in ("external", "embedded"):
        raise RuntimeError(f"MQTTSPEC_MODE must be external or embedded, not {mode!r}")
    return mode


def default_db():
    """The database of a Service() that names none: $MQTTSPEC_DB, else sqlite."""
    db = os.environ.get("MQTTSPEC_DB", "").strip().lower() or "sqlite"
    if db not in ("sqlite", "postgres"):
        raise RuntimeError(f"MQTTSPEC_DB must be sqlite or postgres, not {db!r}")
    return db


def pg_admin_url():
    """The tests' PostgreSQL server: $MQTTSPEC_PG_URL, else the URL in $MQTTSPEC_PG_URL_FILE."""
    url = os.environ.get("MQTTSPEC_PG_URL", "").strip()
    if url:
        return url
    path = os.environ.get("MQTTSPEC_PG_URL_FILE", "").strip()
    if not path:
        raise RuntimeError("database postgres needs a server: set MQTTSPEC_PG_URL (admin URL) or "
                           "MQTTSPEC_PG_URL_FILE (written by tests/pg/pgcluster.sh start <dir>)")
    try:
        with open(path) as f:
            url = f.readline().strip()
    except OSError:
        url = ""
    if not url:
        raise RuntimeError(f"MQTTSPEC_PG_URL_FILE={path} is missing or empty: the PostgreSQL test "
                           "cluster is not running (ctest starts it with the pg.start fixture)")
    return url


def pg_url_with_database(url, database):
    """`url` (postgresql://user@host:port/db?params) with its database replaced."""
    rest = url.split("://", 1)
    head, tail = (rest[0] + "://", rest[1]) if len(rest) == 2 else ("", rest[0])
    query = ""
    if "?" in tail:
        tail, query = tail.split("?", 1)
        query = "?" + query
    authority = tail.split("/", 1)[0]
    return f"{head}{authority}/{database}{query}"


def psycopg2_module():
    """Debian's python3-psycopg2, also from a python3 that is not Debian's."""
    try:
        import psycopg2
    except ImportError:
        for p in ("/usr/lib/python3/dist-packages",):
            if os.path.isdir(os.path.join(p, "psycopg2")) and p not in sys.path:
                sys.path.append(p)
        import psycopg2
    return psycopg2


def pg_connect(url, autocommit=False):
    """A psycopg2 connection with bounded connect and statement times."""
    pg = psycopg2_module()
    conn = pg.connect(url, connect_timeout=5, options="-c statement_timeout=15000")
    conn.autocommit = autocommit
    return conn


def default_server_binary():
    return os.environ.get("MQTTSPECD") or os.path.join(REPO, "build", "bin", "mqttspecd")


def mosquitto_binary():
    env = os.environ.get("MOSQUITTO")
    if env:
        return env
    return shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port():
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, deadline, proc=None, what="process"):
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not accept connections on port {port} in time")


def random_suffix(n=8):
    return uuid.uuid4().hex[:n]


# --------------------------------------------------------------------------------------------- YAML

def _yaml_flow(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid YAML double-quoted scalar
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_yaml_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_flow(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v)} as YAML")


def _yaml_block(obj, indent):
    sp = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, (dict, list, tuple)) and v:
                out.append(f"{sp}{k}:")
                out.extend(_yaml_block(v, indent + 2))
            else:
                out.append(f"{sp}{k}: {_yaml_flow(v)}")
    else:
        for item in obj:
            nested = isinstance(item, dict) and any(
                isinstance(x, (dict, list, tuple)) and x for x in item.values())
            if nested:
                sub = _yaml_block(item, indent + 2)
                sub[0] = sp + "- " + sub[0][indent + 2:]
                out.extend(sub)
            else:
                out.append(f"{sp}- {_yaml_flow(item)}")
    return out


def to_yaml(obj):
    return "\n".join(_yaml_block(obj, 0)) + "\n"


# ------------------------------------------------------------------------------------------- client

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


# ------------------------------------------------------------------------------------------ service

class Service:
    """mqttspecd with a SQLite database in a temp dir, or (db="postgres") a PostgreSQL database
    of its own.

    mode "external": a Mosquitto broker plus mqttspecd as its client. mode "embedded": mqttspecd
    alone, which execs Mosquitto with the mqttspec plugin (the broker is self.server). The default
    mode is $MQTTSPEC_MODE (external if unset). client_username/client_password are used by the
    readiness probe and by client() when the broker requires credentials.
    """

    def __init__(self, extra_models=(), limits=None, log_level=None, server_binary=None,
                 broker_extra=None, mode=None, client_username=None, client_password=None,
                 db=None):
        self.mode = mode or default_mode()
        if self.mode not in ("external", "embedded"):
            raise ValueError(f"mode must be external or embedded, not {self.mode!r}")
        self.db = db or default_db()
        if self.db not in ("sqlite", "postgres"):
            raise ValueError(f"db must be sqlite or postgres, not {self.db!r}")
        self.pg_admin_url = None  # postgres: the server's admin URL
        self.pg_database = None   # postgres: this service's own database, while it exists
        self.pg_url = None        # postgres: database.url of the service
        self.client_username = client_username
        self.client_password = client_password
        self.probe_client_id = None  # the readiness probe's client id (default: random)
        self.models = [USERS_MODEL] + list(extra_models)
        self.broker_extra = dict(broker_extra or {})  # merged into the config's broker: section
        self.limits = dict(limits or {})
        self.log_level = log_level or os.environ.get("MQTTSPEC_LOG_LEVEL", "info")
        self.server_binary = server_binary or default_server_binary()
        self.tmp = None
        self.port = None
        self.broker = None
        self.server = None
        self.server_client_id = "mqttspec-server-" + random_suffix()
        self.clients = []
        self.final_log = ""
        self._files = []

    # paths
    @property
    def db_path(self):
        return os.path.join(self.tmp, "test.db")

    @property
    def server_log_path(self):
        return os.path.join(self.tmp, "mqttspecd.log")

    @property
    def broker_log_path(self):  # external mode; in embedded mode the broker logs to the server log
        return os.path.join(self.tmp, "mosquitto.log")

    @property
    def data_dir(self):  # embedded mode: broker.data_dir (generated mosquitto.conf, mosquitto.db)
        return os.path.join(self.tmp, "data")

    @property
    def config_path(self):
        return os.path.join(self.tmp, "mqttspecd.yaml")

    @property
    def embedded(self):
        return self.mode == "embedded"

    @property
    def postgres(self):
        return self.db == "postgres"

    def table_name(self, entity, schema="public"):
        """The model's table as `meta` names it: SQLite "users" / "<schema>_<entity>",
        PostgreSQL "<schema>.<entity>"."""
        if self.postgres:
            return f"{schema}.{entity}"
        return entity if schema == "public" else f"{schema}_{entity}"

    # lifecycle
    def start(self, timeout=10.0):
        if not os.path.isfile(self.server_binary) or not os.access(self.server_binary, os.X_OK):
            raise RuntimeError(f"mqttspecd not found or not executable: {self.server_binary} "
                               "(set MQTTSPECD)")
        self.tmp = tempfile.mkdtemp(prefix="mqttspec-it-")
        os.chmod(self.tmp, 0o755)
        try:
            if self.postgres:
                self._create_pg_database()
            if self.embedded:
                self.port = free_port()
            else:
                self._start_broker(timeout)
            self._start_server(timeout)
        except BaseException as e:
            log = self.log_tail()
            self._cleanup_processes()
            self._remove_tmp()
            self._drop_pg_database()
            raise RuntimeError(f"service did not start: {e}\n{log}") from None

    def restart_broker(self, down_s=0.0, timeout=10.0):
        """Stops the broker (SIGTERM), waits down_s, and starts it again on the same port.

        Embedded mode: the broker is mqttspecd itself: SIGTERM (it must exit 0 within 10 s, which
        also saves the broker's persistence), then mqttspecd starts again with the same port,
        data_dir and database; returns when it answers ping.
        """
        if self.embedded:
            self.stop_server()
            time.sleep(down_s)
            self._start_server(timeout)
            return
        self.broker.terminate()
        self.broker.wait(10)
        time.sleep(down_s)
        self._start_broker(timeout, port=self.port)

    def stop_server(self, timeout=10.0):
        """SIGTERM to mqttspecd; asserts exit code 0 within `timeout` s (killed otherwise)."""
        proc, self.server = self.server, None
        if proc is None:
            return
        if proc.poll() is not None:
            raise AssertionError(f"mqttspecd had already exited with code {proc.returncode}\n"
                                 + self.log_tail())
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
            raise AssertionError(f"mqttspecd did not exit within {timeout} s of SIGTERM\n"
                                 + self.log_tail()) from None
        if rc != 0:
            raise AssertionError(f"mqttspecd exited with code {rc} after SIGTERM\n"
                                 + self.log_tail())

    def _start_broker(self, timeout, port=None):
        self.port = port or free_port()
        conf = os.path.join(self.tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\n"
                    "allow_anonymous true\n"
                    "set_tcp_nodelay true\n"  # mandatory, MOSQUITTO.md §6
                    "persistence false\n"
                    "log_dest stdout\n"
                    "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
                    "user root\n")  # as root the broker would drop to user mosquitto
        os.chmod(conf, 0o644)
        log = open(self.broker_log_path, "ab")
        self._files.append(log)
        self.broker = subprocess.Popen([mosquitto_binary(), "-c", conf], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_port(self.port, time.monotonic() + timeout, self.broker, "mosquitto")

    def config_dict(self):
        if self.embedded:
            broker = {"mode": "embedded", "host": "127.0.0.1", "port": self.port,
                      "data_dir": self.data_dir, **self.broker_extra}
        else:
            broker = {"mode": "external", "url": f"tcp://127.0.0.1:{self.port}",
                      "client_id": self.server_client_id, **self.broker_extra}
        if self.postgres:
            database = {"driver": "postgres", "url": self.pg_url}
        else:
            database = {"driver": "sqlite", "path": self.db_path, "synchronous": "normal"}
        cfg = {
            "broker": broker,
            "database": database,
            "admin": {"listen": ""},
            "models": self.models,
            "log": {"level": self.log_level},
        }
        if self.limits:
            cfg["limits"] = self.limits
        return cfg

    def _start_server(self, timeout):
        conf = self.config_path
        with open(conf, "w") as f:
            f.write(to_yaml(self.config_dict()))
        os.chmod(conf, 0o644)
        log = open(self.server_log_path, "ab")  # appended across restarts
        self._files.append(log)
        self.server = subprocess.Popen([self.server_binary, "--config", conf], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       cwd=self.tmp)
        deadline = time.monotonic() + timeout
        if self.embedded:  # the broker is mqttspecd: wait for its listener
            wait_port(self.port, deadline, self.server, "mqttspecd (embedded)")
        probe_id = self.probe_client_id or ("mqttspec-probe-" + random_suffix())
        probe = SpecClient(self.port, probe_id, username=self.client_username,
                           password=self.client_password)
        try:
            while True:
                if self.server.poll() is not None:
                    raise RuntimeError(f"mqttspecd exited with code {self.server.returncode}")
                probe.send_raw({"type": "ping", "id": "p"})
                try:
                    m = probe.wait_for(lambda t, m, p: m.get("id") == "p", 0.5, "pong")[1]
                    if m.get("type") == "pong":
                        return
                    raise RuntimeError(f"ping answered with {m!r}")
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("mqttspecd did not answer ping in time") from None
        finally:
            probe.close()

    def client(self, client_id=None, protocol="3.1.1", prefix="spec", **kw):
        """A connected SpecClient (kw: clean_session, username, password, …, see SpecClient)."""
        if self.client_username is not None and "username" not in kw:
            kw["username"], kw["password"] = self.client_username, self.client_password
        c = SpecClient(self.port, client_id or ("it-" + random_suffix()), protocol=protocol,
                       prefix=prefix, **kw)
        self.clients.append(c)
        return c

    def alive(self):
        return self.server is not None and self.server.poll() is None

    def stop(self):
        """SIGTERM to mqttspecd: it must exit with 0 within 10 s. Always cleans everything up."""
        problems = []
        for c in self.clients:
            c.close()
        self.clients = []
        try:
            if self.server is not None:
                if self.server.poll() is not None:
                    problems.append(f"mqttspecd had already exited with code "
                                    f"{self.server.returncode} before SIGTERM")
                else:
                    self.server.send_signal(signal.SIGTERM)
                    try:
                        rc = self.server.wait(10)
                        if rc != 0:
                            problems.append(f"mqttspecd exited with code {rc} after SIGTERM")
                    except subprocess.TimeoutExpired:
                        problems.append("mqttspecd did not exit within 10 s of SIGTERM")
        finally:
            self.final_log = self.log_tail()
            self._cleanup_processes()
            self._remove_tmp()
            self._drop_pg_database()
        if problems:
            raise AssertionError("; ".join(problems) + "\n" + self.final_log)

    def _cleanup_processes(self):
        if self.broker is not None and self.broker.poll() is None:
            self.broker.terminate()  # a clean exit flushes the broker's log (stdout is a file)
            try:
                self.broker.wait(5)
            except subprocess.TimeoutExpired:
                pass
        for proc in (self.server, self.broker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        for f in self._files:
            try:
                f.close()
            except OSError:
                pass
        self._files = []

    def _remove_tmp(self):
        if self.tmp and os.path.isdir(self.tmp):
            if os.environ.get("MQTTSPEC_KEEP_TMP"):
                sys.stderr.write(f"[harness] kept {self.tmp}\n")
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tail(self, lines=120):
        out = []
        names = (("mqttspecd (with the embedded broker)" if self.embedded else "mqttspecd",
                  self.server_log_path if self.tmp else None),
                 ("mosquitto", self.broker_log_path if self.tmp else None))
        for name, path in names:
            if not path or not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace").splitlines()
            out.append(f"----- {name} log (last {min(lines, len(text))} of {len(text)} lines) -----")
            out.extend(text[-lines:])
        return "\n".join(out) if out else self.final_log

    # database, read-only and from outside the service
    def db_snapshot(self):
        """Every table's schema and rows: {table: (schema, rows sorted by repr)}.

        Tables are named as in SQLite ("users"; PostgreSQL: "users" for public.users, else
        "<schema>.<table>"). The schema is SQLite's CREATE statement, or on PostgreSQL a tuple of
        the columns (name, type, nullable, default, identity) and key/unique constraints. Read
        in one read-only transaction.
        """
        if self.postgres:
            return self._pg_snapshot()
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        try:
            snap = {}
            tables = conn.execute("SELECT name, sql FROM sqlite_master WHERE type='table' "
                                  "AND name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
            for name, sql in tables:
                quoted = '"' + name.replace('"', '""') + '"'
                rows = conn.execute(f"SELECT * FROM {quoted}").fetchall()
                snap[name] = (sql, sorted(rows, key=repr))
            return snap
        finally:
            conn.close()

    def db_query(self, sql, params=()):
        """Rows (tuples) of a read-only query with '?' placeholders, on SQLite or PostgreSQL
        (where "users" is public.users; values come as psycopg2 gives them)."""
        if not self.postgres:
            conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
            try:
                return conn.execute(sql, tuple(params)).fetchall()
            finally:
                conn.close()
        conn = pg_connect(self.pg_url)
        try:
            conn.set_session(readonly=True)
            with conn.cursor() as cur:
                cur.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(params))
                return cur.fetchall()
        finally:
            conn.rollback()
            conn.close()

    def _pg_snapshot(self):
        pg = psycopg2_module()
        conn = pg_connect(self.pg_url)
        try:
            conn.set_session(isolation_level=pg.extensions.ISOLATION_LEVEL_REPEATABLE_READ,
                             readonly=True)
            snap = {}
            with conn.cursor() as cur:
                cur.execute("SELECT table_schema, table_name FROM information_schema.tables "
                            "WHERE table_type = 'BASE TABLE' AND table_schema NOT IN "
                            "('pg_catalog', 'information_schema') ORDER BY 1, 2")
                tables = cur.fetchall()
                for schema, name in tables:
                    cur.execute("SELECT column_name, data_type, is_nullable, column_default, "
                                "is_identity FROM information_schema.columns WHERE "
                                "table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                                (schema, name))
                    columns = tuple(cur.fetchall())
                    cur.execute("SELECT tc.constraint_type, k.column_name FROM "
                                "information_schema.table_constraints tc JOIN "
                                "information_schema.key_column_usage k ON "
                                "k.constraint_schema = tc.constraint_schema AND "
                                "k.constraint_name = tc.constraint_name WHERE "
                                "tc.table_schema = %s AND tc.table_name = %s ORDER BY 1, 2",
                                (schema, name))
                    keys = tuple(cur.fetchall())
                    quoted = ".".join('"' + x.replace('"', '""') + '"' for x in (schema, name))
                    cur.execute(f"SELECT * FROM {quoted}")
                    rows = cur.fetchall()
                    key = name if schema == "public" else f"{schema}.{name}"
                    snap[key] = ((columns, keys), sorted(rows, key=repr))
            return snap
        finally:
            conn.rollback()
            conn.close()

    def _create_pg_database(self):
        self.pg_admin_url = pg_admin_url()
        name = "mqttspec_it_" + uuid.uuid4().hex[:12]
        conn = pg_connect(self.pg_admin_url, autocommit=True)
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        self.pg_database = name
        self.pg_url = pg_url_with_database(self.pg_admin_url, name)

    def _drop_pg_database(self):
        name, self.pg_database = self.pg_database, None
        if not name:
            return
        if os.environ.get("MQTTSPEC_KEEP_TMP"):
            sys.stderr.write(f"[harness] kept database {self.pg_url}\n")
            return
        try:
            conn = pg_connect(self.pg_admin_url, autocommit=True)
            try:
                with conn.cursor() as cur:
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                conn.close()
        except Exception as e:  # noqa: BLE001 - reported, the cluster is thrown away anyway
            sys.stderr.write(f"[harness] could not drop database {name}: {e}\n")


# ---------------------------------------------------------------------------------------- test base

class FailingStartTestCase(unittest.TestCase):
    """Tests that start mqttspecd with a configuration it must refuse: a temp dir, and every
    process started is killed at the end, whatever happens."""

    TMP_PREFIX = "mqttspec-it-start-"

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix=self.TMP_PREFIX)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.binary = default_server_binary()
        self.procs = []
        self.addCleanup(self._kill_all)

    def _kill_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)

    def run_config(self, cfg, timeout=15):
        """Writes `cfg`, runs mqttspecd with it and returns (exit code, output). Fails if it is
        still running after `timeout` s (i.e. it started serving instead of failing)."""
        conf = os.path.join(self.tmp, "c.yaml")
        with open(conf, "w") as f:
            f.write(to_yaml(cfg))
        p = subprocess.Popen([self.binary, "--config", conf], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp)
        self.procs.append(p)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate(timeout=5)
            self.fail(f"mqttspecd still running after {timeout} s:\n{out.decode(errors='replace')}")
        return p.returncode, out.decode("utf-8", "replace")


class ServiceTestCase(unittest.TestCase):
    """A broker + mqttspecd per class (default) or per test (SERVICE_PER_TEST = True)."""

    EXTRA_MODELS = ()
    LIMITS = None
    SERVICE_PER_TEST = False
    service = None

    @classmethod
    def make_service(cls):
        return Service(extra_models=cls.EXTRA_MODELS, limits=cls.LIMITS)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not cls.SERVICE_PER_TEST:
            svc = cls.make_service()
            svc.start()
            cls.service = svc
            cls.addClassCleanup(svc.stop)
            cls.seed_class()

    @classmethod
    def seed_class(cls):
        """Override to put rows in before the tests of a class-scoped service."""

    def setUp(self):
        super().setUp()
        if self.SERVICE_PER_TEST:
            svc = self.make_service()
            svc.start()
            self.service = svc
            self.addCleanup(svc.stop)

    def client(self, prefix="c", protocol="3.1.1"):
        return self.service.client(f"{prefix}-{random_suffix()}", protocol=protocol)

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        try:
            return super().run(result)
        finally:
            if len(result.failures) + len(result.errors) > before and self.service is not None:
                sys.stderr.write(f"\n===== service logs for {self.id()} =====\n")
                sys.stderr.write(self.service.log_tail() + "\n")

    # assertions shared by the suites
    def assertOk(self, resp, req_id=None, msg=None):
        self.assertIsInstance(resp, dict, msg)
        self.assertEqual(resp.get("type"), "response", f"{msg or ''} {resp!r}")
        self.assertIs(resp.get("success"), True, f"{msg or ''} expected success: {resp!r}")
        if req_id is not None:
            self.assertEqual(resp.get("id"), req_id, resp)
        return resp.get("data")

    def assertError(self, resp, codes, req_id=None, msg=None, request=None):
        """An error response whose code is `codes` (or one of them); message checked for leaks."""
        if isinstance(codes, str):
            codes = (codes,)
        self.assertIsInstance(resp, dict, msg)
        self.assertEqual(resp.get("type"), "response", f"{msg or ''} {resp!r}")
        self.assertIs(resp.get("success"), False, f"{msg or ''} expected failure: {resp!r}")
        if req_id is not None:
            self.assertEqual(resp.get("id"), req_id, resp)
        err = resp.get("error")
        self.assertIsInstance(err, dict, f"{msg or ''} no error object: {resp!r}")
        self.assertIn(err.get("code"), codes, f"{msg or ''} wrong error code: {resp!r}")
        self.assertIsInstance(err.get("message"), str, resp)
        self.assertMessageClean(err["message"], request)
        return err

    def assertMessageClean(self, message, request=None):
        """No SQL text, no 'sqlite', no filesystem path (input strings echoed back are removed)."""
        text = message
        for s in sorted(_strings_of(request), key=len, reverse=True):
            if len(s) >= 3:
                text = text.replace(s, "")
        for word in ("select", "insert", "sqlite"):
            self.assertNotIn(word, text.lower(), f"error message leaks {word!r}: {message!r}")
        for path in (self.service.tmp if self.service else None, REPO, "/tmp/", "/home/",
                     "/usr/", "/root/", "/work/", ".cc:", ".h:"):
            if path:
                self.assertNotIn(path, text, f"error message leaks a path: {message!r}")
        self.assertIsNone(re.search(r"(?:^|[\s'\"(=:])/(?:[\w.-]+/)+[\w.-]+", text),
                          f"error message leaks a path: {message!r}")


def _strings_of(obj):
    if obj is None:
        return []
    if isinstance(obj, (bytes, bytearray)):
        try:
            obj = json.loads(obj.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return []
    out = []
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.append(k)
            out.extend(_strings_of(v))
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            out.extend(_strings_of(v))
    return out
