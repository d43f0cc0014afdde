"""A client of the paystream HTTP API and of the sandbox, as an application would use them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

DECLINING_CARD = "4000000000000341"  # declined at confirm by localstripe
#: How often a request refused before anything was done is sent again, Retry-After apart: shed by the
#: ingress (503 overloaded) or by HAProxy, when no ingress had room for it within its queue wait (503
#: no_ingress_available), or refused by the key's rate limit (429 rate_limit_exceeded: the tests' own
#: load in one second can pass the development key's limit on a fast machine).
REFUSED_TRIES = 30
SHED_CODES = frozenset({"overloaded", "no_ingress_available"})
GOOD_CARD = "4242424242424242"


def identity(user_id: str | None = None) -> dict:
    return {
        "user_id": user_id or f"user-{uuid.uuid4().hex[:10]}",
        "email_id": "jane.doe@example.com",
        "timestamp": "2026-11-25T10:00:00Z",
        "payment_type": "credit",
    }


def _code(body) -> str | None:
    return (body.get("error") or {}).get("code") if isinstance(body, dict) else None


def overloaded(status: int, body) -> bool:
    return status == 503 and _code(body) in SHED_CODES


def rate_limited(status: int, body) -> bool:
    return status == 429 and _code(body) == "rate_limit_exceeded"


@dataclass
class Response:
    status: int
    body: dict
    #: Case-insensitive, as header names are (the balancer sends them in lower case).
    headers: Mapping[str, str]
    seconds: float


@dataclass
class ApiClient:
    base: str
    api_key: str
    stripe_base: str
    stripe_key: str
    session: aiohttp.ClientSession = field(default_factory=aiohttp.ClientSession)
    #: A polite client waits out a rate limit as it waits out shedding; a test of the limit itself sees the 429.
    polite: bool = True

    async def close(self) -> None:
        await self.session.close()

    async def call(self, method: str, path: str, body: dict | None = None, *, key: str | None = None,
                   idempotency_key: str | None = None, params: dict | None = None, raw: bytes | None = None,
                   headers: dict | None = None) -> Response:
        hdrs = {"Authorization": f"Bearer {key if key is not None else self.api_key}", **(headers or {})}
        if idempotency_key:
            hdrs["Idempotency-Key"] = idempotency_key
        kwargs = {"data": raw} if raw is not None else ({"json": body} if body is not None else {})
        started = time.perf_counter()
        for _ in range(REFUSED_TRIES):
            async with self.session.request(method, self.base + path, headers=hdrs, params=params, **kwargs) as resp:
                data = await resp.json(content_type=None)
            if not (overloaded(resp.status, data) or (self.polite and rate_limited(resp.status, data))):
                break
            # Refused before anything was done: try again when told, as the API asks (docs/operations.md "Under overload").
            await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
        return Response(resp.status, data, resp.headers.copy(), time.perf_counter() - started)

    async def start(self, who: dict, amount: str | None = "12.34", currency: str | None = "EUR",
                    idempotency_key: str | None = None) -> Response:
        body = dict(who)
        if amount is not None:
            body.update(amount=amount, currency=currency)
        return await self.call("POST", "/v1/startPayment", body, idempotency_key=idempotency_key)

    async def post(self, who: dict, transaction_id: str, payment_method: str, amount: str = "12.34",
                   currency: str = "EUR", idempotency_key: str | None = None) -> Response:
        return await self.call("POST", "/v1/postPayment", {
            **who, "transaction_id": transaction_id, "payment_method": payment_method,
            "amount": amount, "currency": currency,
        }, idempotency_key=idempotency_key)

    async def receipt(self, who: dict, receipt_id: str) -> Response:
        return await self.call("GET", "/v1/getReceipt", params={"receipt_id": receipt_id, "user_id": who["user_id"]})

    async def payment(self, who: dict, payment_id: str) -> Response:
        return await self.call("GET", f"/v1/payments/{payment_id}", params={"user_id": who["user_id"]})

    def with_key(self, api_key: str, polite: bool = True) -> ApiClient:
        """The same client, with another API key (another account's, say); `polite=False` sees its 429s."""
        return ApiClient(self.base, api_key, self.stripe_base, self.stripe_key, self.session, polite)

    async def card(self, number: str = GOOD_CARD) -> str:
        """What the provider's web client does when the user types a card: a payment method id."""
        async with self.session.post(f"{self.stripe_base}/v1/payment_methods", data={
            "type": "card", "card[number]": number, "card[exp_month]": "12",
            "card[exp_year]": "2030", "card[cvc]": "123",
        }, headers={"Authorization": f"Bearer {self.stripe_key}"}) as resp:
            assert resp.status == 200, await resp.text()
            return (await resp.json())["id"]


async def pay(api, n: int) -> list[dict]:
    """`n` complete payments (start, then post), each by a new user: their receipts."""
    receipts = []
    for _ in range(n):
        who = identity()
        started = await api.start(who, "4.20", "EUR")
        posted = await api.post(who, started.body["transaction_id"], await api.card(), "4.20", "EUR")
        assert posted.status == 201, posted.body
        receipts.append(posted.body)
    return receipts
