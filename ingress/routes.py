"""The API's handlers, and the table of operations that both routes them and documents them.

Each handler parses its request with the models of ingress/requests.py, hands a
command to the worker or asks the read side, and builds its answer with the
models of ingress/responses.py. Nothing invalid reaches Kafka: every check that
needs no payment state happens before anything is produced.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import structlog
from aiohttp import web
from pydantic import BaseModel

from ingress import idempotency
from ingress.context import context
from ingress.http_errors import error_response
from ingress.requests import (
    ListQuery,
    PaymentPath,
    PaymentQuery,
    PostPaymentRequest,
    ReceiptRequest,
    RefundListQuery,
    RefundPath,
    RefundRequest,
    StartPaymentRequest,
    UserTokenRequest,
)
from ingress.responses import (
    Accepted,
    Health,
    PaymentList,
    ReceiptList,
    RefundList,
    StartedPayment,
    UserTokenIssued,
)
from paystream import early_writes, user_tokens, views
from paystream.clock import utc_now
from paystream.domain.commands import Command, CommandReply, PostPayment, RefundPayment, StartPayment
from paystream.domain.errors import NotFound, PaymentError, Unavailable
from paystream.domain.ids import derived_id
from paystream.domain.money import Money
from paystream.domain.records import PaymentView, Receipt, RefundView
from paystream.domain.routing import ProviderChoice, choose_provider
from paystream.domain.sealing import seal_personal
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.settings import Settings

log = get_logger("paystream.ingress")

#: How long a client told 202 should wait before polling.
POLL_AFTER_S = 1


def _json(model: BaseModel, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=model.model_dump_json(), status=status, content_type="application/json",
                        headers=headers)


def _as(request: web.Request, user_id: str, what: str, field: str) -> str:
    """`user_id`, if the caller may act for them: any user for an API key, only its own for a user token
    (another user's objects are answered as missing ones)."""
    bound = request.get("user")
    if bound is not None and bound != user_id:
        raise NotFound(f"{what}_not_found", f"no such {what} for this user", field)
    return user_id


async def _data_key(request: web.Request, user_id: str) -> bytes:
    return await context(request).keys.get_or_create(request["account"], user_id)


async def _sealed_email(request: web.Request, user_id: str, email: str, key: bytes | None = None) -> str:
    key = key or await _data_key(request, user_id)
    return seal_personal(key, email, request["account"], user_id)


async def start_payment(request: web.Request) -> web.Response:
    body = StartPaymentRequest.model_validate_json(await request.read())
    money = body.money()
    _as(request, body.user_id, "user", "user_id")
    choice = _provider_choice(context(request).settings, request["account"], body.provider, money)
    claimed = await idempotency.claim(request, "start", body)
    if isinstance(claimed, web.Response):
        return claimed
    ctx, key = context(request), claimed.scoped if claimed else None
    command = StartPayment(
        command_id=derived_id("cmd", key), payment_id=derived_id("pay", key), account=request["account"],
        user_id=body.user_id, email=await _sealed_email(request, body.user_id, str(body.email_id)),
        requested_at=body.timestamp.isoformat(), payment_type=body.payment_type, amount=money,
        reply_key=ctx.reply_key.public, provider=choice.provider, fallback_provider=choice.fallback,
    )
    reply = await send(request, command, claimed)
    if not isinstance(reply, CommandReply):
        return reply
    payment = reply.payment
    structlog.contextvars.bind_contextvars(transaction_id=payment.transaction_id)
    await early_writes.transaction_given(ctx.cache, command.account, payment)
    answer = StartedPayment(**payment.model_dump(), client_secret=ctx.reply_key.open(reply.sealed_client_secret))
    await idempotency.remember(request, claimed, 201, answer.model_dump(mode="json"))
    return _json(answer, 201)


def _provider_choice(settings: Settings, account: str, requested: str | None, money: Money | None) -> ProviderChoice:
    """The payment's provider: the request's, else its account's, else the setting's (and the account's fallback)."""
    own = settings.account_providers.get(account)
    return choose_provider(requested, own.provider if own else None, bool(own and own.fallback),
                           settings.default_provider, settings.providers_offered, money)


async def post_payment(request: web.Request) -> web.Response:
    body = PostPaymentRequest.model_validate_json(await request.read())
    money = body.money()
    structlog.contextvars.bind_contextvars(transaction_id=body.transaction_id)
    ctx = context(request)
    _as(request, body.user_id, "payment", "transaction_id")
    found = await views.transaction(ctx.cache, ctx.store, request["account"], body.transaction_id, body.user_id)
    claimed = await idempotency.claim(request, "post", body)
    if isinstance(claimed, web.Response):
        return claimed
    key = await _data_key(request, body.user_id)
    command = PostPayment(
        command_id=derived_id("cmd", claimed.scoped if claimed else None), payment_id=found.payment_id,
        account=request["account"], user_id=body.user_id,
        email=await _sealed_email(request, body.user_id, str(body.email_id), key),
        requested_at=body.timestamp.isoformat(), payment_type=body.payment_type,
        transaction_id=body.transaction_id, amount=money, payment_method=body.payment_method,
    )
    reply = await send(request, command, claimed)
    if not isinstance(reply, CommandReply):
        return reply
    await early_writes.receipt_given(ctx.cache, reply.receipt)
    await idempotency.remember(request, claimed, 201, {}, receipt=reply.receipt)
    # Opened with the key that sealed this request: the answer needs no store (it may be down).
    return _json(views.opened(key, reply.receipt), 201)


async def create_refund(request: web.Request) -> web.Response:
    body = RefundRequest.model_validate_json(await request.read())
    _as(request, body.user_id, "payment", "payment_id")
    ctx, account = context(request), request["account"]
    # Another account's or user's payment is a 404 here, and an amount the payment's currency cannot
    # hold a 422, before anything is written; the worker that owns the payment checks the rest.
    payment = await views.live_payment(ctx.store, ctx.table, account, body.payment_id, body.user_id)
    if body.amount is not None and payment.currency is not None:
        Money.parse(body.amount, payment.currency)
    claimed = await idempotency.claim(request, "refund", body)
    if isinstance(claimed, web.Response):
        return claimed
    scoped = claimed.scoped if claimed else None
    command = RefundPayment(
        command_id=derived_id("cmd", scoped), payment_id=body.payment_id,
        refund_id=derived_id("rf", f"{scoped}:{body.payment_id}" if scoped else None), account=account,
        user_id=body.user_id, requested_at=utc_now(), amount=body.amount, reason=body.reason,
    )
    location = f"/v1/refunds/{command.refund_id}?user_id={quote(body.user_id)}"
    await early_writes.refund_asked(ctx.cache, command)
    reply = await send(request, command, claimed, location)
    if not isinstance(reply, CommandReply):
        return reply
    if reply.refund.status == "pending":
        # The provider has not said yet: its sync settles it; poll `Location`.
        return _json(reply.refund, 202, headers={"Location": location, "Retry-After": str(POLL_AFTER_S)})
    await idempotency.remember(request, claimed, 201, reply.refund.model_dump(mode="json"))
    return _json(reply.refund, 201)


async def get_refund(request: web.Request) -> web.Response:
    query = PaymentQuery.model_validate(dict(request.query), strict=False)
    refund_id = RefundPath.model_validate(dict(request.match_info)).refund_id
    _as(request, query.user_id, "refund", "refund_id")
    ctx = context(request)
    return _json(await views.refund(ctx.cache, ctx.store, ctx.table, request["account"], refund_id, query.user_id))


async def list_refunds(request: web.Request) -> web.Response:
    query = RefundListQuery.model_validate(dict(request.query), strict=False)
    payment_id = PaymentPath.model_validate(dict(request.match_info)).payment_id
    _as(request, query.user_id, "payment", "payment_id")
    ctx = context(request)
    payment = await views.live_payment(ctx.store, ctx.table, request["account"], payment_id, query.user_id)
    data, more = views.refunds_page(payment, query.limit, query.starting_after)
    return _json(RefundList(url=f"/v1/payments/{payment_id}/refunds", has_more=more, data=data))


async def send(request: web.Request, command: Command, claimed: idempotency.Claim | None,
               location: str | None = None) -> CommandReply | web.Response:
    """The worker's successful reply, or the response that tells the client otherwise (`location`: where
    to poll when no outcome comes within the wait; the payment's unless given)."""
    structlog.contextvars.bind_contextvars(payment_id=command.payment_id)
    ctx = context(request)
    correlation_id = structlog.contextvars.get_contextvars()["correlation_id"]
    reply = await ctx.bus.send(command, correlation_id, ctx.settings.reply_timeout_s)
    if reply is None:
        log.warning("no outcome within the wait; answering 202", kind=command.kind)
        if isinstance(command, StartPayment):
            await early_writes.payment_accepted(ctx.cache, command, utc_now())
        location = location or f"/v1/payments/{command.payment_id}?user_id={quote(command.user_id)}"
        return _json(Accepted(payment_id=command.payment_id, refund_id=getattr(command, "refund_id", None)), 202,
                     headers={"Location": location, "Retry-After": str(POLL_AFTER_S)})
    if not reply.ok:
        error = reply.error
        response = error_response(error.type, error.code, error.message, error.field,
                                  decline_code=error.decline_code)
        await idempotency.remember(request, claimed, response.status, _body_of(response))
        return response
    return reply


def _body_of(response: web.Response) -> dict:
    return json.loads(response.body)


async def get_receipt(request: web.Request) -> web.Response:
    if request.method == "POST":
        query = ReceiptRequest.model_validate_json(await request.read())
    else:
        query = ReceiptRequest.model_validate(dict(request.query), strict=False)
    ctx = context(request)
    _as(request, query.user_id, "receipt", "receipt_id")
    receipt, hit = await views.receipt(ctx.cache, ctx.store, ctx.keys, request["account"], query.user_id,
                                       query.receipt_id)
    metrics.CACHE_REQUESTS.labels("hit" if hit else "miss").inc()
    return _json(receipt, headers={"X-Cache": "hit" if hit else "miss"})


async def get_payment(request: web.Request) -> web.Response:
    query = PaymentQuery.model_validate(dict(request.query), strict=False)
    payment_id = PaymentPath.model_validate(dict(request.match_info)).payment_id
    _as(request, query.user_id, "payment", "payment_id")
    ctx = context(request)
    view = await views.payment(ctx.store, ctx.table, ctx.cache, request["account"], payment_id, query.user_id)
    if view.status == "tokenized" and view.transaction_id:
        # A client told 202 learns its transaction here.
        await early_writes.transaction_given(ctx.cache, request["account"], view)
    return _json(view)


async def list_payments(request: web.Request) -> web.Response:
    query = ListQuery.model_validate(dict(request.query), strict=False)
    _as(request, query.user_id, "user", "user_id")
    data, more = await views.payments(context(request).store, request["account"], query.user_id, query.limit,
                                      query.starting_after)
    return _json(PaymentList(url="/v1/payments", has_more=more, data=data))


async def list_receipts(request: web.Request) -> web.Response:
    query = ListQuery.model_validate(dict(request.query), strict=False)
    _as(request, query.user_id, "user", "user_id")
    ctx = context(request)
    data, more = await views.receipts(ctx.store, ctx.keys, request["account"], query.user_id, query.limit,
                                      query.starting_after)
    return _json(ReceiptList(url="/v1/receipts", has_more=more, data=data))


class Forbidden(PaymentError):
    type = "permission_error"


async def create_user_token(request: web.Request) -> web.Response:
    body = UserTokenRequest.model_validate_json(await request.read())
    if request.get("user") is not None:
        raise Forbidden("api_key_required", "a user token cannot mint tokens; use your API key")
    secret = context(request).settings.user_token_secret.get_secret_value()
    if not secret:
        raise Unavailable("user_tokens_off", "user tokens are not configured here (PAYSTREAM_USER_TOKEN_SECRET)")
    token, claims = user_tokens.mint(secret, request["account"], body.user_id, request["key_id"], body.ttl_s)
    return _json(UserTokenIssued(token=token, user_id=claims.user_id, expires_at=claims.expires_at), 201)


async def health(request: web.Request) -> web.Response:
    return _json(Health())


async def metrics_page(request: web.Request) -> web.Response:
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


# --- the operations: routed here, documented by ingress/openapi.py ---------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ERRORS = {401: "No valid API key.", 422: "A parameter is invalid; `param` names it.",
          429: "Too many requests with this API key; retry after `Retry-After` seconds."}
