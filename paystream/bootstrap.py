"""The composition root: settings in, adapters out.

The one place that knows which implementation stands behind each port
(paystream/ports.py). Entrypoints (ingress/, streams/, monitor/) ask here
for what they need and build none of it themselves; tests of the core pass
their own fakes to the same handlers instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from paystream import tuning
from paystream.clock import utc_now
from paystream.data_keys import JournaledDataKeys
from paystream.handlers import CommandHandler
from paystream.observability.logs import get_logger
from paystream.ports import (
    ApiKeyStore,
    CommandBus,
    DataKeyStore,
    DocumentStore,
    PaymentStore,
    PaymentTable,
    PersonalDataKeys,
    RateLimits,
    ReceiptCache,
)
from paystream.providers import Providers
from paystream.rebuild import StoreRebuild
from paystream.settings import Settings
from paystream.topics import TopicSpec

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from connectors.couchbase_store import BackgroundConnectedStore, CouchbaseStore
    from connectors.couchbase_writer import CouchbaseWriter
    from connectors.kafka_commands import KafkaCommandBus
    from connectors.kafka_data_keys import KafkaDataKeyJournal
    from connectors.kafka_log import KafkaEventLog
    from connectors.paypal import PayPalProvider
    from connectors.rate_limits import RateLimiter
    from connectors.redis_apikeys import RedisApiKeys
    from connectors.redis_cache import BestEffortCache, RedisCache
    from connectors.stripe import StripeProvider
    from connectors.table_restore import Restored
    from connectors.worker_table import WorkerTableClient


def provider(settings: Settings) -> StripeProvider:
    from connectors.stripe import StripeProvider

    return StripeProvider(
        settings.stripe_api_base, settings.stripe_api_key.get_secret_value(),
        timeout_s=settings.stripe_timeout_s, max_attempts=settings.stripe_max_attempts,
        max_connections=tuning.STRIPE_MAX_CONNECTIONS,
        webhook_secret=settings.stripe_webhook_secret.get_secret_value() if settings.stripe_webhook_secret else None,
    )


def paypal_provider(settings: Settings) -> PayPalProvider | None:
    """The PayPal connector, or None when no PayPal credentials are set (PayPal is then not offered)."""
    if "paypal" not in settings.providers_offered:
        return None
    from connectors.paypal import PayPalProvider

    return PayPalProvider(settings.paypal_api_base, settings.paypal_client_id,
                          settings.paypal_secret.get_secret_value(), timeout_s=settings.paypal_timeout_s,
                          max_attempts=settings.paypal_max_attempts, max_connections=tuning.STRIPE_MAX_CONNECTIONS)


def providers(settings: Settings) -> Providers:
    """Every provider offered, by name: Stripe, and PayPal when its credentials are set."""
    paypal = paypal_provider(settings) if "paypal" in settings.providers_offered else None
    return Providers({"stripe": provider(settings), **({"paypal": paypal} if paypal is not None else {})})


def command_handler(store: PaymentStore, settings: Settings) -> CommandHandler:
    """The worker's handler of commands, over its table of payments and every provider's connector."""
    return CommandHandler(store, providers(settings), utc_now)


def command_bus(settings: Settings) -> KafkaCommandBus:

    from connectors.kafka_commands import KafkaCommandBus

    return KafkaCommandBus(settings.kafka_bootstrap, settings.topics.commands, settings.topics.replies,
                           settings.kafka_connect_timeout_s, linger_ms=tuning.KAFKA_COMMAND_LINGER_MS,
                           max_batch_bytes=tuning.KAFKA_MAX_BATCH_BYTES)


async def document_store(settings: Settings) -> CouchbaseStore:
    from connectors.couchbase_store import CouchbaseStore

    return await CouchbaseStore.connect(settings)


def read_store(settings: Settings) -> BackgroundConnectedStore:
    """The store as the API reads it: connected in the background, so the API starts without it."""
    from connectors.couchbase_store import BackgroundConnectedStore

    return BackgroundConnectedStore(settings)


def receipt_cache(settings: Settings) -> RedisCache:
    """Redis as the sinks need it: every failure raised, so a write is retried until it lands."""
    from connectors.redis_cache import RedisCache

    return RedisCache.from_url(
        settings.redis_url, settings.redis_pool_size, settings.redis_pool_timeout_s, receipt_ttl_s=settings.receipt_cache_ttl_s,
        transaction_ttl_s=settings.transaction_index_ttl_s, idempotency_ttl_s=settings.idempotency_ttl_s,
    )


def read_cache(settings: Settings) -> BestEffortCache:
    """Redis as the API uses it: a shortcut it goes on without while Redis is down."""
    from connectors.redis_cache import BestEffortCache

    return BestEffortCache(receipt_cache(settings))


def payment_table(settings: Settings) -> WorkerTableClient:
    """The workers' payments table, asked over their internal pages (status reads)."""
    from connectors.worker_table import WorkerTableClient

    return WorkerTableClient(settings.worker_url_list, settings.internal_token.get_secret_value(),
                             settings.worker_query_timeout_s)


