"""Real-time subscriptions (PROTOCOL.md §Notifications, the subscribe/unsubscribe rows of
§Requests) with several real MQTT clients: a subscriber, a writer and a bystander whose
subscription must stay silent.

  - the seed's example (seed 002 §Real-time Subscriptions) exactly as written;
  - every operation (create, batch create, update, delete) and every operator family: each
    subscription's notification stream must be exactly what reads with the same filters, taken
    before and after each write, say it should be (create / update / "match": false / delete),
    with the row as stored and seq 1, 2, 3, …;
  - errors: someone else's or an unknown subscription id, bad filters, the per-client limit;
  - the configured notification QoS;
  - ordering under concurrent writers: each writer updates its own row with a rising counter;
    every subscription sees each row's counter strictly increase and its seq without gaps;
  - lifecycle (embedded mode only, where the service sees connections): a clean session's
    subscriptions end when it disconnects; a persistent session's stay, and QoS 1 notifications
    published while it was away reach it when it comes back.

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd python3 -m unittest -v test_subscriptions
(MQTTSPEC_MODE=embedded runs the mode-independent classes in embedded mode too; the lifecycle
classes are embedded whatever MQTTSPEC_MODE says.)
"""

import os
import shutil
import threading
import time
import unittest

import harness
from harness import ISO_UTC_MS, USERS_MODEL, Service, ServiceTestCase, random_suffix

# Every field type; `run` keeps each test's rows apart from the others' in a class-scoped service.
SUBS_MODEL = {
    "name": "public.gadgets",
    "primary_key": "id",
    "fields": [
        {"name": "id", "type": "integer", "auto_increment": True},
        {"name": "run", "type": "text", "nullable": False},
        {"name": "label", "type": "text", "nullable": False},
        {"name": "qty", "type": "integer"},
        {"name": "price", "type": "real"},
        {"name": "active", "type": "boolean"},
        {"name": "seen_at", "type": "timestamp"},
        {"name": "payload", "type": "json"},
        {"name": "note", "type": "text"},
    ],
}

NOTIFY_TIMEOUT = 10.0
QUIET_S = 0.6  # how long "nothing more arrives" is watched


def req(op, entity="gadgets", id=None, **kw):
    m = {"id": id or f"{op}-{random_suffix()}", "type": "request", "operation": op,
         "schema": "public", "entity": entity}
    m.update(kw)
    return m


def sub_req(filters, entity="gadgets", id=None):
    return {"id": id or f"sub-{random_suffix()}", "type": "subscription", "operation": "subscribe",
            "schema": "public", "entity": entity, "options": {"filters": filters}}


def unsub_req(subscription_id, id=None, top_level=False):
    m = {"id": id or f"unsub-{random_suffix()}", "type": "subscription",
         "operation": "unsubscribe"}
    if top_level:
        m["subscription_id"] = subscription_id
    else:
        m["data"] = {"subscription_id": subscription_id}
    return m


def is_notification_on(topic):
    return lambda t, m, p: t == topic and m.get("type") == "notification"


def lifecycle_unavailable():
    """Why embedded-mode lifecycle tests cannot run here, or None."""
    if not hasattr(harness.Service, "embedded"):
        return "the harness has no embedded mode"
    if not shutil.which(harness.mosquitto_binary()) and not os.path.exists(harness.mosquitto_binary()):
        return f"no Mosquitto broker binary ({harness.mosquitto_binary()})"
    server = harness.default_server_binary()
    plugin = os.path.join(os.path.dirname(os.path.dirname(server)), "lib", "mqttspec_mosquitto.so")
    if not os.path.exists(plugin):
        return f"the Mosquitto plugin is not built ({plugin})"
    return None


