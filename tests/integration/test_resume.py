"""Resuming subscriptions from the change log (docs/protocol.md "Resuming a subscription"), with
real MQTT clients, in the mode and on the database the environment selects:

  - a subscriber disconnects; four writers make 1 000+ changes; it subscribes again with
    options.since_change_seq = the last change_seq it saw, while the writers are still busy, and
    receives every matching change exactly once, in commit order — compared with a reference
    subscriber that never left — then live ones; the replay_complete marker sits at the seam;
  - the same across a SIGKILL and restart of the service;
  - resync_required once the log was trimmed past the client's change_seq (changes.max_rows),
    and the documented recovery: read, then subscribe with the read's change_seq;
  - read-then-subscribe under concurrent writers: the read's rows plus the resumed
    notifications give exactly the final table, round after round;
  - bad input: since_change_seq on a read, not a non-negative integer, ahead of the log, or with
    the log switched off (changes.enabled false).

Run: cd tests/integration && MQTTSPECD=/abs/path/mqttspecd python3 -m unittest -v test_resume
"""

import threading
import time
import unittest

from harness import Service, ServiceTestCase, random_suffix

NOTIFY_TIMEOUT = 30.0


def req(op, id=None, **kw):
    m = {"id": id or f"{op}-{random_suffix()}", "type": "request", "operation": op,
         "schema": "public", "entity": "users"}
    m.update(kw)
    return m


def view_filters(tag):
    """The subscribers' view: the tag's rows whose status is "on"."""
    return [{"column": "name", "operator": "starts_with", "value": tag},
            {"column": "status", "operator": "eq", "value": "on"}]


def subscribe(client, filters, since=None):
    """Listens on the client's notify topics first (a resume replays right after its answer),
    then subscribes; returns the answer's data."""
    client.subscribe(f"spec/{client.client_id}/notify/+", qos=1)
    m = {"id": f"sub-{random_suffix()}", "type": "subscription", "operation": "subscribe",
         "schema": "public", "entity": "users", "options": {"filters": filters}}
    if since is not None:
        m["options"]["since_change_seq"] = since
    return client.request(m, timeout=10)


def notes_on(client, topic):
    return [m for m in client.messages_on(topic) if m.get("type") == "notification"]


def wait_notes(client, topic, n, timeout=NOTIFY_TIMEOUT, what="notifications"):
    deadline = time.monotonic() + timeout
    while True:
        got = notes_on(client, topic)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def changes_only(notes):
    """The notifications of changes (no replay_complete marker)."""
    return [n for n in notes if n.get("operation") in ("create", "update", "delete")]


def essence(n):
    return (n["change_seq"], n["operation"], n.get("match", True), n["data"])


class Writer(threading.Thread):
    """Runs a row through its life `rows` times: create (status on) → update off (leaves the
    view: "match": false) → update on (enters again) → delete; four changes per row, every one of
    them notified to a subscriber of view_filters(tag). Every tenth row also creates a row of
    another tag, which no subscriber of the tag's view may see."""

    def __init__(self, svc, tag, index, rows, keep=False):
        super().__init__(daemon=True)
        self.client = svc.client(f"w{index}-{random_suffix()}")
        self.tag, self.index, self.rows, self.keep = tag, index, rows, keep
        self.done_rows = 0
        self.errors = []

    def ask(self, m):
        r = self.client.request(m, timeout=15)
        if not r.get("success"):
            self.errors.append(r)
        return r.get("data") or {}

    def run(self):
        try:
            for i in range(self.rows):
                row = self.ask(req("create", data={"name": f"{self.tag}-w{self.index}-{i}",
                                                   "status": "on"}))
                rid = row.get("id")
                self.ask(req("update", record_id=str(rid), data={"status": "off"}))
                # keep: some rows stay off, some stay on, the rest go (a table that ends full).
                if not self.keep or i % 3:
                    self.ask(req("update", record_id=str(rid), data={"status": "on"}))
                if not self.keep or i % 2 == 0:
                    self.ask(req("delete", record_id=str(rid)))
                if i % 10 == 0:
                    self.ask(req("create", data={"name": f"other-{self.tag}-{i}"}))
                self.done_rows = i + 1
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))


