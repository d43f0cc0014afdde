"""The sinks: payment events and receipts into Couchbase and the Redis cache.

Their own Faust app, so their own consumer group: a slow store delays only
its sink, never a payment. Writes are upserts by key, so a redelivered
event writes the same document again. Events are written in batches (README
"How a payment flows"), a batch's offsets committed only once it is written.
A store that is away is retried until it answers; nothing is skipped. A message
that cannot be read, or whose write fails for reasons of its own (not an outage:
connectors/outages.py) `poison_max_attempts` times, goes to the dead-letter
topic; its partition moves on.

The store is derived from the topics (paystream/rebuild.py): every
`store_check_interval_s` the sinks compare the store's markers with what they
applied, move the markers on, and replay by themselves whatever the store lost
(a wiped or restarted cluster, an older copy).
"""

from __future__ import annotations

import asyncio

from tenacity import AsyncRetrying, wait_exponential_jitter

from paystream import bootstrap
from paystream.domain.model import Status
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.ports import TransactionRef
from paystream.rebuild import Projection, StoreWatch
from paystream.settings import get_settings
from streams import observability
from streams.app import make_app
from streams.dead_letters import DeadLetters

log = get_logger("paystream.sinks")

settings = get_settings()
topics = settings.topics
app = make_app(settings.sinks_id, settings, settings.sinks_web_port, store="memory://")
dead_letters = DeadLetters(app, settings, "sinks")

events_topic = app.topic(topics.events, key_serializer="raw", value_serializer="raw")
receipts_topic = app.topic(topics.receipts, key_serializer="raw", value_serializer="raw")
observability.install(app, "sinks", settings, settings.sinks_web_port, {topics.events, topics.receipts})

_couchbase = None
_bulk = None
_redis = None
_connecting = asyncio.Lock()
_watch = StoreWatch(settings.sinks_id)


async def couchbase():
    """The async store (writes one at a time, users' indexes) and, beside it, the bulk writer (batches'
    documents, the rebuild): connected once, by whichever agent asks first."""
    global _couchbase, _bulk
    async with _connecting:
        if _couchbase is None:
            _couchbase = await bootstrap.document_store(settings)
        if _bulk is None:
            _bulk = await bootstrap.store_writer(settings)
    return _couchbase


async def sink_writer():
    await couchbase()
    return bootstrap.sink_writer(_bulk, _couchbase)


def redis_cache():
    global _redis
    if _redis is None:
        _redis = bootstrap.receipt_cache(settings)
    return _redis


def _worth_retrying(state) -> bool:
    """An outage, for as long as it lasts; a failure of the message's own, a bounded number of times."""
    failed = state.outcome.exception()
    return failed is not None and (bootstrap.is_outage(failed) or state.attempt_number < settings.poison_max_attempts)


async def _or_set_aside(event, work) -> None:
    try:
        await work()
    except Exception as exc:  # not an outage, and failed every time: a poison message
        await dead_letters.put(event, f"{type(exc).__name__}: {exc}"[:2000], attempts=settings.poison_max_attempts)


async def _until_done(write, what: str) -> None:
    async for attempt in AsyncRetrying(
        retry=_worth_retrying, reraise=True, wait=wait_exponential_jitter(multiplier=0.2, max=10),
        before_sleep=lambda state: log.warning("store write failed, retrying", what=what,
                                               error=repr(state.outcome.exception())),
    ):
        with attempt:
            await write()


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
            await couchbase()
            _watch.rebuild = await bootstrap.store_rebuild(settings, _bulk)
        replayed = await _watch.check(assigned)
    except Exception as exc:  # the store or Kafka is unwell: the next round tries again
        log.warning("store check failed", error=repr(exc))
        return False
    if replayed is not None:
        log.warning("the store had lost data: replayed it from the topics", records=replayed.records,
                    documents=replayed.documents, seconds=round(replayed.seconds, 2))
    return True


def applied(event) -> None:
    _watch.note(event.message.topic, event.message.partition, event.message.offset)


async def batches(stream):
    """The stream's events in batches of at most `sinks_batch_max`, each yielded once it is full or
    `sinks_batch_within_ms` passed. `take_events` acks a batch's events when the next one is asked for
    (after this one was written), but also when it is closed: an agent stopped mid-batch would let those
    offsets be committed unwritten. So each event is held (one more reference) and acked here only after
    its batch was written; a batch never written is never committed, and comes again."""
    async for events in stream.take_events(settings.sinks_batch_max, within=settings.sinks_batch_within_ms / 1000):
        for event in events:
            event.message.incref()
        yield events
        for event in events:
            await stream.ack(event)