class SubscriptionTestCase(ServiceTestCase):
    EXTRA_MODELS = (SUBS_MODEL,)

    def subscribe(self, client, filters, entity="gadgets", mqtt_subscribe=True, qos=1):
        """subscribe request → (subscription_id, notify_topic); then subscribes to the topic."""
        r = sub_req(filters, entity)
        data = self.assertOk(client.request(r), r["id"])
        self.assertIsInstance(data, dict, data)
        sid, topic = data.get("subscription_id"), data.get("notify_topic")
        self.assertIsInstance(sid, str, data)
        self.assertTrue(sid, data)
        self.assertEqual(topic, f"spec/{client.client_id}/notify/{sid}", data)
        if mqtt_subscribe:
            self.assertLess(client.subscribe(topic, qos=qos), harness.SUBACK_FAILURE, topic)
        return sid, topic

    def write(self, client, msg):
        return self.assertOk(client.request(msg, timeout=10), msg["id"])

    def read_ids(self, client, filters):
        r = req("read", options={"filters": filters, "limit": 1000})
        rows = self.assertOk(client.request(r, timeout=10), r["id"])
        return {row["id"]: row for row in rows}

    def notifications(self, client, topic, n, timeout=NOTIFY_TIMEOUT):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{client.client_id}: {len(out)} of {n} notifications on "
                                     f"{topic} within {timeout} s: {out!r}")
            try:
                out.append(client.wait_for(is_notification_on(topic), left, "notification")[1])
            except AssertionError:
                seqs = [m.get("seq") for m in out]
                raise AssertionError(
                    f"{client.client_id}: {len(out)} of {n} notifications on {topic} within "
                    f"{timeout} s; seq received: {seqs!r}; last: {out[-1:]!r}") from None
        return out

    def assertQuiet(self, client, topic=None, seconds=QUIET_S):
        """No (further) notification arrives, on `topic` or on any notify topic of the client.
        Other unclaimed messages stay in the client's inbox."""
        time.sleep(seconds)
        prefix = f"spec/{client.client_id}/notify/"
        stray = []
        while True:
            try:
                stray.append(client.wait_for(
                    lambda t, m, p: t == topic if topic else t.startswith(prefix), 0.001)[:2])
            except AssertionError:
                break
        self.assertEqual(stray, [], f"{client.client_id} got notifications it should not have")

    def assertNotification(self, n, sid, operation, entity="gadgets", seq=None):
        self.assertEqual(n.get("type"), "notification", n)
        self.assertEqual(n.get("operation"), operation, n)
        self.assertEqual(n.get("subscription_id"), sid, n)
        self.assertEqual(n.get("schema"), "public", n)
        self.assertEqual(n.get("entity"), entity, n)
        self.assertIsInstance(n.get("data"), dict, n)
        self.assertRegex(n.get("timestamp", ""), ISO_UTC_MS)
        if seq is not None:
            self.assertEqual(n.get("seq"), seq, n)


# ------------------------------------------------------------------------------------ seed example

class SeedSubscriptionExample(SubscriptionTestCase):
    SERVICE_PER_TEST = True  # "id": 10-style expectations need a fresh users table

    def test_subscribe_notify_unsubscribe_as_in_the_seed(self):
        subscriber = self.client("subscriber")
        writer = self.client("writer")
        bystander = self.client("bystander")
        # Publishes to spec/{client_id}/request, literally the seed's message.
        msg6 = {"id": "msg-6", "type": "subscription", "operation": "subscribe",
                "schema": "public", "entity": "users",
                "options": {"filters": [{"column": "status", "operator": "eq", "value": "active"}]}}
        resp = subscriber.request(msg6)
        data = self.assertOk(resp, "msg-6")
        sid = data["subscription_id"]
        self.assertEqual(data["notify_topic"], f"spec/{subscriber.client_id}/notify/{sid}")
        # Client then subscribes to the MQTT topic spec/{client_id}/notify/<sid>.
        self.assertEqual(subscriber.subscribe(data["notify_topic"], qos=1), 1)
        bsid, btopic = self.subscribe(bystander, [{"column": "status", "operator": "eq",
                                                   "value": "banned"}], entity="users")

        created = self.write(writer, req("create", entity="users", id="c-new",
                                         data={"name": "New User", "email": "newuser@example.com",
                                               "status": "active"}))
        [n] = self.notifications(subscriber, data["notify_topic"], 1)
        self.assertNotification(n, sid, "create", entity="users", seq=1)
        for k, v in {"id": created["id"], "name": "New User", "email": "newuser@example.com",
                     "status": "active"}.items():
            self.assertEqual(n["data"].get(k), v, n)
        self.assertEqual(n["data"], created, "the row as stored, as the writer got it")

        # Not matching: no notification; the bystander hears nothing of either.
        self.write(writer, req("create", entity="users",
                               data={"name": "Quiet", "email": "q@example.com", "status": "inactive"}))
        self.assertQuiet(subscriber, data["notify_topic"])
        self.assertQuiet(bystander, btopic)

        # Unsubscribe exactly as in the seed: subscription_id inside data.
        msg7 = {"id": "msg-7", "type": "subscription", "operation": "unsubscribe",
                "data": {"subscription_id": sid}}
        un = self.assertOk(subscriber.request(msg7), "msg-7")
        self.assertEqual(un, {"unsubscribed": True, "subscription_id": sid})
        self.write(writer, req("create", entity="users",
                               data={"name": "After", "email": "after@example.com", "status": "active"}))
        self.assertQuiet(subscriber, data["notify_topic"])


