"""What every request handler can reach: the settings and the adapters bootstrap wired."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from connectors.kafka_commands import KafkaCommandBus
from paystream.ports import DocumentStore, PaymentTable, ReceiptCache
from paystream.settings import Settings


@dataclass
class Context:
    settings: Settings
    bus: KafkaCommandBus
    cache: ReceiptCache
    store: DocumentStore
    table: PaymentTable


CONTEXT = web.AppKey("context", Context)


def context(request: web.Request) -> Context:
    return request.app[CONTEXT]
