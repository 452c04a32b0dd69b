"""The admin API (mqttspec.admin.v1.Admin on admin.listen, proto/mqttspec/admin/v1/admin.proto),
the Prometheus endpoint (admin.metrics_listen, GET /metrics) and grpc.health.v1.Health, against a
real mqttspecd in both broker modes, with real MQTT clients (SpecClient) and Debian's
python3-grpcio as the gRPC client. The Python messages are generated at test time from admin.proto
and query.proto with Debian's protoc.

  AdminExternal / AdminEmbedded   every RPC: GetStatus, ListClients, KickClient (embedded: the
                                  broker really disconnects the client; external:
                                  FAILED_PRECONDITION), ListSubscriptions (filters),
                                  CancelSubscription (MQTT notifications stop, a gRPC Subscribe
                                  stream ends ABORTED), ListModels / GetModel, ListHooks (the
                                  audit_log and tenant_isolation example plugins), GetMetrics and
                                  GET /metrics agreeing, WatchEvents (kinds, filters, cancelled
                                  streams, a watcher that falls behind is dropped), the token
  AdminLifecycleExternal/Embedded a service per test: health and broker_ok follow the broker
                                  connection (external); SIGTERM with open WatchEvents and
                                  Subscribe streams ends them and exits 0
  AdminHookFilters                embedded, jwt_auth + tenant_isolation: filters_json shows the
                                  filter a hook added
  AdminWithoutTokenOrPlugins      without admin.token the admin API answers without credentials;
                                  without plugins ListHooks is empty
  AdminPostgresOutage             a private PostgreSQL cluster (tests/pg/pgcluster.sh, started by
                                  the class itself) is stopped and started again: health
                                  NOT_SERVING / SERVING, database_ok, the data API and MQTT answer
                                  unavailable meanwhile, mqttspec_database_errors_total counts it

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd MQTTSPEC_PLUGIN=/abs/.../mqttspec_mosquitto.so \\
       MQTTSPEC_PLUGIN_DIR=/abs/build/lib/plugins /usr/bin/python3 -m unittest -v test_admin
(MQTTSPEC_PLUGIN_DIR defaults to <repo>/build/lib/plugins; the PostgreSQL class needs the
PostgreSQL server binaries, see tests/pg/pgcluster.sh, and is skipped without them.)
"""

import importlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import harness
from harness import ISO_UTC_MS, ServiceTestCase, free_port, random_suffix
from test_grpc import TOKEN, GrpcService, grpc
from google.protobuf import json_format  # noqa: E402 - after test_grpc made Debian's importable

PLUGIN_DIR = os.environ.get("MQTTSPEC_PLUGIN_DIR") or os.path.join(harness.REPO, "build", "lib",
                                                                     "plugins")
AUDIT_LOG = os.path.join(PLUGIN_DIR, "libaudit_log.so")
TENANT_ISOLATION = os.path.join(PLUGIN_DIR, "libtenant_isolation.so")
PGCLUSTER = os.path.join(harness.REPO, "tests", "pg", "pgcluster.sh")

SERVING, NOT_SERVING = b"\x08\x01", b"\x08\x02"  # grpc.health.v1.HealthCheckResponse

# The hooks the two example plugins register (plugins/*/…cc), all for every entity, priority 0.
EXPECTED_HOOKS = {
    ("audit_log", "AfterCreate"), ("audit_log", "AfterUpdate"), ("audit_log", "AfterDelete"),
    ("tenant_isolation", "BeforeRead"), ("tenant_isolation", "BeforeDelete"),
    ("tenant_isolation", "BeforeSubscribe"), ("tenant_isolation", "BeforeUpdate"),
    ("tenant_isolation", "BeforeCreate"),
}

# method: (request message, response message, server streaming)
ADMIN_METHODS = {
    "GetStatus": ("GetStatusRequest", "Status", False),
    "ListClients": ("ListClientsRequest", "ListClientsResponse", False),
    "KickClient": ("KickClientRequest", "KickClientResponse", False),
    "ListSubscriptions": ("ListSubscriptionsRequest", "ListSubscriptionsResponse", False),
    "CancelSubscription": ("CancelSubscriptionRequest", "CancelSubscriptionResponse", False),
    "ListModels": ("ListModelsRequest", "ListModelsResponse", False),
    "GetModel": ("GetModelRequest", "Model", False),
    "ListHooks": ("ListHooksRequest", "ListHooksResponse", False),
    "GetMetrics": ("GetMetricsRequest", "Metrics", False),
    "WatchEvents": ("WatchEventsRequest", "Event", True),
}

GAUGES = ("mqttspec_clients_connected", "mqttspec_subscriptions", "mqttspec_queue_depth",
          "mqttspec_notifications_total", "mqttspec_database_errors_total")

_PB2 = {}  # module name -> module: each generated module is imported once per process


def load_pb2(test_case_cls, *protos):
    """Compiles `protos` (paths under proto/, e.g. "mqttspec/admin/v1/admin.proto") with protoc
    into one temp dir (removed with the class) and returns their *_pb2 modules, in order. A module
    imported before (by this or another class) is reused: protobuf allows one import per file."""
    names = [p[:-len(".proto")].replace("/", ".") + "_pb2" for p in protos]
    missing = [p for p, n in zip(protos, names) if n not in _PB2 and n not in sys.modules]
    if missing:
        out = tempfile.mkdtemp(prefix="mqttspec-pb-")
        test_case_cls.addClassCleanup(shutil.rmtree, out, True)
        proto_dir = os.path.join(harness.REPO, "proto")
        subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={out}",
                        *[os.path.join(proto_dir, p) for p in missing]],
                       check=True, capture_output=True, timeout=60)
        sys.path.insert(0, out)
        try:
            for n in names:
                _PB2[n] = importlib.import_module(n)
        finally:
            sys.path.remove(out)
    for n in names:
        _PB2.setdefault(n, sys.modules.get(n))
    return [_PB2[n] for n in names]


class AdminService(GrpcService):
    """mqttspecd with admin.listen, admin.token (unless no_token), admin.metrics_listen on a free
    port and the hook plugins `plugins` (paths)."""

    def __init__(self, plugins=(), **kw):
        super().__init__(**kw)
        self.metrics_port = free_port()
        self.plugins = list(plugins)

    def config_dict(self):
        cfg = super().config_dict()
        cfg["admin"]["metrics_listen"] = f"127.0.0.1:{self.metrics_port}"
        if self.plugins:
            cfg["hooks"] = {"plugins": [{"path": p} for p in self.plugins]}
        return cfg


def auth_metadata(token=TOKEN, client=None):
    """Call metadata: `authorization: Bearer <token>` (None: none), `mqttspec-client`."""
    md = []
    if token is not None:
        md.append(("authorization", f"Bearer {token}"))
    if client is not None:
        md.append(("mqttspec-client", client))
    return md


