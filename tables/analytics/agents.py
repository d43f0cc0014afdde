"""The analytics app (`paystream analytics`): agents that count payment events into windowed and per-user
tables (tables/analytics/tables.py), with the pages analysts query beside them (tables/analytics/pages.py).

Why an app (and a process) of its own rather than agents in the worker:
measured with `paystream bench payments --quick`, counting inside the worker
app made every payment slower (p50 of a start or post from ~40 ms to
150-350 ms at 10 payments/s): the worker answers a client only after
flushing its producer, and a shared producer had the analytics' table
writes to flush as well. Here the analytics have their own consumer group,
producer and tables: a slow count, its rebalances or its table recovery only
let events wait on their topic, and the payment path never waits on them.
"""

from __future__ import annotations

from prometheus_client import Counter

from paystream.observability.logs import get_logger
from paystream.settings import get_settings
from streams import observability
from streams.app import make_app
from streams.dead_letters.letters import DeadLetters, headers_of
from streams.tables_web import Cluster
from tables.analytics import pages
from tables.analytics.counts import counted, epoch_s, user_key
from tables.analytics.tables import AnalyticsTables

log = get_logger("paystream.analytics")
EVENTS = Counter("paystream_analytics_events", "Payment events read by the analytics, by outcome.", ["outcome"])

settings = get_settings()
topics = settings.topics
app = make_app(settings.analytics_id, settings, settings.analytics_port)
tables = AnalyticsTables(app, settings)
cluster = Cluster(app, settings)
dead_letters = DeadLetters(app, settings, "analytics")

events_topic = app.topic(topics.events, key_serializer="raw", value_serializer="raw")
# Events that feed per-user totals, keyed by account and user: each user's totals then live in one partition.
by_user = app.topic(f"{settings.analytics_id}-by-user", key_serializer="json", value_serializer="raw",
                    partitions=settings.payment_topic_partitions, internal=True)
observability.install(app, "analytics", settings, settings.analytics_port, {topics.events, by_user.get_topic_name()})


@app.agent(events_topic)
async def count_events(stream):
    async for event, changed in dead_letters.readable(stream, "events"):
        # A count that keeps raising is tried a few times, then set aside: its partition moves on.
        await dead_letters.attempt(event, lambda: count_one(event, changed))


async def count_one(event, changed) -> None:
    """One event into the windows (safe to run again: a window counts an offset once)."""
    payment, message = changed.payment, event.message
    if not counted(payment):
        EVENTS.labels("step").inc()
        return
    if tables.is_repeat(payment):
        EVENTS.labels("repeat").inc()
        return
    tables.count(payment, epoch_s(changed.at), message.partition, message.offset)
    # Sent now (force), not held until this event's offset is committed (Faust's default).
    await by_user.send(key=user_key(payment.account, payment.user_id), value=event.value, force=True,
                       headers=[("source", f"{message.partition}:{message.offset}".encode())])
    tables.counted(payment)
    EVENTS.labels("counted").inc()


@app.agent(by_user)
async def count_per_user(stream):
    async for event, changed in dead_letters.readable(stream, "events"):
        source, _, offset = headers_of(event).get("source", "").partition(":")
        if not offset.isdigit():
            await dead_letters.put(event, "no source header (events partition:offset)")
            continue
        await dead_letters.attempt(event, lambda: _count_for_user(changed.payment, source, int(offset)))


async def _count_for_user(payment, source: str, offset: int) -> None:
    tables.count_for_user(payment, source, offset)


pages.add(app, settings, tables, cluster)
