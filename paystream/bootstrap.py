"""Wires settings to the adapters every entrypoint needs. The one place that
knows which implementation stands behind each port."""

from __future__ import annotations

import json

from paystream.settings import Settings
from paystream.stack.errors import StackError


def couchbase_connstr(settings: Settings) -> str:
    """COUCHBASE_CONNSTR when set, else the local stack's mock cluster."""
    if settings.couchbase_connstr:
        return settings.couchbase_connstr
    info = settings.state_dir / "couchbase" / "cluster.json"
    try:
        return json.loads(info.read_text())["connstr"]
    except (OSError, ValueError, KeyError):
        raise StackError(
            f"no Couchbase cluster: set COUCHBASE_CONNSTR or run `paystream stack up` ({info} is missing)"
        ) from None


def provider(settings: Settings):
    from connectors.stripe import StripeProvider

    return StripeProvider(
        settings.stripe_api_base, settings.stripe_api_key.get_secret_value(),
        timeout_s=settings.stripe_timeout_s, max_attempts=settings.stripe_max_attempts,
    )


async def couchbase_store(settings: Settings):
    from connectors.couchbase_store import CouchbaseStore

    return await CouchbaseStore.connect(settings, couchbase_connstr(settings))


def redis_cache(settings: Settings):
    from connectors.redis_cache import RedisCache

    return RedisCache.from_url(settings.redis_url)
