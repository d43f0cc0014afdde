"""The API's handlers: parse the request, hand a command to the worker or ask the read side,
and turn the answer into HTTP. Nothing invalid reaches Kafka: every check
that needs no payment state happens before anything is produced."""

from __future__ import annotations

import structlog
from aiohttp import web

from ingress import idempotency
from ingress.context import context
from ingress.http_errors import error_response
from ingress.requests import PaymentQuery, PostPaymentRequest, ReceiptRequest, StartPaymentRequest
from paystream import views
from paystream.clock import utc_now
from paystream.domain.commands import Command, CommandReply, PostPayment, StartPayment
from paystream.domain.ids import derived_id
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.ports import TransactionRef

log = get_logger("paystream.ingress")


async def start_payment(request: web.Request) -> web.Response:
    body = StartPaymentRequest.model_validate_json(await request.read())
    money = body.money()
    key = await idempotency.claim(request, "start", body)
    command = StartPayment(
        command_id=derived_id("cmd", key), payment_id=derived_id("pay", key),
        user_id=body.user_id, email=str(body.email_id), requested_at=body.timestamp.isoformat(),
        payment_type=body.payment_type, amount=money,
    )
    reply = await send(request, command)
    if not isinstance(reply, CommandReply):
        return reply
    payment = reply.payment
    structlog.contextvars.bind_contextvars(transaction_id=payment.transaction_id)
    # Indexed before the client hears of the transaction, so its post finds it.
    await context(request).cache.put_transaction(payment.transaction_id,
                                                 TransactionRef(command.payment_id, command.user_id))
    return web.json_response({**payment.model_dump(mode="json"), "client_secret": reply.client_secret}, status=201)


async def post_payment(request: web.Request) -> web.Response:
    body = PostPaymentRequest.model_validate_json(await request.read())
    money = body.money()
    structlog.contextvars.bind_contextvars(transaction_id=body.transaction_id)
    ctx = context(request)
    found = await views.transaction(ctx.cache, ctx.store, body.transaction_id, body.user_id)
    key = await idempotency.claim(request, "post", body)
    command = PostPayment(
        command_id=derived_id("cmd", key), payment_id=found.payment_id, user_id=body.user_id,
        email=str(body.email_id), requested_at=body.timestamp.isoformat(), payment_type=body.payment_type,
        transaction_id=body.transaction_id, amount=money, payment_method=body.payment_method,
    )
    reply = await send(request, command)
    if not isinstance(reply, CommandReply):
        return reply
    # Cached before the client has it, so its first getReceipt is a hit; the
    # sinks write the same receipt to Couchbase and the cache as well.
    await ctx.cache.put_receipt(reply.receipt)
    return web.json_response(reply.receipt.model_dump(mode="json"), status=201)


async def send(request: web.Request, command: Command) -> CommandReply | web.Response:
    """The worker's successful reply, or the response that tells the client otherwise."""
    structlog.contextvars.bind_contextvars(payment_id=command.payment_id)
    ctx = context(request)
    correlation_id = structlog.contextvars.get_contextvars()["correlation_id"]
    reply = await ctx.bus.send(command, correlation_id, ctx.settings.reply_timeout_s)
    if reply is None:
        log.warning("no outcome within the wait; answering 202", kind=command.kind)
        if isinstance(command, StartPayment):
            # Its status reads say "processing", never 404, until the pipeline has it.
            await ctx.cache.put_accepted(views.accepted(command, utc_now()))
        return web.json_response(
            {"payment_id": command.payment_id, "status": "processing",
             "message": "the payment is being processed; poll its Location for the outcome"},
            status=202, headers={"Location": f"/payments/{command.payment_id}"},
        )
    if not reply.ok:
        return error_response(reply.error.type, reply.error.code, reply.error.message, reply.error.field)
    return reply


async def get_receipt(request: web.Request) -> web.Response:
    if request.method == "POST":
        query = ReceiptRequest.model_validate_json(await request.read())
    else:
        query = ReceiptRequest.model_validate(dict(request.query), strict=False)
    ctx = context(request)
    body, hit = await views.receipt(ctx.cache, ctx.store, query.user_id, query.receipt_id)
    metrics.CACHE_REQUESTS.labels("hit" if hit else "miss").inc()
    return web.Response(body=body, content_type="application/json", headers={"X-Cache": "hit" if hit else "miss"})


async def get_payment(request: web.Request) -> web.Response:
    query = PaymentQuery.model_validate(dict(request.query), strict=False)
    ctx = context(request)
    view = await views.payment(ctx.store, ctx.table, ctx.cache, request.match_info["payment_id"], query.user_id)
    return web.json_response(view.model_dump(mode="json"))


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics_page(request: web.Request) -> web.Response:
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/startPayment", start_payment, name="startPayment")
    app.router.add_post("/postPayment", post_payment, name="postPayment")
    app.router.add_get("/getReceipt", get_receipt, name="getReceipt")
    app.router.add_post("/getReceipt", get_receipt)
    app.router.add_get("/payments/{payment_id}", get_payment, name="payment")
    app.router.add_get("/health", health, name="health")
    app.router.add_get("/metrics", metrics_page, name="metrics")
