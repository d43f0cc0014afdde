"""The payment worker: a Faust agent that runs the state machine.

Commands arrive keyed by payment id, so every command of one payment is on
one partition and in the same table partition. Delivery is at least once:
after a crash Kafka hands the same command over again, and the handlers
(paystream/handlers.py) make a replay change nothing and answer the same.
Before a reply leaves, and before any provider call that can charge, the
command's table changelog records and payment events are acknowledged, so a client never hears
of a state that a crash could take back, and a crash never loses the record of
what may have been charged.

The agent handles up to `worker_concurrency` commands at once, because a
provider call takes hundreds of milliseconds; `CommandHandler` runs the
commands of one payment one at a time, in the order they came, which is
what makes the concurrent writes to the payments table safe.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import structlog
from faust.web import Request, Response, View

from paystream import bootstrap, messages
from paystream.clock import utc_now
from paystream.domain.commands import CommandReply, ErrorBody
from paystream.domain.errors import NotFound, Unavailable
from paystream.domain.events import PaymentChanged, RefundChanged
from paystream.domain.model import Payment, Status, check_owner
from paystream.handlers import refund_sync_command
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.settings import get_settings
from streams import observability
from streams.app import make_app
from streams.dead_letters.letters import DeadLetters, headers_of
from streams.readiness import is_ready
from streams.tables_web import payments_pages
from streams.web import internal
from tables.payments import TableStore, payments_table, take_writes, track_writes

log = get_logger("paystream.worker")

settings = get_settings()
topics = settings.topics
app = make_app(settings.worker_id, settings, settings.worker_web_port)
payments = payments_table(app, settings.payment_topic_partitions)
dead_letters = DeadLetters(app, settings, "worker")

commands_topic = app.topic(topics.commands, key_serializer="raw", value_serializer="raw")
replies_topic = app.topic(topics.replies, key_serializer="raw", value_serializer="raw")
events_topic = app.topic(topics.events, key_serializer="raw", value_serializer="raw")
receipts_topic = app.topic(topics.receipts, key_serializer="raw", value_serializer="raw")
refunds_topic = app.topic(topics.refunds, key_serializer="raw", value_serializer="raw")
# The payments summary and export, gathered from every worker (the analysts' windows are tables/analytics/agents.py).
payments_pages(app, settings, payments)


def before_start() -> None:
    """Restore the payments table from its changelog in bulk, before Faust opens it (connectors/table_restore.py):
    a worker that lost its local state is back in seconds instead of minutes. Best effort: whatever it did
    not restore, Faust's own recovery reads."""
    if not settings.table_restore_batch:
        return
    try:
        # On the loop Faust will run on (not asyncio.run's, which closes): the table's store is made here.
        restored = app.loop.run_until_complete(bootstrap.restore_worker_table(settings, payments))
    except Exception as exc:  # Kafka not answering yet, say: Faust's recovery waits for it and reads it all
        log.warning("bulk table restore failed; Faust's recovery will read the changelog", error=repr(exc))
        return
    if restored.records:
        log.info("payments table restored from its changelog", records=restored.records,
                 partitions=restored.partitions, seconds=round(restored.seconds, 1),
                 records_per_s=round(restored.records_per_s))


async def publish(changes: Sequence[Payment], before: str = "charge") -> None:
    """The changes' events (and receipts) sent, and they and every changelog record this command's
    table writes produced acknowledged by Kafka (before a charge, or before a reply). Only this
    command's records are awaited: other commands' records in the same batches are theirs to wait for."""
    started = time.perf_counter()
    sent = take_writes()
    for payment in changes:
        if payment.entered_status:
            metrics.PAYMENT_TRANSITIONS.labels(payment.status.value).inc()
        log.info("payment changed", status=payment.status.value, transaction_id=payment.transaction_id)
        sent.append(await events_topic.send(key=payment.payment_id.encode(),
                                            value=messages.encode(PaymentChanged.of(payment)), force=True))
        if payment.status == Status.RECEIPTED and payment.entered_status:
            # Once: a refund later is a newer version of the payment, not of its receipt.
            sent.append(await receipts_topic.send(key=payment.receipt_id.encode(),
                                                  value=messages.encode(payment.receipt()), force=True))
        for refund in payment.changed_refunds:
            sent.append(await refunds_topic.send(key=refund.refund_id.encode(), value=messages.encode(
                RefundChanged(at=payment.updated_at, account=payment.account, user_id=payment.user_id,
                              refund=refund.view())), force=True))
    if sent:
        await asyncio.gather(*sent)
    metrics.DURABLE_FLUSH.labels(before).observe(time.perf_counter() - started)


