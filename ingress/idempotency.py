"""Idempotency-Key: the same key and body name the same payment; another body is a 409.

The key is scoped to the API key and the endpoint, so two clients (or the
two endpoints) never share one. The payment and command ids are derived
from it, which is what lets the pipeline itself recognise a repeat.
"""

from __future__ import annotations

import hashlib

from aiohttp import web
from pydantic import BaseModel

from ingress.context import context
from paystream.domain.errors import InvalidRequest, PaymentError


class IdempotencyConflict(PaymentError):
    type = "idempotency_error"


async def claim(request: web.Request, kind: str, body: BaseModel) -> str | None:
    """The client-scoped key of this request (None without one), once its body is known to match."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (1 <= len(key) <= 255 and key.isprintable()):
        raise InvalidRequest("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable characters",
                             "Idempotency-Key")
    scoped = f"{request['client']}:{kind}:{key}"
    fingerprint = hashlib.sha256(f"{kind}:{body.model_dump_json()}".encode()).hexdigest()
    first = await context(request).cache.claim_idempotency_key(scoped, fingerprint)
    if first is not None and first != fingerprint:
        raise IdempotencyConflict("idempotency_key_reused",
                                  "this Idempotency-Key was used with a different request body", "Idempotency-Key")
    return scoped
