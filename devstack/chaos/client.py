"""A client that does what a careful application does: retries with the same Idempotency-Key until
it has a final answer (or its deadline passes), and polls a payment that answered 202.

It speaks the versioned API (`/v1/...`) with an API key of its own account, and
reads back what it was told: the payment's state, and the receipt with the
e-mail it gave (stored sealed, opened for its owner)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

FINAL = {"receipted", "failed"}
API = "/v1"
#: Answers after which the same request is sent again (same key): nothing was decided for us.
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


@dataclass
class Outcome:
    """What one payment's client ended up knowing."""

    user_id: str
    email: str = ""
    payment_id: str | None = None
    transaction_id: str | None = None
    receipt_id: str | None = None
    status: str | None = None  # receipted | failed | declined | None (never learned)
    failure_reason: str | None = None
    #: The provider transaction the payment names at the end (read back), if another than the first.
    final_transaction_id: str | None = None
    #: Every HTTP status (or exception name) the client met, counted: retries leave a trail here.
    answers: Counter = field(default_factory=Counter)

    @property
    def final(self) -> bool:
        return self.status in FINAL or self.status == "declined"


def email_of(key: str) -> str:
    """One address per payment, so a receipt opened with another user's key could not pass for it."""
    return f"chaos+{key[:12]}@example.com"


def operation(path: str) -> str:
    """`/v1/payments/pay_…` -> `payments`: how the client's answers are counted."""
    return path.removeprefix(API).split("/")[1]


class RetryingClient:
    def __init__(self, api: str, api_key: str, provider: str, provider_key: str, deadline_s: float = 120.0) -> None:
        self.api = api.rstrip("/")
        self.auth = {"Authorization": f"Bearer {api_key}"}
        self.provider = provider.rstrip("/")
        self.provider_auth = {"Authorization": f"Bearer {provider_key}"}
        self.deadline_s = deadline_s
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def close(self) -> None:
        await self.http.close()

    async def pay(self, amount: str = "10.00", currency: str = "EUR") -> Outcome:
        """startPayment, a card at the provider, postPayment; to the end, whatever fails meanwhile."""
        deadline = time.monotonic() + self.deadline_s
        key = uuid.uuid4().hex
        who = {"user_id": f"chaos-{key[:12]}", "email_id": email_of(key),
               "timestamp": "2026-11-26T00:00:00Z", "payment_type": "credit"}
        out = Outcome(user_id=who["user_id"], email=who["email_id"])
        try:
            started = await self._write(out, f"{API}/startPayment", {**who, "amount": amount, "currency": currency},
                                        f"{key}-start", deadline)
            if started is None:
                return out
            if "transaction_id" not in started:  # 202: the session comes when the worker gets to it
                started = await self._await_status(out, deadline, until={"tokenized", "failed"})
                if started is None or started.get("status") == "failed":
                    return out
            out.transaction_id = started["transaction_id"]
            method = await self._card(out, deadline)
            body = {**who, "transaction_id": out.transaction_id, "amount": amount, "currency": currency,
                    "payment_method": method}
            posted = await self._write(out, f"{API}/postPayment", body, f"{key}-post", deadline)
            if posted is None:
                return out
            if "receipt_id" in posted:
                out.receipt_id, out.status = posted["receipt_id"], "receipted"
            elif posted.get("status") == "declined":
                out.status = "declined"
            else:
                await self._await_status(out, deadline, until=FINAL)
        except TimeoutError:
            pass
        return out

    async def _write(self, out: Outcome, path: str, body: dict, key: str, deadline: float) -> dict | None:
        """The first decided answer to a write, sent again (same key) while none is."""
        delay = 0.2
        while True:
            answer, status = await self._call(out, "POST", path, json=body, headers={"Idempotency-Key": key})
            if status in (200, 201, 202):
                out.payment_id = answer.get("payment_id", out.payment_id)
                return answer
            if status == 402:
                out.payment_id = answer.get("payment_id", out.payment_id)
                return {"status": "declined"}
            if status == 409 and answer.get("error", {}).get("code") == "payment_in_progress":
                pass  # the first attempt is still being handled: ask again
            elif status is not None and status not in RETRY_STATUSES:
                out.status, out.failure_reason = "rejected", f"{path} {status}: {answer.get('error')}"
                return None
            delay = await self._pause(delay, deadline)

    async def _await_status(self, out: Outcome, deadline: float, until: set[str]) -> dict | None:
        delay = 0.2
        while True:
            answer, status = await self._call(out, "GET", f"{API}/payments/{out.payment_id}",
                                              params={"user_id": out.user_id})
            if status == 200:
                out.status = answer["status"] if answer["status"] in FINAL else out.status
                out.receipt_id = answer.get("receipt_id") or out.receipt_id
                out.failure_reason = answer.get("failure_reason")
                if answer["status"] in until:
                    return answer
            delay = await self._pause(delay, deadline)

    async def _card(self, out: Outcome, deadline: float) -> str:
        delay = 0.2
        while True:
            try:
                async with self.http.post(f"{self.provider}/v1/payment_methods", headers=self.provider_auth, data={
                    "type": "card", "card[number]": "4242424242424242", "card[exp_month]": "12",
                    "card[exp_year]": "2030", "card[cvc]": "123"}) as resp:
                    if resp.status == 200:
                        return (await resp.json())["id"]
                    out.answers[f"provider {resp.status}"] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                out.answers[f"provider {type(exc).__name__}"] += 1
            delay = await self._pause(delay, deadline)

    async def _call(self, out: Outcome, method: str, path: str, **kwargs) -> tuple[dict, int | None]:
        headers = {**self.auth, **kwargs.pop("headers", {})}
        try:
            async with self.http.request(method, self.api + path, headers=headers, **kwargs) as resp:
                out.answers[f"{operation(path)} {resp.status}"] += 1
                return await resp.json(content_type=None), resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            out.answers[f"{operation(path)} {type(exc).__name__}"] += 1
            return {}, None

    @staticmethod
    async def _pause(delay: float, deadline: float) -> float:
        if time.monotonic() + delay > deadline:
            raise TimeoutError
        await asyncio.sleep(delay)
        return min(delay * 2, 2.0)

    # --- reading back -----------------------------------------------------------------
    async def readable(self, out: Outcome) -> tuple[bool, bool]:
        """(its status is served and final, its receipt is served with the e-mail its client gave) —
        now, past a clear transient refusal (a 503 or 429 with Retry-After, a broken connection: asked
        again a few times, as the client does). What these checks meet is not counted in the payment's
        answers: those are what its client saw."""
        answer, status = await self._settled("GET", f"{API}/payments/{out.payment_id}",
                                             params={"user_id": out.user_id})
        status_ok = status == 200 and answer.get("status") == out.status
        if status == 200 and answer.get("transaction_id") not in (None, out.transaction_id):
            out.final_transaction_id = answer["transaction_id"]
        receipt_ok = True
        if out.receipt_id:
            receipt, got = await self._settled("GET", f"{API}/getReceipt",
                                               params={"receipt_id": out.receipt_id, "user_id": out.user_id})
            receipt_ok = got == 200 and receipt.get("email_id") == out.email
        return status_ok, receipt_ok

    async def _settled(self, method: str, path: str, attempts: int = 10, **kwargs) -> tuple[dict, int | None]:
        scratch = Outcome(user_id="")
        for _ in range(attempts):
            answer, status = await self._call(scratch, method, path, **kwargs)
            if status is not None and status not in (429, 503):
                break
            await asyncio.sleep(0.5)
        return answer, status
