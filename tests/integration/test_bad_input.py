"""Malformed and hostile requests: each must get the exact error code of PROTOCOL.md, a message
without SQL, 'sqlite' or paths, and must leave the database exactly as it was (checked by reading
every table of the SQLite file read-only before and after). The service must stay up throughout.

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd python3 -m unittest -v test_bad_input
"""

import unittest

from harness import THINGS_MODEL, ServiceTestCase, random_suffix

INJECTION_COLUMNS = ["name; DROP TABLE users", "name\" OR 1=1 --", "name' OR '1'='1",
                     "users.name", "*", "1", "name)--", ""]
SHAPE_ERRORS = ("invalid_filter", "invalid_value")  # value of the wrong shape for its operator


def req(op, entity="users", **kw):
    m = {"id": f"bad-{op}-{random_suffix()}", "type": "request", "operation": op,
         "schema": "public", "entity": entity}
    m.update(kw)
    return m


def read(entity="users", **options):
    return req("read", entity, options=options)


def flt(column, operator, value=None, **kw):
    d = {"column": column, "operator": operator}
    if value is not None:
        d["value"] = value
    d.update(kw)
    return d


class BadInput(ServiceTestCase):
    EXTRA_MODELS = (THINGS_MODEL,)

    @classmethod
    def seed_class(cls):
        c = cls.service.client("seeder-" + random_suffix())
        for m in (req("create", data=[{"name": "Ann", "email": "ann@example.com"},
                                      {"name": "Bob", "email": "bob@example.com",
                                       "status": "inactive"},
                                      {"name": "Cy"}]),
                  req("create", "things", data=[{"label": "one", "qty": 1, "price": 1.0,
                                                 "active": True, "payload": {"k": 1}},
                                                {"label": "two", "qty": 2}])):
            resp = c.request(m)
            if resp.get("success") is not True:
                raise RuntimeError(f"seeding failed: {resp!r}")
        c.close()
        cls.initial = cls.service.db_snapshot()
        if len(cls.initial.get("users", ("", []))[1]) != 3:
            raise RuntimeError(f"unexpected seed state: {cls.initial!r}")

    def setUp(self):
        super().setUp()
        self.c = self.client("bad")

    def reject(self, request, codes, accept_ids=None, timeout=5.0):
        """Sends `request`; asserts the error code(s), a clean message, an unchanged database."""
        before = self.service.db_snapshot()
        resp = self.c.request(request, timeout=timeout, accept_ids=accept_ids)
        err = self.assertError(resp, codes, request=request)
        if isinstance(request, dict) and isinstance(request.get("id"), str) and not accept_ids:
            self.assertEqual(resp.get("id"), request["id"], "id echoed")
        self.assertTrue(self.service.alive(), "mqttspecd still running")
        self.assertEqual(self.service.db_snapshot(), before, "database unchanged")
        return err

    def accept(self, request):
        """Sends `request`, which must succeed and change nothing."""
        before = self.service.db_snapshot()
        resp = self.c.request(request)
        self.assertOk(resp, request.get("id"))
        self.assertEqual(self.service.db_snapshot(), before, "database unchanged")
        return resp

    # ---------------------------------------------------------------- not JSON / not a message
    def test_garbage_bytes(self):
        self.reject(b"\x00\x01\x02garbage{{{\xfe", "invalid_json")

    def test_plain_text(self):
        self.reject(b"hello world", "invalid_json")

    def test_truncated_json(self):
        self.reject(b'{"id": "trunc", "type": "request", "operation": "read"', "invalid_json",
                    accept_ids=["", "trunc"])

    def test_invalid_utf8(self):
        self.reject(b'{"type":"request","operation":"create","schema":"public","entity":"users",'
                    b'"data":{"name":"\xff\xfe\xc3"}}', "invalid_json")

    def test_top_level_array(self):
        self.reject(b'[{"id":"x","type":"request","operation":"read","entity":"users"}]',
                    "invalid_message")

    def test_top_level_number(self):
        self.reject(b"42", "invalid_message")

    def test_top_level_string(self):
        self.reject(b'"read users"', "invalid_message")

    def test_top_level_null(self):
        self.reject(b"null", "invalid_message")

    def test_id_is_an_object(self):
        m = req("read")
        m["id"] = {"$ne": ""}
        self.reject(m, "invalid_message")  # an id that is not a string cannot be echoed: ""

    def test_unknown_operation(self):
        self.reject(req("drop_table"), "invalid_operation")

    # ---------------------------------------------------------------- models and names
    def test_unknown_entity(self):
        self.reject(req("read", "nosuch"), "model_not_found")

    def test_sql_in_entity(self):
        for entity in ("users; DROP TABLE users", "users\" WHERE 1=1 --", "users--",
                       "users WHERE 1=1", "things UNION ALL users"):
            with self.subTest(entity=entity):
                self.reject(req("read", entity), "model_not_found")
                self.reject(req("delete", entity, data={"id": 1}), "model_not_found")

    def test_sql_in_schema(self):
        for schema in ("public; DROP TABLE users; --", "public\".\"users", "main", "temp"):
            with self.subTest(schema=schema):
                m = req("read")
                m["schema"] = schema
                self.reject(m, "model_not_found")

    def test_internal_table_is_not_a_model(self):
        m = req("read", "sqlite_master")
        m["schema"] = "main"
        self.reject(m, "model_not_found")
        self.reject(req("read", "sqlite_master"), "model_not_found")

    # ---------------------------------------------------------------- columns
    def test_unknown_column_in_filter(self):
        self.reject(read(filters=[flt("nme", "eq", "Ann")]), "unknown_column")

    def test_unknown_column_in_sort(self):
        self.reject(read(sort=[{"column": "nme", "direction": "asc"}]), "unknown_column")

    def test_unknown_column_in_columns(self):
        self.reject(read(columns=["id", "nme"]), "unknown_column")

    def test_unknown_column_in_omit_columns(self):
        self.reject(read(omit_columns=["nme"]), "unknown_column")

    def test_unknown_column_in_create_data(self):
        self.reject(req("create", data={"name": "Eve", "is_admin": True}), "unknown_column")

    def test_unknown_column_in_update_data(self):
        self.reject(req("update", data={"id": 1, "is_admin": True}), "unknown_column")

    def test_injection_as_column_names(self):
        for col in INJECTION_COLUMNS:
            with self.subTest(col=col):
                self.reject(read(filters=[flt(col, "eq", "x")]), "unknown_column")
                self.reject(read(sort=[{"column": col, "direction": "asc"}]), "unknown_column")
                self.reject(read(columns=[col]), "unknown_column")
                self.reject(req("create", data={"name": "Mallory", col: "x"}), "unknown_column")
                self.reject(req("update", data={"id": 1, col: "x"}), "unknown_column")

    def test_sql_in_values_is_a_plain_value(self):
        for value in ("x' OR '1'='1", "' OR 1=1 --", "Ann'; DROP TABLE users; --",
                      "\" OR \"\"=\""):
            with self.subTest(value=value):
                resp = self.accept(read(filters=[flt("name", "eq", value)]))
                self.assertEqual(resp["data"], [], "no match")
                self.assertEqual(resp["metadata"]["total"], 0)
                resp = self.accept(read(filters=[flt("name", "in", [value, "nobody"])]))
                self.assertEqual(resp["data"], [])
                resp = self.accept(read(filters=[flt("name", "contains", value)]))
                self.assertEqual(resp["data"], [])
        resp = self.accept(read(filters=[flt("name", "like", "%' OR '1'='1")]))
        self.assertEqual(resp["data"], [])

    # ---------------------------------------------------------------- filters
    def test_unknown_operator(self):
        for op in ("regex", "EQUALS", "=", "eq; DROP TABLE users", ""):
            with self.subTest(op=op):
                self.reject(read(filters=[flt("name", op, "Ann")]), "invalid_filter")

    def test_in_with_non_array(self):
        self.reject(read(filters=[flt("name", "in", "Ann")]), SHAPE_ERRORS)
        self.reject(read(filters=[flt("name", "not_in", {"a": 1})]), SHAPE_ERRORS)

    def test_between_with_one_element(self):
        self.reject(read(filters=[flt("id", "between", [1])]), SHAPE_ERRORS)
        self.reject(read(filters=[flt("id", "between", [1, 2, 3])]), SHAPE_ERRORS)
        self.reject(read(filters=[flt("id", "between", 1)]), SHAPE_ERRORS)

    def test_like_on_integer_column(self):
        self.reject(read("things", filters=[flt("qty", "like", "1%")]), "invalid_filter")
        self.reject(read("things", filters=[flt("qty", "ilike", "1%")]), "invalid_filter")

    def test_filters_nested_100_deep(self):
        f = flt("name", "eq", "Ann")
        for _ in range(100):
            f = {"logic_operator": "AND", "filters": [f]}
        self.reject(read(filters=[f]), "invalid_filter")

    def test_more_than_64_filters(self):
        self.reject(read(filters=[flt("id", "gte", 0)] * 65), "invalid_filter")
        resp = self.accept(read(filters=[flt("id", "gte", 0)] * 64))  # the limit itself is fine
        self.assertEqual(resp["metadata"]["total"], 3)

    # ---------------------------------------------------------------- values
    def test_text_into_integer_field(self):
        self.reject(req("create", "things", data={"label": "bad", "qty": "abc"}), "invalid_value")
        self.reject(req("update", "things", data={"id": 1, "qty": "abc"}), "invalid_value")
        self.reject(read("things", filters=[flt("qty", "eq", "abc")]),
                    ("invalid_value", "invalid_filter"))

    def test_object_into_text_field(self):
        self.reject(req("create", data={"name": {"first": "Eve"}}), "invalid_value")
        self.reject(req("create", data={"name": ["Eve"]}), "invalid_value")

    def test_wrong_boolean_timestamp_real(self):
        self.reject(req("create", "things", data={"label": "b", "active": "yes"}), "invalid_value")
        self.reject(req("create", "things", data={"label": "t", "seen_at": "not a date"}),
                    "invalid_value")
        self.reject(req("create", "things", data={"label": "r", "price": "1.5x"}),
                    "invalid_value")

    def test_null_into_not_null_field(self):
        self.reject(req("create", data={"name": None}), "invalid_value")
        self.reject(req("update", data={"id": 1, "name": None}), "invalid_value")

    def test_missing_required_field_on_create(self):
        self.reject(req("create", data={"email": "noname@example.com"}), "invalid_value")

    def test_batch_with_one_bad_element(self):
        self.reject(req("create", data=[{"name": "Ok1"}, {"name": None}, {"name": "Ok2"}]),
                    "invalid_value")

    def test_unique_violation(self):
        self.reject(req("create", data={"name": "Ann2", "email": "ann@example.com"}), "conflict")

    # ---------------------------------------------------------------- options
    def test_negative_offset(self):
        self.reject(read(offset=-1), "invalid_option")

    def test_bad_limit(self):
        for limit in ("ten", 1.5, -1, [10], {"n": 1}):
            with self.subTest(limit=limit):
                self.reject(read(limit=limit), "invalid_option")

    def test_huge_limit_is_capped(self):
        resp = self.accept(read(limit=10 ** 12))
        self.assertEqual(resp["metadata"]["limit"], 1000)
        self.assertEqual(resp["metadata"]["count"], 3)

    def test_client_supplied_sql_options(self):
        for opts in ({"customOperators": [{"name": "x", "sql": "1=1"}]},
                     {"computedColumns": [{"name": "n", "expression": "(SELECT 1)"}]},
                     {"preload": [{"relation": "posts", "where": "1=1"}]},
                     {"preload": [{"relation": "posts", "sql_joins": ["JOIN x ON 1=1"]}]},
                     {"sql_joins": ["LEFT JOIN things ON 1=1"]}):
            with self.subTest(opts=opts):
                self.reject(read(**opts), "invalid_option")

    # ---------------------------------------------------------------- targets
    def test_update_without_target(self):
        self.reject(req("update", data={"status": "x"}), "invalid_message")

    def test_delete_without_target(self):
        self.reject(req("delete"), "invalid_message")

    def test_update_of_nonexistent_id(self):
        self.reject(req("update", data={"id": 999999, "status": "x"}), "not_found")
        self.reject(req("update", record_id="999999", data={"status": "x"}), "not_found")

    def test_delete_of_nonexistent_id(self):
        self.reject(req("delete", data={"id": 999999}), "not_found")

    # ---------------------------------------------------------------- size and depth
    def test_deeply_nested_json(self):
        n = 100000
        self.reject(b"[" * n + b"]" * n, ("invalid_json", "invalid_message"))
        m = 40000  # 6 bytes a level: stays under max_payload_bytes
        self.reject(b'{"a":' * m + b"1" + b"}" * m, ("invalid_json", "invalid_message"))
        body = (b'{"id":"deep","type":"request","operation":"create","schema":"public",'
                b'"entity":"users","data":' + b"[" * n + b"]" * n + b"}")
        self.reject(body, ("invalid_json", "invalid_message", "invalid_value"),
                    accept_ids=["", "deep"])
        pong = self.c.request({"type": "ping", "id": "after-deep"})
        self.assertEqual(pong.get("type"), "pong")

    def test_payload_too_large(self):
        m = req("create", data={"name": "x" * 270000})
        m["id"] = "big"
        self.assertGreater(len(self.c.encode(m)), 262144)
        # Whether the id of a payload that is not parsed is echoed is not specified: both are fine.
        self.reject(m, "payload_too_large", accept_ids=["big", ""], timeout=10)
        self.reject(b"\x00" * 300000, "payload_too_large", timeout=10)

    # ---------------------------------------------------------------- at the end
    def test_zz_still_up_and_unchanged(self):
        # Named to run last in this class (unittest sorts by name).
        self.assertTrue(self.service.alive())
        pong = self.c.request({"type": "ping", "id": "final"})
        self.assertEqual((pong.get("type"), pong.get("id")), ("pong", "final"), pong)
        self.assertEqual(self.service.db_snapshot(), self.initial,
                         "after every bad request the rows are as seeded")
        resp = self.c.request(read(sort=[{"column": "id", "direction": "asc"}]))
        self.assertEqual([r["name"] for r in self.assertOk(resp)], ["Ann", "Bob", "Cy"])


class SqlInValuesIsStoredLiterally(ServiceTestCase):
    """A create whose values look like SQL stores them as text and drops nothing."""

    def test_create_with_sql_values(self):
        c = self.client()
        before = self.service.db_snapshot()
        evil = "Robert'); DROP TABLE users;--"
        resp = c.request(req("create", data={"name": evil, "email": "x' OR '1'='1",
                                             "status": "\"; DELETE FROM users; --"}))
        row = self.assertOk(resp)
        self.assertEqual(row["name"], evil)
        self.assertEqual(row["email"], "x' OR '1'='1")
        self.assertEqual(row["status"], "\"; DELETE FROM users; --")
        after = self.service.db_snapshot()
        self.assertEqual(set(after), set(before), "no table dropped or added")
        self.assertEqual(after["users"][0], before["users"][0], "schema unchanged")
        self.assertEqual(len(after["users"][1]), len(before["users"][1]) + 1)
        again = self.assertOk(c.request(req("read", data={"id": row["id"]})))
        self.assertEqual(again, row)


if __name__ == "__main__":
    unittest.main()
