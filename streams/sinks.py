"""Sink connectors: payment events and receipts into Couchbase and the Redis cache.

Their own Faust app, so their own consumer group: a slow store delays only
its sink, never a payment. Writes are upserts by key, so a redelivered
event writes the same document again. A failing store is retried until it
answers; nothing is skipped.
"""

from __future__ import annotations

from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential_jitter

from paystream import bootstrap
from paystream.observability.logs import get_logger
from paystream.settings import get_settings
from streams import observability
from streams.app import make_app

log = get_logger("paystream.sinks")

settings = get_settings()
topics = settings.topics
app = make_app(settings.sinks_id, settings, settings.sinks_web_port)

events_topic = app.topic(topics.events, key_serializer="raw", value_serializer="json")
receipts_topic = app.topic(topics.receipts, key_serializer="raw", value_serializer="json")
observability.install(app, "sinks", settings, settings.sinks_web_port, {topics.events, topics.receipts})

_couchbase = None
_redis = None


async def couchbase():
    global _couchbase
    if _couchbase is None:
        _couchbase = await bootstrap.couchbase_store(settings)
    return _couchbase


def redis_cache():
    global _redis
    if _redis is None:
        _redis = bootstrap.redis_cache(settings)
    return _redis


async def _until_done(write, what: str) -> None:
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(Exception), wait=wait_exponential_jitter(initial=0.2, max=10),
        before_sleep=lambda state: log.warning("store write failed, retrying", what=what,
                                               error=repr(state.outcome.exception())),
    ):
        with attempt:
            await write()


@app.agent(events_topic)
async def payments_to_couchbase(stream):
    async for event in stream:
        payment = event["payment"]
        store = await couchbase()
        await _until_done(lambda: store.upsert_payment(payment), f"payment {payment['payment_id']}")
        if event["type"] == "payment.tokenized":
            await _until_done(
                lambda: store.upsert_transaction(payment["transaction_id"], payment["payment_id"], payment["user_id"]),
                f"transaction index of {payment['payment_id']}",
            )
        log.info("payment stored", payment_id=payment["payment_id"], transaction_id=payment["transaction_id"],
                 status=payment["status"])


@app.agent(receipts_topic)
async def receipts_to_couchbase(stream):
    async for receipt in stream:
        store = await couchbase()
        await _until_done(lambda: store.upsert_receipt(receipt), f"receipt {receipt['receipt_id']}")
        log.info("receipt stored", payment_id=receipt["payment_id"], receipt_id=receipt["receipt_id"])


@app.agent(receipts_topic)
async def receipts_to_cache(stream):
    async for receipt in stream:
        cache = redis_cache()
        await _until_done(
            lambda: cache.put_receipt(receipt, settings.receipt_cache_ttl_s),
            f"cached receipt {receipt['receipt_id']}",
        )
        log.info("receipt cached", payment_id=receipt["payment_id"], receipt_id=receipt["receipt_id"])
