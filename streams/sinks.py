"""The sinks: payment events and receipts into Couchbase and the Redis cache.

Their own Faust app, so their own consumer group: a slow store delays only
its sink, never a payment. Writes are upserts by key, so a redelivered
event writes the same document again. A failing store is retried until it
answers; nothing is skipped. A message that cannot be read goes to the
dead-letter topic.
"""

from __future__ import annotations

import asyncio

from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from paystream import bootstrap
from paystream.domain.model import Status
from paystream.observability.logs import get_logger
from paystream.ports import TransactionRef
from paystream.settings import get_settings
from streams import observability
from streams.app import make_app
from streams.dead_letters import DeadLetters

log = get_logger("paystream.sinks")

settings = get_settings()
topics = settings.topics
app = make_app(settings.sinks_id, settings, settings.sinks_web_port)
dead_letters = DeadLetters(app, settings, "sinks")

events_topic = app.topic(topics.events, key_serializer="raw", value_serializer="raw")
receipts_topic = app.topic(topics.receipts, key_serializer="raw", value_serializer="raw")
observability.install(app, "sinks", settings, settings.sinks_web_port, {topics.events, topics.receipts})

_couchbase = None
_redis = None


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


async def _until_done(write, what: str) -> None:
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(Exception), wait=wait_exponential_jitter(multiplier=0.2, max=10),
        before_sleep=lambda state: log.warning("store write failed, retrying", what=what,
                                               error=repr(state.outcome.exception())),
    ):
        with attempt:
            await write()


@app.agent(events_topic)
async def payments_to_couchbase(stream):
    async for _event, changed in dead_letters.readable(stream, "events"):
        payment = changed.payment
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
        log.info("payment stored", payment_id=payment.payment_id, transaction_id=payment.transaction_id,
                 status=payment.status.value)


@app.agent(receipts_topic)
async def receipts_to_stores(stream):
    async for _event, receipt in dead_letters.readable(stream, "receipts"):
        store, cache = await couchbase(), redis_cache()
        await asyncio.gather(
            _until_done(lambda: store.upsert_receipt(receipt), f"receipt {receipt.receipt_id}"),
            _until_done(lambda: cache.put_receipt(receipt), f"cached receipt {receipt.receipt_id}"),
        )
        # Indexed once the receipt itself is readable, so a listed id is always found.
        await _until_done(lambda: store.index_for_user("receipts", receipt.account, receipt.user_id,
                                                       receipt.receipt_id, receipt.issued_at),
                          f"user index of {receipt.receipt_id}")
        log.info("receipt stored and cached", payment_id=receipt.payment_id, receipt_id=receipt.receipt_id)
