"""Client of the edgeq daemon's native protocol (docs/protocol.md), standard
library only: the job operations over a unix socket or TCP, in binary
frames, with the HTTP client's methods, results and errors."""

import datetime as _dt
import os
import socket
import struct
import threading
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from .client import BatchJob, Duration, EnqueueResult, Job, Lease, Time, _options, encode_payload, go_duration
from .errors import STATUS_OF, EdgeqError, TransportError, error_for

__all__ = ["NativeClient"]

VERSION = "edgeq/1"

_HELLO, _ENQUEUE, _BATCH, _LEASE, _ACK, _NACK, _FAIL, _EXTEND = 1, 2, 3, 4, 5, 6, 7, 8

_STATUS = STATUS_OF


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _str(b: Union[str, bytes]) -> bytes:
    if isinstance(b, str):
        b = b.encode("utf-8")
    return _uvarint(len(b)) + b


def _params(ps: List[Tuple[str, str]]) -> bytes:
    return _uvarint(len(ps)) + b"".join(_str(k) + _str(v) for k, v in ps)


class _Reader:
    """Reads the fields of an answer body."""

    def __init__(self, b: bytes) -> None:
        self.b, self.i = b, 0

    def uvarint(self) -> int:
        n, shift = 0, 0
        while True:
            if self.i >= len(self.b):
                raise EdgeqError("bad_answer", "native: truncated answer")
            c = self.b[self.i]
            self.i += 1
            n |= (c & 0x7F) << shift
            if c < 0x80:
                return n
            shift += 7

    def varint(self) -> int:
        u = self.uvarint()
        return (u >> 1) ^ -(u & 1)

    def bytes(self) -> bytes:
        n = self.uvarint()
        if self.i + n > len(self.b):
            raise EdgeqError("bad_answer", "native: truncated answer")
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def str(self) -> str:
        return self.bytes().decode("utf-8", "replace")

    def byte(self) -> int:
        if self.i >= len(self.b):
            raise EdgeqError("bad_answer", "native: truncated answer")
        self.i += 1
        return self.b[self.i - 1]

    def time(self) -> Optional[_dt.datetime]:
        ns = self.varint()
        if ns == 0:
            return None
        return _dt.datetime.fromtimestamp(ns / 1e9, _dt.timezone.utc)


class _Conn:
    """One connection; sock is what Worker cuts to end a long poll."""

    def __init__(self, family: int, addr: Any, token: str, timeout: float) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(addr)
            ps = [("token", token)] if token else []
            self.call(_HELLO, VERSION, ps, b"")
        except BaseException:
            self.sock.close()
            raise

    def call(self, op: int, target: str, ps: List[Tuple[str, str]], data: bytes) -> bytes:
        body = bytes([op]) + _str(target) + _params(ps) + data
        self.sock.sendall(struct.pack(">I", len(body)) + body)
        n = struct.unpack(">I", self._read(4))[0]
        frame = self._read(n)
        if frame[:1] == b"\x00":
            return frame[1:]
        r = _Reader(frame[1:])
        code, msg, retry = r.str(), r.str(), r.uvarint()
        raise error_for(_STATUS.get(code, 500), code, msg, float(retry) if retry else None)

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise OSError("connection closed by the daemon")
            buf += chunk
        return bytes(buf)

    def close(self) -> None:
        self.sock.close()