def wait_until(predicate, timeout=10.0, what="the condition", interval=0.05):
    """Polls predicate() until it returns a true value (returned); AssertionError at the deadline
    naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s (last: {value!r})")
        time.sleep(interval)


def sample_key(name, labels):
    return name, tuple(sorted(labels.items()))


def parse_prometheus(text):
    """Prometheus text → ({(name, sorted label pairs): value}, {family: type})."""
    samples, types = {}, {}
    label_re = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ", 3)
            types[family] = kind
            continue
        if line.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$", line)
        if not m:
            raise AssertionError(f"not a sample line: {line!r}")
        labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                  for k, v in label_re.findall(m.group(2) or "")}
        samples[sample_key(m.group(1), labels)] = float(m.group(3))
    return samples, types


class Watch:
    """One WatchEvents stream read on a thread of its own: its events land in a queue. The stream
    is in place once the constructor returns (it waits for the response headers, which the server
    sends right after registering the watcher)."""

    def __init__(self, tc, token=TOKEN, timeout=60, channel=None, start_reading=True, **fields):
        pb = tc.admin_pb
        self.call = (channel or tc.channel).unary_stream(
            "/mqttspec.admin.v1.Admin/WatchEvents",
            request_serializer=pb.WatchEventsRequest.SerializeToString,
            response_deserializer=pb.Event.FromString)(
                pb.WatchEventsRequest(**fields), metadata=tc.metadata(token), timeout=timeout)
        self.call.initial_metadata()
        self.queue = queue.Queue()
        self.seen = []  # every event taken from the queue, in order
        self.error = None
        self.done = threading.Event()
        self.reader = None
        tc.addCleanup(self.cancel)
        if start_reading:
            self.start()

    def start(self):
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            for e in self.call:
                self.queue.put(e)
        except grpc.RpcError as e:
            self.error = e
        finally:
            self.done.set()

    def next(self, predicate=lambda e: True, timeout=10.0, what="an event"):
        """The next event with predicate true (the others are kept in self.seen)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [(e.kind, e.client_id, e.entity, e.code) for e in self.seen]
                raise AssertionError(f"no {what} within {timeout} s; seen: {seen} "
                                     f"(stream error: {self.error})")
            try:
                e = self.queue.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            self.seen.append(e)
            if predicate(e):
                return e

    def drain(self):
        """Takes whatever is queued now into self.seen."""
        while True:
            try:
                self.seen.append(self.queue.get_nowait())
            except queue.Empty:
                return self.seen

    def cancel(self):
        self.call.cancel()
        if self.reader is not None:
            self.reader.join(5)


