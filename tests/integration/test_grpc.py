"""The gRPC front (admin.listen): mqttspec.v1.Query (Read, Create, Update, Delete, Meta) through
the same core as MQTT, its error mapping (gRPC status + trailing `mqttspec-error-code`), the
admin.token check, grpc.health.v1.Health and server reflection — in both broker modes, with
Debian's python3-grpcio as the third-party client. The Python messages are generated at test time
from proto/mqttspec/v1/query.proto with Debian's protoc.

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd MQTTSPEC_PLUGIN=/abs/.../mqttspec_mosquitto.so \\
       /usr/bin/python3 -m unittest -v test_grpc
"""

import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import harness
from harness import Service, ServiceTestCase, free_port, random_suffix

try:
    import grpc  # Debian's python3-grpcio
except ImportError:  # python3 from PATH may not be Debian's
    sys.path.append("/usr/lib/python3/dist-packages")
    import grpc
from google.protobuf import json_format, struct_pb2  # noqa: E402

TOKEN = "admin-" + random_suffix(12)


def wait_health(channel, want=b"\x08\x01", timeout=10):
    """Polls grpc.health.v1.Health/Check until it answers `want` (SERVING; NOT_SERVING is
    b"\x08\x02"): the service checks database and broker every second. Returns the last answer."""
    health = channel.unary_unary("/grpc.health.v1.Health/Check")
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = health(b"", timeout=5)
        if got == want:
            break
        time.sleep(0.1)
    return got


def load_query_pb2(test_case_cls):
    """Compiles query.proto with protoc into a temp dir; returns the module."""
    out = tempfile.mkdtemp(prefix="mqttspec-pb-")
    test_case_cls.addClassCleanup(shutil.rmtree, out, True)
    proto_dir = os.path.join(harness.REPO, "proto")
    subprocess.run(["protoc", f"--proto_path={proto_dir}", f"--python_out={out}",
                    os.path.join(proto_dir, "mqttspec", "v1", "query.proto")],
                   check=True, capture_output=True, timeout=60)
    sys.path.insert(0, out)
    try:
        return importlib.import_module("mqttspec.v1.query_pb2")
    finally:
        sys.path.remove(out)


class GrpcService(Service):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.grpc_port = free_port()

    no_token = False

    def config_dict(self):
        cfg = super().config_dict()
        cfg["admin"] = {"listen": f"127.0.0.1:{self.grpc_port}"}
        if not self.no_token:
            cfg["admin"]["token"] = TOKEN
        return cfg


