"""Every request example of the Go mqttspec README (seed 002), plus the rest of PROTOCOL.md's
request/response contract, against a real Mosquitto and a real mqttspecd.

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd python3 -m unittest -v test_seed_examples
"""

import calendar
import json
import threading
import time
import unittest

import harness
from harness import BULK_MODEL, ISO_UTC_MS, THINGS_MODEL, ServiceTestCase, random_suffix

USER_FIELDS = {"id", "name", "email", "status", "created_at"}
THING_FIELDS = {"id", "label", "qty", "price", "active", "seen_at", "payload", "note"}


def iso_to_epoch(text):
    """'2026-11-22T10:00:00.000Z' -> seconds since the epoch."""
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) + int(text[20:23]) / 1000


def req(op, entity="users", id=None, **kw):
    m = {"id": id or f"{op}-{random_suffix()}", "type": "request", "operation": op,
         "schema": "public", "entity": entity}
    m.update(kw)
    return m


class SeedTestCase(ServiceTestCase):
    def assertUserRow(self, row, expect=None):
        self.assertIsInstance(row, dict, row)
        self.assertEqual(set(row), USER_FIELDS, f"a row has every field of the model: {row!r}")
        self.assertIsInstance(row["id"], int, row)
        self.assertIsInstance(row["created_at"], str, row)
        self.assertRegex(row["created_at"], ISO_UTC_MS)
        for k, v in (expect or {}).items():
            self.assertEqual(row[k], v, f"field {k} of {row!r}")

    def assertListMeta(self, resp, total, count, limit, offset):
        md = resp.get("metadata")
        self.assertIsInstance(md, dict, f"list reads carry metadata: {resp!r}")
        self.assertEqual(md.get("total"), total, md)
        self.assertEqual(md.get("count"), count, md)
        self.assertEqual(md.get("limit"), limit, md)
        self.assertEqual(md.get("offset"), offset, md)
        self.assertEqual(len(resp["data"]), count, resp)


# --------------------------------------------------------------------------------------------------
# The README's examples, literally, each against a fresh database so that "id": 1 means the first
# created row (the README's John Doe).

