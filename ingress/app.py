"""The HTTP API: startPayment, postPayment, getReceipt and payment status.

Handlers validate, build a command, hand it to Kafka and turn the outcome
into HTTP. Nothing invalid reaches Kafka: every check that needs no payment
state happens here, before anything is produced.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import time
import uuid

import structlog
from aiohttp import web

from connectors.couchbase_store import CouchbaseStore
from connectors.redis_cache import RedisCache
from ingress.http_errors import error_response, json_errors, payment_error_response
from ingress.replies import CommandBus
from ingress.requests import PaymentQuery, PostPaymentRequest, ReceiptRequest, StartPaymentRequest
from paystream import bootstrap
from paystream.domain.commands import PostPayment, StartPayment
from paystream.domain.errors import InvalidRequest, NotFound
from paystream.domain.model import Payment, check_owner
from paystream.observability import metrics
from paystream.observability.heartbeat import HeartbeatSource, publish_forever
from paystream.observability.logs import get_logger
from paystream.settings import Settings

log = get_logger("paystream.ingress")

SETTINGS = web.AppKey("settings", Settings)
BUS = web.AppKey("bus", CommandBus)
CACHE = web.AppKey("cache", RedisCache)
STORE = web.AppKey("store", CouchbaseStore)

PUBLIC_PATHS = frozenset({"/health", "/metrics"})
WRITES = frozenset({"startPayment", "postPayment"})


# --- middleware ----------------------------------------------------------------
@web.middleware
async def observe(request: web.Request, handler):
    """Count and time every request by endpoint; give each a correlation id for the logs."""
    structlog.contextvars.bind_contextvars(correlation_id=uuid.uuid4().hex)
    resource = request.match_info.route.resource
    route = (resource.name if resource is not None else None) or "unknown"
    started = time.perf_counter()
    response = await handler(request)
    if route not in ("metrics", "health"):
        elapsed = time.perf_counter() - started
        metrics.HTTP_REQUESTS.labels(route, str(response.status)).inc()
        metrics.HTTP_LATENCY.labels(route).observe(elapsed)
        # Writes and errors get a line each; successful reads (1,000s a second) only metrics.
        if route in WRITES or response.status >= 400:
            log.info("request answered", endpoint=route, status=response.status, ms=round(elapsed * 1000, 1))
    return response


@web.middleware
async def authenticate(request: web.Request, handler):
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    keys = request.app[SETTINGS].api_key_set
    if scheme.lower() != "bearer" or not any(hmac.compare_digest(key.encode(), k.encode()) for k in keys):
        return error_response("authentication_error", "invalid_api_key",
                              "send a valid API key as `Authorization: Bearer <key>`",
                              headers={"WWW-Authenticate": "Bearer"})
    request["client"] = hashlib.sha256(key.encode()).hexdigest()[:16]
    return await handler(request)


# --- helpers ---------------------------------------------------------------------
async def read_body(request: web.Request, model):
    return model.model_validate_json(await request.read())


def idempotency(request: web.Request, kind: str, body) -> tuple[str | None, str]:
    """(key, fingerprint) for this request; the key is scoped to the client and endpoint."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key) <= 255 and key.isprintable()):
        raise InvalidRequest("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable characters",
                             "Idempotency-Key")
    fingerprint = hashlib.sha256(f"{kind}:{body.model_dump_json()}".encode()).hexdigest()
    return (f"{request['client']}:{kind}:{key}" if key else None), fingerprint


def derived_id(prefix: str, scoped_key: str | None) -> str:
    """The same key always names the same payment or command; no key, a fresh one."""
    if scoped_key is None:
        return f"{prefix}_{uuid.uuid4().hex[:24]}"
    return f"{prefix}_{hashlib.sha256(scoped_key.encode()).hexdigest()[:24]}"


async def claim(request: web.Request, scoped_key: str | None, fingerprint: str) -> web.Response | None:
    if scoped_key is None:
        return None
    settings = request.app[SETTINGS]
    first = await request.app[CACHE].claim_idempotency_key("http", scoped_key, fingerprint, settings.idempotency_ttl_s)
    if first is not None and first != fingerprint:
        return error_response("idempotency_error", "idempotency_key_reused",
                              "this Idempotency-Key was used with a different request body", "Idempotency-Key")
    return None


def accepted(payment_id: str) -> web.Response:
    return web.json_response(
        {"payment_id": payment_id, "status": "processing",
         "message": "the payment is being processed; poll its Location for the outcome"},
        status=202, headers={"Location": f"/payments/{payment_id}"},
    )


# --- handlers --------------------------------------------------------------------
async def start_payment(request: web.Request) -> web.Response:
    body = await read_body(request, StartPaymentRequest)
    money = body.money()
    scoped_key, fingerprint = idempotency(request, "start", body)
    if (conflict := await claim(request, scoped_key, fingerprint)) is not None:
        return conflict
    command = StartPayment(
        command_id=derived_id("cmd", scoped_key), payment_id=derived_id("pay", scoped_key),
        user_id=body.user_id, email=str(body.email_id), requested_at=body.timestamp.isoformat(),
        payment_type=body.payment_type, amount=money,
    )
    settings = request.app[SETTINGS]
    reply = await send(request, command)
    if reply is None:
        return accepted(command.payment_id)
    if not reply["ok"]:
        return payment_error_response(reply["error"])
    payment = reply["payment"]
    structlog.contextvars.bind_contextvars(transaction_id=payment["transaction_id"])
    # Indexed before the client hears of the transaction, so its post finds it.
    await request.app[CACHE].put_transaction(
        payment["transaction_id"], command.payment_id, command.user_id, settings.transaction_index_ttl_s)
    return web.json_response({**payment, "client_secret": reply["client_secret"]}, status=201)


