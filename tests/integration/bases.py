"""The test-case bases of the mqttspec integration and acceptance suites:

  ServiceTestCase        a Service per class (default) or per test (SERVICE_PER_TEST = True), its
                         logs printed when a test fails, and the shared assertions on answers
                         (assertOk, assertError, assertMessageClean: no SQL, no paths in errors)
  FailingStartTestCase   runs mqttspecd with a configuration it must refuse (run_config)
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from processes import REPO, default_server_binary, random_suffix, server_env
from spec_service import Service
from yamlgen import to_yaml


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
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.tmp,
                             env=server_env())
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