class GrpcFrontBase(ServiceTestCase):
    MODE = "external"

    @classmethod
    def make_service(cls):
        return GrpcService(mode=cls.MODE, limits={"max_subscriptions_per_client": 1})

    @classmethod
    def setUpClass(cls):
        cls.pb = load_query_pb2(cls)
        super().setUpClass()
        cls.channel = grpc.insecure_channel(f"127.0.0.1:{cls.service.grpc_port}")
        cls.addClassCleanup(cls.channel.close)

    def rpc(self, method, token=TOKEN, client=None, timeout=10, **fields):
        """Calls mqttspec.v1.Query/<method>; returns the Response or raises grpc.RpcError."""
        pb = self.pb
        req = pb.Request(**{k: v for k, v in fields.items() if k not in ("data", "options")})
        if "data" in fields:
            json_format.ParseDict(fields["data"], req.data)
        if "options" in fields:
            json_format.ParseDict(fields["options"], req.options)
        metadata = []
        if token is not None:
            metadata.append(("authorization", f"Bearer {token}"))
        if client is not None:
            metadata.append(("mqttspec-client", client))
        call = self.channel.unary_unary(f"/mqttspec.v1.Query/{method}",
                                        request_serializer=pb.Request.SerializeToString,
                                        response_deserializer=pb.Response.FromString)
        return call(req, metadata=metadata, timeout=timeout)

    def rpc_error(self, method, **kw):
        with self.assertRaises(grpc.RpcError) as cm:
            self.rpc(method, **kw)
        err = cm.exception
        codes = dict(err.trailing_metadata() or ())
        return err.code(), err.details(), codes.get("mqttspec-error-code")

    @staticmethod
    def data(resp):
        return json_format.MessageToDict(resp.data)

    # ------------------------------------------------------------------------------------ tests

    def test_crud_and_meta_through_grpc_share_the_core_with_mqtt(self):
        name = "grpc " + random_suffix()
        created = self.data(self.rpc("Create", id="c1", entity="users",
                                     data={"name": name, "email": f"{name}@x"}))
        self.assertEqual(created["name"], name)
        self.assertEqual(created["status"], "active", "defaults apply as over MQTT")
        rid = str(int(created["id"]))
        self.assertEqual(self.data(self.rpc("Read", entity="users", record_id=rid))["name"], name)
        listed = self.rpc("Read", entity="users", options={
            "filters": [{"column": "name", "operator": "eq", "value": name}]})
        self.assertEqual([r["name"] for r in self.data(listed)], [name])
        self.assertEqual(json_format.MessageToDict(listed.metadata)["total"], 1)
        updated = self.data(self.rpc("Update", entity="users", record_id=rid,
                                     data={"status": "inactive"}))
        self.assertEqual(updated["status"], "inactive")
        meta = self.data(self.rpc("Meta", entity="users"))
        self.assertEqual(meta["primary_key"], "id")
        # The same row through MQTT.
        mqtt = self.service.client()
        resp = mqtt.request({"id": "m1", "type": "request", "operation": "read",
                             "entity": "users", "record_id": rid})
        self.assertEqual(self.assertOk(resp)["status"], "inactive")
        deleted = self.data(self.rpc("Delete", entity="users", record_id=rid))
        self.assertEqual(deleted["deleted"], True)
        code, _, proto_code = self.rpc_error("Read", entity="users", record_id=rid)
        self.assertEqual((code, proto_code), (grpc.StatusCode.NOT_FOUND, "not_found"))

    def test_device_twin_through_grpc(self):
        # A backend sets a twin request over gRPC (the same model, the same handler): the device
        # receives it over MQTT; a version conflict is ALREADY_EXISTS with code conflict.
        dev = self.service.client(f"dev-{random_suffix()}")
        dev.subscribe(f"spec/{dev.client_id}/twin/requests/+", qos=1)
        rid = f"{dev.client_id}/fw"
        row = self.data(self.rpc("Update", schema="mqttspec", entity="twin", record_id=rid,
                                 data={"request": {"version": "2.0"}}))
        self.assertEqual((row["id"], row["version"], row["in_sync"]), (rid, 1, False))
        topic = f"spec/{dev.client_id}/twin/requests/fw"
        self.assertEqual(dev.wait_for(lambda t, m, p: t == topic, 5, "the request")[1],
                         {"version": "2.0"})
        code, _, proto_code = self.rpc_error("Update", schema="mqttspec", entity="twin",
                                             record_id=rid,
                                             data={"request": {"version": "3.0"},
                                                   "expected_version": 7})
        self.assertEqual((code, proto_code), (grpc.StatusCode.ALREADY_EXISTS, "conflict"))
        dev.publish(f"spec/{dev.client_id}/twin/reports/fw", '{"version": "2.0"}', qos=1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            row = self.data(self.rpc("Read", schema="mqttspec", entity="twin", record_id=rid))
            if row["in_sync"]:
                break
            time.sleep(0.05)
        self.assertEqual((row["report"], row["in_sync"], row["version"]),
                         ({"version": "2.0"}, True, 1))

    def test_errors_map_to_status_codes_with_the_protocol_code(self):
        cases = [
            (dict(entity="nope"), grpc.StatusCode.NOT_FOUND, "model_not_found"),
            (dict(entity="users", options={"filters": [{"column": "nme", "operator": "eq",
                                                         "value": 1}]}),
             grpc.StatusCode.INVALID_ARGUMENT, "unknown_column"),
            (dict(entity="users", options={"cursor_forward": "abc"}),
             grpc.StatusCode.INVALID_ARGUMENT, "invalid_option"),
        ]
        for fields, status, proto_code in cases:
            with self.subTest(fields=fields):
                code, details, got = self.rpc_error("Read", **fields)
                self.assertEqual((code, got), (status, proto_code), details)
        code, _, got = self.rpc_error("Create", entity="users", data={"email": "no-name@x"})
        self.assertEqual((code, got), (grpc.StatusCode.INVALID_ARGUMENT, "invalid_value"))
        email = f"dup-{random_suffix()}@x"
        self.rpc("Create", entity="users", data={"name": "a", "email": email})
        code, _, got = self.rpc_error("Create", entity="users", data={"name": "b", "email": email})
        self.assertEqual((code, got), (grpc.StatusCode.ALREADY_EXISTS, "conflict"))

    def test_the_token_is_required(self):
        for token in (None, "wrong"):
            with self.subTest(token=token):
                code, _, _ = self.rpc_error("Meta", entity="users", token=token)
                self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)

    def test_a_repeated_write_with_the_same_id_is_applied_once_per_caller(self):
        name = "dedup " + random_suffix()
        first = self.rpc("Create", id="same", entity="users", data={"name": name}, client="svc-a")
        again = self.rpc("Create", id="same", entity="users", data={"name": name}, client="svc-a")
        self.assertEqual(self.data(first), self.data(again))
        other = self.rpc("Create", id="same", entity="users", data={"name": name}, client="svc-b")
        self.assertNotEqual(self.data(other)["id"], self.data(first)["id"])
        code, _, _ = self.rpc_error("Meta", entity="users", client="bad/name")
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)

    def test_subscribe_streams_changes_from_mqtt_and_grpc_and_ends_with_the_stream(self):
        import threading
        pb = self.pb
        req = pb.Request(entity="users")
        json_format.ParseDict({"filters": [{"column": "status", "operator": "eq",
                                            "value": "watched"}]}, req.options)
        stream = self.channel.unary_stream(
            "/mqttspec.v1.Query/Subscribe", request_serializer=pb.Request.SerializeToString,
            response_deserializer=pb.Notification.FromString)(
                req, metadata=[("authorization", f"Bearer {TOKEN}"), ("mqttspec-client", "watcher")],
                timeout=30)
        got, done = [], threading.Event()

        def read():
            try:
                for n in stream:
                    got.append(n)
                    if n.operation == "update":
                        done.set()
            except grpc.RpcError:
                pass
            done.set()
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        name = "watched " + random_suffix()
        # The subscription is made before the stream's first message: retry the first write
        # until it is seen (the stream has no "subscribed" message of its own).
        deadline = time.monotonic() + 10
        row = None
        while not got and time.monotonic() < deadline:
            row = self.data(self.rpc("Create", entity="users",
                                     data={"name": name, "status": "watched"}))
            time.sleep(0.3)
        self.assertTrue(got, "no notification arrived")
        rid = str(int(row["id"]))
        mqtt = self.service.client()  # a change made over MQTT reaches the gRPC stream too
        self.assertOk(mqtt.request({"id": "m", "type": "request", "operation": "update",
                                    "entity": "users", "record_id": rid,
                                    "data": {"status": "gone"}}))
        self.assertTrue(done.wait(10), f"got {len(got)} notifications")
        first, last = got[0], got[-1]
        self.assertEqual((first.operation, first.schema, first.entity),
                         ("create", "public", "users"))
        self.assertTrue(first.subscription_id.startswith("sub-") or first.subscription_id)
        self.assertEqual([n.seq for n in got], list(range(got[0].seq, got[0].seq + len(got))))
        self.assertEqual((last.operation, last.match), ("update", False),
                         "an update that leaves the filter is sent with match false")
        self.assertEqual(json_format.MessageToDict(last.data)["status"], "gone")
        stream.cancel()
        reader.join(5)
        # The cancelled stream's subscription has ended: with max_subscriptions_per_client 1,
        # the same caller may subscribe again (it gets too_many_subscriptions while the old one
        # lasts).
        deadline = time.monotonic() + 10
        code = None
        while time.monotonic() < deadline:
            again = self.channel.unary_stream(
                "/mqttspec.v1.Query/Subscribe", request_serializer=pb.Request.SerializeToString,
                response_deserializer=pb.Notification.FromString)(
                    req, metadata=[("authorization", f"Bearer {TOKEN}"),
                                   ("mqttspec-client", "watcher")], timeout=1.5)
            try:
                next(iter(again))
            except grpc.RpcError as e:
                code = e.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                break  # subscribed and waiting: the old subscription is gone
            self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)
            time.sleep(0.3)
        self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED)

    def test_subscribe_resumes_from_the_change_log(self):
        pb = self.pb
        name = "resumed " + random_suffix()
        since = int(json_format.MessageToDict(self.rpc("Read", entity="users").metadata)
                    ["change_seq"])
        rows = [self.data(self.rpc("Create", entity="users", data={"name": f"{name}-{i}"}))
                for i in range(3)]
        auth = [("authorization", f"Bearer {TOKEN}"), ("mqttspec-client", "resumer")]

        def subscribe(since_change_seq):
            req = pb.Request(entity="users")
            json_format.ParseDict({"filters": [{"column": "name", "operator": "starts_with",
                                                "value": name}],
                                   "since_change_seq": since_change_seq}, req.options)
            return self.channel.unary_stream(
                "/mqttspec.v1.Query/Subscribe", request_serializer=pb.Request.SerializeToString,
                response_deserializer=pb.Notification.FromString)(req, metadata=auth, timeout=10)

        stream, got = subscribe(since), []
        for n in stream:
            got.append(n)
            if n.operation == "replay_complete":
                break
        stream.cancel()
        self.assertEqual([n.operation for n in got], ["create"] * 3 + ["replay_complete"])
        self.assertEqual([int(json_format.MessageToDict(n.data)["id"]) for n in got[:3]],
                         [int(r["id"]) for r in rows])
        seqs = [n.change_seq for n in got[:3]]
        self.assertEqual(seqs, sorted(seqs))
        self.assertGreater(seqs[0], since)
        self.assertEqual((got[3].replayed, got[3].change_seq), (3, seqs[-1]))
        self.assertEqual([n.seq for n in got[:3]], [1, 2, 3])
        # Ahead of the log: refused before anything is streamed.
        with self.assertRaises(grpc.RpcError) as cm:
            next(iter(subscribe(seqs[-1] + 1000)))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertEqual(dict(cm.exception.trailing_metadata() or ()).get("mqttspec-error-code"),
                         "resync_required")

    def test_embedded_answers_still_wake_the_broker_with_grpc_in_the_process(self):
        """gRPC opens epoll sets of its own in the broker process: the eventfd wake-up must still
        find the broker's (the one watching its MQTT listener), else every MQTT answer waits for
        the broker's 100 ms tick — in the default configuration, which has admin.listen on."""
        if self.MODE != "embedded":
            self.skipTest("embedded mode only")
        c = self.service.client()
        self.assertEqual(c.request({"id": "w", "type": "ping"})["type"], "pong")
        with open(self.service.server_log_path) as f:
            log = f.read()
        self.assertIn("answers leave through the eventfd wake-up", log)
        self.assertNotIn("broker epoll set not found", log)

    def test_health_and_reflection(self):
        # HealthCheckRequest{service: ""} is empty; HealthCheckResponse{status: SERVING} = 08 01.
        self.assertEqual(wait_health(self.channel), b"\x08\x01")
        reflect = self.channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        # ServerReflectionRequest{list_services: ""} = field 7, empty string.
        answers = list(reflect(iter([b"\x3a\x00"]), timeout=5))
        self.assertEqual(len(answers), 1)
        self.assertIn(b"mqttspec.v1.Query", answers[0])
        self.assertIn(b"grpc.health.v1.Health", answers[0])


