"""Errors of the edgeq client: the daemon's refusals (SPEC 5) as exceptions."""

from typing import Optional

__all__ = [
    "EdgeqError",
    "InvalidArgument",
    "Unauthorized",
    "NotFound",
    "LeaseLost",
    "Conflict",
    "PayloadTooLarge",
    "RetryLater",
    "TransportError",
]


class EdgeqError(Exception):
    """A refusal from the daemon, or a request that did not reach it.

    code is the SPEC error code ("invalid_argument", "lease_lost",
    "queue_full"...), status the HTTP status (0 when no answer came),
    message the daemon's message (it names the field or the job) and
    retry_after the seconds to wait before trying again (429 and 503
    answers), else None.
    """

    def __init__(self, code: str, message: str, status: int = 0,
                 retry_after: Optional[float] = None) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after
        super().__init__(self.__str__())

    def __str__(self) -> str:
        s = "%s: %s" % (self.code, self.message)
        if self.status:
            s = "%d %s" % (self.status, s)
        if self.retry_after is not None:
            s += " (retry after %gs)" % self.retry_after
        return s

    def __repr__(self) -> str:
        return "%s(code=%r, message=%r, status=%r, retry_after=%r)" % (
            type(self).__name__, self.code, self.message, self.status, self.retry_after)


class InvalidArgument(EdgeqError):
    """400 invalid_argument or invalid_queue: the request is wrong; the message names the field."""


class Unauthorized(EdgeqError):
    """401 unauthorized: a token is missing or wrong."""


class NotFound(EdgeqError):
    """404 not_found or unknown_queue: no such job, or the queue is not configured."""


class LeaseLost(EdgeqError):
    """409 lease_lost: the lease expired or another worker holds the job."""


class Conflict(EdgeqError):
    """409 conflict: the job is in a state that forbids the call (cancel while leased)."""


class PayloadTooLarge(EdgeqError):
    """413 payload_too_large: the payload is above the daemon's max_payload."""


class RetryLater(EdgeqError):
    """429 queue_full, rate_limited or shed, or 503 disk_full, shutting_down or
    unavailable: refused for now; retry_after says when to try again."""


class TransportError(EdgeqError):
    """The request did not get an answer (connection refused, timeout); status is 0."""


_BY_CODE = {
    "invalid_argument": InvalidArgument,
    "invalid_queue": InvalidArgument,
    "unauthorized": Unauthorized,
    "not_found": NotFound,
    "unknown_queue": NotFound,
    "lease_lost": LeaseLost,
    "conflict": Conflict,
    "payload_too_large": PayloadTooLarge,
}


# The HTTP status of each code (transport/httpapi/errors.go), for errors
# that come without one (an ack answered inside a larger answer, the native
# protocol), so that they are the same exceptions as a single request's.
STATUS_OF = {
    "invalid_argument": 400, "invalid_queue": 400, "unauthorized": 401, "forbidden": 403,
    "not_found": 404, "unknown_queue": 404, "lease_lost": 409, "conflict": 409,
    "payload_too_large": 413, "queue_full": 429, "rate_limited": 429, "shed": 429,
    "disk_full": 503, "shutting_down": 503, "unavailable": 503,
}


def error_for(status: int, code: str, message: str, retry_after: Optional[float]) -> EdgeqError:
    """Builds the exception of a non-2xx answer: by code, else by status."""
    cls = _BY_CODE.get(code)
    if cls is None:
        if status in (429, 503):
            cls = RetryLater
        elif status == 400:
            cls = InvalidArgument
        elif status == 404:
            cls = NotFound
        else:
            cls = EdgeqError
    return cls(code, message, status, retry_after)
