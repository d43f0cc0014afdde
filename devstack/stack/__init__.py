"""The local service stack: Kafka, a Couchbase cluster, Redis and the Stripe sandbox.

`paystream stack up | down | status` runs these on 127.0.0.1 with no Docker
engine, each with its data, log and pid file under ``settings.state_dir``.
"""

from devstack.stack.errors import StackError

__all__ = ["StackError"]