# ----------------------------------------------------------------- operations and operator families

# (name, filters after `run eq <tag>`): every operator, coercions, OR lists, nested/empty groups.
OPERATOR_FILTERS = [
    ("eq_int", [{"column": "qty", "operator": "eq", "value": 5}]),
    ("eq_int_given_as_string", [{"column": "qty", "operator": "eq", "value": "5"}]),
    ("neq", [{"column": "qty", "operator": "neq", "value": 5}]),
    ("gt_real", [{"column": "price", "operator": "gt", "value": 1.5}]),
    ("gte_real_given_int", [{"column": "price", "operator": "gte", "value": 2}]),
    ("eq_real_given_int", [{"column": "price", "operator": "eq", "value": 2}]),
    ("lt", [{"column": "price", "operator": "lt", "value": 1}]),
    ("lte", [{"column": "qty", "operator": "lte", "value": 2}]),
    ("between", [{"column": "price", "operator": "between", "value": [1, 2.5]}]),
    ("in", [{"column": "qty", "operator": "in", "value": [1, 5, "7"]}]),
    ("not_in", [{"column": "qty", "operator": "not_in", "value": [5, 6]}]),
    ("is_null", [{"column": "note", "operator": "is_null"}]),
    ("is_not_null", [{"column": "note", "operator": "is_not_null"}]),
    ("like", [{"column": "label", "operator": "like", "value": "a%"}]),
    ("like_underscore_utf8", [{"column": "label", "operator": "like", "value": "\\_\u00e9%"}]),
    ("like_one_char", [{"column": "label", "operator": "like", "value": "__"}]),
    ("like_escaped_percent", [{"column": "label", "operator": "like", "value": "50\\%%"}]),
    ("ilike", [{"column": "label", "operator": "ilike", "value": "A%"}]),
    ("contains_percent_literally", [{"column": "label", "operator": "contains", "value": "%"}]),
    ("starts_with_underscore_literally", [{"column": "label", "operator": "starts_with",
                                            "value": "a_"}]),
    ("bool_true", [{"column": "active", "operator": "eq", "value": True}]),
    ("bool_given_0", [{"column": "active", "operator": "eq", "value": 0}]),
    ("timestamp_other_zone", [{"column": "seen_at", "operator": "eq",
                               "value": "2024-01-01T01:00:00+01:00"}]),
    ("timestamp_gt_date", [{"column": "seen_at", "operator": "gt", "value": "2024-01-01"}]),
    ("json_not_null", [{"column": "payload", "operator": "is_not_null"}]),  # json: null-ness only
    ("or_in_group", [{"filters": [{"column": "qty", "operator": "eq", "value": 1},
                                  {"column": "price", "operator": "gt", "value": 3,
                                   "logic_operator": "OR"}]}]),
    ("nested_groups", [{"filters": [{"column": "active", "operator": "eq", "value": True},
                                    {"filters": [{"column": "note", "operator": "is_null"},
                                                 {"column": "qty", "operator": "gte", "value": 6,
                                                  "logic_operator": "OR"}]}]}]),
    ("empty_group", [{"filters": []}]),
]

