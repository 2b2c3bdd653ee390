"""Every client operation and every refusal it maps, against the real daemon."""

import datetime as dt
import os
import unittest
from unittest import mock

import edgeq
from tests.daemon import CONFIG, Daemon, Queues

d = None
next_queue = Queues()


def setUpModule():
    global d
    d = Daemon(CONFIG)


def tearDownModule():
    d.stop()


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.c = edgeq.Client(d.url, d.token, timeout=10)
        self.q = next_queue()

    def lease_one(self, **kw):
        jobs = self.c.lease(self.q, 1, wait=2, **kw)
        self.assertEqual(len(jobs), 1, "want one job leased")
        return jobs[0]

    def test_enqueue_options(self):
        r = self.c.enqueue(self.q, {"to": "ops"}, key="k1", max_attempts=3, ttr=5, expires_in=3600,
                           headers={"Trace-Id": "abc", "Place": "Zürich"})
        self.assertEqual((r.queue, r.state, r.durable, r.duplicate), (self.q, "ready", True, False))
        again = self.c.enqueue(self.q, {"to": "other"}, key="k1")
        self.assertEqual((again.id, again.duplicate), (r.id, True))

        j = self.c.job(r.id)
        self.assertEqual(j.json(), {"to": "ops"})
        self.assertEqual(j.content_type, "application/json")
        self.assertEqual(j.max_attempts, 3)
        self.assertEqual(j.key, "k1")
        self.assertEqual(j.headers, {"trace-id": "abc", "place": "Zürich"})
        self.assertAlmostEqual((j.expires_at - j.created_at).total_seconds(), 3600, delta=5)

        leased = self.lease_one()
        self.assertEqual(leased.id, r.id)
        # ttr=5 on the job: the lease runs about 5s, not the default 60s.
        self.assertLess((leased.lease.expires_at - utcnow()).total_seconds(), 10)

    def test_enqueue_payload_kinds(self):
        cases = [
            (b"\x00\xffraw", None, b"\x00\xffraw", "application/octet-stream"),
            ("héllo", None, "héllo".encode(), "text/plain; charset=utf-8"),
            ([1, "two"], None, b'[1,"two"]', "application/json"),
            (b"<a/>", "application/xml", b"<a/>", "application/xml"),
        ]
        for payload, ct, body, want_ct in cases:
            with self.subTest(payload=payload):
                r = self.c.enqueue(self.q, payload, content_type=ct)
                j = self.c.job(r.id)
                self.assertEqual((j.body, j.content_type), (body, want_ct))

    def test_enqueue_delay_and_run_at(self):
        r = self.c.enqueue(self.q, b"x", delay=dt.timedelta(hours=1))
        self.assertEqual(r.state, "delayed")
        at = utcnow().replace(microsecond=0) + dt.timedelta(hours=2)
        r2 = self.c.enqueue(self.q, b"y", run_at=at)
        self.assertEqual(r2.state, "delayed")
        self.assertEqual(self.c.job(r2.id).run_at, at)
        exp = utcnow().replace(microsecond=0) + dt.timedelta(hours=3)
        r3 = self.c.enqueue(self.q, b"z", delay="2h", expires_at=exp)
        self.assertEqual(self.c.job(r3.id).expires_at, exp)
        self.assertEqual(self.c.lease(self.q, 5, wait=0), [])

    def test_batch(self):
        at = utcnow() + dt.timedelta(hours=1)
        rs = self.c.enqueue_batch(self.q, [
            {"n": 1},
            edgeq.BatchJob(b"\x01\x02", key="b2", max_attempts=2, ttr="30s", headers={"h": "v"}),
            edgeq.BatchJob("later", run_at=at, expires_in=7200),
            edgeq.BatchJob(b"soon", delay=60),
        ])
        self.assertEqual([r.state for r in rs], ["ready", "ready", "delayed", "delayed"])
        j = self.c.job(rs[1].id)
        self.assertEqual((j.body, j.key, j.max_attempts, j.headers), (b"\x01\x02", "b2", 2, {"h": "v"}))
        self.assertEqual(self.c.job(rs[0].id).json(), {"n": 1})
        self.assertEqual(self.c.job(rs[2].id).text(), "later")
        dup = self.c.enqueue_batch(self.q, [edgeq.BatchJob(b"again", key="b2")])
        self.assertEqual((dup[0].id, dup[0].duplicate), (rs[1].id, True))

    def test_batch_all_or_nothing(self):
        with self.assertRaises(edgeq.InvalidArgument) as cm:
            self.c.enqueue_batch(self.q, [b"ok", edgeq.BatchJob(b"bad", delay=1, run_at=utcnow())])
        self.assertEqual((cm.exception.status, cm.exception.code), (400, "invalid_argument"))
        self.assertIn("line 2", cm.exception.message)
        self.assertEqual(self.c.queue(self.q)["ready"], 0)

    def test_lease_ack(self):
        r = self.c.enqueue(self.q, b"work")
        j = self.lease_one(ttr=20)
        self.assertEqual((j.id, j.state, j.attempt, j.body), (r.id, "leased", 1, b"work"))
        self.assertGreater((j.lease.expires_at - utcnow()).total_seconds(), 15)
        self.c.ack(j.id, j.lease.id)
        self.c.ack(j.id, j.lease.id)  # a repeat with the same lease answers 200
        with self.assertRaises(edgeq.NotFound):
            self.c.job(j.id)

    def test_on_success(self):
        up = next_queue()
        r = self.c.enqueue(self.q, b"raw", on_success=up)
        self.assertEqual(self.c.job(r.id).on_success, {"queue": up})
        j = self.lease_one()
        self.c.ack(j.id, j.lease.id, result={"url": "http://nas/1"})
        f = self.c.lease(up, 1, wait=2)[0]
        self.assertEqual((f.json(), f.headers["edgeq-parent"]), ({"url": "http://nas/1"}, r.id))
        self.c.ack(f.id, f.lease.id)

        self.c.enqueue(self.q, b"raw", on_success=up, on_success_payload=b"\x00given")
        self.c.enqueue_batch(self.q, [edgeq.BatchJob(1, on_success=up, on_success_payload={"to": "s3"})])
        for j in self.c.lease(self.q, 2, wait=2):
            self.c.ack(j.id, j.lease.id, result=b"ignored")
        got = [f.body for f in self.c.lease(up, 2, wait=2)]
        self.assertEqual(got, [b"\x00given", b'{"to":"s3"}'])

        with self.assertRaises(edgeq.InvalidArgument) as cm:
            self.c.enqueue(self.q, b"raw", on_success="nowhere")
        self.assertIn("on_success.queue", cm.exception.message)
        with self.assertRaises(ValueError):
            self.c.enqueue(self.q, b"raw", on_success_payload=b"x")

    def test_lease_empty_after_wait(self):
        self.assertEqual(self.c.lease(self.q, 10, wait=0.2), [])

    def test_nack(self):
        r = self.c.enqueue(self.q, b"again", max_attempts=2)
        j = self.lease_one()
        self.assertEqual(self.c.nack(j.id, j.lease.id, delay=0, error="boom"), "ready")
        j2 = self.lease_one()
        self.assertEqual((j2.id, j2.attempt, j2.last_error), (r.id, 2, "boom"))
        self.assertEqual(self.c.nack(j2.id, j2.lease.id, error="boom again"), "dead")

    def test_nack_backoff(self):
        self.c.enqueue(self.q, b"x")
        j = self.lease_one()
        self.assertEqual(self.c.nack(j.id, j.lease.id, delay=3600), "delayed")
        self.assertEqual(self.c.job(j.id).state, "delayed")

    def test_fail(self):
        self.c.enqueue(self.q, b"poison", max_attempts=5)
        j = self.lease_one()
        self.c.fail(j.id, j.lease.id, "bad input")
        got = self.c.job(j.id)
        self.assertEqual((got.state, got.last_error), ("dead", "bad input"))
        self.assertEqual(self.c.queue(self.q)["dead"], 1)

    def test_extend(self):
        self.c.enqueue(self.q, b"long")
        j = self.lease_one(ttr=2)
        exp = self.c.extend(j.id, j.lease.id, ttr=600)
        self.assertGreater((exp - utcnow()).total_seconds(), 500)
        self.assertEqual(self.c.job(j.id).lease.expires_at, exp)
        exp2 = self.c.extend(j.id, j.lease.id)  # by the last ttr extend was given
        self.assertGreaterEqual(exp2, exp)

    def test_show_and_cancel(self):
        r = self.c.enqueue(self.q, b"x", delay=60)
        self.assertEqual(self.c.job(r.id).state, "delayed")
        self.c.cancel(r.id)
        with self.assertRaises(edgeq.NotFound) as cm:
            self.c.job(r.id)
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "not_found"))

    def test_cancel_leased_is_conflict(self):
        self.c.enqueue(self.q, b"x")
        j = self.lease_one()
        with self.assertRaises(edgeq.Conflict) as cm:
            self.c.cancel(j.id)
        self.assertEqual((cm.exception.status, cm.exception.code), (409, "conflict"))

    def test_stats(self):
        self.c.enqueue(self.q, b"a")
        self.c.enqueue(self.q, b"b", delay=60)
        s = self.c.queue(self.q)
        self.assertEqual((s["name"], s["ready"], s["delayed"], s["class"]), (self.q, 1, 1, "normal"))
        self.assertIn(self.q, [x["name"] for x in self.c.queues()])
        st = self.c.stats()
        self.assertIn("level", st["governor"])
        self.assertIn(self.q, [x["name"] for x in st["queues"]])
        self.c.healthz()

    def test_env_defaults(self):
        with mock.patch.dict(os.environ, {"EDGEQ_ADDR": d.addr, "EDGEQ_TOKEN": d.token}):
            c = edgeq.Client()
            self.assertEqual(c.addr, d.url)
            c.enqueue(self.q, b"from env")
        self.assertEqual(self.c.queue(self.q)["ready"], 1)

    # Refusals.

    def test_invalid_argument(self):
        with self.assertRaises(edgeq.InvalidArgument) as cm:
            self.c.enqueue(self.q, b"x", delay=5, run_at=utcnow())
        e = cm.exception
        self.assertEqual((e.status, e.code, e.retry_after), (400, "invalid_argument", None))
        self.assertIn("delay", e.message)
        with self.assertRaises(edgeq.InvalidArgument) as cm:
            self.c.lease(self.q, 101)
        self.assertIn("max", cm.exception.message)
        with self.assertRaises(edgeq.InvalidArgument) as cm:
            self.c.enqueue("Not-A-Queue", b"x")
        self.assertEqual(cm.exception.code, "invalid_queue")
        self.assertEqual(self.c.queue(self.q)["ready"], 0)

    def test_local_argument_errors(self):
        with self.assertRaisesRegex(ValueError, "delay: must not be negative"):
            self.c.enqueue(self.q, b"x", delay=-1)
        with self.assertRaisesRegex(ValueError, "addr"):
            edgeq.Client("ftp://example")

    def test_unauthorized(self):
        bad = edgeq.Client(d.url, "wrong-token")
        with self.assertRaises(edgeq.Unauthorized) as cm:
            bad.enqueue(self.q, b"x")
        self.assertEqual((cm.exception.status, cm.exception.code), (401, "unauthorized"))
        self.assertEqual(self.c.queue(self.q)["ready"], 0)

    def test_unknown_queue(self):
        with self.assertRaises(edgeq.NotFound) as cm:
            self.c.enqueue("not-configured", b"x")
        self.assertEqual((cm.exception.status, cm.exception.code), (404, "unknown_queue"))

    def test_lease_lost(self):
        self.c.enqueue(self.q, b"x")
        j = self.lease_one()
        for call in (lambda: self.c.ack(j.id, "0000000000000000"),
                     lambda: self.c.extend(j.id, "0000000000000000"),
                     lambda: self.c.nack(j.id, "0000000000000000")):
            with self.assertRaises(edgeq.LeaseLost) as cm:
                call()
            self.assertEqual((cm.exception.status, cm.exception.code), (409, "lease_lost"))
        self.assertEqual(self.c.job(j.id).state, "leased")

    def test_payload_too_large(self):
        with self.assertRaises(edgeq.PayloadTooLarge) as cm:
            self.c.enqueue(self.q, b"x" * 5000)
        self.assertEqual((cm.exception.status, cm.exception.code), (413, "payload_too_large"))
        self.assertEqual(self.c.queue(self.q)["ready"], 0)

    def test_queue_full_retry_after(self):
        self.c.enqueue("tiny", b"first")
        with self.assertRaises(edgeq.RetryLater) as cm:
            self.c.enqueue("tiny", b"second")
        e = cm.exception
        self.assertEqual((e.status, e.code), (429, "queue_full"))
        self.assertIsNotNone(e.retry_after)
        self.assertGreaterEqual(e.retry_after, 1)
        self.assertEqual(self.c.queue("tiny")["ready"], 1)

    def test_transport_error(self):
        c = edgeq.Client("http://127.0.0.1:1", timeout=2)
        with self.assertRaises(edgeq.TransportError) as cm:
            c.healthz()
        self.assertEqual(cm.exception.status, 0)


if __name__ == "__main__":
    unittest.main()
