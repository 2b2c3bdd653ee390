"""NativeClient against the real daemon's native protocol: every job
operation over the unix socket and TCP, the same refusals as over HTTP, the
token on TCP, and Worker driving it."""

import shutil
import tempfile
import threading
import time
import unittest

import edgeq
from tests.daemon import CONFIG, Daemon, Queues, free_port

d = None
sockdir = None
next_queue = Queues()


def setUpModule():
    global d, sockdir
    sockdir = tempfile.mkdtemp(prefix="eqpy")
    d = Daemon(CONFIG + "native:\n  socket: %s/s.sock\n  listen: 127.0.0.1:%d\n" % (sockdir, free_port()))
    d.unix = "unix://%s/s.sock" % sockdir
    d.tcp = "native://" + [l for l in d.output().splitlines() if "native protocol listening" in l][0].split("addr=")[1].split()[0]


def tearDownModule():
    d.stop()
    shutil.rmtree(sockdir, True)


class NativeClientTest(unittest.TestCase):
    def setUp(self):
        self.c = edgeq.NativeClient(d.unix)
        self.http = edgeq.Client(d.url, d.token)

    def tearDown(self):
        self.c.close()

    def test_operations(self):
        q = next_queue()
        r = self.c.enqueue(q, {"n": 1}, key="k1", max_attempts=3, ttr=30, headers={"Trace": "abc"})
        self.assertTrue(r.durable)
        self.assertFalse(r.duplicate)
        self.assertTrue(self.c.enqueue(q, "again", key="k1").duplicate)
        rs = self.c.enqueue_batch(q, [b"a", edgeq.BatchJob("b", delay=3600)])
        self.assertEqual([x.state for x in rs], ["ready", "delayed"])
        jobs = self.c.lease(q, max=10, wait=1)
        self.assertEqual(len(jobs), 2)
        j = jobs[0]
        self.assertEqual((j.id, j.json(), j.key, j.max_attempts, j.headers), (r.id, {"n": 1}, "k1", 3, {"trace": "abc"}))
        self.assertIsNotNone(self.c.extend(j.id, j.lease.id, 60))
        self.assertEqual(self.c.nack(j.id, j.lease.id, 0, "boom"), "ready")
        self.c.ack(jobs[1].id, jobs[1].lease.id)
        j2 = self.c.lease(q)[0]
        self.assertEqual((j2.attempt, j2.last_error), (2, "boom"))
        self.c.fail(j2.id, j2.lease.id, "bad")
        st = self.http.queue(q)
        self.assertEqual((st["dead"], st["delayed"], st["ready"]), (1, 1, 0))

    def test_refusals_as_http(self):
        q = next_queue()
        for native, http in [
            (lambda: self.c.enqueue("nope", b"x"), lambda: self.http.enqueue("nope", b"x")),
            (lambda: self.c.enqueue(q, b"x" * 5000), lambda: self.http.enqueue(q, b"x" * 5000)),
            (lambda: self.c.ack("00000000000fffff", "l"), lambda: self.http.ack("00000000000fffff", "l")),
            (lambda: self.c.lease(q, max=101), lambda: self.http.lease(q, max=101)),
        ]:
            with self.assertRaises(edgeq.EdgeqError) as n:
                native()
            with self.assertRaises(edgeq.EdgeqError) as h:
                http()
            self.assertEqual((type(n.exception), n.exception.code, n.exception.status),
                             (type(h.exception), h.exception.code, h.exception.status))
        self.c.enqueue("tiny", b"1")
        with self.assertRaises(edgeq.RetryLater) as e:
            self.c.enqueue("tiny", b"2")
        self.assertEqual(e.exception.code, "queue_full")

    def test_tcp_token(self):
        with self.assertRaises(edgeq.Unauthorized):
            edgeq.NativeClient(d.tcp, token="wrong").enqueue(next_queue(), b"x")
        c = edgeq.NativeClient(d.tcp, token=d.token)
        self.assertTrue(c.enqueue(next_queue(), b"x").durable)
        c.close()

    def test_worker(self):
        q = next_queue()
        for i in range(5):
            self.c.enqueue(q, {"i": i})
        seen = []
        w = edgeq.Worker(self.c, q, lambda job: seen.append(job.json()["i"]), wait=1)
        t = threading.Thread(target=w.run, kwargs={"install_signals": False})
        t.start()
        deadline = time.monotonic() + 10
        while len(seen) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        w.stop()
        t.join(10)
        self.assertEqual(sorted(seen), [0, 1, 2, 3, 4])
        self.assertEqual(self.http.queue(q)["completed_total"], 5)


if __name__ == "__main__":
    unittest.main()


class AckLeaseTest(unittest.TestCase):
    """ack_lease on both clients: each ack answered as a single ack would
    be, a lost lease never holding the lease back, the next job leased."""

    def test_both_clients(self):
        http = edgeq.Client(d.url, d.token)
        nat = edgeq.NativeClient(d.unix)
        self.addCleanup(nat.close)
        for c in (http, nat):
            q = next_queue()
            http.enqueue_batch(q, [b"a", b"b", b"next"])
            a, b = http.lease(q, max=2)
            jobs, errs = c.ack_lease(q, [(a.id, a.lease.id), (b.id, "wrong"), ("00000000000fffff", "l")], max=5)
            self.assertIsNone(errs[0])
            self.assertIsInstance(errs[1], edgeq.LeaseLost)
            self.assertIsInstance(errs[2], edgeq.NotFound)
            self.assertEqual([j.body for j in jobs], [b"next"])
            jobs, errs = c.ack_lease(q, [(b.id, b.lease.id), (jobs[0].id, jobs[0].lease.id)], wait=0)
            self.assertEqual((jobs, errs), ([], [None, None]))
            st = http.queue(q)
            self.assertEqual((st["completed_total"], st["leased"], st["ready"]), (3, 0, 0))
            c.ack(a.id, a.lease.id)  # a repeat with the same lease is acked again