ROWS = [  # one batch create
    {"label": "apple", "qty": 5, "price": 1.5, "active": True, "seen_at": "2024-01-01T00:00:00Z",
     "payload": {"a": 1}, "note": None},
    {"label": "Avocado", "qty": 1, "price": 2.5, "active": False, "seen_at": "2024-06-01T00:00:00Z",
     "payload": {"a": 2}, "note": "n"},
    {"label": "a_b", "qty": 7, "price": 0.5, "active": True, "seen_at": None, "payload": [1],
     "note": "x"},
    {"label": "50% off", "qty": None, "price": None, "active": None, "seen_at": None,
     "payload": None, "note": None},
    {"label": "_\u00e9mile", "qty": 2, "price": 2.0, "active": False,
     "seen_at": "2024-01-01T01:00:00+01:00", "payload": {"a": 1}, "note": ""},
    {"label": "\u65e5\u672c", "qty": 5, "price": 1.0, "active": True,
     "seen_at": "2023-12-31T23:59:59Z", "payload": "x", "note": "y"},
    {"label": "xyz", "qty": 0, "price": -1, "active": 1, "seen_at": "2025-01-01",
     "payload": 1, "note": None},
    {"label": "ABC", "qty": 9, "price": 3.25, "active": "false", "seen_at": "2024-03-01 12:00",
     "payload": {"a": 1, "b": [True]}, "note": "z"},
]