class ResumeTestCase(ServiceTestCase):
    SERVICE_PER_TEST = True

    def assertSeam(self, notes, since):
        """The resumed stream: changes in strictly rising change_seq, all after `since`, seq
        1, 2, 3, …, and one replay_complete marker counting the changes before it, with every
        change after it newer than the marker's change_seq. Returns the changes."""
        markers = [i for i, n in enumerate(notes) if n.get("operation") == "replay_complete"]
        self.assertEqual(len(markers), 1, [n.get("operation") for n in notes][:20])
        k = markers[0]
        marker = notes[k]
        self.assertEqual(marker["replayed"], k, marker)
        self.assertNotIn("seq", marker)
        changes = changes_only(notes)
        self.assertEqual(len(changes), len(notes) - 1)
        seqs = [n["change_seq"] for n in changes]
        self.assertEqual(seqs, sorted(set(seqs)), "each change once, in commit order")
        if seqs:
            self.assertGreater(seqs[0], since)
        self.assertTrue(all(s <= marker["change_seq"] for s in seqs[:k]), marker)
        self.assertTrue(all(s > marker["change_seq"] for s in seqs[k:]), marker)
        self.assertEqual([n["seq"] for n in changes], list(range(1, len(changes) + 1)))
        return changes

    def run_writers(self, tag, writers=4, rows=63, while_running=None, keep=False):
        ws = [Writer(self.service, tag, i, rows, keep) for i in range(writers)]
        for w in ws:
            w.start()
        if while_running:
            # Once about a third of the load is done, while the writers go on.
            deadline = time.monotonic() + 60
            while (sum(w.done_rows for w in ws) < writers * rows // 3
                   and time.monotonic() < deadline):
                time.sleep(0.01)
            while_running()
        for w in ws:
            w.join(120)
            self.assertFalse(w.is_alive(), "a writer did not finish")
            self.assertEqual(w.errors, [], "writes must all succeed")
        return writers * rows * 4  # notified changes (without keep)


class ResumeAfterDisconnect(ResumeTestCase):
    def test_every_change_made_while_away_arrives_once_in_order_then_live_ones(self):
        tag = "rs" + random_suffix()
        ref = self.client("ref")  # never leaves: what the subscriber should see
        ref_sub = self.assertOk(subscribe(ref, view_filters(tag)))
        cid = f"dev-{random_suffix()}"
        dev = self.service.client(cid)
        first = self.assertOk(subscribe(dev, view_filters(tag)))
        w = Writer(self.service, tag, 9, 5)
        w.run()
        self.assertEqual(w.errors, [])
        seen = wait_notes(dev, first["notify_topic"], 20)
        self.assertEqual(len(seen), 20)
        last = seen[-1]["change_seq"]
        dev.close()  # drops off; its session is gone

        resumed = {}

        def resume():
            again = self.service.client(cid)
            self.addCleanup(again.close)
            resumed["client"] = again
            resumed["answer"] = self.assertOk(subscribe(again, view_filters(tag), since=last))

        expected = 20 + self.run_writers(tag, while_running=resume)
        ref_notes = wait_notes(ref, ref_sub["notify_topic"], expected)
        self.assertEqual(len(ref_notes), expected)
        tail = [essence(n) for n in ref_notes if n["change_seq"] > last]
        again, topic = resumed["client"], resumed["answer"]["notify_topic"]
        got = wait_notes(again, topic, len(tail) + 1)
        changes = self.assertSeam(got, last)
        self.assertEqual([essence(n) for n in changes], tail,
                         "the resumed stream is the reference's after change_seq " + str(last))
        self.assertIn(False, [n.get("match", True) for n in changes], "leaving the view: match")
        self.assertNotIn("other-", str([n["data"]["name"] for n in changes]))
        # Then live.
        live = self.assertOk(self.client("w").request(
            req("create", data={"name": f"{tag}-live", "status": "on"})))
        got = wait_notes(again, topic, len(tail) + 2)
        self.assertEqual(got[-1]["data"]["id"], live["id"])
        self.assertEqual(got[-1]["seq"], len(tail) + 1)


