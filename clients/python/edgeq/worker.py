"""A pull worker: leases jobs of one queue and runs a function for each."""

import logging
import signal
import socket
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

from .client import Client, Duration, Job
from .errors import EdgeqError, LeaseLost, NotFound, RetryLater, TransportError

__all__ = ["Worker", "Fail", "Retry"]

log = logging.getLogger("edgeq.worker")

# Longest error text sent with a nack or fail.
_MAX_ERROR = 500
# Pause after a failed lease without Retry-After.
_RETRY_PAUSE = 1.0
# Shortest pause between two heartbeats.
_MIN_BEAT = 0.05


class Fail(Exception):
    """Raised by a handler: the job goes to the dead-letter set at once."""


class Retry(Exception):
    """Raised by a handler: the job runs again after delay (None: the
    queue's backoff; 0: now)."""

    def __init__(self, error: str = "", delay: Optional[Duration] = None) -> None:
        super().__init__(error)
        self.delay = delay


class Worker:
    """Leases jobs of queue one at a time and calls handler(job) for each.

    handler returns: the job is acked. It raises Fail: the job goes dead.
    It raises Retry or any other exception: the job is nacked (retried
    after Retry's delay, else the queue's backoff; dead once its attempts
    are spent), with the exception's text as last_error.

    While the handler runs, the lease is extended at half of its remaining
    time (ttr: the time to run asked for each lease and extension; None:
    the queue's). run() installs SIGTERM and SIGINT handlers (when called
    from the main thread) that call stop(): the worker stops leasing (an
    idle long poll is cut), lets the running job finish for grace seconds,
    then nacks it (ready again at once, last_error says "released") and
    returns. A second signal ends the grace period at once. A handler that
    can end early watches worker.stopping (a threading.Event).

    A job's ack rides on the next lease request (client.ack_lease: one
    request and one commit on the daemon for both); at stop it goes alone.

    wait is the long poll of each lease (at most 60s). run() raises the
    EdgeqError of a lease the daemon refuses for good (a bad queue name, a
    wrong token); it retries after 429, 503 and transport errors.
    """

    def __init__(self, client: Client, queue: str, handler: Callable[[Job], Any], *,
                 ttr: Optional[Duration] = None, wait: float = 30.0, grace: float = 30.0) -> None:
        if not 0 <= wait <= 60:
            raise ValueError("wait: want 0 to 60 seconds, got %r" % wait)
        if grace < 0:
            raise ValueError("grace: must not be negative, got %r" % grace)
        self.client = client
        self.queue = queue
        self.handler = handler
        self.ttr = ttr
        self.wait = wait
        self.grace = grace
        self.stopping = threading.Event()
        self._force = threading.Event()
        # Reentrant: stop() runs in a signal handler, on the main thread,
        # possibly while that thread holds it in _set_poll.
        self._mu = threading.RLock()
        self._poll: Any = None  # guarded by _mu: the connection of the lease in flight
        self._acks: List[Tuple[str, str]] = []  # (id, lease) of jobs done, for the next lease request

    def stop(self) -> None:
        """Asks run() to return: no more leases, the running job gets the
        grace period. A second call ends the grace period. Safe from any
        thread and from a signal handler."""
        if self.stopping.is_set():
            self._force.set()
            return
        self.stopping.set()
        with self._mu:
            conn = self._poll
        if conn is not None:
            _cut(conn)

    def run(self, install_signals: bool = True) -> None:
        """Leases and runs jobs until stop(); see the class."""
        restore = []
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                restore.append((sig, signal.signal(sig, lambda signum, frame: self.stop())))
        try:
            log.info("leasing from %s", self.queue)
            while not self.stopping.is_set():
                self._run_once()
        finally:
            self._ack_alone()
            for sig, h in restore:
                signal.signal(sig, h)

    def _run_once(self) -> None:
        try:
            jobs = self._lease()
        except (RetryLater, TransportError) as e:
            if self.stopping.is_set():
                return
            pause = e.retry_after if e.retry_after else _RETRY_PAUSE
            log.warning("lease from %s: %s (retrying in %gs)", self.queue, e, pause)
            self._pause(pause)
            return
        finally:
            self._set_poll(None)
        for j in jobs:
            if self.stopping.is_set():
                self._release(j, "worker stopped before the job started")
            else:
                self._run_job(j)

    def _lease(self) -> List[Job]:
        """Leases the next job; with acks to send, in the same request,
        which then does not wait (its acks' answers would wait with it):
        the long poll is the next request's."""
        if not self._acks:
            return self.client.lease(self.queue, 1, self.wait, self.ttr, _on_connect=self._set_poll)
        jobs, errs = self.client.ack_lease(self.queue, self._acks, 1, 0, self.ttr)
        for (job_id, _), e in zip(self._acks, errs):
            if e is not None:
                log.error("job %s: answer the daemon: %s", job_id, e)
        self._acks = []
        return jobs

    def _ack_alone(self) -> None:
        """Sends the acks no lease request took (a repeat of one the daemon
        made already is fine)."""
        acks, self._acks = self._acks, []
        for job_id, lease in acks:
            try:
                self.client.ack(job_id, lease)
            except EdgeqError as e:
                log.error("job %s: answer the daemon: %s", job_id, e)

    def _pause(self, seconds: float) -> None:
        """Sleeps until stop() or for seconds. It polls rather than waiting
        on self.stopping: the main thread must never hold that Event's lock,
        which stop() takes when a signal handler calls it."""
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))

    def _set_poll(self, conn: Any) -> None:
        with self._mu:
            self._poll = conn
        if conn is not None:
            log.debug("lease from %s: long poll of %gs", self.queue, self.wait)
        if conn is not None and self.stopping.is_set():
            _cut(conn)

    def _run_job(self, j: Job) -> None:
        outcome: list = []

        def call() -> None:
            try:
                self.handler(j)
                outcome.append(None)
            except BaseException as e:  # noqa: B902 - the handler's failure is the job's
                outcome.append(e)

        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(j, done), name="edgeq-extend-%s" % j.id, daemon=True)
        # A daemon thread: a handler still running after the grace period
        # is abandoned (Python cannot kill a thread), its job released.
        run = threading.Thread(target=call, name="edgeq-job-%s" % j.id, daemon=True)
        t0 = time.monotonic()
        beat.start()
        run.start()
        self._wait_job(run)
        done.set()
        beat.join()
        took = time.monotonic() - t0
        if not outcome:
            self._release(j, "worker stopped while the job ran")
            return
        err = outcome[0]
        try:
            if err is None:
                self._acks.append((j.id, j.lease.id))
                log.debug("job %s: done after attempt %d in %.3fs", j.id, j.attempt, took)
            elif isinstance(err, Fail):
                self.client.fail(j.id, j.lease.id, _text(err))
                log.warning("job %s: dead after attempt %d: %s", j.id, j.attempt, _text(err))
            else:
                delay = err.delay if isinstance(err, Retry) else None
                state = self.client.nack(j.id, j.lease.id, delay, _text(err))
                log.warning("job %s: %s after attempt %d: %s", j.id,
                            "dead" if state == "dead" else "retry (%s)" % state, j.attempt, _text(err))
        except EdgeqError as e:
            log.error("job %s: answer the daemon: %s", j.id, e)

    def _wait_job(self, run: threading.Thread) -> None:
        """Waits for the handler; after stop() at most grace seconds more."""
        deadline = None
        while run.is_alive():
            if self.stopping.is_set():
                if deadline is None:
                    deadline = time.monotonic() + self.grace
                    log.info("stopping: waiting up to %gs for job to finish", self.grace)
                left = deadline - time.monotonic()
                if left <= 0 or self._force.is_set():
                    return
                run.join(min(left, 0.1))
            else:
                run.join(0.1)

    def _heartbeat(self, j: Job, done: threading.Event) -> None:
        expires = j.lease.expires_at.timestamp() if j.lease and j.lease.expires_at else time.time()
        while True:
            every = max((expires - time.time()) / 2, _MIN_BEAT)
            if done.wait(every):
                return
            try:
                exp = self.client.extend(j.id, j.lease.id, self.ttr)
                expires = exp.timestamp() if exp else time.time() + 2 * every
            except (LeaseLost, NotFound) as e:
                log.error("job %s: lease lost while the job runs: %s", j.id, e)
                return
            except EdgeqError as e:
                # The lease may still be saved: try again soon.
                log.warning("job %s: extend lease: %s", j.id, e)
                expires = time.time() + 2 * every

    def _release(self, j: Job, why: str) -> None:
        try:
            self.client.nack(j.id, j.lease.id, 0, "released: " + why)
            log.info("job %s: released: %s", j.id, why)
        except EdgeqError as e:
            log.error("job %s: release: %s", j.id, e)


def _cut(conn: Any) -> None:
    """Ends the long poll on conn: its read returns at once."""
    sock = conn.sock
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing to cut


def _text(e: BaseException) -> str:
    s = str(e) or type(e).__name__
    if not isinstance(e, (Fail, Retry)):
        s = "%s: %s" % (type(e).__name__, s) if str(e) else s
    return s[:_MAX_ERROR]