class SubscriptionOperations(SubscriptionTestCase):

    def test_every_operation_and_operator_notifies_exactly_what_reads_say(self):
        tag = "ops-" + random_suffix()
        subscriber = self.client("subscriber")
        second = self.client("second")  # a second client with one of the same filters
        writer = self.client("writer")
        bystander = self.client("bystander")
        run = {"column": "run", "operator": "eq", "value": tag}
        subs = {}  # name -> (sid, topic, full filters)
        for name, extra in OPERATOR_FILTERS:
            sid, topic = self.subscribe(subscriber, [run] + extra)
            subs[name] = (sid, topic, [run] + extra)
        # A top-level OR list (not indexable: the service scans it).
        or_filters = [{"filters": [run, {"column": "qty", "operator": "eq", "value": 1}]},
                      {"filters": [run, {"column": "price", "operator": "gt", "value": 3}],
                       "logic_operator": "OR"}]
        sid, topic = self.subscribe(subscriber, or_filters)
        subs["top_level_or"] = (sid, topic, or_filters)
        sid, topic = self.subscribe(second, [run] + OPERATOR_FILTERS[0][1])
        subs["second_client_eq_int"] = (sid, topic, [run] + OPERATOR_FILTERS[0][1])
        never = [run, {"column": "qty", "operator": "eq", "value": 999}]
        _, never_topic = self.subscribe(bystander, never)
        _, users_topic = self.subscribe(bystander, [], entity="users")
        client_of = {name: (second if name.startswith("second") else subscriber) for name in subs}

        # The writes, and what reads with each subscription's filters say before/after each one.
        expected = {name: [] for name in subs}  # name -> [(operation, id, match)]
        rows_after = {}

        def views():
            return {name: self.read_ids(writer, f) for name, (_, _, f) in subs.items()}

        before = views()
        created = self.write(writer, req("create", data=[dict(r, run=tag) for r in ROWS]))
        self.assertEqual(len(created), len(ROWS))
        ids = [r["id"] for r in created]
        after = views()
        for name in subs:
            for i in ids:
                if i in after[name]:
                    expected[name].append(("create", i, True, after[name][i]))
        updates = [(0, {"qty": 6}), (1, {"price": 1.2}), (3, {"note": "now"}),
                   (6, {"label": "apricot"}), (2, {"active": False}), (4, {"qty": 5, "note": None})]
        steps = [("update", ids[k], d) for k, d in updates] + [("delete", ids[5], None),
                                                               ("delete", ids[4], None)]
        for op, rid, data in steps:
            before = after
            if op == "update":
                self.write(writer, req("update", record_id=rid, data=data))
            else:
                self.write(writer, req("delete", record_id=rid))
            after = views()
            for name in subs:
                if op == "update" and rid in after[name]:
                    expected[name].append(("update", rid, True, after[name][rid]))
                elif op == "update" and rid in before[name]:
                    expected[name].append(("update", rid, False, None))
                elif op == "delete" and rid in before[name]:
                    expected[name].append(("delete", rid, True, before[name][rid]))

        total = sum(len(v) for v in expected.values())
        self.assertGreater(total, 80, "the scenario should produce plenty of notifications")
        for name, (sid, topic, filters) in subs.items():
            want = expected[name]
            got = self.notifications(client_of[name], topic, len(want))
            for k, (n, (op, rid, match, row)) in enumerate(zip(got, want), start=1):
                ctx = f"subscription {name} {filters!r}, notification {k}: {n!r}"
                self.assertNotification(n, sid, op, seq=k)
                self.assertEqual(n["data"].get("id"), rid, ctx)
                if match:
                    if "match" in n:
                        self.assertIs(n["match"], True, ctx)
                    self.assertEqual(n["data"], row, f"{ctx}: data is the row as stored")
                else:
                    self.assertIs(n.get("match"), False, f"{ctx}: the row left the view")
        self.assertQuiet(subscriber)
        self.assertQuiet(second)
        self.assertQuiet(bystander)
        # Spot checks that the reads themselves (and so the expectations) are what SQL means.
        eq5 = [(op, rid) for op, rid, m, _ in expected["eq_int"] if m]
        self.assertEqual(eq5[:2], [("create", ids[0]), ("create", ids[5])])
        self.assertIn(("update", ids[0], False, None), expected["eq_int"], "qty 5 → 6 leaves")
        self.assertEqual([x[:3] for x in expected["like_escaped_percent"]],
                         [("create", ids[3], True), ("update", ids[3], True)])
        self.assertEqual([x[1] for x in expected["contains_percent_literally"] if x[0] == "create"],
                         [ids[3]])
        self.assertEqual([x[1] for x in expected["timestamp_other_zone"] if x[0] == "create"],
                         [ids[0], ids[4]], "01:00+01:00 is 00:00Z")

    def test_batch_create_notifies_each_row_in_order_with_gap_free_seq(self):
        tag = "batch-" + random_suffix()
        subscriber, writer = self.client("subscriber"), self.client("writer")
        sid, topic = self.subscribe(subscriber, [{"column": "run", "operator": "eq", "value": tag},
                                                 {"column": "qty", "operator": "gte", "value": 10}])
        batch = [{"run": tag, "label": f"b{i}", "qty": i} for i in range(30)]
        created = self.write(writer, req("create", data=batch))
        want = [r for r in created if r["qty"] >= 10]
        got = self.notifications(subscriber, topic, len(want))
        for k, (n, row) in enumerate(zip(got, want), start=1):
            self.assertNotification(n, sid, "create", seq=k)
            self.assertEqual(n["data"], row)
        self.assertQuiet(subscriber, topic)

    def test_notifications_use_the_default_qos_1(self):
        tag = "qos-" + random_suffix()
        subscriber, writer = self.client("subscriber"), self.client("writer")
        qos_seen = record_qos(subscriber)
        _, topic = self.subscribe(subscriber, [{"column": "run", "operator": "eq", "value": tag}], qos=2)
        self.write(writer, req("create", data={"run": tag, "label": "q"}))
        self.notifications(subscriber, topic, 1)
        self.assertEqual(qos_seen.get(topic), [1])

    def test_writes_before_subscribing_are_not_replayed(self):
        tag = "late-" + random_suffix()
        subscriber, writer = self.client("subscriber"), self.client("writer")
        self.write(writer, req("create", data={"run": tag, "label": "early"}))
        sid, topic = self.subscribe(subscriber, [{"column": "run", "operator": "eq", "value": tag}])
        self.assertQuiet(subscriber, topic)
        self.write(writer, req("create", data={"run": tag, "label": "late"}))
        [n] = self.notifications(subscriber, topic, 1)
        self.assertNotification(n, sid, "create", seq=1)
        self.assertEqual(n["data"]["label"], "late")

    def test_subscriber_also_hears_of_its_own_writes(self):
        tag = "own-" + random_suffix()
        c = self.client("self")
        sid, topic = self.subscribe(c, [{"column": "run", "operator": "eq", "value": tag}])
        row = self.write(c, req("create", data={"run": tag, "label": "mine"}))
        [n] = self.notifications(c, topic, 1)
        self.assertEqual(n["data"], row)


