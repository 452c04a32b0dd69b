"""TLS and WebSockets (issue 12): the embedded broker's TLS listeners (beside or instead of the
plain one, client certificates, the certificate's CN as the username hooks see), the external-mode
connection to an ssl:// broker, WebSocket (ws:// and wss://) with the seed's own JavaScript
client, and the start-up checks of the PEM files (exit 2 naming the key).

Every certificate is made with `openssl` at test time: a CA, a server certificate for
127.0.0.1/localhost, a client certificate (CN device-7) signed by the CA, and a client
certificate from a second, unrelated CA.

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd python3 -m unittest -v test_tls
"""

import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

from test_plugins import PLUGIN_DIR, PluginService
from harness import (THINGS_MODEL, FailingStartTestCase, Service, ServiceTestCase, SpecClient,
                     free_port, mosquitto_binary, random_suffix, server_env, to_yaml,
                     wait_port)

HERE = os.path.dirname(os.path.abspath(__file__))
ACCEPTANCE = os.path.join(os.path.dirname(HERE), "acceptance")
CLIENT_CN = "device-7"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True,
                   stdin=subprocess.DEVNULL, timeout=60)


def make_pki(d):
    """Writes ca.pem/ca.key, server.pem/server.key, client.pem/client.key (CN device-7) and
    rogue-client.pem/.key (signed by another CA) into d; returns {name: path}."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "rogue-ca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                "-subj", f"/CN=mqttspec test {ca}", cwd=d)
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn, ca, ext in (("server", "localhost", "ca", ["-extfile", "server.ext"]),
                              ("client", CLIENT_CN, "ca", []),
                              ("rogue-client", CLIENT_CN, "rogue-ca", [])):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
                cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", *ext, cwd=d)
    for f in os.listdir(d):
        os.chmod(os.path.join(d, f), 0o644)
    return {n: os.path.join(d, n) for n in os.listdir(d)}


class PkiMixin:
    @classmethod
    def pki(cls):
        if getattr(cls, "_pki", None) is None:
            d = tempfile.mkdtemp(prefix="mqttspec-pki-")
            os.chmod(d, 0o755)
            cls.addClassCleanup(shutil.rmtree, d, True)
            cls._pki = make_pki(d)
        return cls._pki


def ping(client):
    resp = client.request({"type": "ping", "id": "tls-ping"})
    return resp.get("type")


def create_thing(client, label):
    resp = client.request({"id": "c-" + random_suffix(), "type": "request", "operation": "create",
                           "schema": "public", "entity": "things", "data": {"label": label}})
    return resp


# ---------------------------------------------------------------------------------- embedded

class EmbeddedTlsListener(PkiMixin, ServiceTestCase):
    """broker.tls beside the plain listener, no client certificate required."""

    EXTRA_MODELS = (THINGS_MODEL,)

    @classmethod
    def make_service(cls):
        p = cls.pki()
        cls.tls_port = free_port()
        return Service(mode="embedded", extra_models=cls.EXTRA_MODELS, broker_extra={
            "tls": {"port": cls.tls_port, "cert_file": p["server.pem"],
                    "key_file": p["server.key"], "ca_file": p["ca.pem"]}})

    def tls_client(self, **tls):
        c = SpecClient(self.tls_port, "tls-" + random_suffix(), tls=tls)
        self.addCleanup(c.close)
        return c

    def test_requests_over_tls_and_plain_side_by_side(self):
        p = self.pki()
        for kw in ({"ca_certs": p["ca.pem"]},
                   {"ca_certs": p["ca.pem"], "certfile": p["client.pem"],
                    "keyfile": p["client.key"]}):
            with self.subTest(client_certificate="certfile" in kw):
                c = self.tls_client(**kw)
                self.assertEqual(ping(c), "pong")
                self.assertOk(create_thing(c, "over tls"))
        plain = self.service.client()
        self.assertEqual(ping(plain), "pong")
        with open(os.path.join(self.service.data_dir, "mosquitto.conf")) as f:
            conf = f.read()
        self.assertIn(f"listener {self.tls_port} 127.0.0.1\n", conf)
        self.assertIn("require_certificate false\n", conf)

    def test_a_client_that_does_not_trust_the_server_cannot_connect(self):
        with self.assertRaises((ssl.SSLError, OSError, RuntimeError)):
            SpecClient(self.tls_port, "tls-" + random_suffix(),
                       tls={"ca_certs": self.pki()["rogue-ca.pem"]}).close()
        self.assertTrue(self.service.alive())


class EmbeddedMutualTls(PkiMixin, ServiceTestCase):
    """require_certificate + use_identity_as_username: only certificates of ca_file get in, and
    the CN is the username (a hook writes the username it sees into the row)."""

    EXTRA_MODELS = (THINGS_MODEL,)

    @classmethod
    def make_service(cls):
        p = cls.pki()
        cls.tls_port = free_port()
        plugin = os.path.join(os.path.dirname(PLUGIN_DIR), "test_plugins",
                              "hooks_test_plugin_ok.so")
        svc = PluginService([{"path": plugin, "options": {"field": "note", "value": "$username"}}],
                            extra_models=cls.EXTRA_MODELS, client_username="probe", broker_extra={
            "allow_anonymous": False,
            "tls": {"port": cls.tls_port, "cert_file": p["server.pem"],
                    "key_file": p["server.key"], "ca_file": p["ca.pem"],
                    "require_certificate": True, "use_identity_as_username": True}})
        return svc

    def connect(self, **tls):
        c = SpecClient(self.tls_port, "mtls-" + random_suffix(),
                       tls={"ca_certs": self.pki()["ca.pem"], **tls})
        self.addCleanup(c.close)
        return c

    def test_the_certificates_cn_is_the_username_hooks_see(self):
        p = self.pki()
        c = self.connect(certfile=p["client.pem"], keyfile=p["client.key"])
        row = self.assertOk(create_thing(c, "identity"))
        self.assertEqual(row["note"], CLIENT_CN)
        # On the plain listener the username is the one sent in CONNECT.
        plain = self.service.client()
        self.assertEqual(self.assertOk(create_thing(plain, "plain"))["note"], "probe")

    def test_without_a_certificate_of_the_ca_the_connection_is_refused(self):
        p = self.pki()
        for label, kw in (("no certificate", {}),
                          ("another CA's certificate", {"certfile": p["rogue-client.pem"],
                                                        "keyfile": p["rogue-client.key"]})):
            with self.subTest(label):
                with self.assertRaises((ssl.SSLError, OSError, RuntimeError)):
                    self.connect(**kw)
        self.assertTrue(self.service.alive())


class EmbeddedTlsOnly(PkiMixin, FailingStartTestCase):
    """broker.port: 0 — the TLS listener instead of the plain one."""

    def test_port_0_serves_tls_only(self):
        p = self.pki()
        plain, tls_port = free_port(), free_port()
        cfg = {"broker": {"mode": "embedded", "port": 0, "data_dir": os.path.join(self.tmp, "d"),
                          "tls": {"port": tls_port, "cert_file": p["server.pem"],
                                  "key_file": p["server.key"]}},
               "database": {"driver": "sqlite", "path": os.path.join(self.tmp, "t.db")},
               "admin": {"listen": ""}}
        conf = os.path.join(self.tmp, "c.yaml")
        with open(conf, "w") as f:
            f.write(to_yaml(cfg))
        log = open(os.path.join(self.tmp, "log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen([self.binary, "--config", conf], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp,
                                env=server_env())
        self.procs.append(proc)
        wait_port(tls_port, time.monotonic() + 10, proc, "mqttspecd (tls only)")
        c = None
        for _ in range(40):  # the plugin's first TICK installs the wake-up
            try:
                c = SpecClient(tls_port, "tlsonly-" + random_suffix(),
                               tls={"ca_certs": p["ca.pem"]})
                if ping(c) == "pong":
                    break
            except AssertionError:
                pass
        self.assertIsNotNone(c)
        c.close()
        with open(os.path.join(self.tmp, "d", "mosquitto.conf")) as f:
            generated = f.read()
        self.assertEqual(re.findall(r"(?m)^listener .*$", generated), [f"listener {tls_port} 127.0.0.1"])
        proc.terminate()
        self.assertEqual(proc.wait(10), 0)
        del plain


# ---------------------------------------------------------------------------------- external

class TlsBrokerService(Service):
    """External mode against a bare Mosquitto with a plain listener (for the test clients) and a
    TLS listener that requires a client certificate of the CA (for the service)."""

    def __init__(self, pki, service_tls, **kw):
        self.pki = pki
        self.tls_port = free_port()
        super().__init__(mode="external", **kw)
        self.broker_extra.update({"url": f"ssl://127.0.0.1:{self.tls_port}", "tls": service_tls,
                                  "reconnect": {"min_s": 0.2, "max_s": 0.5}})

    def _start_broker(self, timeout, port=None):
        self.port = port or free_port()
        conf = os.path.join(self.tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"per_listener_settings false\nset_tcp_nodelay true\nallow_anonymous true\n"
                    f"user root\nlog_dest stdout\npersistence false\n"
                    f"listener {self.port} 127.0.0.1\n"
                    f"listener {self.tls_port} 127.0.0.1\n"
                    f"cafile {self.pki['ca.pem']}\ncertfile {self.pki['server.pem']}\n"
                    f"keyfile {self.pki['server.key']}\nrequire_certificate true\n")
        log = open(self.broker_log_path, "ab")
        self._files.append(log)
        self.broker = subprocess.Popen([mosquitto_binary(), "-c", conf], stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_port(self.port, time.monotonic() + timeout, self.broker, "mosquitto")
        wait_port(self.tls_port, time.monotonic() + timeout, self.broker, "mosquitto (tls)")


class ExternalTls(PkiMixin, unittest.TestCase):
    def test_service_connects_to_an_ssl_broker_with_its_client_certificate(self):
        p = self.pki()
        svc = TlsBrokerService(p, {"ca_file": p["ca.pem"], "cert_file": p["client.pem"],
                                   "key_file": p["client.key"]})
        svc.start()
        self.addCleanup(svc.stop)
        c = svc.client()
        self.assertEqual(ping(c), "pong")
        with open(svc.server_log_path, "rb") as f:
            log = f.read().decode("utf-8", "replace")
        self.assertIn(f"connected to broker ssl://127.0.0.1:{svc.tls_port}", log)

    def test_a_broker_the_service_does_not_trust_is_retried_with_backoff_and_logged(self):
        p = self.pki()
        svc = TlsBrokerService(p, {"ca_file": p["rogue-ca.pem"], "cert_file": p["client.pem"],
                                   "key_file": p["client.key"]})
        with self.assertRaises(RuntimeError) as cm:  # never answers ping: not connected
            svc.start(timeout=3)
        log = str(cm.exception)  # with the tail of the service's log
        attempts = [int(n) for n in re.findall(r"failed \(attempt (\d+)\)", log)]
        self.assertGreaterEqual(len(attempts), 2, log)
        self.assertEqual(attempts, list(range(1, len(attempts) + 1)), "each attempt logged")
        # min_s 0.2, max_s 0.5 over ~3 s: at most 3 / 0.2 attempts — never a tight loop.
        self.assertLessEqual(len(attempts), 16, log)
        waits = [float(w) for w in re.findall(r"next attempt in ([0-9.]+) s", log)]
        self.assertTrue(all(0.2 <= w <= 0.5 for w in waits), waits)


# -------------------------------------------------------------------------------- websockets

class WebSockets(PkiMixin, ServiceTestCase):
    """broker.websocket_port (ws) and broker.tls.websocket_port (wss), used by the seed's
    JavaScript client (MQTT.js) and by paho."""

    @classmethod
    def make_service(cls):
        p = cls.pki()
        cls.ws_port, cls.tls_port, cls.wss_port = free_port(), free_port(), free_port()
        return Service(mode="embedded", broker_extra={
            "websocket_port": cls.ws_port,
            "tls": {"port": cls.tls_port, "websocket_port": cls.wss_port,
                    "cert_file": p["server.pem"], "key_file": p["server.key"]}})

    def run_seed_js(self, url, env=None):
        sys.path.insert(0, ACCEPTANCE)
        from test_seed_js_client import CLIENT, ensure_node_modules
        node = ensure_node_modules(self)
        setup = self.service.client()
        self.assertOk(setup.request({"id": "c1", "type": "request", "operation": "create",
                                     "schema": "public", "entity": "users",
                                     "data": {"name": "WS Reader " + random_suffix()}}))
        cid = "client-ws-" + random_suffix()
        proc = subprocess.run([node, CLIENT, "127.0.0.1", "0", cid], cwd=ACCEPTANCE,
                              env={**os.environ, "MQTT_URL": url, **(env or {})},
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        out = proc.stdout.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, out + proc.stderr.decode("utf-8", "replace"))
        self.assertIn("Connected to MQTT broker", out)
        self.assertRegex(out, r"\btype: 'response'")
        self.assertRegex(out, r"\bsuccess: true")
        self.assertIn("WS Reader", out)

    def test_seed_js_client_over_ws(self):
        self.run_seed_js(f"ws://127.0.0.1:{self.ws_port}")

    def test_seed_js_client_over_wss(self):
        self.run_seed_js(f"wss://localhost:{self.wss_port}",
                         env={"NODE_EXTRA_CA_CERTS": self.pki()["ca.pem"]})

    def test_paho_over_ws_and_wss(self):
        for port, tls in ((self.ws_port, None), (self.wss_port, {"ca_certs": self.pki()["ca.pem"]})):
            with self.subTest(tls=tls is not None):
                c = SpecClient(port, "pws-" + random_suffix(), transport="websockets", tls=tls)
                self.addCleanup(c.close)
                self.assertEqual(ping(c), "pong")


# --------------------------------------------------------------------------- start-up checks

class TlsFilesCheckedAtStartUp(PkiMixin, FailingStartTestCase):
    def base(self, tls, mode="embedded"):
        broker = {"mode": mode, "tls": tls, "data_dir": os.path.join(self.tmp, "d"),
                  "port": free_port()}
        if mode == "external":
            broker["url"] = "ssl://127.0.0.1:1"
        return {"broker": broker, "admin": {"listen": ""},
                "database": {"driver": "sqlite", "path": os.path.join(self.tmp, "t.db")}}

    def assertRefused(self, cfg, key, *fragments):
        for extra in ([], ["--check-config"]):
            with self.subTest(key=key, check_config=bool(extra)):
                conf = os.path.join(self.tmp, "c.yaml")
                with open(conf, "w") as f:
                    f.write(to_yaml(cfg))
                proc = subprocess.run([self.binary, "--config", conf, *extra], cwd=self.tmp,
                                      capture_output=True, stdin=subprocess.DEVNULL, timeout=15)
                out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
                self.assertEqual(proc.returncode, 2, out)
                self.assertIn(f"configuration error: {key}:", out)
                for frag in fragments:
                    self.assertIn(frag, out)

    def test_wrong_paths_and_unusable_files_fail_with_exit_2_naming_the_key(self):
        p = self.pki()
        garbage = os.path.join(self.tmp, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("not a key\n")
        good = {"cert_file": p["server.pem"], "key_file": p["server.key"]}
        missing = os.path.join(self.tmp, "nope.pem")
        self.assertRefused(self.base({**good, "cert_file": missing}), "broker.tls.cert_file",
                           "No such file")
        self.assertRefused(self.base({**good, "key_file": missing}), "broker.tls.key_file")
        self.assertRefused(self.base({**good, "key_file": garbage}), "broker.tls.key_file",
                           "no unencrypted PEM private key")
        self.assertRefused(self.base({**good, "key_file": p["client.key"]}),
                           "broker.tls.key_file", "is not the private key")
        self.assertRefused(self.base({**good, "ca_file": garbage}), "broker.tls.ca_file",
                           "no PEM certificate")
        self.assertRefused(self.base({"ca_file": missing}, mode="external"), "broker.tls.ca_file")
        self.assertRefused(self.base({"ca_file": p["ca.pem"], "cert_file": p["client.pem"],
                                      "key_file": p["server.key"]}, mode="external"),
                           "broker.tls.key_file")


if __name__ == "__main__":
    unittest.main()
