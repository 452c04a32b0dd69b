"""The device twin (docs/protocol.md "Device twin"), with real MQTT clients, in the mode and on the
database the environment selects:

  - an app sets a request with an ordinary update of mqttspec.twin (an upsert): the answer
    carries the row (version 1, requested_at, in_sync false) and the device receives the value
    alone, QoS 1, on spec/<device>/twin/requests/<key>; an equal request again changes nothing;
  - the device reports on spec/<device>/twin/reports/<key>: report, reported_at and in_sync
    follow; an equal report (even written differently) keeps reported_at; invalid JSON is an
    invalid_json error naming the topic on the device's response topic;
  - expected_version: a mismatch is a conflict and changes nothing, also for a key without a row;
  - a device offline while its requests are set catches up with twin/get (keys without a request
    skipped; a payload that is not a list of keys is invalid_message);
  - an app subscribed to in_sync = false sees a device move out of and back into sync;
  - isolation (embedded mode: the broker's ACL): a device receives only its own requests, cannot
    report for another, and nobody receives reports or gets;
  - creates, reports set by an app, and malformed ids are refused with clear errors.

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd python3 -m unittest -v test_twin
"""

import json
import time
import unittest

from harness import ISO_UTC_MS, Service, ServiceTestCase, random_suffix

QUIET_S = 0.5  # how long "nothing arrives" is watched


def twin_req(op, record_id=None, data=None, **kw):
    m = {"id": f"{op}-{random_suffix()}", "type": "request", "operation": op,
         "schema": "mqttspec", "entity": "twin"}
    if record_id is not None:
        m["record_id"] = record_id
    if data is not None:
        m["data"] = data
    m.update(kw)
    return m


def value_of(message):
    """A received payload as JSON (SpecClient keeps a payload that is no object as _raw)."""
    if isinstance(message, dict) and set(message) == {"_raw"}:
        return json.loads(message["_raw"])
    return message


