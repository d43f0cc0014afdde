"""The payment worker: a Faust agent that runs the state machine.

Commands arrive keyed by payment id, so every command of one payment is on
one partition and in the same table partition. Delivery is at least once:
after a crash Kafka hands the same command over again, and the handlers
(paystream/handlers.py) make a replay change nothing and answer the same.
Before a reply leaves, the table's changelog and the payment events are
flushed, so a client never hears of a state that a crash could take back.

The agent handles up to `worker_concurrency` commands at once, because a
provider call takes hundreds of milliseconds; `CommandHandler` runs the
commands of one payment one at a time, in the order they came, which is
what makes the concurrent writes to the payments table safe.
"""

from __future__ import annotations

import structlog

from paystream import bootstrap, messages
from paystream.domain.commands import CommandReply, ErrorBody
from paystream.domain.events import PaymentChanged
from paystream.domain.model import Status
from paystream.handlers import Outcome
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.settings import get_settings
from streams import observability
from streams.app import make_app
from streams.dead_letters import DeadLetters, headers_of
from streams.tables_web import payments_pages
from tables.payments import TableStore, payments_table

log = get_logger("paystream.worker")

settings = get_settings()
topics = settings.topics
app = make_app(settings.worker_id, settings, settings.worker_web_port)
payments = payments_table(app, settings.payment_topic_partitions)
handle = bootstrap.command_handler(TableStore(payments), settings)
dead_letters = DeadLetters(app, settings, "worker")

commands_topic = app.topic(topics.commands, key_serializer="raw", value_serializer="raw")
replies_topic = app.topic(topics.replies, key_serializer="raw", value_serializer="raw")
events_topic = app.topic(topics.events, key_serializer="raw", value_serializer="raw")
receipts_topic = app.topic(topics.receipts, key_serializer="raw", value_serializer="raw")
# The payments summary and export, gathered from every worker (the analysts' windows are streams/analytics.py).
payments_pages(app, settings, payments)


async def publish(outcome: Outcome) -> None:
    for payment in outcome.changes:
        metrics.PAYMENT_TRANSITIONS.labels(payment.status.value).inc()
        log.info("payment changed", status=payment.status.value, transaction_id=payment.transaction_id)
        await events_topic.send(key=payment.payment_id.encode(), value=messages.encode(PaymentChanged.of(payment)),
                                force=True)
        if payment.status == Status.RECEIPTED:
            await receipts_topic.send(key=payment.receipt_id.encode(), value=messages.encode(payment.receipt()),
                                      force=True)


async def reply(payment_id: str, value: CommandReply) -> None:
    await replies_topic.send(key=payment_id.encode(), value=messages.encode(value), force=True)


metrics.IN_FLIGHT.set_function(lambda: handle.in_flight)
observability.install(app, "worker", settings, settings.worker_web_port, {topics.commands},
                      lambda: handle.in_flight)


@app.agent(commands_topic, concurrency=settings.worker_concurrency)
async def process_commands(stream):
    async for event in stream.events():
        correlation_id = headers_of(event).get("correlation_id")
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        try:
            command = messages.decode("commands", event.value)
        except messages.UnreadableMessage as exc:
            # A command this worker cannot read (a newer ingress's, say) is set
            # aside for replay, and its client hears why instead of waiting.
            await dead_letters.put(event, str(exc))
            payment_id = (event.key or b"").decode(errors="replace")
            await reply(payment_id, CommandReply(
                correlation_id=correlation_id, payment_id=payment_id, ok=False,
                error=ErrorBody(type="unavailable_error", code="command_unreadable",
                                message="the worker could not read this command; it was set aside for replay"),
            ))
            continue
        structlog.contextvars.bind_contextvars(payment_id=command.payment_id)
        outcome = await handle(command)
        await publish(outcome)
        await app.producer.flush()
        await reply(command.payment_id, outcome.reply(command, correlation_id))
        log.info("command handled", kind=command.kind,
                 status=outcome.payment.status.value if outcome.payment else None,
                 error=outcome.error.code if outcome.error else None)