class NativeClient:
    """Client of the native protocol at addr: unix:///path, or
    native://HOST:PORT (tcp://HOST:PORT) with the HTTP API's token (default
    $EDGEQ_TOKEN). timeout bounds each call in seconds (a lease's long poll
    is added to it).

    It has the job operations of Client (enqueue, enqueue_batch, lease, ack,
    nack, fail, extend) with the same results and exceptions, so Worker
    takes it too. Calls from several threads each take a connection of
    their own from a small pool; a connection that failed is dropped.
    """

    def __init__(self, addr: Optional[str] = None, token: Optional[str] = None, timeout: float = 30.0) -> None:
        if addr is None:
            addr = os.environ.get("EDGEQ_NATIVE", "")
        if token is None:
            token = os.environ.get("EDGEQ_TOKEN", "")
        scheme, _, rest = addr.partition("://")
        if scheme == "unix" and rest:
            self._family, self._addr = socket.AF_UNIX, rest
        elif scheme in ("native", "tcp") and rest and ":" in rest:
            host, _, port = rest.rpartition(":")
            self._family, self._addr = socket.AF_INET, (host.strip("[]"), int(port))
            if ":" in host:
                self._family = socket.AF_INET6
        else:
            raise ValueError("addr: want unix:///path or native://HOST:PORT, got %r" % addr)
        self.addr = addr
        self._token = token
        self.timeout = timeout
        self._mu = threading.Lock()
        self._idle: List[_Conn] = []  # guarded by _mu

    def __repr__(self) -> str:
        return "NativeClient(addr=%r)" % self.addr

    def close(self) -> None:
        """Closes the idle connections."""
        with self._mu:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    def enqueue(self, queue: str, payload: Any = b"", *, content_type: Optional[str] = None,
                key: Optional[str] = None, delay: Optional[Duration] = None, run_at: Optional[Time] = None,
                max_attempts: Optional[int] = None, ttr: Optional[Duration] = None,
                expires_in: Optional[Duration] = None, expires_at: Optional[Time] = None,
                headers: Optional[Mapping[str, str]] = None) -> EnqueueResult:
        """As Client.enqueue."""
        body, ps = _job_params(BatchJob(payload, content_type=content_type, key=key, delay=delay, run_at=run_at,
                                        max_attempts=max_attempts, ttr=ttr, expires_in=expires_in,
                                        expires_at=expires_at, headers=headers))
        r = _Reader(self._call(_ENQUEUE, queue, ps, body))
        return _result(r, queue)

    def enqueue_batch(self, queue: str, jobs: Iterable[Union[BatchJob, Any]]) -> List[EnqueueResult]:
        """As Client.enqueue_batch: all or nothing."""
        parts = []
        for j in jobs:
            body, ps = _job_params(j if isinstance(j, BatchJob) else BatchJob(j))
            parts.append(_params(ps) + _str(body))
        r = _Reader(self._call(_BATCH, queue, [], _uvarint(len(parts)) + b"".join(parts)))
        return [_result(r, queue) for _ in range(r.uvarint())]

    def lease(self, queue: str, max: int = 1, wait: Optional[Duration] = None,
              ttr: Optional[Duration] = None, _on_connect: Optional[Callable[[Any], None]] = None) -> List[Job]:
        """As Client.lease."""
        ps = [("max", str(max))]
        extra = 0.0
        if wait is not None:
            ps.append(("wait", go_duration("wait", wait)))
            extra = 60.0
        if ttr is not None:
            ps.append(("ttr", go_duration("ttr", ttr)))
        r = _Reader(self._call(_LEASE, queue, ps, b"", self.timeout + extra, _on_connect))
        return [_job(r) for _ in range(r.uvarint())]

    def ack_lease(self, queue: str, acks: Iterable[Tuple[str, str]], max: int = 1, wait: Optional[Duration] = None,
                  ttr: Optional[Duration] = None) -> Tuple[List[Job], List[Optional[EdgeqError]]]:
        """As Client.ack_lease: a lease frame that carries the acks."""
        acks = list(acks)
        if not acks:
            return self.lease(queue, max, wait, ttr), []
        ps = [("max", str(max))]
        extra = 0.0
        if wait is not None:
            ps.append(("wait", go_duration("wait", wait)))
            extra = 60.0
        if ttr is not None:
            ps.append(("ttr", go_duration("ttr", ttr)))
        data = _uvarint(len(acks)) + b"".join(_str(i) + _str(l) for i, l in acks)
        r = _Reader(self._call(_LEASE, queue, ps, data, self.timeout + extra))
        errs: List[Optional[EdgeqError]] = []
        for _ in range(r.uvarint()):
            if r.byte() == 1:
                errs.append(None)
                continue
            code, msg, retry = r.str(), r.str(), r.uvarint()
            errs.append(error_for(_STATUS.get(code, 500), code, msg, float(retry) if retry else None))
        return [_job(r) for _ in range(r.uvarint())], errs

    def ack(self, job_id: str, lease: str) -> None:
        """As Client.ack."""
        self._call(_ACK, job_id, [("lease", lease)], b"")

    def nack(self, job_id: str, lease: str, delay: Optional[Duration] = None, error: Optional[str] = None) -> str:
        """As Client.nack: answers the job's new state."""
        ps = [("lease", lease)]
        if delay is not None:
            ps.append(("delay", go_duration("delay", delay)))
        if error is not None:
            ps.append(("error", error))
        return _Reader(self._call(_NACK, job_id, ps, b"")).str()

    def fail(self, job_id: str, lease: str, error: Optional[str] = None) -> None:
        """As Client.fail."""
        ps = [("lease", lease)]
        if error is not None:
            ps.append(("error", error))
        self._call(_FAIL, job_id, ps, b"")

    def extend(self, job_id: str, lease: str, ttr: Optional[Duration] = None) -> Optional[_dt.datetime]:
        """As Client.extend: answers the new expiry."""
        ps = [("lease", lease)]
        if ttr is not None:
            ps.append(("ttr", go_duration("ttr", ttr)))
        return _Reader(self._call(_EXTEND, job_id, ps, b"")).time()

    def _call(self, op: int, target: str, ps: List[Tuple[str, str]], data: bytes,
              timeout: Optional[float] = None, on_connect: Optional[Callable[[Any], None]] = None) -> bytes:
        with self._mu:
            conn = self._idle.pop() if self._idle else None
        try:
            if conn is None:
                conn = _Conn(self._family, self._addr, self._token, self.timeout)
            conn.sock.settimeout(self.timeout if timeout is None else timeout)
            if on_connect is not None:
                on_connect(conn)
            out = conn.call(op, target, ps, data)
        except EdgeqError as e:
            if conn is not None and e.status != 401:
                self._put(conn)
            elif conn is not None:
                conn.close()
            raise
        except OSError as e:
            if conn is not None:
                conn.close()
            raise TransportError("transport", "%s: %s" % (self.addr, e or type(e).__name__)) from e
        self._put(conn)
        return out

    def _put(self, conn: _Conn) -> None:
        with self._mu:
            if len(self._idle) < 8:
                self._idle.append(conn)
                return
        conn.close()