async def written(events, kind: str, write_batch, one_at_a_time) -> list:
    """Write a batch: its readable events together (`write_batch` of their typed values), retried as a
    whole, an outage until it passes; a failure of its own that outlasts `poison_max_attempts` and the
    batch is written again one event at a time (with `one_at_a_time(values)`'s writer of one value), so
    only a poison message is set aside. Returns the typed values of the readable events."""
    readable = await dead_letters.readable_of(events, kind)
    values = [value for _, value in readable]
    if readable:
        try:
            await _until_done(lambda: write_batch(values), f"batch of {len(readable)} {kind}")
        except Exception as exc:  # not an outage: find the message it belongs to
            log.warning("a batch failed on its own: writing it one message at a time", topic=kind,
                        messages=len(readable), error=repr(exc))
            write_one = one_at_a_time(values)
            for event, value in readable:
                await _or_set_aside(event, lambda value=value: write_one(value))
    for event in events:
        applied(event)
    metrics.SINK_BATCH_SIZE.labels(kind).observe(len(events))
    return values


@app.agent(events_topic)
async def payments_to_couchbase(stream):
    async for events in batches(stream):
        stored = await written(events, "events", store_payments, payments_one_at_a_time)
        # One line per batch; its payments named, so one payment id still finds its lines in every log.
        log.info("payment events stored", events=len(events), stored=len(stored),
                 payment_ids=sorted({changed.payment.payment_id for changed in stored}))


def project_payments(changes) -> Projection:
    projection = Projection()
    for changed in changes:
        projection.add_payment(changed.payment)
    return projection


async def store_payments(changes) -> None:
    """A batch's payments at their latest versions, then their index entries and transaction ids (a
    listed id is always found)."""
    projection = project_payments(changes)
    writer = await sink_writer()
    await writer.upsert_payments(list(projection.payments.values()))
    await asyncio.gather(writer.upsert_transactions(projection.transactions),
                         writer.index_for_users(projection.user_index))


def payments_one_at_a_time(batch):
    """How one event of a batch is written alone: its payment's document at the batch's latest version
    (the batch may have written it already: a reader never sees it go back), then what the event adds."""
    latest = project_payments(batch).payments
    return lambda changed: store_payment(changed.payment, latest[changed.payment.payment_id])


async def store_payment(payment, latest=None) -> None:
    """`payment`'s writes one at a time; its document as `latest` when given (a later version of it)."""
    store = await couchbase()
    document = latest or payment
    await _until_done(lambda: store.upsert_payment(document), f"payment {payment.payment_id}")
    if payment.status is Status.STARTED:
        await _until_done(lambda: store.index_for_user("payments", payment.account, payment.user_id,
                                                       payment.payment_id, payment.created_at),
                          f"user index of {payment.payment_id}")
    if payment.status is Status.TOKENIZED:
        ref = TransactionRef(payment.payment_id, payment.user_id, payment.account)
        await _until_done(lambda: store.upsert_transaction(payment.transaction_id, ref),
                          f"transaction index of {payment.payment_id}")


@app.agent(receipts_topic)
async def receipts_to_stores(stream):
    async for events in batches(stream):
        stored = await written(events, "receipts", store_receipts, lambda _batch: store_receipt)
        log.info("receipts stored and cached", receipts=len(events), stored=len(stored),
                 payment_ids=sorted({receipt.payment_id for receipt in stored}))


async def store_receipts(receipts) -> None:
    """A batch's receipts in Couchbase and in the cache (one pipeline, each for the cache's whole
    lifetime), then their users' index entries."""
    projection = Projection()
    for receipt in receipts:
        projection.add_receipt(receipt)
    writer, cache = await sink_writer(), redis_cache()
    await asyncio.gather(writer.upsert_receipts(projection.receipts),
                         cache.put_receipts(projection.receipts, whole_lifetime=True))
    await writer.index_for_users(projection.user_index)


async def store_receipt(receipt) -> None:
    store, cache = await couchbase(), redis_cache()
    await asyncio.gather(
        _until_done(lambda: store.upsert_receipt(receipt), f"receipt {receipt.receipt_id}"),
        _until_done(lambda: cache.put_receipt(receipt), f"cached receipt {receipt.receipt_id}"),
    )
    # Indexed once the receipt itself is readable, so a listed id is always found.
    await _until_done(lambda: store.index_for_user("receipts", receipt.account, receipt.user_id,
                                                   receipt.receipt_id, receipt.issued_at),
                      f"user index of {receipt.receipt_id}")
