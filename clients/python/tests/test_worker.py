"""The worker loop against the real daemon: outcomes, lease extension and
graceful stop on SIGTERM."""

import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
import unittest

import edgeq
from tests.daemon import CONFIG, Daemon, Queues

d = None
next_queue = Queues()
HERE = os.path.dirname(os.path.abspath(__file__))


def setUpModule():
    global d
    d = Daemon(CONFIG)


def tearDownModule():
    d.stop()


def poll(cond, timeout=10.0):
    """Polls cond until it is true, for at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


class WorkerTest(unittest.TestCase):
    def setUp(self):
        self.c = edgeq.Client(d.url, d.token, timeout=10)
        self.q = next_queue()

    def start(self, w):
        t = threading.Thread(target=w.run, kwargs={"install_signals": False})
        t.start()

        def stop():
            w.stop()
            w.stop()
            t.join(15)
            self.assertFalse(t.is_alive(), "worker did not stop")
        self.addCleanup(stop)
        return t

    def test_outcomes(self):
        seen = []

        def handler(job):
            seen.append(job.json())
            kind = job.json()["kind"]
            if kind == "fail":
                raise edgeq.Fail("bad input")
            if kind == "retry":
                raise edgeq.Retry("later", delay=3600)
            if kind == "crash":
                raise KeyError("missing")

        ids = {k: self.c.enqueue(self.q, {"kind": k}).id for k in ("ok", "fail", "retry", "crash")}
        self.start(edgeq.Worker(self.c, self.q, handler, wait=1, grace=1))
        self.assertTrue(poll(lambda: self.c.queue(self.q)["leased"] == 0 and len(seen) == 4))
        with self.assertRaises(edgeq.NotFound):
            self.c.job(ids["ok"])
        dead = self.c.job(ids["fail"])
        self.assertEqual((dead.state, dead.last_error), ("dead", "bad input"))
        retry = self.c.job(ids["retry"])
        self.assertEqual((retry.state, retry.last_error), ("delayed", "later"))
        crash = self.c.job(ids["crash"])
        self.assertIn(crash.state, ("delayed", "ready", "leased"))
        self.assertIn("KeyError", crash.last_error)

    def test_acks_ride_on_leases(self):
        class Counting(edgeq.Client):
            acks = 0
            rides = 0

            def ack(self, job_id, lease):
                Counting.acks += 1
                return super().ack(job_id, lease)

            def ack_lease(self, queue, acks, *args, **kw):
                Counting.rides += 1
                return super().ack_lease(queue, acks, *args, **kw)

        c = Counting(d.url, d.token, timeout=10)
        for i in range(5):
            c.enqueue(self.q, {"n": i})
        self.start(edgeq.Worker(c, self.q, lambda job: None, wait=1, grace=1))
        self.assertTrue(poll(lambda: self.c.queue(self.q)["completed_total"] == 5))
        self.assertEqual((Counting.acks, Counting.rides), (0, 5))

    def test_lease_extended_while_job_runs(self):
        release = threading.Event()
        running = threading.Event()
        extends = []

        def handler(job):
            running.set()
            release.wait(10)

        orig = self.c.extend

        def counting_extend(*a, **kw):
            exp = orig(*a, **kw)
            extends.append(exp)
            return exp
        self.c.extend = counting_extend

        jid = self.c.enqueue(self.q, b"slow", ttr=1).id
        self.start(edgeq.Worker(self.c, self.q, handler, ttr=1, wait=1))
        self.assertTrue(running.wait(10))
        first = self.c.job(jid).lease.expires_at
        # Past the 1s TTR, the lease is still held: heartbeats renewed it.
        self.assertTrue(poll(lambda: len(extends) >= 3, 10), "want 3 heartbeats, got %d" % len(extends))
        j = self.c.job(jid)
        self.assertEqual((j.state, j.attempt), ("leased", 1))
        self.assertGreater(j.lease.expires_at, first)
        release.set()
        self.assertTrue(poll(lambda: self.c.queue(self.q)["completed_total"] == 1))
        with self.assertRaises(edgeq.NotFound):
            self.c.job(jid)

    def test_retries_when_daemon_unreachable(self):
        w = edgeq.Worker(edgeq.Client("http://127.0.0.1:1", timeout=2), self.q, lambda j: None, wait=1)
        with self.assertLogs("edgeq.worker", "WARNING") as logs:
            t = threading.Thread(target=w.run, kwargs={"install_signals": False})
            t.start()
            self.assertTrue(poll(lambda: any("retrying in 1s" in m for m in logs.output)))
            self.assertTrue(t.is_alive(), "the worker gave up on a transport error")
            w.stop()
            t.join(5)
        self.assertFalse(t.is_alive(), "stop() did not end the pause between retries")

    def test_refused_for_good_raises(self):
        w = edgeq.Worker(edgeq.Client(d.url, "wrong"), self.q, lambda j: None, wait=1)
        with self.assertRaises(edgeq.Unauthorized):
            w.run(install_signals=False)


# The worker of the graceful-stop tests runs as a process of its own so that
# the test sends it a real SIGTERM: it prints "started ID" when its handler
# starts, sleeps RUN seconds, prints "finished ID" and returns.
WORKER = textwrap.dedent("""
    import logging, sys, time
    sys.path.insert(0, sys.argv[1])
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    import edgeq
    run_s, grace = float(sys.argv[3]), float(sys.argv[4])
    def handler(job):
        print("started", job.id, flush=True)
        time.sleep(run_s)
        print("finished", job.id, flush=True)
    edgeq.Worker(edgeq.Client(), sys.argv[2], handler, wait=30, grace=grace).run()
    print("exited", flush=True)
