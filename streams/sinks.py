"""The sinks: payment events and receipts into Couchbase and the Redis cache.

Their own Faust app, so their own consumer group: a slow store delays only
its sink, never a payment. Two agents take their topics in batches
(streams/sink_batches.py: offsets committed only once a batch is written,
a poison message alone set aside) and write what each batch implies
(paystream/projection.py) through the one store writer; a store that is away is
retried until it answers, nothing is skipped.

The store is derived from the topics (paystream/rebuild.py): a timer, every
`store_check_interval_s`, compares the store's markers with what the sinks
applied, moves the markers on, and replays by itself whatever the store lost
(a wiped or restarted cluster, an older copy).
"""

from __future__ import annotations

import asyncio

from paystream import bootstrap, projection
from paystream.observability.logs import get_logger
from paystream.projection import Projection
from paystream.rebuild import StoreWatch
from paystream.settings import get_settings
from streams import observability
from streams.app import make_app
from streams.dead_letters.letters import DeadLetters
from streams.sink_batches import BatchSink

log = get_logger("paystream.sinks")

settings = get_settings()
topics = settings.topics
app = make_app(settings.sinks_id, settings, settings.sinks_web_port, store="memory://")
events_topic = app.topic(topics.events, key_serializer="raw", value_serializer="raw")
receipts_topic = app.topic(topics.receipts, key_serializer="raw", value_serializer="raw")
observability.install(app, "sinks", settings, settings.sinks_web_port, {topics.events, topics.receipts})

_stores = None
_connecting = asyncio.Lock()
_watch = StoreWatch(settings.sinks_id)


async def stores():
    """The store writer and the receipt cache: connected once, by whichever agent asks first."""
    global _stores
    async with _connecting:
        if _stores is None:
            _stores = await bootstrap.store_writer(settings), bootstrap.receipt_cache(settings)
    return _stores


async def write(implied: Projection) -> None:
    writer, cache = await stores()
    await projection.write(implied, writer, cache, whole_lifetime=True)


def applied(event) -> None:
    _watch.note(event.message.topic, event.message.partition, event.message.offset)


sink = BatchSink(settings, DeadLetters(app, settings, "sinks"), write, applied)


@app.agent(events_topic)
async def payments_to_couchbase(stream):
    async for events in sink.batches(stream):
        stored = await sink.written(events, "events",
                                    lambda changes: Projection.of_payments(c.payment for c in changes))
        # One line per batch; its payments named, so one payment id still finds its lines in every log.
        log.info("payment events stored", events=len(events), stored=len(stored),
                 payment_ids=sorted({changed.payment.payment_id for changed in stored}))


@app.agent(receipts_topic)
async def receipts_to_stores(stream):
    async for events in sink.batches(stream):
        stored = await sink.written(events, "receipts", Projection.of_receipts)
        log.info("receipts stored and cached", receipts=len(events), stored=len(stored),
                 payment_ids=sorted({receipt.payment_id for receipt in stored}))


@app.task
async def follow_the_store() -> None:
    """Keep the store's markers and replay what it lost: once partitions are assigned (a fresh store is
    marked at once, so the API makes new users' keys from the start), then every
    `store_check_interval_s`."""
    while True:
        checked = await check_the_store()
        await asyncio.sleep(settings.store_check_interval_s if checked else 0.5)


async def check_the_store() -> bool:
    """One round; False when there was nothing to check yet (rebalancing, nothing assigned) or it failed."""
    if app.rebalancing:
        return False
    sources = {topics.events, topics.receipts}
    assigned = {(tp.topic, tp.partition) for tp in app.consumer.assignment() if tp.topic in sources}
    if not assigned:
        return False
    try:
        if _watch.rebuild is None:
            writer, _ = await stores()
            _watch.rebuild = await bootstrap.store_rebuild(settings, writer)
        replayed = await _watch.check(assigned)
    except Exception as exc:  # the store or Kafka is unwell: the next round tries again
        log.warning("store check failed", error=repr(exc))
        return False
    if replayed is not None:
        log.warning("the store had lost data: replayed it from the topics", records=replayed.records,
                    documents=replayed.documents, seconds=round(replayed.seconds, 2))
    return True