class ResumeAcrossARestart(ResumeTestCase):
    def test_resume_after_the_service_was_killed_and_restarted(self):
        tag = "rr" + random_suffix()
        svc = self.service
        w = Writer(svc, tag, 0, 10)
        w.run()
        self.assertEqual(w.errors, [])
        reader = self.client("r")
        before = reader.request(req("read"))["metadata"]["change_seq"]
        self.assertEqual(before, 41, "10 rows × 4 changes, and one other row")
        w2 = Writer(svc, tag, 1, 10)
        w2.run()
        self.assertEqual(w2.errors, [])
        svc.server.kill()  # SIGKILL: no clean shutdown
        svc.server.wait(5)
        svc.server = None
        time.sleep(0.2)
        svc._start_server(20)
        w3 = Writer(svc, tag, 2, 10)
        w3.run()
        self.assertEqual(w3.errors, [])
        dev = self.client("dev")
        data = self.assertOk(subscribe(dev, view_filters(tag), since=before))
        got = wait_notes(dev, data["notify_topic"], 81)
        changes = self.assertSeam(got, before)
        self.assertEqual(len(changes), 80, "the 20 rows × 4 changes after the read")
        names = [n["data"]["name"] for n in changes]
        self.assertEqual(names[0], f"{tag}-w1-0")
        self.assertEqual(names[-1], f"{tag}-w2-9")


class ResyncRequired(ResumeTestCase):
    @classmethod
    def make_service(cls):
        return Service(config_extra={"changes": {"max_rows": 10}})

    def test_a_change_seq_the_log_no_longer_reaches_is_refused_and_read_recovers(self):
        tag = "ry" + random_suffix()
        c = self.client("w")
        for i in range(3):
            self.assertOk(c.request(req("create", data={"name": f"{tag}-{i}", "status": "on"})))
        old = c.request(req("read"))["metadata"]["change_seq"]
        for i in range(15):
            self.assertOk(c.request(req("create", data={"name": f"{tag}-x{i}", "status": "on"})))
        time.sleep(1.2)  # the log is trimmed at most once a second, by a write
        self.assertOk(c.request(req("create", data={"name": f"{tag}-y", "status": "on"})))
        dev = self.client("dev")
        refused = subscribe(dev, view_filters(tag), since=old)
        self.assertError(refused, "resync_required")
        self.assertIn("no longer reaches back", refused["error"]["message"])
        # The recovery: read the view, then subscribe from where the read stands.
        read = dev.request(req("read", options={"filters": view_filters(tag)}))
        self.assertEqual(len(read["data"]), 19)
        data = self.assertOk(subscribe(dev, view_filters(tag), since=read["metadata"]["change_seq"]))
        [marker] = wait_notes(dev, data["notify_topic"], 1)
        self.assertEqual(marker["operation"], "replay_complete")
        self.assertEqual(marker["replayed"], 0)
        live = self.assertOk(c.request(req("create", data={"name": f"{tag}-z", "status": "on"})))
        got = wait_notes(dev, data["notify_topic"], 2)
        self.assertEqual(got[-1]["data"]["id"], live["id"])

    def test_bad_since_change_seq_is_refused_with_a_clear_error(self):
        dev = self.client("dev")
        newest = dev.request(req("read"))["metadata"]["change_seq"]
        self.assertError(subscribe(dev, view_filters("x"), since=newest + 5), "resync_required")
        for bad in (-1, "3", 1.5):
            r = subscribe(dev, view_filters("x"), since=bad)
            self.assertError(r, "invalid_option")
            self.assertIn("since_change_seq", r["error"]["message"])
        r = dev.request(req("read", options={"since_change_seq": 0}))
        self.assertError(r, "invalid_option")
        self.assertIn("subscribe only", r["error"]["message"])


