"""What wraps every request: metrics, a correlation id (answered as `Request-Id`), then the API key
(which names the account) and that key's rate limit."""

from __future__ import annotations

import functools
import time
import uuid

import structlog
from aiohttp import web

from ingress.context import context
from ingress.http_errors import error_response
from paystream import user_tokens
from paystream.apikeys import key_hash
from paystream.observability import metrics
from paystream.observability.logs import get_logger

log = get_logger("paystream.ingress")

PUBLIC_PATHS = frozenset({"/health", "/metrics", "/openapi.json"})
PUBLIC_PREFIXES = ("/docs",)
WRITES = frozenset({"startPayment", "postPayment"})


@functools.cache
def _series(route: str, status: int):
    """The request counter and latency histogram of one (endpoint, status): prometheus' `labels()` takes
    a lock and builds its key on every call; routes and statuses are a handful, so each is looked up once."""
    return metrics.HTTP_REQUESTS.labels(route, str(status)), metrics.HTTP_LATENCY.labels(route)


@web.middleware
async def observe(request: web.Request, handler):
    """Count and time every request by endpoint; give each a correlation id for the logs and the client."""
    correlation_id = uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    resource = request.match_info.route.resource
    route = ((resource.name if resource is not None else None) or "unknown").split(".")[0]
    started = time.perf_counter()
    response = await handler(request)
    # Stripe's convention: every answer names its request, which the logs and the command carry too.
    response.headers["Request-Id"] = f"req_{correlation_id}"
    if route not in ("metrics", "health"):
        elapsed = time.perf_counter() - started
        requests, latency = _series(route, response.status)
        requests.inc()
        latency.observe(elapsed)
        # Writes and errors get a line each; successful reads (1,000s a second) only metrics.
        if route in WRITES or response.status >= 400:
            log.info("request answered", endpoint=route, status=response.status, ms=round(elapsed * 1000, 1))
    return response


@web.middleware
async def authenticate(request: web.Request, handler):
    if request.path in PUBLIC_PATHS or request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    ctx = context(request)
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    bearer = scheme.lower() == "bearer" and bool(key)
    if bearer and user_tokens.looks_like_token(key):
        # A user token: this account, and this one user only (routes check every user_id against it).
        token = user_tokens.verify(ctx.settings.user_token_secret.get_secret_value(), key)
        account, key_id, rate_limit = (token.account, token.key_id, None) if token else (None, None, None)
        request["user"] = token.user_id if token else None
    else:
        record = await ctx.api_keys.find(key_hash(key)) if bearer else None
        account, key_id, rate_limit = (record.account, record.key_id, record.rate_limit) if record else (None,) * 3
    if account is None:
        return error_response("authentication_error", "invalid_api_key",
                              "send a valid API key (or an unexpired user token) as `Authorization: Bearer <key>`",
                              headers={"WWW-Authenticate": "Bearer"})
    # A key's user tokens share its limit.
    admitted, retry_after = await ctx.limiter.hit(key_id, rate_limit or ctx.settings.rate_limit)
    if not admitted:
        return error_response("rate_limit_error", "rate_limit_exceeded",
                              f"too many requests with this API key; retry after {retry_after} s",
                              headers={"Retry-After": str(retry_after)})
    # The account scopes every object; the key itself only seals this caller's idempotent answers.
    request["account"] = account
    request["key_id"] = key_id
    request["api_key"] = key
    structlog.contextvars.bind_contextvars(account=account)
    return await handler(request)
