"""HTTP client of the edgeq daemon (SPEC 5), standard library only."""

import base64
import datetime as _dt
import http.client
import json
import os
import re
import urllib.parse
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .errors import STATUS_OF, EdgeqError, TransportError, error_for

__all__ = ["Client", "Job", "Lease", "EnqueueResult", "BatchJob", "DEFAULT_ADDR"]

DEFAULT_ADDR = "http://127.0.0.1:7070"

JSON_TYPE = "application/json"
OCTET_TYPE = "application/octet-stream"
TEXT_TYPE = "text/plain; charset=utf-8"

# A duration: seconds as a number, a datetime.timedelta, or a Go duration
# string such as "1m30s".
Duration = Union[int, float, _dt.timedelta, str]
# A time: an aware datetime.datetime (a naive one is taken as UTC) or an
# RFC 3339 string.
Time = Union[_dt.datetime, str]


def go_duration(field: str, d: Duration) -> str:
    """Formats d as a Go duration; refuses a negative one, naming field."""
    if isinstance(d, str):
        return d
    if isinstance(d, _dt.timedelta):
        seconds = d.total_seconds()
    elif isinstance(d, (int, float)) and not isinstance(d, bool):
        seconds = float(d)
    else:
        raise TypeError("%s: want seconds, a timedelta or a Go duration string, got %r" % (field, d))
    if seconds < 0:
        raise ValueError("%s: must not be negative, got %r" % (field, d))
    ns = round(seconds * 1e9)
    for unit, size in (("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if ns % size == 0:
            return "%d%s" % (ns // size, unit)
    return "%dns" % ns


def rfc3339(field: str, t: Time) -> str:
    """Formats t as RFC 3339; a naive datetime is taken as UTC."""
    if isinstance(t, str):
        return t
    if not isinstance(t, _dt.datetime):
        raise TypeError("%s: want a datetime or an RFC 3339 string, got %r" % (field, t))
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.isoformat()


_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def parse_time(s: Optional[str]) -> Optional[_dt.datetime]:
    """Parses the daemon's RFC 3339 times (nanoseconds, "Z") into aware datetimes."""
    if not s:
        return None
    m = _TIME_RE.match(s)
    if m is None:
        raise ValueError("bad RFC 3339 time %r" % s)
    base, frac, zone = m.groups()
    frac = ((frac or "") + "000000")[:6]
    if zone == "Z":
        zone = "+00:00"
    return _dt.datetime.fromisoformat("%s.%s%s" % (base, frac, zone))


def _is_json_type(ct: str) -> bool:
    mt = ct.split(";", 1)[0].strip().lower()
    return mt == JSON_TYPE or (mt.startswith("application/") and mt.endswith("+json"))


def encode_payload(payload: Any, content_type: Optional[str]) -> "tuple[bytes, str]":
    """Turns a payload into bytes and a content type: bytes are sent as they
    are (application/octet-stream unless told), str as UTF-8 text
    (text/plain), anything else as JSON (application/json)."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload), content_type or OCTET_TYPE
    if isinstance(payload, str):
        return payload.encode("utf-8"), content_type or TEXT_TYPE
    return (json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
            content_type or JSON_TYPE)


class Lease:
    """The lease of a leased job: its id and when it expires."""

    __slots__ = ("id", "expires_at")

    def __init__(self, id: str, expires_at: Optional[_dt.datetime]) -> None:
        self.id = id
        self.expires_at = expires_at

    def __repr__(self) -> str:
        return "Lease(id=%r, expires_at=%r)" % (self.id, self.expires_at)


class Job:
    """A job as the daemon describes it (SPEC 5).

    body is the payload's bytes; json() decodes a JSON payload and text()
    a UTF-8 one. lease is set on a leased job. The other attributes are
    the fields of the wire document; times are aware datetimes or None.
    """

    def __init__(self, doc: Mapping[str, Any]) -> None:
        self.id: str = doc.get("id", "")
        self.queue: str = doc.get("queue", "")
        self.state: str = doc.get("state", "")
        self.attempt: int = doc.get("attempt", 0)
        self.max_attempts: int = doc.get("max_attempts", 0)
        self.created_at = parse_time(doc.get("created_at"))
        self.run_at = parse_time(doc.get("run_at"))
        self.expires_at = parse_time(doc.get("expires_at"))
        self.key: str = doc.get("key", "")
        lease = doc.get("lease")
        self.lease: Optional[Lease] = (
            Lease(lease.get("id", ""), parse_time(lease.get("expires_at"))) if lease else None)
        self.headers: Dict[str, str] = dict(doc.get("headers") or {})
        self.content_type: str = doc.get("content_type", "")
        self.last_error: str = doc.get("last_error", "")
        # The follow-up its success enqueues: {"queue", "payload" | "payload_b64"?}.
        self.on_success: Optional[Dict[str, Any]] = doc.get("on_success")
        self.raw: Dict[str, Any] = dict(doc)
        if "payload" in doc:
            self._value = doc["payload"]
            self._has_value = True
            self.body = json.dumps(doc["payload"], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        else:
            self._value = None
            self._has_value = False
            self.body = base64.b64decode(doc.get("payload_b64") or "")

    def json(self) -> Any:
        """The payload decoded as JSON."""
        if self._has_value:
            return self._value
        return json.loads(self.body)

    def text(self) -> str:
        """The payload decoded as UTF-8."""
        return self.body.decode("utf-8")

    def __repr__(self) -> str:
        return "Job(id=%r, queue=%r, state=%r, attempt=%r)" % (self.id, self.queue, self.state, self.attempt)


class EnqueueResult:
    """The answer to an enqueue: the job's id and state, whether it was
    fsynced before the answer (durable) and whether its key had been seen
    (duplicate: id is then the first job's)."""

    __slots__ = ("id", "queue", "state", "durable", "duplicate")

    def __init__(self, doc: Mapping[str, Any], queue: str = "") -> None:
        self.id: str = doc.get("id", "")
        self.queue: str = doc.get("queue", queue)
        self.state: str = doc.get("state", "")
        self.durable: bool = doc.get("durable", False)
        self.duplicate: bool = doc.get("duplicate", False)

    def __repr__(self) -> str:
        return "EnqueueResult(id=%r, queue=%r, state=%r, durable=%r, duplicate=%r)" % (
            self.id, self.queue, self.state, self.durable, self.duplicate)


class BatchJob:
    """One job of a batch enqueue: a payload (as for Client.enqueue) and the
    same options."""

    def __init__(self, payload: Any, *, content_type: Optional[str] = None, key: Optional[str] = None,
                 delay: Optional[Duration] = None, run_at: Optional[Time] = None,
                 max_attempts: Optional[int] = None, ttr: Optional[Duration] = None,
                 expires_in: Optional[Duration] = None, expires_at: Optional[Time] = None,
                 headers: Optional[Mapping[str, str]] = None, on_success: Optional[str] = None,
                 on_success_payload: Any = None) -> None:
        self.payload = payload
        self.content_type = content_type
        self.key = key
        self.delay = delay
        self.run_at = run_at
        self.max_attempts = max_attempts
        self.ttr = ttr
        self.expires_in = expires_in
        self.expires_at = expires_at
        self.headers = headers
        self.on_success = _follow_up(on_success, on_success_payload)

    def line(self) -> bytes:
        """The NDJSON line of this job."""
        body, ct = encode_payload(self.payload, self.content_type)
        doc: Dict[str, Any] = {}
        if _is_json_type(ct):
            try:
                doc["payload"] = json.loads(body)
            except ValueError:
                pass
        if "payload" not in doc:
            doc["payload_b64"] = base64.b64encode(body).decode("ascii")
        doc["content_type"] = ct
        doc.update(_options(self.key, self.delay, self.run_at, self.max_attempts, self.ttr,
                            self.expires_in, self.expires_at))
        if self.headers:
            doc["headers"] = dict(self.headers)
        if self.on_success is not None:
            queue, body = self.on_success
            f: Dict[str, Any] = {"queue": queue}
            if body is not None:
                try:
                    f["payload"] = json.loads(body)
                except ValueError:
                    f["payload_b64"] = base64.b64encode(body).decode("ascii")
            doc["on_success"] = f
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _options(key, delay, run_at, max_attempts, ttr, expires_in, expires_at) -> Dict[str, Any]:
    o: Dict[str, Any] = {}
    if key is not None:
        o["key"] = key
    if delay is not None:
        o["delay"] = go_duration("delay", delay)
    if run_at is not None:
        o["run_at"] = rfc3339("run_at", run_at)
    if max_attempts is not None:
        o["max_attempts"] = max_attempts
    if ttr is not None:
        o["ttr"] = go_duration("ttr", ttr)
    if expires_in is not None:
        o["expires_in"] = go_duration("expires_in", expires_in)
    if expires_at is not None:
        o["expires_at"] = rfc3339("expires_at", expires_at)
    return o


def _follow_up(queue: Optional[str], payload: Any) -> Optional["tuple[str, Optional[bytes]]"]:
    """The follow-up of on_success and on_success_payload: its queue and
    its payload's bytes (None: the job's result)."""
    if queue is None:
        if payload is not None:
            raise ValueError("on_success_payload: needs on_success (the follow-up's queue)")
        return None
    if payload is None:
        return queue, None
    return queue, encode_payload(payload, None)[0]


def _quote(s: str) -> str:
    return urllib.parse.quote(s, safe="")


class Client:
    """Client of one edgeq daemon.

    addr defaults to $EDGEQ_ADDR, else http://127.0.0.1:7070 (an address
    without a scheme gets http://); token defaults to $EDGEQ_TOKEN and is
    sent as "Authorization: Bearer TOKEN". timeout bounds each request in
    seconds (a lease's long poll is added to it).

    Each call opens its own connection, so one Client is safe to use from
    several threads. Refusals raise EdgeqError subclasses that carry the
    SPEC error code, the HTTP status and retry_after.
    """

    def __init__(self, addr: Optional[str] = None, token: Optional[str] = None, timeout: float = 30.0) -> None:
        if addr is None:
            addr = os.environ.get("EDGEQ_ADDR") or DEFAULT_ADDR
        if token is None:
            token = os.environ.get("EDGEQ_TOKEN", "")
        if "://" not in addr:
            addr = "http://" + addr
        u = urllib.parse.urlsplit(addr)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("addr: want http://HOST:PORT or https://HOST:PORT, got %r" % addr)
        self.addr = addr.rstrip("/")
        self._https = u.scheme == "https"
        self._host = u.hostname
        self._port = u.port
        self._prefix = u.path.rstrip("/")
        self._token = token
        self.timeout = timeout

    def __repr__(self) -> str:
        return "Client(addr=%r)" % self.addr

    # Jobs in.

    def enqueue(self, queue: str, payload: Any = b"", *, content_type: Optional[str] = None,
                key: Optional[str] = None, delay: Optional[Duration] = None, run_at: Optional[Time] = None,
                max_attempts: Optional[int] = None, ttr: Optional[Duration] = None,
                expires_in: Optional[Duration] = None, expires_at: Optional[Time] = None,
                headers: Optional[Mapping[str, str]] = None, on_success: Optional[str] = None,
                on_success_payload: Any = None) -> EnqueueResult:
        """Adds a job to queue. payload: bytes (application/octet-stream),
        str (UTF-8 text/plain) or a JSON value (application/json), unless
        content_type says otherwise. key: idempotency key; delay or run_at
        (not both): when to run; max_attempts, ttr (time to run once
        leased), expires_in or expires_at (dead-lettered if not run by
        then); headers: job headers (names are lowercased by the daemon).
        on_success: the queue of a follow-up job that the job's success
        enqueues, with on_success_payload (bytes, str or a JSON value) as
        its payload, else the job's result."""
        body, ct = encode_payload(payload, content_type)
        q: Dict[str, Any] = _options(key, delay, run_at, max_attempts, ttr, expires_in, expires_at)
        f = _follow_up(on_success, on_success_payload)
        if f is not None:
            q["on_success"] = f[0]
            if f[1]:
                q["on_success_payload"] = f[1]
        hdrs = {"Content-Type": ct}
        for name, value in (headers or {}).items():
            # UTF-8 bytes: http.client would send a str as latin-1, which
            # the daemon refuses as not UTF-8.
            hdrs["Edgeq-Header-" + name] = value.encode("utf-8")
        doc = self._call("POST", "/v1/queues/%s/jobs" % _quote(queue), q, body, hdrs)
        return EnqueueResult(doc, queue)

    def enqueue_batch(self, queue: str, jobs: Iterable[Union[BatchJob, Any]]) -> List[EnqueueResult]:
        """Adds many jobs to queue in one request, all or nothing. Each item
        is a BatchJob or a bare payload. Answers one result per job, in
        order."""
        lines = [(j if isinstance(j, BatchJob) else BatchJob(j)).line() for j in jobs]
        body = b"\n".join(lines) + b"\n"
        doc = self._call("POST", "/v1/queues/%s/batch" % _quote(queue), None, body,
                         {"Content-Type": "application/x-ndjson"})
        return [EnqueueResult(d, queue) for d in doc.get("jobs", [])]

    # Workers.

    def lease(self, queue: str, max: int = 1, wait: Optional[Duration] = None,
              ttr: Optional[Duration] = None, _on_connect: Optional[Callable[[Any], None]] = None) -> List[Job]:
        """Leases up to max (1..100) jobs of queue, long-polling up to wait
        (at most 60s) for one to come; an empty list when none came. ttr
        overrides the time to run of these leases."""
        q: Dict[str, Any] = {"max": max}
        extra = 0.0
        if wait is not None:
            q["wait"] = go_duration("wait", wait)
            extra = _seconds(wait)
        if ttr is not None:
            q["ttr"] = go_duration("ttr", ttr)
        doc = self._call("POST", "/v1/queues/%s/lease" % _quote(queue), q, b"", None,
                         timeout=self.timeout + extra, on_connect=_on_connect)
        return [Job(d) for d in doc.get("jobs", [])]

    def ack_lease(self, queue: str, acks: Iterable[Tuple[str, str]], max: int = 1, wait: Optional[Duration] = None,
                  ttr: Optional[Duration] = None) -> Tuple[List[Job], List[Optional[EdgeqError]]]:
        """Acks the jobs of acks ((job_id, lease) pairs) and leases up to max
        jobs of queue in one request: one commit and one fsync on the daemon
        for both. Answers the jobs, as lease does, and per ack, in order,
        None (acked) or the exception a single ack would have raised; a
        refused ack never holds the lease back. The acks are made before the
        long poll, whose end the answer waits for. When it raises, the acks
        may or may not have been made: repeating them is fine. Without acks
        it is lease."""
        acks = list(acks)
        if not acks:
            return self.lease(queue, max, wait, ttr), []
        q: Dict[str, Any] = {"max": max}
        extra = 0.0
        if wait is not None:
            q["wait"] = go_duration("wait", wait)
            extra = _seconds(wait)
        if ttr is not None:
            q["ttr"] = go_duration("ttr", ttr)
        body = json.dumps({"acks": [{"id": i, "lease": l} for i, l in acks]}).encode("utf-8")
        doc = self._call("POST", "/v1/queues/%s/lease" % _quote(queue), q, body,
                         {"Content-Type": "application/json"}, timeout=self.timeout + extra)
        errs: List[Optional[EdgeqError]] = []
        for a in doc.get("acks", []):
            e = a.get("error") or {}
            code = e.get("code", "internal")
            errs.append(None if a.get("acked") else
                        error_for(STATUS_OF.get(code, 500), code, e.get("message", ""), e.get("retry_after_s")))
        return [Job(d) for d in doc.get("jobs", [])], errs

    def ack(self, job_id: str, lease: str, result: Any = None) -> None:
        """Marks a leased job done. Repeating it with the same lease is fine.
        result (bytes, or a JSON value) is kept when the queue retains done
        jobs, and is the payload of the job's on_success follow-up."""
        if result is None:
            self._job_call("POST", job_id, "/ack", {"lease": lease})
            return
        if isinstance(result, (bytes, bytearray)):
            doc = {"result_b64": base64.b64encode(bytes(result)).decode("ascii")}
        else:
            doc = {"result": result}
        self._call("POST", "/v1/jobs/%s/ack" % _quote(job_id), {"lease": lease},
                   json.dumps(doc, separators=(",", ":")).encode("utf-8"), {"Content-Type": "application/json"})

    def nack(self, job_id: str, lease: str, delay: Optional[Duration] = None, error: Optional[str] = None) -> str:
        """Hands a leased job back to run again: after the queue's backoff
        when delay is None, after delay otherwise (0: now). It goes dead
        when its attempts are spent. Answers the job's new state."""
        q: Dict[str, Any] = {"lease": lease}
        if delay is not None:
            q["delay"] = go_duration("delay", delay)
        if error is not None:
            q["error"] = error
        return self._job_call("POST", job_id, "/nack", q).get("state", "")

    def fail(self, job_id: str, lease: str, error: Optional[str] = None) -> None:
        """Sends a leased job straight to the dead-letter set."""
        q: Dict[str, Any] = {"lease": lease}
        if error is not None:
            q["error"] = error
        self._job_call("POST", job_id, "/fail", q)

    def extend(self, job_id: str, lease: str, ttr: Optional[Duration] = None) -> Optional[_dt.datetime]:
        """Renews a lease by ttr (default: the lease's own TTR); answers the
        new expiry."""
        q: Dict[str, Any] = {"lease": lease}
        if ttr is not None:
            q["ttr"] = go_duration("ttr", ttr)
        return parse_time(self._job_call("POST", job_id, "/extend", q).get("expires_at"))

    # Jobs and queues.

    def job(self, job_id: str) -> Job:
        """Shows a job."""
        return Job(self._job_call("GET", job_id, "", None))

    def cancel(self, job_id: str) -> None:
        """Deletes a job that is not leased."""
        self._job_call("DELETE", job_id, "", None)

    def queues(self) -> List[Dict[str, Any]]:
        """Stats of every queue (SPEC 5), as dicts."""
        return self._call("GET", "/v1/queues").get("queues", [])

    def queue(self, name: str) -> Dict[str, Any]:
        """Stats of one queue, as a dict."""
        return self._call("GET", "/v1/queues/%s" % _quote(name))

    def stats(self) -> Dict[str, Any]:
        """The governor block, every queue's stats and the uptime, as a dict."""
        return self._call("GET", "/v1/stats")

    def healthz(self) -> None:
        """Raises unless the daemon answers /healthz with 200."""
        self._call("GET", "/healthz")

    # Plumbing.

    def _job_call(self, method: str, job_id: str, suffix: str, q: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
        return self._call(method, "/v1/jobs/%s%s" % (_quote(job_id), suffix), q)

    def _call(self, method: str, path: str, query: Optional[Mapping[str, Any]] = None, body: Optional[bytes] = None,
              headers: Optional[Mapping[str, Union[str, bytes]]] = None, timeout: Optional[float] = None,
              on_connect: Optional[Callable[[Any], None]] = None) -> Dict[str, Any]:
        url = self._prefix + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        hdrs = {"Accept": "application/json", "User-Agent": "edgeq-python"}
        if self._token:
            hdrs["Authorization"] = "Bearer " + self._token
        if headers:
            hdrs.update(headers)
        if body is None and method == "POST":
            body = b""
        t = self.timeout if timeout is None else timeout
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=t)
        try:
            try:
                conn.connect()
                if on_connect is not None:
                    on_connect(conn)
                conn.request(method, url, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                raise TransportError("transport", "%s %s%s: %s" % (method, self.addr, path, e or type(e).__name__)) from e
            if not 200 <= resp.status <= 299:
                raise _api_error(resp, data)
            if not data:
                return {}
            try:
                doc = json.loads(data)
            except ValueError as e:
                raise EdgeqError("bad_answer", "%s %s: answer is not JSON: %s" % (method, path, e), resp.status) from e
            return doc if isinstance(doc, dict) else {"value": doc}
        finally:
            conn.close()


def _seconds(d: Duration) -> float:
    if isinstance(d, _dt.timedelta):
        return d.total_seconds()
    if isinstance(d, (int, float)):
        return float(d)
    # A Go duration string: only the long poll's timeout needs it, so an
    # upper bound is enough (the daemon caps wait at 60s).
    return 60.0


def _api_error(resp: http.client.HTTPResponse, data: bytes) -> EdgeqError:
    code, message, retry_after = "", "", None
    try:
        doc = json.loads(data)
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            code = str(err.get("code", ""))
            message = str(err.get("message", ""))
            if err.get("retry_after_s") is not None:
                retry_after = float(err["retry_after_s"])
    except ValueError:
        pass
    if not code:
        # Not edgeq's answer (a proxy's page): the status names it.
        code = (resp.reason or "error").lower().replace(" ", "_")
        message = data[:200].decode("utf-8", "replace").strip()
    if retry_after is None:
        ra = resp.getheader("Retry-After")
        if ra and ra.isdigit():
            retry_after = float(ra)
    return error_for(resp.status, code, message, retry_after)