class LongBacklog(ResumeTestCase):
    """A replay is paced (changes.replay_rate, replay_burst): the broker cannot say how far
    delivery to the subscriber got, and a backlog dumped at once overran its queue
    (limits.max_queued_messages / the broker's max_queued_messages): most of it and the marker
    were dropped. Paced at a rate the subscriber takes, 3 000 changes arrive whole."""

    @classmethod
    def make_service(cls):
        return Service(config_extra={"changes": {"replay_rate": 2000, "replay_burst": 200}})

    def test_a_backlog_larger_than_the_brokers_queue_arrives_whole(self):
        tag = "rb" + random_suffix()
        c = self.client("w")
        for b in range(3):
            rows = [{"name": f"{tag}-{b}-{i}", "status": "on"} for i in range(1000)]
            self.assertOk(c.request(req("create", data=rows), timeout=30))
        dev = self.client("dev")
        t0 = time.monotonic()
        data = self.assertOk(subscribe(dev, view_filters(tag), since=0))
        got = wait_notes(dev, data["notify_topic"], 3001, timeout=60)
        elapsed = time.monotonic() - t0
        changes = self.assertSeam(got, 0)
        self.assertEqual(len(changes), 3000)
        self.assertGreater(elapsed, 1.0, "3000 changes at 2000/s take over a second")


class ChangeLogOff(ResumeTestCase):
    @classmethod
    def make_service(cls):
        return Service(config_extra={"changes": {"enabled": False}})

    def test_resume_is_refused_and_reads_carry_no_change_seq(self):
        dev = self.client("dev")
        r = subscribe(dev, view_filters("x"), since=0)
        self.assertError(r, "invalid_option")
        self.assertIn("changes.enabled", r["error"]["message"])
        read = dev.request(req("read"))
        self.assertTrue(read["success"], read)
        self.assertNotIn("change_seq", read["metadata"])


class ReadThenSubscribe(ResumeTestCase):
    def test_read_rows_plus_resumed_changes_are_exactly_the_final_table(self):
        for round_ in range(3):
            with self.subTest(round=round_):
                tag = f"rt{round_}" + random_suffix()
                dev = self.client("dev")
                state = {}

                def read_then_subscribe():
                    read = dev.request(req("read", options={"filters": view_filters(tag)}),
                                       timeout=10)
                    self.assertTrue(read["success"], read)
                    state["rows"] = {r["id"]: r for r in read["data"]}
                    state["since"] = read["metadata"]["change_seq"]
                    state["sub"] = self.assertOk(subscribe(dev, view_filters(tag),
                                                           since=state["since"]))

                self.run_writers(tag, writers=2, rows=60, while_running=read_then_subscribe,
                                 keep=True)
                final = dev.request(req("read", options={"filters": view_filters(tag)}))
                topic = state["sub"]["notify_topic"]
                # Every change after the read reaches the subscriber: wait until the last one
                # (a change_seq at least the final read's) has arrived.
                deadline = time.monotonic() + NOTIFY_TIMEOUT
                while time.monotonic() < deadline:
                    changes = changes_only(notes_on(dev, topic))
                    if changes and changes[-1]["change_seq"] >= final["metadata"]["change_seq"]:
                        break
                    time.sleep(0.05)
                notes = notes_on(dev, topic)
                changes = self.assertSeam(notes, state["since"])
                rows = dict(state["rows"])
                for n in changes:
                    if n["operation"] == "delete" or n.get("match") is False:
                        rows.pop(n["data"]["id"], None)
                    else:
                        rows[n["data"]["id"]] = n["data"]
                self.assertEqual(rows, {r["id"]: r for r in final["data"]},
                                 f"read at change_seq {state['since']} + its changes")
                self.assertGreater(len(rows), 10, "the table ends with rows in the view")
                self.assertGreater(len(changes), 0, "the writers ran after the read")


if __name__ == "__main__":
    unittest.main()