def api_key_store(settings: Settings) -> RedisApiKeys:
    """Where API keys (hashed) live: the Redis paystream already runs."""
    from connectors.redis_apikeys import RedisApiKeys
    from connectors.redis_cache import client_for

    return RedisApiKeys(client_for(settings.redis_url, settings.redis_pool_size, settings.redis_pool_timeout_s))


def data_keys(settings: Settings, store: DataKeyStore, producer: AIOKafkaProducer) -> JournaledDataKeys:
    """Users' data keys: looked up in the store, kept on the data-keys topic (paystream/data_keys.py)."""
    from connectors.kafka_data_keys import KafkaDataKeyJournal

    return JournaledDataKeys(store, KafkaDataKeyJournal(producer, settings.topics.data_keys, settings.reply_timeout_s,
                                                        settings.kafka_connect_timeout_s))


async def data_key_journal(settings: Settings) -> KafkaDataKeyJournal:
    """The data-keys topic with a producer of its own (`close()` it): for commands outside the API."""
    from connectors.kafka_data_keys import KafkaDataKeyJournal

    return await KafkaDataKeyJournal.started(settings.kafka_bootstrap, settings.topics.data_keys,
                                             settings.reply_timeout_s, settings.kafka_connect_timeout_s)


def remembered(settings: Settings, api_keys: ApiKeyStore, data_keys: PersonalDataKeys):
    """The ingress's short memory of both (connectors/memo.py): (API keys, data keys)."""
    from connectors.memo import RememberedApiKeys, RememberedDataKeys

    return (RememberedApiKeys(api_keys, settings.key_cache_s), RememberedDataKeys(data_keys, settings.key_cache_s))


def rate_limiter(settings: Settings) -> RateLimiter:
    from connectors.rate_limits import RateLimiter

    return RateLimiter(settings.redis_url, settings.redis_pool_size, settings.redis_pool_timeout_s,
                       tuning.RATE_LIMIT_LEASE_FRACTION, tuning.RATE_LIMIT_LEASE_MAX,
                       tuning.RATE_LIMIT_LEASE_LIFE)


def ensure_topics(settings: Settings) -> list[str]:
    """Create paystream's topics where missing (every process does this at start; it is idempotent)."""
    from connectors.kafka_admin import ensure_topics

    return ensure_topics(settings)


def create_topics(settings: Settings, specs: list[TopicSpec]) -> list[str]:
    """Create these topics where missing (a Faust app's own, before it starts)."""
    from connectors.kafka_admin import create_topics

    return create_topics(settings.kafka_bootstrap, specs)


def is_outage(exc: BaseException) -> bool:
    """Whether a store's failure is an outage (retry until it lands) or the message's own (set it aside)."""
    from connectors.outages import is_outage

    return is_outage(exc)


async def restore_worker_table(settings: Settings, table) -> Restored:
    """A Faust RocksDB table brought up to its changelog's end in bulk (connectors/table_restore.py)."""
    from connectors.table_restore import restore_table

    store = table.data
    return await restore_table(event_log(settings), table.changelog_topic.get_topic_name(), store,
                               store.rocksdb_options.open, batch=settings.table_restore_batch)


def event_log(settings: Settings) -> KafkaEventLog:
    from connectors.kafka_log import KafkaEventLog

    return KafkaEventLog(settings.kafka_bootstrap)


async def store_writer(settings: Settings) -> CouchbaseWriter:
    """The one writer of the store's documents: the sinks', the rebuild's, a single write's."""
    from connectors.couchbase_writer import CouchbaseWriter

    return await CouchbaseWriter.connect(settings)


async def store_rebuild(settings: Settings, writer: CouchbaseWriter | None = None) -> StoreRebuild:
    """Replays the events and receipts topics into Couchbase and the receipt cache (through `writer`
    when the caller holds one already)."""
    return StoreRebuild(event_log(settings), writer or await store_writer(settings), receipt_cache(settings),
                        settings.topics, batch=tuning.REBUILD_BATCH)


@dataclass(frozen=True)
class IngressAdapters:
    """Everything the HTTP API reaches outside itself, each behind its port (ingress/context.py)."""

    bus: CommandBus
    cache: ReceiptCache
    store: DocumentStore
    table: PaymentTable
    keys: PersonalDataKeys
    api_keys: ApiKeyStore
    limiter: RateLimits


@contextlib.asynccontextmanager
async def ingress_adapters(settings: Settings, store_wait_s: float) -> AsyncIterator[IngressAdapters]:
    """The API's adapters, started (topics ensured, the command bus connected) and closed on exit.

    The document store gets `store_wait_s` to connect; past it the API starts without it and it
    connects in the background."""
    await asyncio.to_thread(ensure_topics, settings)
    cache = read_cache(settings)
    store = read_store(settings)
    if not await store.wait_connected(store_wait_s):
        get_logger("paystream.ingress").warning("starting without the document store; it is connected "
                                                "in the background")
    table = payment_table(settings)
    bus = command_bus(settings)
    api_keys, keys = remembered(settings, api_key_store(settings), data_keys(settings, store, bus.producer))
    limiter = rate_limiter(settings)
    await bus.start()
    try:
        yield IngressAdapters(bus, cache, store, table, keys, api_keys, limiter)
    finally:
        await bus.stop()
        await table.close()
        await store.close()
        await api_keys.close()
        await cache.close()
        await limiter.close()