store = TableStore(payments, publish)
handle = bootstrap.command_handler(store, settings)


async def reply(payment_id: str, value: CommandReply) -> None:
    await replies_topic.send(key=payment_id.encode(), value=messages.encode(value), force=True)


@app.page("/tables/payments/{payment_id}/")
class PaymentByIdPage(View):
    """One payment as its owner sees it (the public view, nothing else), for the API's status reads.

    Asked of any worker, the query is forwarded to the one holding the payment's partition: routed by
    the commands topic, whose raw key places the payment (the table's changelog key is JSON, so
    Faust's table_route would compute another partition), and whose partition N comes with the
    table's partition N."""

    @internal(settings)
    @app.topic_route(commands_topic, match_info="payment_id")
    async def get(self, request: Request, payment_id: str) -> Response:
        if not is_ready(app):
            # Mid-rebalance or still recovering: "not found" would not be the truth yet.
            return self.json({"error": Unavailable("table_recovering", "the payments table is not ready").as_dict()},
                             status=503)
        found = store.get(payment_id)
        try:
            check_owner((found.account, found.user_id) if found else None, request.query.get("account", ""),
                        request.query.get("user_id"))
        except NotFound as exc:
            return self.json({"error": exc.as_dict()}, status=404)
        return self.json(found.public_view().model_dump(mode="json"))


#: How often refunds left pending are asked again (their handler syncs each from the provider, by id).
REFUND_SYNC_EVERY_S = 15.0


@app.timer(REFUND_SYNC_EVERY_S)
async def sync_pending_refunds() -> None:
    """Each refund this worker left pending, asked again through the commands topic, keyed by its payment:
    its payment's worker syncs it, in turn with the payment's other commands, until it is terminal. (A
    refund in flight when a worker dies is settled by Kafka handing its command over again.)"""
    for payment_id, refund_ids in list(handle.pending_refunds.items()):
        payment = store.get(payment_id)
        if payment is None:
            handle.pending_refunds.pop(payment_id, None)  # this worker no longer holds it
            continue
        for refund_id in refund_ids:
            if payment.refund(refund_id) is not None:
                command = refund_sync_command(payment, refund_id, utc_now())
                await commands_topic.send(key=payment_id.encode(), value=messages.encode(command), force=True)


metrics.IN_FLIGHT.set_function(lambda: handle.in_flight)
observability.install(app, "worker", settings, settings.worker_web_port, {topics.commands},
                      lambda: handle.in_flight)


@app.agent(commands_topic, concurrency=settings.worker_concurrency)
async def process_commands(stream):
    async for event in stream.events():
        track_writes()
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
        handled, outcome = await dead_letters.attempt(event, lambda: carry(command, correlation_id))
        if not handled:
            # A poison command: set aside after its tries; its client hears so at once.
            await reply(command.payment_id, CommandReply(
                correlation_id=correlation_id, payment_id=command.payment_id, command_id=command.command_id,
                ok=False, error=ErrorBody(type="unavailable_error", code="command_failed",
                                          message="the worker could not carry out this command; it was set aside "
                                                  "for replay"),
            ))
            continue
        log.info("command handled", kind=command.kind,
                 status=outcome.payment.status.value if outcome.payment else None,
                 error=outcome.error.code if outcome.error else None)


async def carry(command, correlation_id: str | None):
    """One command through the handler, its changes made durable, its reply sent (safe to run again)."""
    outcome = await handle(command)
    await publish(outcome.unflushed, before="reply")
    await reply(command.payment_id, outcome.reply(command, correlation_id))
    return outcome