async def post_payment(request: web.Request) -> web.Response:
    body = await read_body(request, PostPaymentRequest)
    money = body.money()
    scoped_key, fingerprint = idempotency(request, "post", body)
    structlog.contextvars.bind_contextvars(transaction_id=body.transaction_id)
    index = await find_transaction(request, body.transaction_id)
    if index is None or index["user_id"] != body.user_id:
        raise NotFound("payment_not_found", "no such transaction for this user", "transaction_id")
    if (conflict := await claim(request, scoped_key, fingerprint)) is not None:
        return conflict
    command = PostPayment(
        command_id=derived_id("cmd", scoped_key), payment_id=index["payment_id"], user_id=body.user_id,
        email=str(body.email_id), requested_at=body.timestamp.isoformat(), payment_type=body.payment_type,
        transaction_id=body.transaction_id, amount=money, payment_method=body.payment_method,
    )
    reply = await send(request, command)
    if reply is None:
        return accepted(command.payment_id)
    if not reply["ok"]:
        return payment_error_response(reply["error"])
    # Cached before the client has it, so its first getReceipt is a hit; the
    # sinks write the same receipt to Couchbase and the cache as well.
    await request.app[CACHE].put_receipt(reply["receipt"], request.app[SETTINGS].receipt_cache_ttl_s)
    return web.json_response(reply["receipt"], status=201)


async def send(request: web.Request, command) -> dict | None:
    structlog.contextvars.bind_contextvars(payment_id=command.payment_id)
    correlation_id = structlog.contextvars.get_contextvars()["correlation_id"]
    reply = await request.app[BUS].send(command, correlation_id, request.app[SETTINGS].reply_timeout_s)
    if reply is None:
        log.warning("no outcome within the wait; answering 202", kind=command.kind)
    return reply


async def find_transaction(request: web.Request, transaction_id: str) -> dict | None:
    found = await request.app[CACHE].get_transaction(transaction_id)
    if found is None:
        found = await request.app[STORE].get_transaction(transaction_id)
    return found


async def get_receipt(request: web.Request) -> web.Response:
    if request.method == "POST":
        query = await read_body(request, ReceiptRequest)
    else:
        query = ReceiptRequest.model_validate(dict(request.query), strict=False)
    cache = request.app[CACHE]
    cached = await cache.get_receipt(query.user_id, query.receipt_id)
    if cached is not None:
        metrics.CACHE_REQUESTS.labels("hit").inc()
        return web.Response(body=cached, content_type="application/json", headers={"X-Cache": "hit"})
    metrics.CACHE_REQUESTS.labels("miss").inc()
    receipt = await request.app[STORE].get_receipt_from_replica(query.receipt_id)
    if receipt is None or receipt.get("user_id") != query.user_id:
        raise NotFound("receipt_not_found", "no such receipt for this user", "receipt_id")
    await cache.put_receipt(receipt, request.app[SETTINGS].receipt_cache_ttl_s)
    return web.json_response(receipt, headers={"X-Cache": "miss"})


async def get_payment(request: web.Request) -> web.Response:
    query = PaymentQuery.model_validate(dict(request.query), strict=False)
    doc = await request.app[STORE].get_payment(request.match_info["payment_id"])
    payment = check_owner(Payment.from_dict(doc) if doc else None, query.user_id)
    return web.json_response(payment.public_view())


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics_page(request: web.Request) -> web.Response:
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


# --- application -------------------------------------------------------------------
def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[observe, json_errors, authenticate], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app.router.add_post("/startPayment", start_payment, name="startPayment")
    app.router.add_post("/postPayment", post_payment, name="postPayment")
    app.router.add_get("/getReceipt", get_receipt, name="getReceipt")
    app.router.add_post("/getReceipt", get_receipt)
    app.router.add_get("/payments/{payment_id}", get_payment, name="payment")
    app.router.add_get("/health", health, name="health")
    app.router.add_get("/metrics", metrics_page, name="metrics")
    app.cleanup_ctx.append(_connections)
    app.cleanup_ctx.append(_heartbeats)
    return app


async def _connections(app: web.Application):
    settings = app[SETTINGS]
    app[CACHE] = bootstrap.redis_cache(settings)
    app[STORE] = await bootstrap.couchbase_store(settings)
    app[BUS] = CommandBus(settings.kafka_bootstrap, settings.topics.commands, settings.topics.replies)
    await app[BUS].start()
    yield
    await app[BUS].stop()
    await app[STORE].close()
    await app[CACHE].close()


async def _heartbeats(app: web.Application):
    settings = app[SETTINGS]
    bus = app[BUS]

    async def facts() -> dict:
        return {"in_flight": bus.waiting}

    source = HeartbeatSource("ingress", settings.ingress_port,
                             f"http://{settings.ingress_host}:{settings.ingress_port}/metrics", facts)
    task = asyncio.create_task(publish_forever(
        source, lambda key, value: bus.publish(settings.topics.heartbeats, key, value), settings.heartbeat_interval_s))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def run(settings: Settings) -> None:
    if not settings.api_key_set:
        log.warning("no API keys configured (PAYSTREAM_API_KEYS): every request will be refused")
    web.run_app(create_app(settings), host=settings.ingress_host, port=settings.ingress_port,
                access_log=None, print=None)