class TwinTest(ServiceTestCase):

    def device(self, prefix="dev"):
        """A connected device listening on its twin's request topics."""
        d = self.client(prefix)
        d.subscribe(f"spec/{d.client_id}/twin/requests/+", qos=1)
        return d

    def set_request(self, app, device_id, key, value, **data):
        data = dict(data, request=value)
        return self.assertOk(app.request(twin_req("update", f"{device_id}/{key}", data)))

    def read(self, app, device_id, key):
        return self.assertOk(app.request(twin_req("read", f"{device_id}/{key}")))

    def requests_to(self, device, key, n, timeout=5.0):
        """The next n twin requests the device receives on `key` (payloads as parsed JSON)."""
        topic = f"spec/{device.client_id}/twin/requests/{key}"
        return [value_of(device.wait_for(lambda t, m, p: t == topic, timeout,
                                         f"a request on {topic}")[1])
                for _ in range(n)]

    def assertNothingOn(self, client, topic_prefix):
        time.sleep(QUIET_S)
        got = [(t, m) for t, m, _ in client.drain() if t.startswith(topic_prefix)]
        self.assertEqual(got, [], f"{client.client_id} got messages on {topic_prefix}")

    def report(self, device, key, payload):
        device.publish(f"spec/{device.client_id}/twin/reports/{key}",
                       payload if isinstance(payload, (str, bytes)) else json.dumps(payload),
                       qos=1)

    def wait_row(self, app, device_id, key, predicate, timeout=5.0):
        """The row once predicate(row) holds (None while there is none), or the last one read."""
        deadline = time.monotonic() + timeout
        while True:
            resp = app.request(twin_req("read", f"{device_id}/{key}"))
            row = resp.get("data") if resp.get("success") else None
            if (row is not None and predicate(row)) or time.monotonic() > deadline:
                return row
            time.sleep(0.05)

    # ------------------------------------------------------------------------------ requests

    def test_request_reaches_the_device_at_once_with_the_value_alone(self):
        app, dev = self.client("app"), self.device()
        value = {"version": "2.0", "url": "https://example.com/fw/2.0.bin", "size": 1234567}
        row = self.set_request(app, dev.client_id, "software_version", value)
        self.assertEqual(row["id"], f"{dev.client_id}/software_version")
        self.assertEqual((row["device_id"], row["key"]), (dev.client_id, "software_version"))
        self.assertEqual((row["request"], row["version"], row["in_sync"]), (value, 1, False))
        self.assertRegex(row["requested_at"], ISO_UTC_MS)
        self.assertIsNone(row["report"])
        self.assertIsNone(row["reported_at"])
        self.assertEqual(self.requests_to(dev, "software_version", 1), [value])
        # The request's own message: QoS 1, the value alone.
        entry = [e for e in dev.history if e[0].endswith("/twin/requests/software_version")]
        self.assertEqual(len(entry), 1)

        value2 = {"version": "2.1"}
        row = self.set_request(app, dev.client_id, "software_version", value2)
        self.assertEqual((row["request"], row["version"]), (value2, 2))
        self.assertEqual(self.requests_to(dev, "software_version", 1), [value2])
        # The same value again (members in another order): nothing changes, nothing is sent.
        before = row
        row = self.set_request(app, dev.client_id, "software_version", {"version": "2.1"})
        self.assertEqual(row, before)
        self.assertNothingOn(dev, f"spec/{dev.client_id}/twin/requests/")

    def test_any_json_value_is_a_request(self):
        app, dev = self.client("app"), self.device()
        for key, value in (("mode", "eco"), ("interval", 30), ("flags", [1, 2, 3]),
                           ("enabled", True), ("ratio", 0.25)):
            row = self.set_request(app, dev.client_id, key, value)
            self.assertEqual(row["request"], value)
            topic = f"spec/{dev.client_id}/twin/requests/{key}"
            self.assertEqual(self.requests_to(dev, key, 1), [value])

    # ------------------------------------------------------------------------------ reports

    def test_reports_move_in_sync_and_an_equal_report_keeps_reported_at(self):
        app, dev = self.client("app"), self.device()
        d = dev.client_id
        self.set_request(app, d, "fw", {"version": "2.0", "channel": "stable"})
        self.report(dev, "fw", {"version": "1.0", "channel": "stable"})
        row = self.wait_row(app, d, "fw", lambda r: r["report"] is not None)
        self.assertEqual(row["report"], {"version": "1.0", "channel": "stable"})
        self.assertIs(row["in_sync"], False)
        self.assertRegex(row["reported_at"], ISO_UTC_MS)
        self.assertEqual(row["version"], 1)  # reports do not move the request's version
        first_at = row["reported_at"]

        # The requested value, written differently: in sync, reported_at moves.
        self.report(dev, "fw", '{ "channel" : "stable", "version" : "2.0" }')
        row = self.wait_row(app, d, "fw", lambda r: r["in_sync"] is True)
        self.assertIs(row["in_sync"], True)
        self.assertGreater(row["reported_at"], first_at)
        synced_at = row["reported_at"]

        # The same report again (QoS 1 redelivery, a chatty device): reported_at stays.
        time.sleep(0.05)
        self.report(dev, "fw", {"version": "2.0", "channel": "stable"})
        self.report(dev, "fw", {"channel": "stable", "version": "2.0"})
        time.sleep(QUIET_S)
        row = self.read(app, d, "fw")
        self.assertEqual((row["reported_at"], row["in_sync"]), (synced_at, True))

        # A new request takes it out of sync again; the device's report brings it back.
        row = self.set_request(app, d, "fw", {"version": "3.0", "channel": "stable"})
        self.assertEqual((row["version"], row["in_sync"]), (2, False))
        self.report(dev, "fw", {"version": "3.0", "channel": "stable"})
        row = self.wait_row(app, d, "fw", lambda r: r["in_sync"] is True)
        self.assertIs(row["in_sync"], True)

    def test_a_report_before_any_request_creates_the_key(self):
        app, dev = self.client("app"), self.device()
        self.report(dev, "battery", {"level": 87})
        row = self.wait_row(app, dev.client_id, "battery", lambda r: True)
        self.assertEqual((row["report"], row["request"], row["version"], row["in_sync"]),
                         ({"level": 87}, None, 0, False))
        self.assertIsNone(row["requested_at"])

    def test_invalid_report_is_an_error_naming_the_topic(self):
        app, dev = self.client("app"), self.device()
        d = dev.client_id
        self.set_request(app, d, "cfg", {"a": 1})
        topic = f"spec/{d}/twin/reports/cfg"
        for bad in ('{"a": ', "not json", "", '"\\udc00"'):
            dev.publish(topic, bad, qos=1)
            _, resp, _ = dev.wait_for(lambda t, m, p: t == dev.response_topic, 5, "an error")
            err = self.assertError(resp, "invalid_json")
            self.assertIn(topic, err["message"])
        row = self.read(app, d, "cfg")
        self.assertIsNone(row["report"])

    # ------------------------------------------------------------------------------ versions

    def test_expected_version_guards_the_request(self):
        app, dev = self.client("app"), self.device()
        d = dev.client_id
        row = self.set_request(app, d, "limit", 10, expected_version=0)  # a new key: version 0
        self.assertEqual(row["version"], 1)
        self.requests_to(dev, "limit", 1)
        resp = app.request(twin_req("update", f"{d}/limit", {"request": 20,
                                                             "expected_version": 0}))
        err = self.assertError(resp, "conflict")
        self.assertIn("version is 1", err["message"])
        row = self.read(app, d, "limit")
        self.assertEqual((row["request"], row["version"]), (10, 1))
        self.assertNothingOn(dev, f"spec/{d}/twin/requests/")
        row = self.set_request(app, d, "limit", 20, expected_version=1)
        self.assertEqual((row["request"], row["version"]), (20, 2))
        self.assertEqual(self.requests_to(dev, "limit", 1), [20])
        # A key that does not exist yet is at version 0.
        resp = app.request(twin_req("update", f"{d}/other", {"request": 1,
                                                             "expected_version": 3}))
        self.assertError(resp, "conflict")
        resp = app.request(twin_req("read", f"{d}/other"))
        self.assertError(resp, "not_found")
        for bad in (-1, "1", 1.5, None):
            resp = app.request(twin_req("update", f"{d}/limit", {"request": 30,
                                                                 "expected_version": bad}))
            self.assertError(resp, "invalid_value")

    def test_concurrent_apps_never_lose_a_version(self):
        """Two apps set one key 25 times each, concurrently: version counts every change."""
        import threading
        apps = [self.client("app") for _ in range(2)]
        dev = self.device()
        d = dev.client_id
        errors = []

        def run(app, tag):
            for i in range(25):
                resp = app.request(twin_req("update", f"{d}/race", {"request": f"{tag}-{i}"}),
                                   timeout=10)
                if not resp.get("success"):
                    errors.append(resp)

        threads = [threading.Thread(target=run, args=(a, t)) for a, t in zip(apps, "ab")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        row = self.read(apps[0], d, "race")
        self.assertEqual(row["version"], 50)
        # The device's last request is the stored one (never an older one after it).
        got = []
        topic = f"spec/{d}/twin/requests/race"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            got = [value_of(m) for t, m, _ in dev.history if t == topic]
            if got and got[-1] == row["request"]:
                break
            time.sleep(0.05)
        self.assertEqual(got[-1], row["request"])

    # ------------------------------------------------------------------------------ get

    def test_offline_device_catches_up_with_get(self):
        app = self.client("app")
        d = f"offline-{random_suffix()}"
        self.set_request(app, d, "software_version", {"version": "2.0"})
        self.set_request(app, d, "interval", 60)
        self.set_request(app, d, "interval", 90)
        dev = self.service.client(d)  # connects only now, clean session
        dev.subscribe(f"spec/{d}/twin/requests/+", qos=1)
        self.assertNothingOn(dev, f"spec/{d}/twin/requests/")
        dev.publish(f"spec/{d}/twin/get", json.dumps(["software_version", "interval",
                                                      "never_set", "interval"]), qos=1)
        self.assertEqual(self.requests_to(dev, "software_version", 1), [{"version": "2.0"}])
        self.assertEqual(self.requests_to(dev, "interval", 1), [90])
        self.assertNothingOn(dev, f"spec/{d}/twin/requests/")
        # An empty list asks for nothing and is no error.
        dev.publish(f"spec/{d}/twin/get", "[]", qos=1)
        self.assertNothingOn(dev, f"spec/{d}/")

    def test_get_that_is_not_a_list_of_keys_is_invalid_message(self):
        dev = self.device()
        topic = f"spec/{dev.client_id}/twin/get"
        for bad, code in (('{"keys": ["a"]}', "invalid_message"), ('"a"', "invalid_message"),
                          ("[1, 2]", "invalid_message"), ('["a/b"]', "invalid_message"),
                          ('["+"]', "invalid_message"), ("[", "invalid_json")):
            dev.publish(topic, bad, qos=1)
            _, resp, _ = dev.wait_for(lambda t, m, p: t == dev.response_topic, 5, "an error")
            err = self.assertError(resp, code, msg=bad)
            self.assertIn(topic, err["message"])

    # ------------------------------------------------------------------------------ subscribe

    def test_app_subscribed_to_out_of_sync_devices(self):
        app, dev = self.client("app"), self.device()
        d = dev.client_id
        app.subscribe(f"spec/{app.client_id}/notify/+", qos=1)
        sub = self.assertOk(app.request({
            "id": f"sub-{random_suffix()}", "type": "subscription", "operation": "subscribe",
            "schema": "mqttspec", "entity": "twin",
            "options": {"filters": [{"column": "in_sync", "operator": "eq", "value": False},
                                    {"column": "device_id", "operator": "eq", "value": d}]}}))
        topic = f"spec/{app.client_id}/notify/{sub['subscription_id']}"

        def notes(n):
            return [app.wait_for(lambda t, m, p: t == topic, 5, "a notification")[1]
                    for _ in range(n)]

        self.set_request(app, d, "fw", {"version": "2.0"})  # out of sync: enters the view
        [n] = notes(1)
        self.assertEqual((n["operation"], n.get("match", True)), ("create", True))
        self.assertEqual((n["data"]["id"], n["data"]["in_sync"]), (f"{d}/fw", False))
        self.report(dev, "fw", {"version": "2.0"})  # in sync: leaves the view
        [n] = notes(1)
        self.assertEqual((n["operation"], n["match"]), ("update", False))
        self.assertIs(n["data"]["in_sync"], True)
        self.set_request(app, d, "fw", {"version": "3.0"})  # out again
        [n] = notes(1)
        self.assertEqual((n["operation"], n.get("match", True)), ("update", True))
        self.assertEqual((n["data"]["version"], n["data"]["in_sync"]), (2, False))
        # Another device's twin does not reach this subscription.
        self.set_request(app, f"{d}-other", "fw", {"version": "2.0"})
        self.assertNothingOn(app, topic)

    # ------------------------------------------------------------------------------ refusals

    def test_creates_foreign_fields_and_bad_ids_are_refused(self):
        app = self.client("app")
        d = f"dev-{random_suffix()}"
        resp = app.request(twin_req("create", data={"id": f"{d}/k", "device_id": d, "key": "k",
                                                    "request": 1}))
        self.assertError(resp, "invalid_operation")
        for data in ({"report": 1}, {"request": 1, "version": 7}, {"in_sync": True},
                     {"request": 1, "reported_at": "2026-01-01T00:00:00Z"}):
            resp = app.request(twin_req("update", f"{d}/k", data))
            self.assertError(resp, "invalid_message", msg=str(data))
        for rid in ("nokey", f"{d}/", f"/{d}", f"{d}/a/b", f"{d}/+", "a+b/k"):
            resp = app.request(twin_req("update", rid, {"request": 1}))
            self.assertError(resp, "invalid_value", msg=rid)
        self.assertError(app.request(twin_req("read", f"{d}/k")), "not_found")

    # ------------------------------------------------------------------------------ isolation

    def test_devices_are_isolated(self):
        if not self.service.embedded:
            self.skipTest("external mode: the broker's ACL isolates (deploy/mosquitto.acl, "
                          "test_external_acl)")
        app, victim = self.client("app"), self.device("victim")
        spy = self.client("spy")
        for f in ("spec/+/twin/requests/+", "spec/+/twin/#", "spec/#", "#"):
            spy.subscribe(f, qos=1)
        victim.subscribe(f"spec/{victim.client_id}/#", qos=1)
        v = victim.client_id
        self.set_request(app, v, "secret", {"pin": 1234})
        self.requests_to(victim, "secret", 1)
        self.report(victim, "secret", {"pin": 1234})
        row = self.wait_row(app, v, "secret", lambda r: r["in_sync"] is True)
        self.assertIs(row["in_sync"], True)
        # The spy cannot report for the victim nor ask for its requests: the broker drops both.
        spy.publish(f"spec/{v}/twin/reports/secret", json.dumps({"pin": 0}), qos=1)
        spy.publish(f"spec/{v}/twin/get", json.dumps(["secret"]), qos=1)
        time.sleep(QUIET_S)
        self.assertEqual(self.read(app, v, "secret"), row)
        # Nothing of the victim's twin reached the spy; nobody, the victim neither, receives
        # reports or gets; the victim received its one request, no second one from the get.
        self.assertEqual([t for t, _ in spy.foreign_messages() if f"/{v}/" in t], [])
        self.assertEqual([t for t, m, _ in victim.history
                          if "/twin/reports/" in t or t.endswith("/twin/get")], [])
        self.assertEqual(len([t for t, m, _ in victim.history if "/twin/requests/" in t]), 1)

class TwinDisabledTest(ServiceTestCase):
    """twin.enabled false: no model mqttspec.twin, and twin topics are not the service's."""

    @classmethod
    def make_service(cls):
        return Service(config_extra={"twin": {"enabled": False}})

    def test_no_twin_model_and_reports_are_ignored(self):
        app, dev = self.client("app"), self.client("dev")
        resp = app.request(twin_req("update", f"{dev.client_id}/k", {"request": 1}))
        self.assertError(resp, "model_not_found")
        dev.publish(f"spec/{dev.client_id}/twin/reports/k", "{bad json", qos=1)
        dev.publish(f"spec/{dev.client_id}/twin/get", '["k"]', qos=1)
        time.sleep(QUIET_S)
        self.assertEqual([t for t, _, _ in dev.history if t == dev.response_topic], [])
        if self.service.postgres:
            tables = self.service.db_query(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = 'mqttspec' AND table_name = 'twin'")
        else:
            tables = self.service.db_query(
                "SELECT count(*) FROM sqlite_master WHERE name = 'mqttspec_twin'")
        self.assertEqual(tables[0][0], 0)


if __name__ == "__main__":
    unittest.main()