class AdminBase(ServiceTestCase):
    MODE = "external"

    @classmethod
    def make_service(cls):
        for p in (AUDIT_LOG, TENANT_ISOLATION):
            if not os.path.isfile(p):
                raise RuntimeError(f"plugin not found: {p} (set MQTTSPEC_PLUGIN_DIR)")
        return AdminService(mode=cls.MODE, plugins=[AUDIT_LOG, TENANT_ISOLATION])

    @classmethod
    def setUpClass(cls):
        cls.admin_pb, cls.pb = load_pb2(cls, "mqttspec/admin/v1/admin.proto",
                                        "mqttspec/v1/query.proto")
        super().setUpClass()
        cls.channel = grpc.insecure_channel(f"127.0.0.1:{cls.service.grpc_port}")
        cls.addClassCleanup(cls.channel.close)

    @property
    def embedded(self):
        return self.MODE == "embedded"

    # ------------------------------------------------------------------------------ helpers

    metadata = staticmethod(auth_metadata)

    def admin(self, method, token=TOKEN, timeout=10, **fields):
        """Calls mqttspec.admin.v1.Admin/<method> (unary); the response or grpc.RpcError."""
        req_name, resp_name, streaming = ADMIN_METHODS[method]
        assert not streaming, method
        pb = self.admin_pb
        call = self.channel.unary_unary(
            f"/mqttspec.admin.v1.Admin/{method}",
            request_serializer=getattr(pb, req_name).SerializeToString,
            response_deserializer=getattr(pb, resp_name).FromString)
        return call(getattr(pb, req_name)(**fields), metadata=self.metadata(token),
                    timeout=timeout)

    def admin_error(self, method, **kw):
        """(status code, details) of an Admin call that must fail (WatchEvents: its stream)."""
        with self.assertRaises(grpc.RpcError) as cm:
            if ADMIN_METHODS[method][2]:
                token = kw.pop("token", TOKEN)
                pb = self.admin_pb
                stream = self.channel.unary_stream(
                    f"/mqttspec.admin.v1.Admin/{method}",
                    request_serializer=pb.WatchEventsRequest.SerializeToString,
                    response_deserializer=pb.Event.FromString)(
                        pb.WatchEventsRequest(**kw), metadata=self.metadata(token), timeout=10)
                next(iter(stream))
            else:
                self.admin(method, **kw)
        return cm.exception.code(), cm.exception.details()

    def query(self, method, client="svc", token=TOKEN, timeout=10, **fields):
        """Calls mqttspec.v1.Query/<method> as caller `client`; the Response or grpc.RpcError."""
        pb = self.pb
        req = pb.Request(**{k: v for k, v in fields.items() if k not in ("data", "options")})
        if "data" in fields:
            json_format.ParseDict(fields["data"], req.data)
        if "options" in fields:
            json_format.ParseDict(fields["options"], req.options)
        call = self.channel.unary_unary(f"/mqttspec.v1.Query/{method}",
                                        request_serializer=pb.Request.SerializeToString,
                                        response_deserializer=pb.Response.FromString)
        return call(req, metadata=self.metadata(token, client), timeout=timeout)

    def grpc_subscribe(self, client, filters, timeout=30):
        pb = self.pb
        req = pb.Request(entity="users")
        json_format.ParseDict({"filters": filters}, req.options)
        return self.channel.unary_stream(
            "/mqttspec.v1.Query/Subscribe", request_serializer=pb.Request.SerializeToString,
            response_deserializer=pb.Notification.FromString)(
                req, metadata=self.metadata(TOKEN, client), timeout=timeout)

    def mqtt(self, client, op, entity="users", **kw):
        """A request of `client` that must succeed; its data."""
        msg = {"id": f"{op}-{random_suffix()}", "type": "request", "operation": op,
               "entity": entity, **kw}
        return self.assertOk(client.request(msg, timeout=10), msg["id"])

    def mqtt_subscribe(self, client, filters):
        """subscribe over MQTT → (subscription_id, notify topic), the topic subscribed to."""
        msg = {"id": f"sub-{random_suffix()}", "type": "subscription", "operation": "subscribe",
               "entity": "users", "options": {"filters": filters}}
        data = self.assertOk(client.request(msg, timeout=10), msg["id"])
        self.assertLess(client.subscribe(data["notify_topic"]), harness.SUBACK_FAILURE)
        return data["subscription_id"], data["notify_topic"]

    def create_user(self, client, name, **fields):
        return self.mqtt(client, "create", data={"name": name, **fields})

    def clients_by_id(self):
        return {c.client_id: c for c in self.admin("ListClients").clients}

    def subscription_ids(self, **filters):
        return [s.subscription_id for s in self.admin("ListSubscriptions", **filters).subscriptions]

    def metrics(self):
        return {sample_key(s.name, dict(s.labels)): s.value
                for s in self.admin("GetMetrics").samples}

    def http_get(self, path):
        """(status, content type, body) of GET http://<metrics_listen><path>."""
        url = f"http://127.0.0.1:{self.service.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read().decode()

    def health(self):
        return self.channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)

    # -------------------------------------------------------------------------------- status

    def test_get_status(self):
        # The health thread looks every second: right after start-up it may not have seen the
        # broker connection yet.
        wait_until(lambda: self.health() == SERVING, timeout=5, what="health SERVING")
        st = self.admin("GetStatus")
        self.assertTrue(st.version)
        self.assertEqual(st.mode, self.MODE)
        self.assertEqual(st.database, "sqlite")
        self.assertTrue(st.database_ok)
        self.assertTrue(st.broker_ok)
        self.assertGreaterEqual(st.uptime_seconds, 0)
        models = self.admin("ListModels").models
        self.assertEqual(st.models, len(models))
        self.assertEqual(st.models, 3, "users, the audit_log plugin's model and the device twin")

        c = self.client("status")

        def agree():
            """GetStatus's counts, when they match ListClients / ListSubscriptions."""
            st = self.admin("GetStatus")
            listed = self.clients_by_id()
            connected = sorted(i for i, cl in listed.items() if cl.connected)
            subs = self.subscription_ids()
            again = self.admin("GetStatus")
            if (st.clients_connected, st.subscriptions) != (again.clients_connected,
                                                            again.subscriptions):
                return None  # moved meanwhile
            ok = st.clients_connected == len(connected) and st.subscriptions == len(subs)
            return ok and (st, connected, subs)
        if self.embedded:
            st, connected, _ = wait_until(lambda: (lambda r: r and c.client_id in r[1] and r)(
                agree()), what="clients_connected counting the new client")
            self.assertGreaterEqual(st.clients_connected, 1)
        else:
            st, connected, _ = wait_until(agree, what="the counts")
            self.assertEqual((st.clients_connected, connected), (0, []),
                             "external mode sees no connections")
        before = st.subscriptions
        sid, _ = self.mqtt_subscribe(c, [{"column": "status", "operator": "eq", "value": "x"}])
        st, _, subs = wait_until(agree, what="the counts")
        self.assertIn(sid, subs)
        self.assertEqual(st.subscriptions, before + 1)
        self.assertEqual(st.models, 3)
        c.close()
        if self.embedded:
            # A clean session: the disconnect ends its connection and its subscription.
            wait_until(lambda: (lambda r: r and c.client_id not in r[1] and sid not in r[2])(
                agree()), what="the counts after the disconnect")
        else:
            self.assertEqual(self.admin("GetStatus").clients_connected, 0)

    # ------------------------------------------------------------------------------- clients

    def test_list_clients_shows_requests_subscriptions_and_grpc_callers(self):
        c = self.client("lc")
        self.mqtt(c, "read", options={"limit": 1})
        self.mqtt(c, "meta")
        self.mqtt_subscribe(c, [{"column": "name", "operator": "eq", "value": "nobody"}])
        mine = wait_until(lambda: self.clients_by_id().get(c.client_id),
                          what=f"{c.client_id} in ListClients")
        wait_until(lambda: self.clients_by_id()[c.client_id].requests == 3,
                   what="its 3 requests counted")
        mine = self.clients_by_id()[c.client_id]
        self.assertEqual(mine.subscriptions, 1)
        self.assertEqual(mine.connected, self.embedded)
        self.assertEqual(mine.username, "")
        self.assertRegex(mine.connected_at, ISO_UTC_MS)

        before = self.clients_by_id().get("grpc:svc")
        self.query("Read", client="svc", entity="users", options={"limit": 1})
        wait_until(lambda: getattr(self.clients_by_id().get("grpc:svc"), "requests", 0)
                   == (before.requests if before else 0) + 1, what="grpc:svc counted")
        svc = self.clients_by_id()["grpc:svc"]
        self.assertFalse(svc.connected)
        self.assertEqual(svc.subscriptions, 0)
        self.assertRegex(svc.connected_at, ISO_UTC_MS)
        ids = [cl.client_id for cl in self.admin("ListClients").clients]
        self.assertEqual(ids, sorted(ids), "sorted by id")

    def test_kick_client(self):
        code, details = self.admin_error("KickClient", client_id="nobody-" + random_suffix())
        if not self.embedded:
            self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, details)
            c = self.client("kick")
            self.mqtt(c, "meta")
            code, details = self.admin_error("KickClient", client_id=c.client_id)
            self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, details)
            self.mqtt(c, "meta")  # still connected and served
            return
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)
        c = self.client("kick")
        # paho reconnects on its own after a lost connection: not within this test.
        c._mqtt.reconnect_delay_set(min_delay=60, max_delay=60)
        gone, why = threading.Event(), []

        def on_disconnect(client, userdata, rc, *rest):
            why.append(rc)
            gone.set()
        c._mqtt.on_disconnect = on_disconnect
        self.mqtt(c, "meta")
        wait_until(lambda: getattr(self.clients_by_id().get(c.client_id), "connected", False),
                   what="the client connected in ListClients")
        self.admin("KickClient", client_id=c.client_id)
        self.assertTrue(gone.wait(10), "the broker did not close the client's connection")
        self.assertNotEqual(why[0], 0, "not a disconnect of the client's own")
        wait_until(lambda: c.client_id not in self.clients_by_id(),
                   what="the kicked client gone from ListClients")
        code, details = self.admin_error("KickClient", client_id=c.client_id)
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)
        # A gRPC caller is never connected: nothing to kick.
        self.query("Meta", client="kickme", entity="users")
        code, _ = self.admin_error("KickClient", client_id="grpc:kickme")
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)

    # ------------------------------------------------------------------------- subscriptions

    def test_list_subscriptions_with_filters_and_seq(self):
        a, b = self.client("suba"), self.client("subb")
        tag = "tag-" + random_suffix()
        fa = [{"column": "status", "operator": "eq", "value": tag}]
        fb = [{"column": "name", "operator": "in", "value": ["x", "y"]},
              {"column": "email", "operator": "eq", "value": "never", "logic_operator": "OR"}]
        sid_a, topic_a = self.mqtt_subscribe(a, fa)
        sid_b, _ = self.mqtt_subscribe(b, fb)

        every = self.admin("ListSubscriptions").subscriptions
        self.assertLessEqual({sid_a, sid_b}, {s.subscription_id for s in every})
        only_a = self.admin("ListSubscriptions", client_id=a.client_id).subscriptions
        self.assertEqual([s.subscription_id for s in only_a], [sid_a])
        s = only_a[0]
        self.assertEqual((s.client_id, s.schema, s.entity, s.seq),
                         (a.client_id, "public", "users", 0))
        got = json.loads(s.filters_json)
        self.assertEqual([{k: f.get(k) for k in ("column", "operator", "value")} for f in got],
                         fa, s.filters_json)
        only_b = self.admin("ListSubscriptions", client_id=b.client_id).subscriptions
        got_b = json.loads(only_b[0].filters_json)
        self.assertEqual([(f["column"], f["operator"], f.get("value")) for f in got_b],
                         [("name", "in", ["x", "y"]), ("email", "eq", "never")],
                         only_b[0].filters_json)
        self.assertEqual(got_b[1].get("logic_operator"), "OR", only_b[0].filters_json)

        for entity in ("users", "public.users"):
            with self.subTest(entity=entity):
                self.assertEqual(self.subscription_ids(client_id=a.client_id, entity=entity),
                                 [sid_a])
                self.assertLessEqual({sid_a, sid_b}, set(self.subscription_ids(entity=entity)))
        for entity in ("audit_log", "nope", "other.users"):
            with self.subTest(entity=entity):
                self.assertEqual(self.subscription_ids(client_id=a.client_id, entity=entity), [])
        self.assertEqual(self.subscription_ids(client_id="nobody-" + random_suffix()), [])

        # A matching change: notified over MQTT, and seq moves to 1.
        self.create_user(b, "seq " + tag, status=tag)
        n = a.wait_for(lambda t, m, p: t == topic_a, 10, "a notification")[1]
        self.assertEqual((n["subscription_id"], n["seq"]), (sid_a, 1))
        wait_until(lambda: self.admin("ListSubscriptions",
                                      client_id=a.client_id).subscriptions[0].seq == 1,
                   what="seq 1 after a notification")
        self.create_user(b, "seq2 " + tag, status=tag)
        a.wait_for(lambda t, m, p: t == topic_a, 10, "a second notification")
        wait_until(lambda: self.admin("ListSubscriptions",
                                      client_id=a.client_id).subscriptions[0].seq == 2,
                   what="seq 2 after a second notification")
        self.assertEqual(self.admin("ListSubscriptions",
                                    client_id=b.client_id).subscriptions[0].seq, 0)

    def test_cancel_subscription_stops_its_mqtt_notifications(self):
        a, w = self.client("cancel"), self.client("writer")
        tag = "cancel-" + random_suffix()
        filters = [{"column": "status", "operator": "eq", "value": tag}]
        sid, topic = self.mqtt_subscribe(a, filters)
        sid_kept, topic_kept = self.mqtt_subscribe(a, filters)
        self.create_user(w, "before " + tag, status=tag)
        a.wait_for(lambda t, m, p: t == topic, 10, "a notification before the cancel")
        a.wait_for(lambda t, m, p: t == topic_kept, 10, "a notification on the kept one")

        before = self.admin("GetStatus").subscriptions
        self.admin("CancelSubscription", subscription_id=sid)
        self.assertNotIn(sid, self.subscription_ids())
        self.assertEqual(self.subscription_ids(client_id=a.client_id), [sid_kept])
        self.assertEqual(self.admin("GetStatus").subscriptions, before - 1)

        self.create_user(w, "after " + tag, status=tag)
        n = a.wait_for(lambda t, m, p: t == topic_kept, 10, "the kept subscription's notice")[1]
        self.assertEqual(n["seq"], 2)
        self.assertEqual(self.mqtt(a, "meta")["primary_key"], "id")  # one more round trip
        self.assertEqual(len(a.messages_on(topic)), 1,
                         "the cancelled subscription was notified after the cancel")

        for unknown in (sid, "sub-" + random_suffix(), ""):
            with self.subTest(subscription_id=unknown):
                code, details = self.admin_error("CancelSubscription", subscription_id=unknown)
                self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)

    def test_cancel_subscription_ends_a_grpc_subscribe_stream_with_aborted(self):
        name = "streamer-" + random_suffix()
        stream = self.grpc_subscribe(name, [{"column": "status", "operator": "eq",
                                             "value": "stream-" + random_suffix()}])
        self.addCleanup(stream.cancel)
        result = {}
        done = threading.Event()

        def read():
            try:
                for _ in stream:
                    pass
                result["code"] = grpc.StatusCode.OK
            except grpc.RpcError as e:
                result["code"], result["details"] = e.code(), e.details()
            done.set()
        threading.Thread(target=read, daemon=True).start()
        subs = wait_until(lambda: self.admin("ListSubscriptions",
                                             client_id=f"grpc:{name}").subscriptions,
                          what="the stream's subscription listed")
        self.assertEqual(len(subs), 1)
        self.assertEqual(subs[0].entity, "users")
        self.admin("CancelSubscription", subscription_id=subs[0].subscription_id)
        self.assertTrue(done.wait(10), "the Subscribe stream did not end")
        self.assertEqual(result["code"], grpc.StatusCode.ABORTED, result)
        self.assertEqual(self.subscription_ids(client_id=f"grpc:{name}"), [])

    # ------------------------------------------------------------------------ models, hooks

    def test_list_models_and_get_model(self):
        models = {m.name: m for m in self.admin("ListModels").models}
        self.assertEqual(list(models), sorted(models))
        self.assertEqual(set(models), {"public.users", "public.audit_log", "mqttspec.twin"})
        twin = models["mqttspec.twin"]  # built in (twin.enabled), a model like any
        self.assertEqual((twin.table, twin.primary_key, twin.client_access),
                         ("mqttspec.twin" if self.service.postgres else "mqttspec_twin", "id",
                          "read_write"))
        self.assertEqual([f.name for f in twin.fields],
                         ["id", "device_id", "key", "request", "requested_at", "report",
                          "reported_at", "version", "in_sync"])
        users = models["public.users"]
        self.assertEqual((users.table, users.primary_key, users.client_access),
                         ("users", "id", "read_write"))
        fields = {f.name: f for f in users.fields}
        self.assertEqual([f.name for f in users.fields],
                         ["id", "name", "email", "status", "created_at"])
        self.assertEqual((fields["id"].type, fields["id"].primary, fields["id"].auto_increment),
                         ("integer", True, True))
        self.assertEqual((fields["name"].type, fields["name"].nullable), ("text", False))
        self.assertTrue(fields["email"].unique)
        self.assertFalse(fields["name"].unique)
        self.assertEqual(fields["status"].default_value, "active")
        self.assertEqual(fields["name"].default_value, "")
        self.assertEqual((fields["created_at"].type, fields["created_at"].default_value),
                         ("timestamp", "now"))
        self.assertEqual(models["public.audit_log"].client_access, "none")
        for name in ("users", "public.users"):
            with self.subTest(name=name):
                self.assertEqual(self.admin("GetModel", name=name), users)
        self.assertEqual(self.admin("GetModel", name="audit_log").name, "public.audit_log")
        for name in ("nope", "public.nope", "other.users", "", "."):
            with self.subTest(name=name):
                code, details = self.admin_error("GetModel", name=name)
                self.assertEqual(code, grpc.StatusCode.NOT_FOUND, details)

    def test_list_hooks_shows_the_plugins_hooks(self):
        hooks = self.admin("ListHooks").hooks
        self.assertEqual({(h.plugin, h.hook) for h in hooks}, EXPECTED_HOOKS)
        self.assertEqual(len(hooks), len(EXPECTED_HOOKS))
        for h in hooks:
            self.assertEqual((h.entity, h.priority), ("", 0), h)

    # ------------------------------------------------------------------------------ metrics

    def test_get_metrics_and_http_metrics_agree(self):
        c = self.client("metrics")
        ok_mqtt = sample_key("mqttspec_requests_total",
                             {"front": "mqtt", "operation": "read", "code": "ok"})
        ok_grpc = sample_key("mqttspec_requests_total",
                             {"front": "grpc", "operation": "read", "code": "ok"})
        bad = sample_key("mqttspec_requests_total",
                         {"front": "mqtt", "operation": "unknown", "code": "model_not_found"})
        count = sample_key("mqttspec_request_duration_seconds_count", {"operation": "read"})
        notified = sample_key("mqttspec_notifications_total", {})
        before = self.metrics()
        tag = "m-" + random_suffix()
        _, topic = self.mqtt_subscribe(c, [{"column": "status", "operator": "eq", "value": tag}])
        self.create_user(c, "metrics " + tag, status=tag)
        c.wait_for(lambda t, m, p: t == topic, 10, "a notification")
        self.mqtt(c, "read", options={"limit": 1})
        self.mqtt(c, "read", options={"limit": 1})
        self.query("Read", client="metrics", entity="users", options={"limit": 1})
        msg = {"id": "bad", "type": "request", "operation": "read", "entity": "nope"}
        self.assertError(c.request(msg), "model_not_found")

        def counted():
            m = self.metrics()
            return (m.get(ok_mqtt, 0) == before.get(ok_mqtt, 0) + 2
                    and m.get(ok_grpc, 0) == before.get(ok_grpc, 0) + 1
                    and m.get(bad, 0) == before.get(bad, 0) + 1
                    and m.get(count, 0) == before.get(count, 0) + 3
                    and m.get(notified, 0) >= before.get(notified, 0) + 1) and m
        after = wait_until(counted, what="the requests counted")

        # The same figures both ways (retried if something moved between the two reads).
        for _ in range(5):
            first = self.metrics()
            status, ctype, body = self.http_get("/metrics")
            second = self.metrics()
            if first == second:
                break
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain"), ctype)
        http, types = parse_prometheus(body)
        self.assertEqual(first, second, "the figures kept moving")
        self.assertEqual(http, first)
        self.assertEqual(http[ok_mqtt], after[ok_mqtt])
        self.assertEqual(http[ok_grpc], after[ok_grpc])

        self.assertEqual(types.get("mqttspec_requests_total"), "counter")
        self.assertEqual(types.get("mqttspec_request_duration_seconds"), "histogram")
        buckets = {dict(labels)["le"]: v for (name, labels), v in http.items()
                   if name == "mqttspec_request_duration_seconds_bucket"
                   and dict(labels).get("operation") == "read"}
        self.assertIn("+Inf", buckets)
        self.assertEqual(len(buckets), 16, buckets)
        self.assertEqual(buckets["+Inf"], http[count], "+Inf bucket = _count (cumulative)")
        ordered = [buckets[le] for le in sorted(buckets, key=float)]
        self.assertEqual(ordered, sorted(ordered), f"buckets are cumulative: {buckets}")
        self.assertIn(sample_key("mqttspec_request_duration_seconds_sum", {"operation": "read"}),
                      http)
        for gauge in GAUGES:
            with self.subTest(gauge=gauge):
                self.assertIn(sample_key(gauge, {}), http)
                self.assertIn(gauge, types)
        st = self.admin("GetStatus")
        self.assertEqual(http[sample_key("mqttspec_subscriptions", {})], st.subscriptions)
        self.assertEqual(http[sample_key("mqttspec_clients_connected", {})], st.clients_connected)

        for path in ("/nope", "/", "/metrics/x"):
            with self.subTest(path=path):
                self.assertEqual(self.http_get(path)[0], 404)

    # ------------------------------------------------------------------------------ events

    def test_watch_request_events(self):
        c = self.client("wreq")
        w = Watch(self, kind="request", client_id=c.client_id)
        self.mqtt(c, "read", options={"limit": 1})
        self.assertError(c.request({"id": "bad", "type": "request", "operation": "read",
                                    "entity": "nope"}), "model_not_found")
        ok = w.next(what="the read's event")
        self.assertEqual((ok.kind, ok.client_id, ok.schema, ok.entity, ok.operation, ok.code,
                          ok.front), ("request", c.client_id, "public", "users", "read", "ok",
                                      "mqtt"))
        self.assertRegex(ok.timestamp, ISO_UTC_MS)
        self.assertGreater(ok.duration_ms, 0)
        self.assertEqual(ok.record_id, "")
        bad = w.next(what="the bad request's event")
        self.assertEqual((bad.kind, bad.client_id, bad.code, bad.front),
                         ("request", c.client_id, "model_not_found", "mqtt"))

        g = Watch(self, kind="request", client_id="grpc:wreq")
        self.query("Meta", client="wreq", entity="users")
        with self.assertRaises(grpc.RpcError):
            self.query("Read", client="wreq", entity="users", record_id="999999999")
        meta = g.next(what="the gRPC call's event")
        self.assertEqual((meta.client_id, meta.operation, meta.code, meta.front, meta.entity),
                         ("grpc:wreq", "meta", "ok", "grpc", "users"))
        missing = g.next(what="the failed gRPC call's event")
        self.assertEqual((missing.operation, missing.code, missing.front),
                         ("read", "not_found", "grpc"))

    def test_watch_change_events_with_record_ids(self):
        c = self.client("wchg")
        watches = [Watch(self, kind="change", entity=e) for e in ("users", "public.users")]
        row = self.create_user(c, "changes " + random_suffix())
        rid = str(row["id"])
        self.mqtt(c, "update", record_id=rid, data={"status": "inactive"})
        self.mqtt(c, "delete", record_id=rid)
        for w in watches:
            got = [w.next(lambda e: e.record_id == rid, what=f"change of {rid}")
                   for _ in range(3)]
            self.assertEqual([e.operation for e in got], ["create", "update", "delete"])
            for e in got:
                self.assertEqual((e.kind, e.schema, e.entity, e.client_id, e.code),
                                 ("change", "public", "users", "", ""), e)
                self.assertRegex(e.timestamp, ISO_UTC_MS)
            self.assertEqual({(e.kind, e.entity) for e in w.drain()}, {("change", "users")},
                             "the filters let only users changes through (not audit_log's)")

    def test_watch_filters_by_kind_client_and_entity(self):
        # Each watcher's stream is in publish order: once a watcher has its last expected event
        # (a marker made after everything else), what it got before is final.
        x, y = self.client("wx"), self.client("wy")
        marker = "marker-" + random_suffix()
        only_x = Watch(self, client_id=x.client_id)
        x_requests = Watch(self, kind="request", client_id=x.client_id)
        users_changes = Watch(self, kind="change", entity="users")
        audit = Watch(self, entity="public.audit_log")
        grpc_marker = Watch(self, client_id=f"grpc:{marker}")
        connects = Watch(self, kind="connect")

        self.mqtt(y, "meta")
        row = self.create_user(x, "filters " + random_suffix())
        self.mqtt(x, "meta")  # marker of only_x, x_requests
        last = self.create_user(y, "last " + random_suffix())  # of users_changes, audit
        self.query("Meta", client=marker, entity="users")  # of grpc_marker
        z = self.client("wz") if self.embedded else None  # of connects (embedded)

        only_x.next(lambda e: e.operation == "meta", what="x's meta")
        self.assertEqual([(e.kind, e.client_id, e.operation) for e in only_x.seen],
                         [("request", x.client_id, "create"), ("request", x.client_id, "meta")])
        x_requests.next(lambda e: e.operation == "meta", what="x's meta")
        self.assertEqual([(e.kind, e.client_id, e.operation) for e in x_requests.seen],
                         [("request", x.client_id, "create"), ("request", x.client_id, "meta")])
        users_changes.next(lambda e: e.record_id == str(last["id"]), what="y's change")
        self.assertEqual([(e.kind, e.entity, e.operation, e.record_id)
                          for e in users_changes.seen],
                         [("change", "users", "create", str(row["id"])),
                          ("change", "users", "create", str(last["id"]))])
        audit.next(lambda e: len(audit.seen) == 2, what="two audit rows' changes")
        self.assertEqual([(e.kind, e.schema, e.entity, e.operation) for e in audit.seen],
                         [("change", "public", "audit_log", "create")] * 2)
        grpc_marker.next(lambda e: e.kind == "request", what="the marker's request")
        # A gRPC caller's first call admits it (its connect hooks run): a connect event first.
        self.assertEqual([(e.kind, e.client_id, e.front) for e in grpc_marker.seen],
                         [("connect", f"grpc:{marker}", ""), ("request", f"grpc:{marker}", "grpc")])
        if z is not None:
            connects.next(lambda e: e.client_id == z.client_id, what="z's connect")
            self.assertEqual([(e.kind, e.client_id) for e in connects.seen],
                             [("connect", f"grpc:{marker}"), ("connect", z.client_id)])
        else:
            connects.next(what="the gRPC caller's connect")
            self.assertEqual([(e.kind, e.client_id) for e in connects.seen],
                             [("connect", f"grpc:{marker}")],
                             "external mode: MQTT clients' connects are not seen")

    def test_watch_connect_and_disconnect_events(self):
        cid = "wconn-" + random_suffix()
        w = Watch(self, client_id=cid)
        c = self.service.client(cid)
        self.mqtt(c, "meta")
        if not self.embedded:
            e = w.next(what="the request event")
            self.assertEqual(e.kind, "request")
            self.assertEqual([e.kind for e in w.seen], ["request"],
                             "external mode: no connect event (the broker is someone else's)")
            return
        first = w.next(what="the connect event")
        self.assertEqual((first.kind, first.client_id), ("connect", cid))
        self.assertRegex(first.timestamp, ISO_UTC_MS)
        w.next(lambda e: e.kind == "request", what="the request event")
        c.close()
        last = w.next(lambda e: e.kind != "request", what="the disconnect event")
        self.assertEqual((last.kind, last.client_id), ("disconnect", cid))
        kinds = Watch(self, kind="disconnect")
        c2 = self.service.client("wconn2-" + random_suffix())
        c2.close()
        e = kinds.next(what="a disconnect event")
        self.assertEqual((e.kind, e.client_id), ("disconnect", c2.client_id))

    def test_watch_unknown_kind_is_invalid_argument(self):
        for kind in ("requests", "REQUEST", "x" * 1000):
            with self.subTest(kind=kind[:20]):
                code, details = self.admin_error("WatchEvents", kind=kind)
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)

    def test_a_cancelled_watch_leaves_the_service_serving(self):
        c = self.client("wcancel")
        for _ in range(3):
            w = Watch(self, client_id=c.client_id)
            self.mqtt(c, "meta")
            w.next(what="an event")
            w.cancel()
            self.assertTrue(w.done.wait(5))
            self.assertEqual(w.error.code(), grpc.StatusCode.CANCELLED)
        # Cancelled before reading anything, with events waiting.
        idle = Watch(self, client_id=c.client_id, start_reading=False)
        self.mqtt(c, "meta")
        idle.cancel()
        self.mqtt(c, "meta")  # the service keeps answering
        self.assertEqual(self.admin("GetStatus").mode, self.MODE)
        w = Watch(self, client_id=c.client_id)
        self.mqtt(c, "meta")
        self.assertEqual(w.next(what="an event on a later watch").operation, "meta")

    def test_a_watcher_that_falls_behind_is_dropped_and_the_service_goes_on(self):
        # A stream that is not read: gRPC's flow control stops the server's writes, the
        # watcher's queue fills (4096 events) and it is dropped; requests keep being answered.
        # bdp_probe off keeps the client's receive window small (64 KiB), so few events fit.
        channel = grpc.insecure_channel(f"127.0.0.1:{self.service.grpc_port}",
                                        options=[("grpc.http2.bdp_probe", 0)])
        self.addCleanup(channel.close)
        flood = self.service.client("flood-" + random_suffix(), subscribe_response=False)
        w = Watch(self, channel=channel, client_id=flood.client_id, kind="request",
                  start_reading=False)
        pings = sample_key("mqttspec_requests_total",
                           {"front": "mqtt", "operation": "ping", "code": "ok"})
        start = self.metrics().get(pings, 0)
        target = 6000  # events: more than a 64 KiB window and the watcher's 4096 together
        sent, done = 0, 0
        deadline = time.monotonic() + 30
        while done < target:
            self.assertLess(time.monotonic(), deadline, f"{done} of {target} pings answered")
            if sent - done < 2000:
                for i in range(1000):
                    flood.send_raw({"type": "ping", "id": f"p{sent + i}"}, qos=0)
                sent += 1000
            else:
                time.sleep(0.05)
            done = self.metrics().get(pings, 0) - start
        # The service went on while the watcher was stuck.
        c = self.client("afterflood")
        self.assertEqual(self.mqtt(c, "meta")["primary_key"], "id")
        w.start()  # read now: what was sent, then the end
        self.assertTrue(w.done.wait(20), "the stream did not end")
        self.assertIsNotNone(w.error)
        self.assertEqual(w.error.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, w.error.details())
        got = w.drain()
        self.assertLess(len(got), done, "some events must have been lost")
        self.assertTrue(all((e.kind, e.operation) == ("request", "ping") for e in got))
        # A new watcher is served.
        again = Watch(self, client_id=c.client_id)
        self.mqtt(c, "meta")
        self.assertEqual(again.next(what="an event on a new watch").operation, "meta")

    # -------------------------------------------------------------------------------- token

    def test_every_admin_rpc_needs_the_token(self):
        for method in ADMIN_METHODS:
            for token in (None, "wrong", TOKEN + "x", ""):
                with self.subTest(method=method, token=token):
                    code, details = self.admin_error(method, token=token)
                    self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED, details)
        # A bare token (without "Bearer ") is not accepted either.
        call = self.channel.unary_unary(
            "/mqttspec.admin.v1.Admin/GetStatus",
            request_serializer=self.admin_pb.GetStatusRequest.SerializeToString,
            response_deserializer=self.admin_pb.Status.FromString)
        with self.assertRaises(grpc.RpcError) as cm:
            call(self.admin_pb.GetStatusRequest(), metadata=[("authorization", TOKEN)],
                 timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        # Nothing was done by the refused calls: the service still answers with the token.
        self.assertEqual(self.admin("GetStatus").mode, self.MODE)


class AdminExternal(AdminBase):
    MODE = "external"


class AdminEmbedded(AdminBase):
    MODE = "embedded"


del AdminBase  # only the two concrete classes run


class AdminHookFilters(ServiceTestCase):
    """Embedded mode with jwt_auth and tenant_isolation (as test_plugins.py runs them): the
    filters_json of a subscription shows the filter a hook added (tenant_id = the client's
    tenant) beside the client's own, and GetModel shows the tenant model."""

    @classmethod
    def make_service(cls):
        import test_plugins  # PyJWT, the docs model and the token helper
        cls.tp = test_plugins
        for p in (test_plugins.plugin_path("jwt_auth"), TENANT_ISOLATION):
            if not os.path.isfile(p):
                raise RuntimeError(f"plugin not found: {p} (set MQTTSPEC_PLUGIN_DIR)")

        class Svc(AdminService):
            def config_dict(self):
                cfg = super().config_dict()
                cfg["hooks"] = {"plugins": [
                    {"path": test_plugins.plugin_path("jwt_auth"),
                     "options": {"secret": test_plugins.SECRET}},
                    {"path": TENANT_ISOLATION}]}
                return cfg
        return Svc(mode="embedded", extra_models=(test_plugins.DOCS_MODEL,),
                   client_username=test_plugins.user_token("probe", "probe-tenant"))

    @classmethod
    def setUpClass(cls):
        cls.admin_pb, cls.pb = load_pb2(cls, "mqttspec/admin/v1/admin.proto",
                                        "mqttspec/v1/query.proto")
        super().setUpClass()
        cls.channel = grpc.insecure_channel(f"127.0.0.1:{cls.service.grpc_port}")
        cls.addClassCleanup(cls.channel.close)

    def call(self, method, **fields):
        req_name, resp_name, _ = ADMIN_METHODS[method]
        pb = self.admin_pb
        return self.channel.unary_unary(
            f"/mqttspec.admin.v1.Admin/{method}",
            request_serializer=getattr(pb, req_name).SerializeToString,
            response_deserializer=getattr(pb, resp_name).FromString)(
                getattr(pb, req_name)(**fields), metadata=auth_metadata(), timeout=10)

    def test_filters_json_shows_the_filter_a_hook_added(self):
        tp = self.tp
        alice = self.service.client("alice-" + random_suffix(),
                                    username=tp.user_token("alice", "A"))
        m = tp.sub_req("docs", [{"column": "title", "operator": "eq", "value": "t1"}])
        sid = self.assertOk(alice.request(m), m["id"])["subscription_id"]
        subs = self.call("ListSubscriptions", client_id=alice.client_id).subscriptions
        self.assertEqual([s.subscription_id for s in subs], [sid])
        got = [(f.get("column"), f.get("operator"), f.get("value"))
               for f in json.loads(subs[0].filters_json)]
        self.assertIn(("title", "eq", "t1"), got, subs[0].filters_json)
        self.assertIn(("tenant_id", "eq", "A"), got, subs[0].filters_json)
        self.assertEqual(len(got), 2, subs[0].filters_json)
        hooks = {(h.plugin, h.hook) for h in self.call("ListHooks").hooks}
        self.assertIn(("jwt_auth", "BeforeConnect"), hooks)
        self.assertIn(("tenant_isolation", "BeforeSubscribe"), hooks)
        docs = self.call("GetModel", name="docs")
        self.assertEqual([f.name for f in docs.fields], ["id", "tenant_id", "title", "n"])

    def test_a_token_given_as_username_is_never_shown(self):
        """jwt_auth reads the token from the MQTT username: the client's username becomes the
        verified user id, so ListClients (and mqttspecctl clients) never shows a credential."""
        tp = self.tp
        token = tp.user_token("bob", "B")
        bob = self.service.client("bob-" + random_suffix(), username=token)
        self.assertOk(bob.request({"id": "p", "type": "request", "operation": "meta", "entity": "docs"}), "p")
        clients = {c.client_id: c for c in self.call("ListClients").clients}
        self.assertEqual(clients[bob.client_id].username, "bob")
        for c in clients.values():
            self.assertNotIn(token, c.username)

    def test_a_grpc_callers_connect_hooks_run_once_per_identity(self):
        """A data-API caller meets BeforeConnect on its first call: without a JWT (jwt_auth) it
        is refused PERMISSION_DENIED; with one in `mqttspec-password` it is admitted, its claims
        apply (tenant_isolation stamps its tenant), and later calls do not run the hooks again
        (one connect event)."""
        tp = self.tp
        pb = self.pb
        name = "svc-" + random_suffix()

        def create(password=None, title="t"):
            md = auth_metadata() + [("mqttspec-client", name)]
            if password:
                md.append(("mqttspec-password", password))
            req = pb.Request(entity="docs")
            json_format.ParseDict({"title": title}, req.data)
            return self.channel.unary_unary(
                "/mqttspec.v1.Query/Create", request_serializer=pb.Request.SerializeToString,
                response_deserializer=pb.Response.FromString)(req, metadata=md, timeout=10)

        with self.assertRaises(grpc.RpcError) as cm:
            create()
        self.assertEqual(cm.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        row = json_format.MessageToDict(create(tp.user_token("svc", "T9")).data)
        self.assertEqual(row["tenant_id"], "T9")
        # Later calls need no credentials: the identity's state (claims) is kept while active.
        row2 = json_format.MessageToDict(create(title="again").data)
        self.assertEqual(row2["tenant_id"], "T9")
        clients = {c.client_id: c for c in self.call("ListClients").clients}
        self.assertEqual(clients["grpc:" + name].requests, 2)


class AdminWithoutTokenOrPlugins(ServiceTestCase):
    """Without admin.token the admin API answers without credentials (the data API does not);
    without hook plugins ListHooks is empty."""

    @classmethod
    def make_service(cls):
        svc = AdminService(mode="external")
        svc.no_token = True
        return svc

    @classmethod
    def setUpClass(cls):
        cls.admin_pb, cls.pb = load_pb2(cls, "mqttspec/admin/v1/admin.proto",
                                        "mqttspec/v1/query.proto")
        super().setUpClass()
        cls.channel = grpc.insecure_channel(f"127.0.0.1:{cls.service.grpc_port}")
        cls.addClassCleanup(cls.channel.close)

    def call(self, method, req, resp, metadata=()):
        return self.channel.unary_unary(
            f"/mqttspec.admin.v1.Admin/{method}",
            request_serializer=getattr(self.admin_pb, req).SerializeToString,
            response_deserializer=getattr(self.admin_pb, resp).FromString)(
                getattr(self.admin_pb, req)(), metadata=list(metadata), timeout=10)

    def test_admin_without_token_and_no_hooks(self):
        st = self.call("GetStatus", "GetStatusRequest", "Status")
        self.assertEqual((st.mode, st.database, st.models), ("external", "sqlite", 2))
        # Any token is ignored when none is configured.
        self.call("GetStatus", "GetStatusRequest", "Status", [("authorization", "Bearer x")])
        self.assertEqual(list(self.call("ListHooks", "ListHooksRequest",
                                        "ListHooksResponse").hooks), [])
        models = self.call("ListModels", "ListModelsRequest", "ListModelsResponse").models
        self.assertEqual([m.name for m in models], ["mqttspec.twin", "public.users"])
        with self.assertRaises(grpc.RpcError) as cm:
            self.channel.unary_unary(
                "/mqttspec.v1.Query/Meta", request_serializer=self.pb.Request.SerializeToString,
                response_deserializer=self.pb.Response.FromString)(
                    self.pb.Request(entity="users"), timeout=10)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAUTHENTICATED)


class AdminLifecycleBase(ServiceTestCase):
    """A service per test: health follows the broker connection (external mode), and SIGTERM
    with open WatchEvents and Subscribe streams stops the service cleanly, ending the streams."""

    MODE = "external"
    SERVICE_PER_TEST = True

    @classmethod
    def make_service(cls):
        return AdminService(mode=cls.MODE)

    @classmethod
    def setUpClass(cls):
        cls.admin_pb, cls.pb = load_pb2(cls, "mqttspec/admin/v1/admin.proto",
                                        "mqttspec/v1/query.proto")
        super().setUpClass()

    def setUp(self):
        super().setUp()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.service.grpc_port}")
        self.addCleanup(self.channel.close)

    metadata = staticmethod(auth_metadata)

    def status(self):
        return self.channel.unary_unary(
            "/mqttspec.admin.v1.Admin/GetStatus",
            request_serializer=self.admin_pb.GetStatusRequest.SerializeToString,
            response_deserializer=self.admin_pb.Status.FromString)(
                self.admin_pb.GetStatusRequest(), metadata=self.metadata(), timeout=10)

    def health(self):
        return self.channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)

    def test_health_follows_the_broker_connection(self):
        if self.MODE != "external":
            self.skipTest("embedded mode: the service is the broker")
        svc = self.service
        wait_until(lambda: self.health() == SERVING, timeout=5, what="health SERVING")
        svc.broker.terminate()
        svc.broker.wait(10)
        wait_until(lambda: self.health() == NOT_SERVING, timeout=10,
                   what="health NOT_SERVING without the broker")
        st = self.status()
        self.assertEqual((st.broker_ok, st.database_ok), (False, True))
        svc._start_broker(10, port=svc.port)  # the same port: mqttspecd reconnects
        wait_until(lambda: self.health() == SERVING, timeout=15,
                   what="health SERVING with the broker back")
        self.assertTrue(self.status().broker_ok)

    def test_sigterm_ends_open_streams_and_exits_0(self):
        watch = Watch(self)
        stream = self.channel.unary_stream(
            "/mqttspec.v1.Query/Subscribe", request_serializer=self.pb.Request.SerializeToString,
            response_deserializer=self.pb.Notification.FromString)(
                self.pb.Request(entity="users"), metadata=self.metadata(TOKEN, "stopper"),
                timeout=30)
        ended = threading.Event()

        def read():
            try:
                for _ in stream:
                    pass
            except grpc.RpcError:
                pass
            ended.set()
        threading.Thread(target=read, daemon=True).start()
        wait_until(lambda: self.status().subscriptions == 1, what="the stream's subscription")
        t0 = time.monotonic()
        self.service.stop_server(timeout=10)  # exit code 0 within 10 s, else it fails
        self.assertLess(time.monotonic() - t0, 8)
        self.assertTrue(watch.done.wait(5), "the WatchEvents stream did not end")
        self.assertTrue(ended.wait(5), "the Subscribe stream did not end")


