"""What wraps every request: metrics and a correlation id, then the API key."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

import structlog
from aiohttp import web

from ingress.context import context
from ingress.http_errors import error_response
from paystream.observability import metrics
from paystream.observability.logs import get_logger

log = get_logger("paystream.ingress")

PUBLIC_PATHS = frozenset({"/health", "/metrics"})
WRITES = frozenset({"startPayment", "postPayment"})


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
    keys = context(request).settings.api_key_set
    if scheme.lower() != "bearer" or not any(hmac.compare_digest(key.encode(), k.encode()) for k in keys):
        return error_response("authentication_error", "invalid_api_key",
                              "send a valid API key as `Authorization: Bearer <key>`",
                              headers={"WWW-Authenticate": "Bearer"})
    # Who is asking, without keeping the key itself: scopes idempotency keys.
    request["client"] = hashlib.sha256(key.encode()).hexdigest()[:16]
    return await handler(request)
