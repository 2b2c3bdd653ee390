"""edgeq: client and worker for the edgeq job queue daemon's HTTP API.

Standard library only, Python 3.9 or later.

    from edgeq import Client, Worker

    c = Client()  # $EDGEQ_ADDR (default http://127.0.0.1:7070), $EDGEQ_TOKEN
    c.enqueue("mail", {"to": "ops@example.com"}, key="msg-1", max_attempts=3)
    Worker(c, "mail", lambda job: send(job.json())).run()
"""

import logging

from .client import DEFAULT_ADDR, BatchJob, Client, EnqueueResult, Job, Lease
from .errors import (
    Conflict,
    EdgeqError,
    InvalidArgument,
    LeaseLost,
    NotFound,
    PayloadTooLarge,
    RetryLater,
    TransportError,
    Unauthorized,
)
from .native import NativeClient
from .worker import Fail, Retry, Worker

__all__ = [
    "DEFAULT_ADDR",
    "BatchJob",
    "Client",
    "Conflict",
    "EdgeqError",
    "EnqueueResult",
    "Fail",
    "InvalidArgument",
    "Job",
    "Lease",
    "LeaseLost",
    "NativeClient",
    "NotFound",
    "PayloadTooLarge",
    "Retry",
    "RetryLater",
    "TransportError",
    "Unauthorized",
    "Worker",
]

__version__ = "0.1.0"

# A library logs only where its user says: no output unless logging is set up.
logging.getLogger("edgeq").addHandler(logging.NullHandler())