def record_qos(client):
    """topic -> [QoS of each PUBLISH received] (wraps the client's paho on_message)."""
    seen = {}
    original = client._mqtt.on_message

    def on_message(mq, userdata, msg):
        seen.setdefault(msg.topic, []).append(msg.qos)
        original(mq, userdata, msg)
    client._mqtt.on_message = on_message
    return seen


# ------------------------------------------------------------------------------------------ errors

class SubscriptionErrors(SubscriptionTestCase):
    LIMITS = {"max_subscriptions_per_client": 3}

    def test_unsubscribing_someone_elses_subscription_is_not_found_and_keeps_it(self):
        tag = "steal-" + random_suffix()
        owner, thief, writer = self.client("owner"), self.client("thief"), self.client("writer")
        sid, topic = self.subscribe(owner, [{"column": "run", "operator": "eq", "value": tag}])
        r = unsub_req(sid)
        self.assertError(thief.request(r), "not_found", r["id"], request=r)
        r = unsub_req(sid, top_level=True)
        self.assertError(thief.request(r), "not_found", r["id"], request=r)
        self.write(writer, req("create", data={"run": tag, "label": "still"}))
        [n] = self.notifications(owner, topic, 1)
        self.assertNotification(n, sid, "create", seq=1)
        # The owner may, with subscription_id at the top level too; twice: not_found.
        r = unsub_req(sid, top_level=True)
        self.assertEqual(self.assertOk(owner.request(r), r["id"]),
                         {"unsubscribed": True, "subscription_id": sid})
        r = unsub_req(sid)
        self.assertError(owner.request(r), "not_found", r["id"], request=r)

    def test_unknown_or_missing_subscription_id(self):
        c = self.client("c")
        r = unsub_req("sub-does-not-exist")
        self.assertError(c.request(r), "not_found", r["id"], request=r)
        r = {"id": "u-missing", "type": "subscription", "operation": "unsubscribe"}
        self.assertError(c.request(r), ("invalid_message",), "u-missing", request=r)
        r = {"id": "u-num", "type": "subscription", "operation": "unsubscribe",
             "data": {"subscription_id": 42}}
        self.assertError(c.request(r), ("invalid_message",), "u-num", request=r)

    def test_bad_filters_are_refused_like_for_reads(self):
        c = self.client("c")
        cases = [
            ([{"column": "nope", "operator": "eq", "value": 1}], "gadgets", "unknown_column"),
            ([{"column": "qty", "operator": "like", "value": "1%"}], "gadgets", "invalid_filter"),
            ([{"column": "qty", "operator": "approx", "value": 1}], "gadgets", "invalid_filter"),
            ([{"column": "qty", "operator": "eq", "value": "x"}], "gadgets", "invalid_value"),
            ([{"column": "label", "operator": "like", "value": "a\\"}], "gadgets", "invalid_filter"),
            ([{"column": "qty", "operator": "between", "value": [1]}], "gadgets", "invalid_filter"),
            ([], "nothing_here", "model_not_found"),
        ]
        for filters, entity, code in cases:
            r = sub_req(filters, entity)
            self.assertError(c.request(r), code, r["id"], msg=f"{filters!r}", request=r)
        # None of them counted against the limit of 3.
        for _ in range(3):
            self.subscribe(c, [], mqtt_subscribe=False)

    def test_per_client_limit_gives_too_many_subscriptions(self):
        c, other = self.client("limited"), self.client("other")
        sids = [self.subscribe(c, [], mqtt_subscribe=False)[0] for _ in range(3)]
        self.assertEqual(len(set(sids)), 3, "subscription ids are unique")
        r = sub_req([])
        self.assertError(c.request(r), "too_many_subscriptions", r["id"], request=r)
        self.subscribe(other, [], mqtt_subscribe=False)  # the limit is per client
        self.assertOk(c.request(unsub_req(sids[0])))
        self.subscribe(c, [], mqtt_subscribe=False)  # a slot is free again
        r = sub_req([])
        self.assertError(c.request(r), "too_many_subscriptions", r["id"], request=r)


# ---------------------------------------------------------------------------------- configured QoS

