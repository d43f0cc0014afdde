"""A client that does what a careful application does: retries with the same Idempotency-Key until
it has a final answer (or its deadline passes), and polls a payment (or a refund) that answered 202.

It pays through the Stripe sandbox (a test card) or the PayPal stand-in (the payer's approval on its
test-only page), and refunds what it paid: all of it, or part of it, several parts at once.

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
REFUND_FINAL = {"succeeded", "failed", "canceled"}
API = "/v1"
#: Answers after which the same request is sent again (same key): nothing was decided for us.
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
#: A refund refused because what it asks for is no longer there (another refund of the payment took it):
#: a decided answer, nothing made.
REFUND_REFUSALS = {"amount_too_large", "charge_already_refunded"}


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
    provider: str = "stripe"
    amount: str = "10.00"

    @property
    def final(self) -> bool:
        return self.status in FINAL or self.status == "declined"


@dataclass
class RefundOutcome:
    """What one refund's client ended up knowing."""

    payment_id: str
    user_id: str
    asked: str | None  # the amount asked for; None: the rest
    refund_id: str | None = None  # set once a 201 or 202 named it
    amount_minor: int | None = None
    #: succeeded | failed | canceled | pending (never settled for it) | refused (400: nothing left for it)
    #: | rejected (any other refusal) | None (never decided)
    status: str | None = None
    detail: str = ""
    answers: Counter = field(default_factory=Counter)


def email_of(key: str) -> str:
    """One address per payment, so a receipt opened with another user's key could not pass for it."""
    return f"chaos+{key[:12]}@example.com"


def operation(path: str) -> str:
    """`/v1/payments/pay_…` -> `payments`: how the client's answers are counted."""
    return path.removeprefix(API).split("/")[1]


class RetryingClient:
    def __init__(self, api: str, api_key: str, provider: str, provider_key: str, deadline_s: float = 120.0,
                 paypal: str | None = None) -> None:
        self.api = api.rstrip("/")
        self.auth = {"Authorization": f"Bearer {api_key}"}
        self.provider = provider.rstrip("/")
        self.paypal = paypal.rstrip("/") if paypal else None
        self.provider_auth = {"Authorization": f"Bearer {provider_key}"}
        self.deadline_s = deadline_s
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def close(self) -> None:
        await self.http.close()

    async def pay(self, amount: str = "10.00", currency: str = "EUR", provider: str = "stripe") -> Outcome:
        """startPayment, a card at Stripe (or the payer's approval at PayPal), postPayment; to the end,
        whatever fails meanwhile."""
        deadline = time.monotonic() + self.deadline_s
        key = uuid.uuid4().hex
        who = {"user_id": f"chaos-{key[:12]}", "email_id": email_of(key),
               "timestamp": "2026-11-26T00:00:00Z", "payment_type": "credit"}
        out = Outcome(user_id=who["user_id"], email=who["email_id"], provider=provider, amount=amount)
        start = {**who, "amount": amount, "currency": currency} | ({"provider": provider} if provider != "stripe"
                                                                   else {})
        try:
            started = await self._write(out, f"{API}/startPayment", start, f"{key}-start", deadline)
            if started is None:
                return out
            if "transaction_id" not in started:  # 202: the session comes when the worker gets to it
                started = await self._await_status(out, deadline, until={"tokenized", "failed"})
                if started is None or started.get("status") == "failed":
                    return out
            out.transaction_id = started["transaction_id"]
            method = await (self._approval(out, deadline) if provider == "paypal" else self._card(out, deadline))
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
        """The first decided answer to a payment's write, sent again (same key) while none is."""
        answer, status = await self._decided(out, path, body, key, deadline)
        if status in (200, 201, 202):
            out.payment_id = answer.get("payment_id", out.payment_id)
            return answer
        if status == 402:
            out.payment_id = answer.get("payment_id", out.payment_id)
            return {"status": "declined"}
        out.status, out.failure_reason = "rejected", f"{path} {status}: {answer.get('error')}"
        return None

    async def _decided(self, out: Outcome | RefundOutcome, path: str, body: dict, key: str,
                       deadline: float) -> tuple[dict, int]:
        """The first answer that decides a write (not a retryable one), the write sent again with the same
        key until then."""
        delay = 0.2
        while True:
            answer, status = await self._call(out, "POST", path, json=body, headers={"Idempotency-Key": key})
            in_progress = status == 409 and answer.get("error", {}).get("code") == "payment_in_progress"
            if status is not None and status not in RETRY_STATUSES and not in_progress:
                return answer, status
            delay = await self._pause(delay, deadline)

    # --- refunds ------------------------------------------------------------------------
    async def refund(self, paid: Outcome, amount: str | None = None) -> RefundOutcome:
        """POST /v1/refunds of `amount` of a receipted payment (None: the rest), retried with its key until
        decided; a 202 polled until the refund is terminal."""
        deadline = time.monotonic() + self.deadline_s
        out = RefundOutcome(payment_id=paid.payment_id or "", user_id=paid.user_id, asked=amount)
        body = {"payment_id": out.payment_id, "user_id": out.user_id} | ({"amount": amount} if amount else {})
        try:
            answer, status = await self._decided(out, f"{API}/refunds", body, f"rf-{uuid.uuid4().hex}", deadline)
            code = answer.get("error", {}).get("code")
            if status in (201, 202):
                out.refund_id, out.amount_minor, out.status = answer["id"], answer["amount_minor"], answer["status"]
                if out.status not in REFUND_FINAL:
                    await self._await_refund(out, deadline)
            elif status == 400 and code in REFUND_REFUSALS:
                out.status, out.detail = "refused", code
            else:
                out.status, out.detail = "rejected", f"{status}: {answer.get('error')}"
        except TimeoutError:
            pass
        return out

    async def _await_refund(self, out: RefundOutcome, deadline: float) -> None:
        delay = 0.2
        while True:
            answer, status = await self._call(out, "GET", f"{API}/refunds/{out.refund_id}",
                                              params={"user_id": out.user_id})
            if status == 200:
                out.status = answer["status"]
                if out.status in REFUND_FINAL:
                    return
            delay = await self._pause(delay, deadline)

    async def refund_now(self, out: RefundOutcome) -> str | None:
        """The refund's status as served now (past a clear transient refusal), for the reckoning."""
        answer, status = await self._settled("GET", f"{API}/refunds/{out.refund_id}", params={"user_id": out.user_id})
        return answer.get("status") if status == 200 else None

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

    async def _approval(self, out: Outcome, deadline: float) -> str:
        """The payer approves the PayPal order (the stand-in's test-only page); the approval is the method."""
        delay = 0.2
        while True:
            try:
                async with self.http.post(f"{self.paypal}/_test/orders/{out.transaction_id}/approve",
                                          json={}) as resp:
                    if resp.status == 200:
                        return "paypal"
                    out.answers[f"paypal {resp.status}"] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                out.answers[f"paypal {type(exc).__name__}"] += 1
            delay = await self._pause(delay, deadline)

    async def _call(self, out: Outcome | RefundOutcome, method: str, path: str, **kwargs) -> tuple[dict, int | None]:
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