class SeedReadmeExamples(SeedTestCase):
    SERVICE_PER_TEST = True

    def setUp(self):
        super().setUp()
        self.c = self.client("client-abc123")
        # The README's response example shows John Doe (id 1) and Jane Smith (id 2), both active.
        self.john = self.assertOk(self.c.request(req(
            "create", id="seed-john",
            data={"name": "John Doe", "email": "john@example.com", "status": "active"})))
        self.jane = self.assertOk(self.c.request(req(
            "create", id="seed-jane",
            data={"name": "Jane Smith", "email": "jane@example.com", "status": "active"})))
        self.assertUserRow(self.john, {"id": 1})
        self.assertUserRow(self.jane, {"id": 2})

    def test_create_msg3(self):
        before = time.time()
        msg = {"id": "msg-3", "type": "request", "operation": "create", "schema": "public",
               "entity": "users",
               "data": {"name": "Alice Brown", "email": "alice@example.com", "status": "active"}}
        resp = self.c.request(msg)
        row = self.assertOk(resp, "msg-3")
        self.assertUserRow(row, {"id": 3, "name": "Alice Brown", "email": "alice@example.com",
                                 "status": "active"})
        self.assertLess(abs(iso_to_epoch(row["created_at"]) - before), 120,
                        "created_at is the current UTC time")
        self.assertNotIn("error", resp)
        # PROTOCOL.md's response example carries a timestamp of the same format.
        self.assertRegex(resp.get("timestamp", ""), ISO_UTC_MS)

    def test_create_defaults_status_and_created_at(self):
        row = self.assertOk(self.c.request(req("create", data={"name": "No Status"})))
        self.assertUserRow(row, {"id": 3, "name": "No Status", "email": None,
                                 "status": "active"})

    def test_read_single_msg1(self):
        msg = {"id": "msg-1", "type": "request", "operation": "read", "schema": "public",
               "entity": "users", "data": {"id": 1}}
        resp = self.c.request(msg)
        row = self.assertOk(resp, "msg-1")
        self.assertEqual(row, self.john, "the row as stored")
        # No list metadata; only where the read stands in the change log.
        self.assertEqual(list(resp["metadata"]), ["change_seq"])
        self.assertIsInstance(resp["metadata"]["change_seq"], int)

    def test_read_multiple_msg2(self):
        self.assertOk(self.c.request(req("create", data={"name": "Zed Inactive",
                                                         "status": "inactive"})))
        self.assertOk(self.c.request(req("create", data={"name": "Adam Active"})))
        msg = {"id": "msg-2", "type": "request", "operation": "read", "schema": "public",
               "entity": "users",
               "options": {"filters": [{"column": "status", "operator": "eq", "value": "active"}],
                           "sort": [{"column": "name", "direction": "asc"}],
                           "limit": 20, "offset": 0}}
        resp = self.c.request(msg)
        rows = self.assertOk(resp, "msg-2")
        self.assertIsInstance(rows, list)
        for r in rows:
            self.assertUserRow(r, {"status": "active"})
        self.assertEqual([r["name"] for r in rows], ["Adam Active", "Jane Smith", "John Doe"])
        self.assertListMeta(resp, total=3, count=3, limit=20, offset=0)

    def test_read_multiple_offset(self):
        msg = req("read", options={"sort": [{"column": "name", "direction": "asc"}],
                                   "limit": 1, "offset": 1})
        resp = self.c.request(msg)
        rows = self.assertOk(resp)
        self.assertEqual([r["name"] for r in rows], ["John Doe"])
        self.assertListMeta(resp, total=2, count=1, limit=1, offset=1)

    def test_request_message_example(self):
        # "Request Message" / "Response Message" of the README: sort created_at desc, limit 10.
        self.assertOk(self.c.request(req("create", data={"name": "Later", "status": "inactive"})))
        msg = {"id": "msg-123", "type": "request", "operation": "read", "schema": "public",
               "entity": "users",
               "options": {"filters": [{"column": "status", "operator": "eq", "value": "active"}],
                           "sort": [{"column": "created_at", "direction": "desc"}],
                           "limit": 10}}
        resp = self.c.request(msg)
        rows = self.assertOk(resp, "msg-123")
        self.assertEqual({r["id"] for r in rows}, {1, 2})
        stamps = [r["created_at"] for r in rows]
        self.assertEqual(stamps, sorted(stamps, reverse=True))
        self.assertListMeta(resp, total=2, count=2, limit=10, offset=0)
        if stamps[0] != stamps[1]:  # created within the same millisecond: order undefined
            self.assertEqual(rows[0]["name"], "Jane Smith", "newest first")

    def test_client_examples_read_without_limit(self):
        # The JavaScript and Go client examples: filters only. limit defaults to limits.max_rows.
        msg = {"id": "msg-1", "type": "request", "operation": "read", "schema": "public",
               "entity": "users",
               "options": {"filters": [{"column": "status", "operator": "eq",
                                        "value": "active"}]}}
        resp = self.c.request(msg)
        rows = self.assertOk(resp, "msg-1")
        self.assertEqual(sorted(r["id"] for r in rows), [1, 2])
        self.assertListMeta(resp, total=2, count=2, limit=1000, offset=0)

    def test_update_msg4(self):
        msg = {"id": "msg-4", "type": "request", "operation": "update", "schema": "public",
               "entity": "users", "data": {"id": 1, "status": "inactive"}}
        row = self.assertOk(self.c.request(msg), "msg-4")
        expected = dict(self.john, status="inactive")
        self.assertEqual(row, expected, "only status changed")
        again = self.assertOk(self.c.request(req("read", data={"id": 1})))
        self.assertEqual(again, expected)
        other = self.assertOk(self.c.request(req("read", data={"id": 2})))
        self.assertEqual(other, self.jane, "other rows untouched")

    def test_delete_msg5(self):
        msg = {"id": "msg-5", "type": "request", "operation": "delete", "schema": "public",
               "entity": "users", "data": {"id": 1}}
        data = self.assertOk(self.c.request(msg), "msg-5")
        self.assertEqual(data, {"deleted": True, "id": 1})
        resp = self.c.request(req("read", id="msg-1-after-delete", data={"id": 1}))
        self.assertError(resp, "not_found", "msg-1-after-delete")
        resp = self.c.request(req("delete", data={"id": 1}))
        self.assertError(resp, "not_found")
        resp = self.c.request(req("update", data={"id": 1, "status": "x"}))
        self.assertError(resp, "not_found")
        rows = self.assertOk(self.c.request(req("read")))
        self.assertEqual([r["id"] for r in rows], [2])