class NotificationQos2(SubscriptionTestCase):
    QOS = 2

    @classmethod
    def make_service(cls):
        svc = Service(extra_models=cls.EXTRA_MODELS, limits=cls.LIMITS)
        base = svc.config_dict

        def config_dict():
            cfg = base()
            cfg["qos"] = {"request": 1, "response": 1, "notification": cls.QOS}
            return cfg
        svc.config_dict = config_dict
        return svc

    def test_notifications_arrive_at_the_configured_qos(self):
        tag = "qos-" + random_suffix()
        subscriber, writer = self.client("subscriber"), self.client("writer")
        qos_seen = record_qos(subscriber)
        _, topic = self.subscribe(subscriber, [{"column": "run", "operator": "eq", "value": tag}], qos=2)
        for i in range(3):
            self.write(writer, req("create", data={"run": tag, "label": f"q{i}"}))
        got = self.notifications(subscriber, topic, 3)
        self.assertEqual([n["seq"] for n in got], [1, 2, 3])
        self.assertEqual(qos_seen.get(topic), [self.QOS] * 3)


class NotificationQos0(NotificationQos2):
    QOS = 0


# ---------------------------------------------------------------------------------------- ordering

class ConcurrentWritersOrdering(SubscriptionTestCase):
    WRITERS = 4
    UPDATES = 40

    def test_each_rows_notifications_arrive_in_commit_order_with_gap_free_seq(self):
        tag = "order-" + random_suffix()
        run = {"column": "run", "operator": "eq", "value": tag}
        subscriber = self.client("subscriber")
        other = self.client("other-subscriber")
        subs = [
            (subscriber,) + self.subscribe(subscriber, [run]),  # indexed under run
            (subscriber,) + self.subscribe(subscriber, [run, {"column": "qty", "operator": "gte",
                                                              "value": 0}]),
            (other,) + self.subscribe(other, [{"filters": [run]}]),  # scanned (a group)
        ]
        writers = [self.client(f"writer{w}") for w in range(self.WRITERS)]
        rows = [self.write(w, req("create", data={"run": tag, "label": w.client_id, "qty": 0}))
                for w in writers]
        errors = []

        def hammer(w, row_id):
            try:
                ids = []
                for k in range(1, self.UPDATES + 1):  # pipelined: the service keeps their order
                    m = req("update", record_id=row_id, data={"qty": k})
                    ids.append(m["id"])
                    w.send_raw(m)
                for rid in ids:
                    resp = w.wait_response(rid, timeout=30)
                    if resp.get("success") is not True:
                        errors.append(resp)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        threads = [threading.Thread(target=hammer, args=(w, r["id"]))
                   for w, r in zip(writers, rows)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertFalse(any(t.is_alive() for t in threads), "writers did not finish in 60 s")
        self.assertEqual(errors, [])
        expected = self.WRITERS * (1 + self.UPDATES)
        for client, sid, topic in subs:
            got = self.notifications(client, topic, expected, timeout=30)
            self.assertEqual([n["seq"] for n in got], list(range(1, expected + 1)),
                             f"{topic}: seq must have no gaps or reordering")
            last = {}
            for n in got:
                rid, qty = n["data"]["id"], n["data"]["qty"]
                self.assertGreater(qty, last.get(rid, -1),
                                   f"{topic}: row {rid} went from {last.get(rid)} to {qty}")
                last[rid] = qty
                self.assertEqual(n["operation"], "create" if qty == 0 else "update", n)
            self.assertEqual(last, {r["id"]: self.UPDATES for r in rows})
            self.assertQuiet(client, topic, 0.2)


# -------------------------------------------------------------------- lifecycle (embedded mode only)

_NO_LIFECYCLE = lifecycle_unavailable()


@unittest.skipIf(_NO_LIFECYCLE, f"lifecycle needs embedded mode: {_NO_LIFECYCLE}")
class SubscriptionLifecycle(SubscriptionTestCase):
    """Only in embedded mode does the service see connections and disconnections; external mode
    has no way to learn of them (PROTOCOL.md says nothing of it, service.h: 'for transports that
    see connections')."""
    SERVICE_PER_TEST = True
    LIMITS = {"max_subscriptions_per_client": 3}

    @classmethod
    def make_service(cls):
        return Service(extra_models=cls.EXTRA_MODELS, limits=cls.LIMITS, mode="embedded")

    def fill_to_limit(self, c, tag):
        topics = []
        for i in range(3):
            _, topic = self.subscribe(c, [{"column": "run", "operator": "eq", "value": tag}])
            topics.append(topic)
        r = sub_req([])
        self.assertError(c.request(r), "too_many_subscriptions", r["id"], request=r)
        return topics

    def test_clean_session_subscriptions_end_when_the_client_disconnects(self):
        tag = "clean-" + random_suffix()
        cid = "lc-clean-" + random_suffix()
        writer = self.client("writer")
        c = self.service.client(cid, clean_session=True)
        self.fill_to_limit(c, tag)
        c.close()
        time.sleep(0.5)  # the disconnect is handled on the client's strand
        # Back with a persistent session: connecting does not end anything, so whatever is gone
        # went at the disconnect.
        back = self.service.client(cid, clean_session=False)
        self.assertFalse(back.session_present)
        self.assertLess(back.subscribe(f"spec/{cid}/notify/+", qos=1), harness.SUBACK_FAILURE)
        self.write(writer, req("create", data={"run": tag, "label": "nobody listens"}))
        self.assertQuiet(back, seconds=1.0)
        for i in range(3):  # the limit counts from zero again
            self.subscribe(back, [], mqtt_subscribe=False)

    def test_persistent_session_keeps_subscriptions_and_gets_what_was_published_meanwhile(self):
        self.persistent_round_trip("3.1.1")

    def test_persistent_v5_session_keeps_subscriptions_and_gets_what_was_published_meanwhile(self):
        self.persistent_round_trip("5")

    def persistent_round_trip(self, protocol):
        tag = "persist-" + random_suffix()
        cid = "lc-persist-" + random_suffix()
        writer = self.client("writer")
        c = self.service.client(cid, protocol=protocol, clean_session=False)
        sid, topic = self.subscribe(c, [{"column": "run", "operator": "eq", "value": tag}])
        self.write(writer, req("create", data={"run": tag, "label": "online"}))
        self.assertEqual(self.notifications(c, topic, 1)[0]["seq"], 1)
        c.close()
        time.sleep(0.5)
        for i in range(3):  # published while the client is away
            self.write(writer, req("create", data={"run": tag, "label": f"away{i}"}))
        time.sleep(0.3)
        back = self.service.client(cid, protocol=protocol, clean_session=False)
        self.assertTrue(back.session_present, "the broker kept the session")
        got = self.notifications(back, topic, 3)
        self.assertEqual([n["seq"] for n in got], [2, 3, 4])
        self.assertEqual([n["data"]["label"] for n in got], ["away0", "away1", "away2"])
        for n in got:
            self.assertNotification(n, sid, "create")
        # The subscription itself is still there: new writes notify, seq goes on.
        self.write(writer, req("create", data={"run": tag, "label": "back"}))
        [n] = self.notifications(back, topic, 1)
        self.assertEqual((n["seq"], n["data"]["label"]), (5, "back"))
        # And it still counts against the limit (1 used, 2 left).
        for _ in range(2):
            self.subscribe(back, [], mqtt_subscribe=False)
        r = sub_req([])
        self.assertError(back.request(r), "too_many_subscriptions", r["id"], request=r)

    def test_reconnecting_with_a_clean_session_ends_a_persistent_sessions_subscriptions(self):
        tag = "reclean-" + random_suffix()
        cid = "lc-reclean-" + random_suffix()
        writer = self.client("writer")
        c = self.service.client(cid, clean_session=False)
        self.fill_to_limit(c, tag)
        c.close()
        time.sleep(0.3)
        fresh = self.service.client(cid, clean_session=True)
        self.assertFalse(fresh.session_present)
        self.assertLess(fresh.subscribe(f"spec/{cid}/notify/+", qos=1), harness.SUBACK_FAILURE)
        self.write(writer, req("create", data={"run": tag, "label": "gone"}))
        self.assertQuiet(fresh, seconds=1.0)
        for _ in range(3):
            self.subscribe(fresh, [], mqtt_subscribe=False)


if __name__ == "__main__":
    unittest.main()