""")


class GracefulStopTest(unittest.TestCase):
    def setUp(self):
        self.c = edgeq.Client(d.url, d.token, timeout=10)
        self.q = next_queue()

    def spawn(self, run_s, grace):
        env = dict(os.environ, EDGEQ_ADDR=d.url, EDGEQ_TOKEN=d.token)
        p = subprocess.Popen([sys.executable, "-c", WORKER, os.path.dirname(HERE), self.q, str(run_s), str(grace)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, bufsize=0)

        def cleanup():
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
            p.wait(10)
            p.stdout.close()
            p.stderr.close()
        self.addCleanup(cleanup)
        return p

    # The pipes are unbuffered (bufsize=0): select() then sees every line
    # that readline() has not taken yet.
    def readline(self, p, timeout=10, stream=None):
        f = stream or p.stdout
        r, _, _ = select.select([f], [], [], timeout)
        self.assertTrue(r, "no line from the worker within %gs" % timeout)
        return f.readline().decode().split()

    def wait_exit(self, p, timeout=10):
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.fail("worker did not exit within %gs of SIGTERM" % timeout)

    def test_running_job_finishes_within_grace(self):
        jid = self.c.enqueue(self.q, b"x").id
        p = self.spawn(run_s=1, grace=10)
        self.assertEqual(self.readline(p), ["started", jid])
        os.kill(p.pid, signal.SIGTERM)
        self.assertEqual(self.readline(p), ["finished", jid])
        self.assertEqual(self.wait_exit(p), 0)
        self.assertEqual(p.stdout.read().decode().split(), ["exited"])
        with self.assertRaises(edgeq.NotFound):  # acked
            self.c.job(jid)
        self.assertEqual(self.c.queue(self.q)["completed_total"], 1)

    def test_job_past_grace_is_released(self):
        jid = self.c.enqueue(self.q, b"x").id
        p = self.spawn(run_s=30, grace=0.5)
        self.assertEqual(self.readline(p), ["started", jid])
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGTERM)
        self.assertEqual(self.wait_exit(p), 0)
        self.assertLess(time.monotonic() - t0, 5)
        j = self.c.job(jid)
        self.assertEqual((j.state, j.attempt), ("ready", 1))
        self.assertIn("released", j.last_error)

    def test_second_signal_ends_grace(self):
        jid = self.c.enqueue(self.q, b"x").id
        p = self.spawn(run_s=30, grace=30)
        self.assertEqual(self.readline(p), ["started", jid])
        os.kill(p.pid, signal.SIGTERM)
        # The first signal starts the 30s grace period; the second ends it.
        for _ in range(20):
            if "stopping" in " ".join(self.readline(p, stream=p.stderr)):
                break
        else:
            self.fail("the worker did not say it was stopping")
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGINT)
        self.assertEqual(self.wait_exit(p), 0)
        self.assertLess(time.monotonic() - t0, 5)
        j = self.c.job(jid)
        self.assertEqual((j.state, j.attempt), ("ready", 1))
        self.assertIn("released", j.last_error)

    def test_idle_long_poll_is_cut(self):
        p = self.spawn(run_s=0, grace=1)
        # It says when its 30s long poll has connected: SIGTERM must cut it.
        for _ in range(20):
            if "long poll" in " ".join(self.readline(p, stream=p.stderr)):
                break
        else:
            self.fail("the worker did not say it was in its long poll")
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGTERM)
        self.assertEqual(self.wait_exit(p), 0)
        self.assertLess(time.monotonic() - t0, 5, "stop waited for the 30s long poll")
        self.c.enqueue(self.q, b"after")
        self.assertEqual(self.c.queue(self.q)["ready"], 1)


if __name__ == "__main__":
    unittest.main()
