"""Which failures are an outage and which are the message's own.

An outage passes (a node failed over, Redis restarting, a timeout): the same write is tried until
it lands. A failure of the message's own (a document the store refuses, a bug meeting this data)
gives the same answer every time: tried a bounded number of times, then the message is set aside
on the dead-letter topic so its partition moves on (streams/sinks.py).
"""

from __future__ import annotations

import asyncio

from couchbase.exceptions import (
    AmbiguousTimeoutException,
    DocumentLockedException,
    MissingConnectionException,
    RequestCanceledException,
    ServiceUnavailableException,
    TemporaryFailException,
    TimeoutException,
    UnAmbiguousTimeoutException,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from paystream.domain.errors import Unavailable

OUTAGES = (
    TimeoutException, AmbiguousTimeoutException, UnAmbiguousTimeoutException, ServiceUnavailableException,
    TemporaryFailException, RequestCanceledException, DocumentLockedException, MissingConnectionException,
    RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError, Unavailable,
)


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, OUTAGES)