# --------------------------------------------------------------------------------------------------

class ProtocolBehaviour(SeedTestCase):
    EXTRA_MODELS = (THINGS_MODEL, BULK_MODEL)

    def setUp(self):
        super().setUp()
        self.c = self.client()

    def create_user(self, **data):
        data.setdefault("name", "U " + random_suffix())
        return self.assertOk(self.c.request(req("create", data=data)))

    def test_ping(self):
        resp = self.c.request({"type": "ping", "id": "ping-1"})
        self.assertEqual(resp.get("type"), "pong", resp)
        self.assertEqual(resp.get("id"), "ping-1", resp)

    def test_meta_users(self):
        resp = self.c.request(req("meta"))
        meta = self.assertOk(resp)
        for k in ("schema", "entity", "table", "primary_key", "columns"):
            self.assertIn(k, meta)
        self.assertEqual(meta["schema"], "public")
        self.assertEqual(meta["entity"], "users")
        self.assertEqual(meta["table"], self.service.table_name("users"))
        self.assertEqual(meta["primary_key"], "id")
        cols = meta["columns"]
        self.assertEqual([c["name"] for c in cols], ["id", "name", "email", "status",
                                                     "created_at"], "columns in model order")
        by = {c["name"]: c for c in cols}
        for c in cols:
            for k in ("name", "type", "nullable", "primary", "unique", "default"):
                self.assertIn(k, c, c)
        self.assertEqual({n: c["type"] for n, c in by.items()},
                         {"id": "integer", "name": "text", "email": "text", "status": "text",
                          "created_at": "timestamp"})
        self.assertIs(by["id"]["primary"], True)
        for n in ("name", "email", "status", "created_at"):
            self.assertIs(by[n]["primary"], False, n)
        self.assertIs(by["name"]["nullable"], False)
        self.assertIs(by["email"]["nullable"], True)
        self.assertIs(by["email"]["unique"], True)
        self.assertIs(by["name"]["unique"], False)
        self.assertEqual(by["status"]["default"], "active")
        self.assertEqual(by["created_at"]["default"], "now")
        self.assertIsNone(by["name"]["default"])
        self.assertIsNone(by["email"]["default"])

    def test_meta_every_type(self):
        meta = self.assertOk(self.c.request(req("meta", "things")))
        self.assertEqual(meta["table"], self.service.table_name("things"))
        self.assertEqual({c["name"]: c["type"] for c in meta["columns"]},
                         {"id": "integer", "label": "text", "qty": "integer", "price": "real",
                          "active": "boolean", "seen_at": "timestamp", "payload": "json",
                          "note": "text"})

    def test_every_field_type_round_trip(self):
        data = {"label": "round " + random_suffix(), "qty": -42, "price": 3.25, "active": True,
                "seen_at": "2024-05-06T07:08:09Z", "payload": {"a": [1, 2, {"b": None}], "c": "d"},
                "note": "h\u00e9llo \u2603 \"quoted\" 'single'"}
        row = self.assertOk(self.c.request(req("create", "things", data=data)))
        self.assertEqual(set(row), THING_FIELDS)
        self.assertIsInstance(row["id"], int)
        self.assertEqual(row["qty"], -42)
        self.assertEqual(row["price"], 3.25)
        self.assertIs(row["active"], True, "booleans are JSON booleans")
        self.assertEqual(row["seen_at"], "2024-05-06T07:08:09.000Z", "timestamps normalized")
        self.assertEqual(row["payload"], data["payload"], "json comes back as JSON")
        self.assertEqual(row["note"], data["note"])
        again = self.assertOk(self.c.request(req("read", "things", record_id=str(row["id"]))))
        self.assertEqual(again, row)
        # A timestamp with an offset is stored in UTC.
        row2 = self.assertOk(self.c.request(req("create", "things", data={
            "label": "tz", "seen_at": "2024-05-06T09:08:09.5+02:00", "active": False})))
        self.assertEqual(row2["seen_at"], "2024-05-06T07:08:09.500Z")
        self.assertIs(row2["active"], False)
        for k in ("qty", "price", "payload", "note"):
            self.assertIsNone(row2[k], k)

    def test_record_id_string_is_a_target(self):
        u = self.create_user(email=f"rid-{random_suffix()}@x")
        rid = str(u["id"])
        self.assertEqual(self.assertOk(self.c.request(req("read", record_id=rid))), u)
        upd = self.assertOk(self.c.request(req("update", record_id=rid,
                                               data={"name": "Renamed"})))
        self.assertEqual(upd, dict(u, name="Renamed"))
        d = self.assertOk(self.c.request(req("delete", record_id=rid)))
        self.assertIs(d.get("deleted"), True)
        # The echoed id: the record's key (PROTOCOL.md: {"deleted": true, "id": …}).
        self.assertEqual(str(d.get("id")), rid)
        self.assertError(self.c.request(req("read", record_id=rid)), "not_found")

    def test_partial_update_changes_only_given_fields(self):
        u = self.create_user(email=f"p-{random_suffix()}@x", status="pending")
        upd = self.assertOk(self.c.request(req("update", data={"id": u["id"],
                                                               "email": "new-" + u["email"]})))
        self.assertEqual(upd, dict(u, email="new-" + u["email"]))
        upd2 = self.assertOk(self.c.request(req("update", record_id=str(u["id"]),
                                                data={"email": None})))
        self.assertEqual(upd2, dict(u, email=None), "null clears a nullable field only")

    def test_unique_violation_is_conflict(self):
        email = f"dup-{random_suffix()}@x"
        first = self.create_user(email=email)
        resp = self.c.request(req("create", data={"name": "Second", "email": email}))
        self.assertError(resp, "conflict")
        other = self.create_user(email=f"other-{random_suffix()}@x")
        resp = self.c.request(req("update", data={"id": other["id"], "email": email}))
        self.assertError(resp, "conflict")
        rows = self.assertOk(self.c.request(req("read", options={
            "filters": [{"column": "email", "operator": "in",
                         "value": [email, other["email"]]}]})))
        self.assertEqual(sorted(rows, key=lambda r: r["id"]), [first, other], "nothing changed")
        resp = self.c.request(req("create", data={"id": first["id"], "name": "Same key"}))
        self.assertError(resp, "conflict", msg="duplicate primary key")

    def test_batch_create_one_transaction(self):
        tag = random_suffix()
        items = [{"name": f"B{i} {tag}", "email": f"b{i}-{tag}@x"} for i in range(3)]
        resp = self.c.request(req("create", data=items))
        rows = self.assertOk(resp)
        self.assertIsInstance(rows, list)
        self.assertEqual(len(rows), 3)
        for item, row in zip(items, rows):
            self.assertUserRow(row, dict(item, status="active"))
        self.assertEqual(len({r["id"] for r in rows}), 3)

        def count(tag):
            resp = self.c.request(req("read", options={
                "filters": [{"column": "name", "operator": "contains", "value": tag}]}))
            self.assertOk(resp)
            return resp["metadata"]["total"]

        self.assertEqual(count(tag), 3)
        tag2 = random_suffix()
        bad = [{"name": f"ok {tag2}"}, {"email": f"noname-{tag2}@x"}, {"name": f"ok2 {tag2}"}]
        self.assertError(self.c.request(req("create", data=bad)), "invalid_value")
        self.assertEqual(count(tag2), 0, "one bad element: nothing created")
        tag3 = random_suffix()
        dup = [{"name": f"d1 {tag3}", "email": f"{tag3}@x"},
               {"name": f"d2 {tag3}", "email": f"{tag3}@x"}]
        self.assertError(self.c.request(req("create", data=dup)), "conflict")
        self.assertEqual(count(tag3), 0, "a conflict rolls back the whole batch")

    def test_limit_default_and_cap(self):
        tag = "lim-" + random_suffix()
        n = 1005
        for lo in range(0, n, 500):  # in batches: the server caps one batch (at max_rows)
            hi = min(n, lo + 500)
            resp = self.c.request(req("create", "bulk", data=[{"n": i, "tag": tag}
                                                              for i in range(lo, hi)]), timeout=30)
            self.assertEqual(len(self.assertOk(resp)), hi - lo)
        flt = [{"column": "tag", "operator": "eq", "value": tag}]
        resp = self.c.request(req("read", "bulk", options={"filters": flt}), timeout=15)
        self.assertOk(resp)
        self.assertListMeta(resp, total=n, count=1000, limit=1000, offset=0)
        resp = self.c.request(req("read", "bulk", options={"filters": flt, "limit": 5000}),
                              timeout=15)
        self.assertOk(resp)
        self.assertListMeta(resp, total=n, count=1000, limit=1000, offset=0)
        resp = self.c.request(req("read", "bulk", options={
            "filters": flt, "limit": 10, "offset": 1000,
            "sort": [{"column": "n", "direction": "asc"}]}))
        rows = self.assertOk(resp)
        self.assertListMeta(resp, total=n, count=5, limit=10, offset=1000)
        self.assertEqual([r["n"] for r in rows], [1000, 1001, 1002, 1003, 1004])

    def test_parallel_clients_get_only_their_responses(self):
        a, b = self.client("par-a"), self.client("par-b")
        spy = self.client("spy")
        # Granted in both modes; in embedded mode the plugin's READ check delivers nothing of
        # another client to it.
        self.assertLess(spy.subscribe("spec/+/response"), harness.SUBACK_FAILURE)
        ua = self.create_user(name="Para " + random_suffix())
        ub = self.create_user(name="Parb " + random_suffix())
        time.sleep(0.3)
        spy.drain()
        n = 25
        errors = []

        def run(cl, user):
            try:
                for i in range(n):
                    cl.send_raw(req("read", id=f"r-{i}", data={"id": user["id"]}))
                got = cl.collect(n, timeout=20)
                ids = [m.get("id") for m in got]
                if ids != [f"r-{i}" for i in range(n)]:
                    errors.append(f"{cl.client_id}: ids {ids}")
                for m in got:
                    if m.get("data") != user:
                        errors.append(f"{cl.client_id}: foreign or wrong data {m!r}")
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(f"{cl.client_id}: {e}")

        ta = threading.Thread(target=run, args=(a, ua))
        tb = threading.Thread(target=run, args=(b, ub))
        ta.start()
        tb.start()
        ta.join(40)
        tb.join(40)
        self.assertFalse(ta.is_alive() or tb.is_alive(), "clients finished")
        self.assertEqual(errors, [])
        time.sleep(0.5)
        self.assertEqual(a.drain(), [], "no extra responses for a")
        self.assertEqual(b.drain(), [], "no extra responses for b")
        seen = {}
        for t, m, _ in spy.drain():
            seen[t] = seen.get(t, 0) + 1
        if self.service.embedded:
            self.assertEqual(seen, {}, "embedded: a spy on spec/+/response receives nothing")
        else:
            self.assertEqual(seen, {a.response_topic: n, b.response_topic: n},
                             "each response went to its own client's topic only")

    def test_one_clients_requests_answered_in_order(self):
        tag = "ord-" + random_suffix()
        msgs = []
        for i in range(50):
            if i % 2 == 0:
                msgs.append(req("create", "bulk", id=f"seq-{i:02d}", data={"n": i, "tag": tag}))
            else:
                msgs.append(req("read", "bulk", id=f"seq-{i:02d}", options={
                    "filters": [{"column": "tag", "operator": "eq", "value": tag}]}))
        for m in msgs:
            self.c.send_raw(m)
        got = self.c.collect(50, timeout=30)
        self.assertEqual([m.get("id") for m in got], [f"seq-{i:02d}" for i in range(50)],
                         "responses in request order")
        for i, m in enumerate(got):
            self.assertIs(m.get("success"), True, m)
            if i % 2 == 1:
                self.assertEqual(m["metadata"]["total"], (i + 1) // 2,
                                 f"read {i} sees exactly the creates sent before it")

    def test_dedup_of_repeated_write(self):
        # (ext) same client, same id, byte-identical payload within dedup_window_s: applied once.
        tag = "dd-" + random_suffix()
        msg = req("create", "bulk", id="dup-write", data={"n": 7, "tag": tag})
        r1 = self.c.request(msg)
        r2 = self.c.request(msg)
        self.assertEqual(self.assertOk(r1), self.assertOk(r2), "the first answer, again")
        resp = self.c.request(req("read", "bulk", options={
            "filters": [{"column": "tag", "operator": "eq", "value": tag}]}))
        self.assertEqual(resp["metadata"]["total"], 1)

    def test_missing_id_is_answered_with_empty_id(self):
        resp = self.c.request({"type": "request", "operation": "meta", "schema": "public",
                               "entity": "users"})
        self.assertEqual(resp.get("id"), "")
        self.assertOk(resp)

    def test_schema_defaults_to_public(self):
        u = self.create_user()
        resp = self.c.request({"id": "noschema", "type": "request", "operation": "read",
                               "entity": "users", "data": {"id": u["id"]}})
        self.assertEqual(self.assertOk(resp, "noschema"), u)

    def test_mqtt5_client_and_response_topic(self):
        c5 = self.client("v5", protocol="5")
        u = self.create_user()
        resp = c5.request(req("read", id="v5-plain", data={"id": u["id"]}))
        self.assertEqual(self.assertOk(resp, "v5-plain"), u)
        # (ext) Response Topic + Correlation Data (a topic inside the client's own tree).
        alt = f"spec/{c5.client_id}/alt"
        c5.subscribe(alt)
        props = harness.v5_properties(response_topic=alt, correlation_data=b"\x01corr\xff")
        c5.send_raw(req("read", id="v5-rt", data={"id": u["id"]}), properties=props)
        t, m, p = c5.wait_for(lambda t, m, p: m.get("id") == "v5-rt", 5, "response on alt")
        self.assertEqual(t, alt)
        self.assertEqual(m.get("data"), u)
        self.assertEqual(getattr(p, "CorrelationData", None), b"\x01corr\xff")
        time.sleep(0.3)
        self.assertEqual([m for _, m, _ in c5.drain() if m.get("id") == "v5-rt"], [],
                         "answered on the Response Topic only")


