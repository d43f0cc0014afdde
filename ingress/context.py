"""What every request handler can reach: the settings and the adapters bootstrap wired."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from connectors.kafka_commands import KafkaCommandBus
from connectors.rate_limits import RateLimiter
from paystream.domain.sealing import ReplyKey
from paystream.ports import ApiKeyStore, DocumentStore, PaymentTable, PersonalDataKeys, ReceiptCache
from paystream.settings import Settings


@dataclass
class Context:
    settings: Settings
    bus: KafkaCommandBus
    cache: ReceiptCache
    store: DocumentStore
    table: PaymentTable
    keys: PersonalDataKeys
    api_keys: ApiKeyStore
    limiter: RateLimiter
    #: This process's ephemeral key: client secrets come back from the worker sealed to it.
    reply_key: ReplyKey


CONTEXT = web.AppKey("context", Context)


def context(request: web.Request) -> Context:
    return request.app[CONTEXT]