class GrpcFrontWithoutToken(GrpcFrontBase):
    """Without admin.token the data API refuses every call (it would bypass MQTT
    authentication); health and reflection still answer."""

    @classmethod
    def make_service(cls):
        svc = GrpcService(mode="external")
        svc.no_token = True
        return svc

    def test_the_data_api_needs_a_configured_token(self):
        for token in (None, "", TOKEN):
            with self.subTest(token=token):
                code, details, _ = self.rpc_error("Meta", entity="users", token=token)
                self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)
                self.assertIn("admin.token", details)
        self.assertEqual(wait_health(self.channel), b"\x08\x01")

    # The other tests need the data API.
    test_crud_and_meta_through_grpc_share_the_core_with_mqtt = None
    test_errors_map_to_status_codes_with_the_protocol_code = None
    test_the_token_is_required = None
    test_a_repeated_write_with_the_same_id_is_applied_once_per_caller = None
    test_health_and_reflection = None
    test_subscribe_streams_changes_from_mqtt_and_grpc_and_ends_with_the_stream = None
    test_subscribe_resumes_from_the_change_log = None
    test_device_twin_through_grpc = None


class GrpcFrontTls(unittest.TestCase):
    """admin.tls: the gRPC server speaks TLS; with ca_file it requires client certificates; bad
    files stop start-up with exit 2 naming the key."""

    @classmethod
    def setUpClass(cls):
        from test_tls import make_pki
        cls.pb = load_query_pb2(cls)
        d = tempfile.mkdtemp(prefix="mqttspec-pki-")
        os.chmod(d, 0o755)
        cls.addClassCleanup(shutil.rmtree, d, True)
        cls.pki = make_pki(d)

    def start(self, tls):
        svc = GrpcService(mode="external")
        base = svc.config_dict

        def config_dict():
            cfg = base()
            cfg["admin"]["tls"] = tls
            return cfg
        svc.config_dict = config_dict
        svc.start()
        self.addCleanup(svc.stop)
        return svc

    def meta(self, channel):
        call = channel.unary_unary("/mqttspec.v1.Query/Meta",
                                   request_serializer=self.pb.Request.SerializeToString,
                                   response_deserializer=self.pb.Response.FromString)
        return call(self.pb.Request(entity="users"),
                    metadata=[("authorization", f"Bearer {TOKEN}")], timeout=5)

    def test_tls_and_client_certificates(self):
        p = self.pki
        read = lambda name: open(p[name], "rb").read()  # noqa: E731
        svc = self.start({"cert_file": p["server.pem"], "key_file": p["server.key"],
                          "ca_file": p["ca.pem"]})
        target = f"localhost:{svc.grpc_port}"
        good = grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"), read("client.pem"))
        with grpc.secure_channel(target, good) as ch:
            self.assertEqual(json_format.MessageToDict(self.meta(ch).data)["primary_key"], "id")
        for label, creds in (
                ("no client certificate", grpc.ssl_channel_credentials(read("ca.pem"))),
                ("another CA's certificate", grpc.ssl_channel_credentials(
                    read("ca.pem"), read("rogue-client.key"), read("rogue-client.pem")))):
            with self.subTest(label), grpc.secure_channel(target, creds) as ch:
                with self.assertRaises(grpc.RpcError) as cm:
                    self.meta(ch)
                self.assertEqual(cm.exception.code(), grpc.StatusCode.UNAVAILABLE)
        with grpc.insecure_channel(f"127.0.0.1:{svc.grpc_port}") as ch:
            with self.assertRaises(grpc.RpcError):
                self.meta(ch)

    def test_mqttspecctl_speaks_tls_with_a_client_certificate(self):
        from test_ctl import run_ctl
        p = self.pki
        svc = self.start({"cert_file": p["server.pem"], "key_file": p["server.key"],
                          "ca_file": p["ca.pem"]})
        # 127.0.0.1 and the certificate's name given: resolving "localhost" would go through
        # gRPC's c-ares resolver, which leaks a few bytes (LeakSanitizer in the ASan run).
        addr = ["--addr", f"127.0.0.1:{svc.grpc_port}", "--token", TOKEN]
        tls = ["--server-name", "localhost", "--ca-file", p["ca.pem"],
               "--cert-file", p["client.pem"], "--key-file", p["client.key"]]
        r = run_ctl(*addr, *tls, "--json", "model", "public.users")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('"primary_key":"id"', r.stdout.replace(" ", ""))
        # The same from the environment.
        env = {"MQTTSPECCTL_ADDR": f"127.0.0.1:{svc.grpc_port}", "MQTTSPECCTL_TOKEN": TOKEN,
               "MQTTSPECCTL_CA_FILE": p["ca.pem"], "MQTTSPECCTL_CERT_FILE": p["client.pem"],
               "MQTTSPECCTL_KEY_FILE": p["client.key"], "MQTTSPECCTL_SERVER_NAME": "localhost"}
        r = run_ctl("status", env=env)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        # Without TLS, or without the client certificate: the daemon cannot be reached (exit 3).
        for label, args in (("plaintext", []),
                            ("no client certificate",
                             ["--server-name", "localhost", "--ca-file", p["ca.pem"]])):
            with self.subTest(label):
                r = run_ctl(*addr, *args, "--timeout", "2", "status")
                self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
                self.assertIn("cannot reach mqttspecd", r.stderr)
        # Unreadable files and a certificate without its key are usage errors naming the option.
        for args, named in ((["--ca-file", "/nonexistent/ca.pem"], "--ca-file"),
                            (["--cert-file", p["client.pem"]], "--key-file")):
            with self.subTest(named):
                r = run_ctl(*addr, *args, "status")
                self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
                self.assertIn(named, r.stderr)

    def test_a_bad_admin_tls_file_stops_start_up_with_exit_2(self):
        p = self.pki
        conf = os.path.join(tempfile.mkdtemp(prefix="mqttspec-grpc-"), "c.yaml")
        self.addCleanup(shutil.rmtree, os.path.dirname(conf), True)
        with open(conf, "w") as f:
            f.write(harness.to_yaml({"admin": {"listen": "127.0.0.1:0", "tls": {
                "cert_file": p["server.pem"], "key_file": p["client.key"]}}}))
        r = subprocess.run([harness.default_server_binary(), "--check-config", "--config", conf],
                           capture_output=True, text=True, timeout=15)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("admin.tls.key_file:", r.stderr)


class GrpcFrontExternal(GrpcFrontBase):
    MODE = "external"


class GrpcFrontEmbedded(GrpcFrontBase):
    MODE = "embedded"


del GrpcFrontBase  # only the two concrete classes run

if __name__ == "__main__":
    unittest.main()