WRITE_ERRORS = {**ERRORS, 400: "The body is not valid JSON.", 409: "The Idempotency-Key was used with another "
                "body, or the payment is in a state that forbids this.", 413: "The body is over the size limit.",
                503: "The worker could not take the command, or the payment's provider could not be reached "
                     "(`provider_unavailable`; a start of an account that opts in to fallback goes to its other "
                     "provider instead, while nothing was made at the first); retry with the same "
                     "Idempotency-Key after `Retry-After` seconds."}


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str  # as documented: /v1/…
    handler: Handler
    summary: str
    responses: dict[int, tuple[str, type[BaseModel] | None]]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    path_params: tuple[str, ...] = ()
    idempotent: bool = False  # takes an Idempotency-Key
    aliases: tuple[str, ...] = ()  # the design's paths, kept
    public: bool = False  # no API key needed
    errors: dict[int, str] = field(default_factory=lambda: dict(ERRORS))


OPERATIONS = (
    Operation("startPayment", "POST", "/v1/startPayment", start_payment,
              "Start a payment: a session with its provider (`provider`: Stripe or PayPal), and its client "
              "secret (once; for PayPal, the order's approval link).",
              {201: ("The payment, tokenized, with the provider's client secret.", StartedPayment),
               202: ("No outcome yet: poll `Location`.", Accepted)},
              body=StartPaymentRequest, idempotent=True, aliases=("/startPayment",), errors=dict(WRITE_ERRORS)),
    Operation("postPayment", "POST", "/v1/postPayment", post_payment,
              "Charge the payment method the provider gave the client, and get the receipt.",
              {201: ("The receipt.", Receipt), 202: ("No outcome yet: poll `Location`.", Accepted)},
              body=PostPaymentRequest, idempotent=True, aliases=("/postPayment",),
              errors={**WRITE_ERRORS, 402: "The card was declined; `decline_code` says why.",
                      404: "No such transaction for this user."}),
    Operation("getReceipt", "GET", "/v1/getReceipt", get_receipt,
              "A receipt: from the cache (`X-Cache: hit`) or a store replica (`miss`).",
              {200: ("The receipt.", Receipt)}, query=ReceiptRequest, aliases=("/getReceipt",),
              errors={**ERRORS, 404: "No such receipt for this user."}),
    Operation("getReceiptByBody", "POST", "/v1/getReceipt", get_receipt,
              "The same, with the design's JSON body.", {200: ("The receipt.", Receipt)},
              body=ReceiptRequest, aliases=("/getReceipt",),
              errors={**ERRORS, 400: "The body is not valid JSON.", 404: "No such receipt for this user."}),
    Operation("getPayment", "GET", "/v1/payments/{payment_id}", get_payment,
              "One payment's state (what a 202's `Location` points to).",
              {200: ("The payment.", PaymentView)}, query=PaymentQuery, path_params=("payment_id",),
              aliases=("/payments/{payment_id}",), errors={**ERRORS, 404: "No such payment for this user."}),
    Operation("listPayments", "GET", "/v1/payments", list_payments,
              "A user's payments, newest first, `limit` at a time after `starting_after`.",
              {200: ("A page of payments.", PaymentList)}, query=ListQuery),
    Operation("listReceipts", "GET", "/v1/receipts", list_receipts,
              "A user's receipts, newest first, `limit` at a time after `starting_after`.",
              {200: ("A page of receipts.", ReceiptList)}, query=ListQuery),
    Operation("createRefund", "POST", "/v1/refunds", create_refund,
              "Give back all or part of a succeeded payment (no `amount`: what is left to refund). The refunds not "
              "failed or canceled never add up to more than the payment; at most 10 a payment.",
              {201: ("The refund, settled by the provider (`succeeded`, or `failed` with `failure_reason`).",
                     RefundView),
               202: ("The refund is pending at the provider: poll `Location`.", RefundView)},
              body=RefundRequest, idempotent=True,
              errors={**WRITE_ERRORS, 400: "The body is not valid JSON, or `amount` is more than what is left to "
                      "refund (`amount_too_large`, `charge_already_refunded`); `param` names it.",
                      404: "No such payment for this user.",
                      409: "The payment cannot be refunded (`payment_not_refundable`, `too_many_refunds`), or the "
                           "Idempotency-Key was used with another body."}),
    Operation("getRefund", "GET", "/v1/refunds/{refund_id}", get_refund,
              "One refund (what a 202's `Location` points to).", {200: ("The refund.", RefundView)},
              query=PaymentQuery, path_params=("refund_id",), errors={**ERRORS, 404: "No such refund for this user."}),
    Operation("listRefunds", "GET", "/v1/payments/{payment_id}/refunds", list_refunds,
              "A payment's refunds, newest first, `limit` at a time after `starting_after`.",
              {200: ("A page of refunds.", RefundList)}, query=RefundListQuery, path_params=("payment_id",),
              errors={**ERRORS, 404: "No such payment for this user."}),
    Operation("createUserToken", "POST", "/v1/user_tokens", create_user_token,
              "Mint a short-lived token for one user of your account, for a client app to call the API with: "
              "it sees and acts for that user only (another user's objects answer 404).",
              {201: ("The token.", UserTokenIssued)}, body=UserTokenRequest,
              errors={**ERRORS, 400: "The body is not valid JSON.", 403: "A user token cannot mint tokens.",
                      503: "User tokens are not configured here."}),
    Operation("health", "GET", "/health", health, "Whether the API answers (no key needed).",
              {200: ("It answers.", Health)}, public=True, errors={}),
)


def add_routes(app: web.Application) -> None:
    # Route names are `<operationId>[.alias]`: metrics count an alias under its operation.
    for op in OPERATIONS:
        app.router.add_route(op.method, op.path, op.handler, name=op.operation_id)
        for alias in op.aliases:
            app.router.add_route(op.method, alias, op.handler, name=f"{op.operation_id}.alias")
    app.router.add_get("/metrics", metrics_page, name="metrics")
