"""The payment worker: Faust agents that run the state machine.

Commands arrive keyed by payment id, so every command of one payment is on
one partition and in the same table partition. Delivery is at least once:
after a crash Kafka hands the same command over again, and the handlers
(paystream/handlers.py) make a replay change nothing and answer the same.
Before a reply leaves, the table's changelog and the payment events are
flushed, so a client never hears of a state that a crash could take back.
"""

from __future__ import annotations

import asyncio
import weakref
from datetime import UTC, datetime

import structlog
from faust.web import Request, Response, View

from paystream import bootstrap
from paystream.domain.commands import PostPayment, StartPayment, command_from_dict
from paystream.domain.model import Status
from paystream.handlers import Outcome, handle_post, handle_start
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.settings import get_settings
from streams import observability
from streams.app import make_app
from tables import queries
from tables.payments import TableStore, payments_table

log = get_logger("paystream.worker")

settings = get_settings()
topics = settings.topics
app = make_app(settings.worker_id, settings, settings.worker_web_port)
payments = payments_table(app, settings.payment_topic_partitions)
store = TableStore(payments)

commands_topic = app.topic(topics.commands, key_serializer="raw", value_serializer="json")
replies_topic = app.topic(topics.replies, key_serializer="raw", value_serializer="json")
events_topic = app.topic(topics.events, key_serializer="raw", value_serializer="json")
receipts_topic = app.topic(topics.receipts, key_serializer="raw", value_serializer="json")

_provider = None
# One command per payment at a time, however many the agent runs at once;
# a lock lives only while some command of its payment holds or awaits it.
_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def provider():
    global _provider
    if _provider is None:
        _provider = bootstrap.provider(settings)
    return _provider


async def handle(command: StartPayment | PostPayment) -> Outcome:
    lock = _locks.setdefault(command.payment_id, asyncio.Lock())
    async with lock:
        if isinstance(command, StartPayment):
            return await handle_start(command, store, provider(), now)
        return await handle_post(command, store, provider(), now)


def in_flight() -> int:
    """Payments being handled right now: those whose lock is held."""
    return sum(1 for lock in list(_locks.values()) if lock.locked())


async def publish(outcome: Outcome) -> None:
    for payment in outcome.changes:
        metrics.PAYMENT_TRANSITIONS.labels(payment.status.value).inc()
        log.info("payment changed", status=payment.status.value, transaction_id=payment.transaction_id)
        await events_topic.send(
            key=payment.payment_id,
            value={"type": f"payment.{payment.status.value}", "at": payment.updated_at,
                   "payment": payment.as_dict()},
            force=True,
        )
        if payment.status == Status.RECEIPTED:
            await receipts_topic.send(key=payment.receipt_id, value=payment.receipt(), force=True)


@app.page("/tables/payments/summary/")
class PaymentsSummary(View):
    """Counts by state, money taken per currency, and payments stuck in flight (this worker's partitions)."""

    async def get(self, request: Request) -> Response:
        return self.json(queries.summary(payments.values(), datetime.now(UTC)))


metrics.IN_FLIGHT.set_function(in_flight)
observability.install(app, "worker", settings, settings.worker_web_port, {topics.commands}, in_flight)


@app.agent(commands_topic, concurrency=settings.worker_concurrency)
async def process_commands(stream):
    async for event in stream.events():
        headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (event.headers or {}).items()}
        structlog.contextvars.bind_contextvars(correlation_id=headers.get("correlation_id"))
        try:
            command = command_from_dict(event.value)
        except (KeyError, TypeError, ValueError) as exc:
            # Ingress validates every command; one that still fails to parse
            # is logged and skipped rather than blocking its partition.
            log.error("unreadable command skipped", tp=str(event.message.tp), error=repr(exc))
            continue
        structlog.contextvars.bind_contextvars(payment_id=command.payment_id)
        outcome = await handle(command)
        await publish(outcome)
        await app.producer.flush()
        await replies_topic.send(
            key=command.payment_id,
            value={"correlation_id": headers.get("correlation_id"), "payment_id": command.payment_id,
                   "command_id": command.command_id, **outcome.reply()},
            force=True,
        )
        log.info("command handled", kind=command.kind,
                 status=outcome.payment.status.value if outcome.payment else None,
                 error=outcome.error.code if outcome.error else None)
