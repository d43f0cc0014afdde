"""Idempotency-Key, as Stripe has it: the same key and body replay the first answer; another body is a 409.

The key is scoped to the account and the endpoint. The payment and command ids
are derived from it, so even a repeat that arrives while the first is still
running is recognised by the pipeline itself. Once the first request has its
final answer (201, or 402 for a decline), that answer is kept 24 h, sealed with
a key derived from the caller's API key (paystream stores no API key, so no one
else can read it, and a client secret inside stays secret), and a repeat gets it
back with `Idempotent-Replayed: true` without anything reaching Kafka.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

from ingress.context import context
from paystream import views
from paystream.domain.errors import InvalidRequest, PaymentError
from paystream.domain.records import Receipt
from paystream.domain.sealing import seal_for_api_key, unseal_for_api_key

#: Final answers worth replaying; others (202, 409 in progress, 5xx) are asked of the pipeline again.
REPLAYED_STATUSES = frozenset({201, 402})


class IdempotencyConflict(PaymentError):
    type = "idempotency_error"


@dataclass(frozen=True)
class Claim:
    scoped: str  # account:endpoint:key


async def claim(request: web.Request, kind: str, body: BaseModel) -> Claim | web.Response | None:
    """None without a key; the stored first answer for a repeat; else the claim to remember an answer by."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not (1 <= len(key) <= 255 and key.isprintable()):
        raise InvalidRequest("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable characters",
                             "Idempotency-Key")
    scoped = f"{request['account']}:{kind}:{key}"
    fingerprint = hashlib.sha256(f"{kind}:{body.model_dump_json()}".encode()).hexdigest()
    first = await context(request).cache.claim_idempotency_key(scoped, fingerprint)
    if first is not None:
        first_fingerprint, stored = first
        if first_fingerprint != fingerprint:
            raise IdempotencyConflict("idempotency_key_reused",
                                      "this Idempotency-Key was used with a different request body",
                                      "Idempotency-Key")
        replay = await _replay(request, scoped, stored)
        if replay is not None:
            return replay
    return Claim(scoped)


async def remember(request: web.Request, claimed: Claim | None, status: int, body: dict,
                   receipt: Receipt | None = None) -> None:
    """Keep a final answer for replays; a receipt is kept as it travels (its e-mail sealed)."""
    if claimed is None or status not in REPLAYED_STATUSES:
        return
    record = {"status": status, "body": body}
    if receipt is not None:
        record = {"status": status, "receipt": receipt.model_dump(mode="json")}
    sealed = seal_for_api_key(request["api_key"], claimed.scoped, json.dumps(record).encode())
    await context(request).cache.store_response(claimed.scoped, sealed)


async def _replay(request: web.Request, scoped: str, stored: bytes | None) -> web.Response | None:
    raw = unseal_for_api_key(request["api_key"], scoped, stored) if stored else None
    if raw is None:
        return None  # still running, or answered to another key of the account: the pipeline answers
    record = json.loads(raw)
    body = record.get("body")
    if "receipt" in record:
        receipt = await views.unsealed(context(request).keys, Receipt.model_validate(record["receipt"]))
        body = receipt.model_dump(mode="json")
    return web.json_response(body, status=record["status"], headers={"Idempotent-Replayed": "true"})