class AdminLifecycleExternal(AdminLifecycleBase):
    MODE = "external"


class AdminLifecycleEmbedded(AdminLifecycleBase):
    MODE = "embedded"


del AdminLifecycleBase


def pg_unavailable():
    """Why a private PostgreSQL cluster cannot be started here, or None."""
    if not os.path.isfile(PGCLUSTER):
        return f"{PGCLUSTER} missing"
    bins = [os.environ.get("PG_BIN", ""), "/usr/lib/postgresql/15/bin"]
    bins += sorted(os.path.join("/usr/lib/postgresql", v, "bin")
                   for v in (os.listdir("/usr/lib/postgresql")
                             if os.path.isdir("/usr/lib/postgresql") else ()))
    if not any(b and os.access(os.path.join(b, "pg_ctl"), os.X_OK) for b in bins) \
            and not shutil.which("pg_config"):
        return "no PostgreSQL server binaries"
    try:
        harness.psycopg2_module()
    except ImportError:
        return "no python3-psycopg2"
    return None


class PgClusterService(AdminService):
    """An AdminService on PostgreSQL: a fresh database on the cluster of `admin_url`."""

    def __init__(self, admin_url, **kw):
        super().__init__(db="postgres", **kw)
        self.cluster_admin_url = admin_url

    def _create_pg_database(self):
        self.pg_admin_url = self.cluster_admin_url
        self.pg_database = harness.pg_create_database(self.pg_admin_url)
        self.pg_url = harness.pg_url_with_database(self.pg_admin_url, self.pg_database)


