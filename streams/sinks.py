"""The sinks: payment events and receipts into Couchbase and the Redis cache.

Their own Faust app, so their own consumer group: a slow store delays only
its sink, never a payment. Writes are upserts by key, so a redelivered
event writes the same document again. A store that is away is retried until it
answers; nothing is skipped. A message that cannot be read, or whose write fails
for reasons of its own (not an outage: connectors/outages.py)
`poison_max_attempts` times, goes to the dead-letter topic; its partition moves on.

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
from paystream.observability.logs import get_logger
from paystream.ports import TransactionRef
from paystream.rebuild import StoreWatch
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
_redis = None
_watch = StoreWatch(settings.sinks_id)


async def couchbase():
    global _couchbase
    if _couchbase is None:
        _couchbase = await bootstrap.document_store(settings)
    return _couchbase


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
            _watch.rebuild = await bootstrap.store_rebuild(settings)
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


@app.agent(events_topic)
async def payments_to_couchbase(stream):
    async for event, changed in dead_letters.readable(stream, "events"):
        payment = changed.payment
        await _or_set_aside(event, lambda: store_payment(payment))
        applied(event)
        log.info("payment stored", payment_id=payment.payment_id, transaction_id=payment.transaction_id,
                 status=payment.status.value)


async def store_payment(payment) -> None:
    store = await couchbase()
    await _until_done(lambda: store.upsert_payment(payment), f"payment {payment.payment_id}")
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
    async for event, receipt in dead_letters.readable(stream, "receipts"):
        await _or_set_aside(event, lambda: store_receipt(receipt))
        applied(event)
        log.info("receipt stored and cached", payment_id=receipt.payment_id, receipt_id=receipt.receipt_id)


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