def _job_params(j: BatchJob) -> Tuple[bytes, List[Tuple[str, str]]]:
    if j.on_success is not None:
        raise ValueError("on_success: the native protocol does not carry a follow-up; enqueue it with Client")
    body, ct = encode_payload(j.payload, j.content_type)
    ps = [("content_type", ct)]
    for k, v in _options(j.key, j.delay, j.run_at, j.max_attempts, j.ttr, j.expires_in, j.expires_at).items():
        ps.append((k, str(v)))
    for name, value in (j.headers or {}).items():
        ps.append(("header." + name, value))
    return body, ps


def _result(r: _Reader, queue: str) -> EnqueueResult:
    id, state, flags = r.str(), r.str(), r.byte()
    return EnqueueResult({"id": id, "state": state, "durable": bool(flags & 1), "duplicate": bool(flags & 2)}, queue)


def _job(r: _Reader) -> Job:
    doc: Dict[str, Any] = {"id": r.str(), "queue": r.str(), "state": "leased",
                           "attempt": r.uvarint(), "max_attempts": r.uvarint()}
    created, run_at, expires = r.time(), r.time(), r.time()
    doc["key"] = r.str()
    lease = Lease(r.str(), r.time())
    doc["headers"] = {r.str(): r.str() for _ in range(r.uvarint())}
    doc["content_type"] = r.str()
    doc["last_error"] = r.str()
    body = r.bytes()
    j = Job(doc)
    j.created_at, j.run_at, j.expires_at, j.lease = created, run_at, expires, lease
    j.body = body
    return j