# --------------------------------------------------------------------------------------------------
# Filters, sort and column selection over fixed rows of the every-type model.

ROWS = [  # label, qty, price, active, seen_at, note
    ("alpha", 1, 1.5, True, "2024-01-01T00:00:00.000Z", "100% pure"),
    ("Beta", 2, 2.5, False, "2024-02-01T00:00:00.000Z", "under_score"),
    ("gamma", 3, None, True, None, "100 percent"),
    ("delta", None, 4.5, None, "2024-03-01T00:00:00.000Z", None),
    ("Alphabet", 5, 5.5, False, "2024-04-01T00:00:00.000Z", "underXscore"),
]


class FiltersSortColumns(SeedTestCase):
    EXTRA_MODELS = (THINGS_MODEL,)

    @classmethod
    def seed_class(cls):
        c = cls.service.client("seeder-" + random_suffix())
        data = [dict(zip(("label", "qty", "price", "active", "seen_at", "note"), r),
                     payload={"i": i}) for i, r in enumerate(ROWS, 1)]
        resp = c.request(req("create", "things", data=data))
        if resp.get("success") is not True:
            raise RuntimeError(f"seeding failed: {resp!r}")
        cls.rows = resp["data"]
        cls.ids = [r["id"] for r in cls.rows]  # ids[k] is ROWS[k]
        c.close()

    def setUp(self):
        super().setUp()
        self.c = self.client()

    def read(self, **options):
        options.setdefault("sort", [{"column": "id", "direction": "asc"}])
        resp = self.c.request(req("read", "things", options=options))
        return self.assertOk(resp, msg=json.dumps(options)), resp

    def labels(self, filters, **options):
        rows, _ = self.read(filters=filters, **options)
        return [r["label"] for r in rows]

    def check(self, filters, expected_labels, msg=None):
        self.assertEqual(self.labels(filters), expected_labels, msg or json.dumps(filters))

    def f(self, column, operator, value=None, **kw):
        d = {"column": column, "operator": operator}
        if value is not None or operator in ("eq", "neq"):
            d["value"] = value
        d.update(kw)
        return d

    def test_eq_neq(self):
        self.check([self.f("label", "eq", "alpha")], ["alpha"])
        self.check([self.f("active", "eq", True)], ["alpha", "gamma"])
        self.check([self.f("active", "eq", False)], ["Beta", "Alphabet"])
        self.check([self.f("label", "neq", "alpha")], ["Beta", "gamma", "delta", "Alphabet"])
        # NULL compares false (PROTOCOL.md: same semantics as SQL).
        self.check([self.f("qty", "neq", 1)], ["Beta", "gamma", "Alphabet"])

    def test_comparisons(self):
        self.check([self.f("qty", "gt", 2)], ["gamma", "Alphabet"])
        self.check([self.f("qty", "gte", 2)], ["Beta", "gamma", "Alphabet"])
        self.check([self.f("qty", "lt", 3)], ["alpha", "Beta"])
        self.check([self.f("qty", "lte", 3)], ["alpha", "Beta", "gamma"])
        self.check([self.f("price", "gt", 2.5)], ["delta", "Alphabet"])
        self.check([self.f("seen_at", "lt", "2024-02-15T00:00:00Z")], ["alpha", "Beta"])
        self.check([self.f("label", "gte", "b")], ["gamma", "delta"],
                   "text compares by code point (uppercase sorts first)")

    def test_like_is_case_sensitive(self):
        self.check([self.f("label", "like", "alpha%")], ["alpha"])
        self.check([self.f("label", "like", "Alpha%")], ["Alphabet"])
        self.check([self.f("label", "like", "%a")], ["alpha", "Beta", "gamma", "delta"])
        self.check([self.f("label", "like", "_eta")], ["Beta"])
        self.check([self.f("label", "like", "BETA")], [])

    def test_ilike_is_case_insensitive(self):
        self.check([self.f("label", "ilike", "ALPHA%")], ["alpha", "Alphabet"])
        self.check([self.f("label", "ilike", "beta")], ["Beta"])
        self.check([self.f("label", "ilike", "%A")], ["alpha", "Beta", "gamma", "delta"])

    def test_in_not_in(self):
        self.check([self.f("label", "in", ["alpha", "gamma", "nope"])], ["alpha", "gamma"])
        self.check([self.f("qty", "in", [1, 5])], ["alpha", "Alphabet"])
        # NULL NOT IN (…) is not true in SQL: delta (qty NULL) is not returned.
        self.check([self.f("qty", "not_in", [1, 2])], ["gamma", "Alphabet"])

    def test_between(self):
        self.check([self.f("qty", "between", [2, 4])], ["Beta", "gamma"])
        self.check([self.f("price", "between", [2.0, 5.0])], ["Beta", "delta"])
        self.check([self.f("seen_at", "between", ["2024-01-15T00:00:00Z",
                                                  "2024-03-15T00:00:00Z"])], ["Beta", "delta"])
        self.check([self.f("qty", "between", [1, 1])], ["alpha"], "bounds are inclusive")

    def test_null_checks(self):
        self.check([self.f("price", "is_null")], ["gamma"])
        self.check([self.f("price", "is_not_null")], ["alpha", "Beta", "delta", "Alphabet"])
        self.check([self.f("active", "is_null")], ["delta"])
        self.check([self.f("note", "is_not_null")],
                   ["alpha", "Beta", "gamma", "Alphabet"])

    def test_contains_starts_with_are_literal(self):
        self.check([self.f("note", "contains", "0% p")], ["alpha"])
        self.check([self.f("note", "contains", "%")], ["alpha"], "% matches itself")
        self.check([self.f("note", "contains", "_")], ["Beta"], "_ matches itself")
        self.check([self.f("note", "contains", "score")], ["Beta", "Alphabet"])
        self.check([self.f("note", "starts_with", "100%")], ["alpha"])
        self.check([self.f("note", "starts_with", "100")], ["alpha", "gamma"])
        self.check([self.f("note", "starts_with", "under_")], ["Beta"])
        self.check([self.f("note", "starts_with", "under")], ["Beta", "Alphabet"])

    def test_or_with_and_precedence(self):
        # gamma OR (qty >= 2 AND active = false)  ->  Beta, gamma, Alphabet
        # ((gamma OR qty >= 2) AND active = false would give Beta, Alphabet)
        self.check([self.f("label", "eq", "gamma"),
                    self.f("qty", "gte", 2, logic_operator="OR"),
                    self.f("active", "eq", False)], ["Beta", "gamma", "Alphabet"])
        # (qty >= 3 AND active = true) OR label = Beta  ->  Beta, gamma
        self.check([self.f("qty", "gte", 3), self.f("active", "eq", True, logic_operator="AND"),
                    self.f("label", "eq", "Beta", logic_operator="OR")], ["Beta", "gamma"])
        self.check([self.f("label", "eq", "alpha"),
                    self.f("label", "eq", "delta", logic_operator="or")], ["alpha", "delta"],
                   "logic_operator is case-insensitive like direction")

    def test_nested_groups(self):
        # Reading of PROTOCOL.md (ext): a group is a filter item {"logic_operator", "filters"};
        # the group is placed first and its inner items carry explicit logic_operators, so the
        # test means the same whether the group's logic_operator joins it to what precedes it or
        # combines its members.
        group = {"logic_operator": "OR", "filters": [
            self.f("label", "eq", "alpha"), self.f("label", "eq", "Beta", logic_operator="OR")]}
        # (alpha OR Beta) AND active = false -> Beta (flattened it would be alpha, Beta)
        self.check([group, self.f("active", "eq", False)], ["Beta"])
        inner = {"logic_operator": "OR", "filters": [
            self.f("qty", "eq", 1), self.f("qty", "eq", 3, logic_operator="OR")]}
        middle = {"logic_operator": "OR", "filters": [
            inner, self.f("label", "eq", "delta", logic_operator="OR")]}
        # ((qty=1 OR qty=3) OR delta) AND active is not null -> alpha, gamma
        self.check([middle, self.f("active", "is_not_null")], ["alpha", "gamma"])

    def sort_labels(self, sort):
        rows, _ = self.read(sort=sort)
        return [r["label"] for r in rows]

    def test_sort_and_nulls(self):
        self.assertEqual(self.sort_labels([{"column": "qty", "direction": "asc"}]),
                         ["alpha", "Beta", "gamma", "Alphabet", "delta"], "NULL last in asc")
        self.assertEqual(self.sort_labels([{"column": "qty", "direction": "desc"}]),
                         ["delta", "Alphabet", "gamma", "Beta", "alpha"], "NULL first in desc")
        self.assertEqual(self.sort_labels([{"column": "qty", "direction": "asc",
                                            "nulls": "first"}]),
                         ["delta", "alpha", "Beta", "gamma", "Alphabet"])
        self.assertEqual(self.sort_labels([{"column": "qty", "direction": "desc",
                                            "nulls": "last"}]),
                         ["Alphabet", "gamma", "Beta", "alpha", "delta"])
        self.assertEqual(self.sort_labels([{"column": "qty", "direction": "DESC"}]),
                         ["delta", "Alphabet", "gamma", "Beta", "alpha"],
                         "direction is case-insensitive")
        self.assertEqual(self.sort_labels([{"column": "active", "direction": "desc"},
                                           {"column": "label", "direction": "asc"}]),
                         ["delta", "alpha", "gamma", "Alphabet", "Beta"], "multi-column sort")
        self.assertEqual(self.sort_labels([{"column": "label", "direction": "asc"}]),
                         ["Alphabet", "Beta", "alpha", "delta", "gamma"])
        self.assertEqual(self.sort_labels([{"column": "seen_at", "direction": "asc"}]),
                         ["alpha", "Beta", "delta", "Alphabet", "gamma"])

    def test_columns_and_omit_columns(self):
        rows, _ = self.read(columns=["id", "label"])
        self.assertEqual(len(rows), 5)
        for r in rows:
            self.assertEqual(set(r), {"id", "label"}, r)
        rows, _ = self.read(omit_columns=["payload", "note"])
        for r in rows:
            self.assertEqual(set(r), THING_FIELDS - {"payload", "note"}, r)
        one = self.assertOk(self.c.request(req("read", "things", record_id=str(self.ids[0]),
                                               options={"columns": ["id", "qty", "payload"]})))
        self.assertEqual(one, {"id": self.ids[0], "qty": 1, "payload": {"i": 1}})
        full = self.assertOk(self.c.request(req("read", "things", data={"id": self.ids[1]})))
        self.assertEqual(full, self.rows[1])

    def test_filter_with_limit_offset_metadata(self):
        rows, resp = self.read(filters=[self.f("qty", "is_not_null")], limit=2, offset=1)
        self.assertEqual([r["label"] for r in rows], ["Beta", "gamma"])
        meta = dict(resp["metadata"])
        self.assertIsInstance(meta.pop("change_seq"), int)
        self.assertEqual(meta, {"total": 4, "count": 2, "limit": 2, "offset": 1})


if __name__ == "__main__":
    unittest.main()