@unittest.skipIf(pg_unavailable(), pg_unavailable())
class AdminPostgresOutage(ServiceTestCase):
    """External mode (embedded adds nothing to the database's health) on a private PostgreSQL
    cluster of its own (tests/pg/pgcluster.sh, as user postgres on a free port, in a temp dir),
    which the test stops (pause) and starts again (resume)."""

    @classmethod
    def pgcluster(cls, cmd, timeout=120):
        env = dict(os.environ, PGCLUSTER_OWNER_PID=str(os.getpid()), PGCLUSTER_TTL_S="900")
        r = subprocess.run([PGCLUSTER, cmd, cls.pg_dir], capture_output=True, text=True,
                           timeout=timeout, env=env, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"pgcluster.sh {cmd}: exit {r.returncode}: {r.stderr}")
        return r.stdout.strip()

    @classmethod
    def make_service(cls):
        return PgClusterService(cls.pg_url, mode="external")

    @classmethod
    def setUpClass(cls):
        cls.admin_pb, cls.pb = load_pb2(cls, "mqttspec/admin/v1/admin.proto",
                                        "mqttspec/v1/query.proto")
        parent = tempfile.mkdtemp(prefix="mqttspec-admin-pg-")
        cls.addClassCleanup(shutil.rmtree, parent, True)
        cls.pg_dir = os.path.join(parent, "pg")
        cls.addClassCleanup(cls.pgcluster, "stop")
        cls.pg_url = cls.pgcluster("start").splitlines()[-1]
        super().setUpClass()  # the service's cleanup runs before the cluster's
        cls.channel = grpc.insecure_channel(f"127.0.0.1:{cls.service.grpc_port}")
        cls.addClassCleanup(cls.channel.close)

    def status(self):
        return self.channel.unary_unary(
            "/mqttspec.admin.v1.Admin/GetStatus",
            request_serializer=self.admin_pb.GetStatusRequest.SerializeToString,
            response_deserializer=self.admin_pb.Status.FromString)(
                self.admin_pb.GetStatusRequest(),
                metadata=[("authorization", f"Bearer {TOKEN}")], timeout=10)

    def health(self):
        return self.channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)

    def database_errors(self):
        samples = self.channel.unary_unary(
            "/mqttspec.admin.v1.Admin/GetMetrics",
            request_serializer=self.admin_pb.GetMetricsRequest.SerializeToString,
            response_deserializer=self.admin_pb.Metrics.FromString)(
                self.admin_pb.GetMetricsRequest(),
                metadata=[("authorization", f"Bearer {TOKEN}")], timeout=10).samples
        values = [s.value for s in samples if s.name == "mqttspec_database_errors_total"]
        self.assertEqual(len(values), 1)
        return values[0]

    def read(self):
        return self.channel.unary_unary(
            "/mqttspec.v1.Query/Read", request_serializer=self.pb.Request.SerializeToString,
            response_deserializer=self.pb.Response.FromString)(
                self.pb.Request(entity="users"),
                metadata=[("authorization", f"Bearer {TOKEN}")], timeout=15)

    def test_health_follows_the_database(self):
        wait_until(lambda: self.health() == SERVING, timeout=5, what="health SERVING")
        st = self.status()
        self.assertEqual((st.database, st.database_ok, st.broker_ok), ("postgres", True, True))
        self.assertEqual(self.health(), SERVING)
        self.read()
        errors = self.database_errors()

        self.pgcluster("pause")
        try:
            wait_until(lambda: self.health() == NOT_SERVING, timeout=10,
                       what="health NOT_SERVING with the database down")
            st = self.status()
            self.assertEqual((st.database_ok, st.broker_ok), (False, True))
            with self.assertRaises(grpc.RpcError) as cm:
                self.read()
            self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE,
                             cm.exception.details())
            codes = dict(cm.exception.trailing_metadata() or ())
            self.assertEqual(codes.get("mqttspec-error-code"), "unavailable")
            c = self.service.client()
            self.assertError(c.request({"id": "r", "type": "request", "operation": "read",
                                        "entity": "users"}, timeout=15), "unavailable")
            wait_until(lambda: self.database_errors() >= errors + 2,
                       what="mqttspec_database_errors_total counting the two failed reads")
        finally:
            self.pgcluster("resume")
        wait_until(lambda: self.health() == SERVING, timeout=15,
                   what="health SERVING with the database back")
        self.assertTrue(self.status().database_ok)
        self.read()


if __name__ == "__main__":
    unittest.main()
