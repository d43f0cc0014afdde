"""The card-payment provider over Stripe's HTTP API (aiohttp).

Works against api.stripe.com and against the localstripe sandbox. Network
errors, timeouts and 5xx answers are retried with exponential backoff; card
declines and other 4xx answers never are. Every request carries an
Idempotency-Key derived from our payment id, so a retry is the same request
to Stripe. (localstripe ignores that header; what makes a retried charge safe
there is that every intent that can carry a charge is recorded in the payment
before it is confirmed, and looked up by its id afterwards.)

No call lists or searches intents or charges: the cost of every call is
independent of the provider's history.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import aiohttp
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from paystream.domain.errors import ProviderUnavailable
from paystream.domain.money import Money
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.ports import ChargeResult, PreparedCharge, ProviderCharge, ProviderIntent, ProviderSession

log = get_logger("paystream.provider")


class _Transient(Exception):
    """A failure worth retrying: the request may not have reached Stripe."""


class StripeError(Exception):
    def __init__(self, status: int, error: dict) -> None:
        super().__init__(f"Stripe answered {status}: {error.get('message')}")
        self.status = status
        self.error = error


class StripeProvider:
    def __init__(self, api_base: str, api_key: str, *, timeout_s: float = 10.0,
                 max_attempts: int = 4, max_connections: int = 100,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.api_base = api_base.rstrip("/")
        self._api_key = api_key
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_attempts = max_attempts
        # aiohttp's default pool (100) would cap the calls in flight below what a worker overlaps.
        self.max_connections = max_connections
        self._session = session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- PaymentProvider ----------------------------------------------------
    async def create_session(self, payment_id: str, amount: Money | None) -> ProviderSession:
        meta = {"metadata[payment_id]": payment_id}
        if amount is None:
            # No amount yet: a SetupIntent collects the card; the charge comes at post.
            body = await self._call("create_session", "POST", "/v1/setup_intents", f"{payment_id}-session", {**meta, "usage": "on_session"})
        else:
            body = await self._call("create_session", "POST", "/v1/payment_intents", f"{payment_id}-session", {
                **meta, "amount": amount.minor, "currency": amount.currency.lower(),
            })
        return ProviderSession(transaction_id=body["id"], client_secret=body.get("client_secret"))

    async def prepare_charge(self, payment_id: str, attempt: str, transaction_id: str, amount: Money,
                             payment_method: str, used: Sequence[str] = ()) -> PreparedCharge:
        if transaction_id.startswith("pi_") and transaction_id not in used:
            intent = await self._attach(payment_id, attempt, transaction_id, payment_method)
            if isinstance(intent, ChargeResult):
                return PreparedCharge(None, intent)
            status = intent.get("status")
            if status == "succeeded":
                # Charged already (a confirm whose answer was lost, or the client's own).
                return PreparedCharge(transaction_id, _result_of(intent))
            asks = (_minor(intent.get("amount")), _upper(intent.get("currency")))
            if status not in ("requires_payment_method", "canceled") and asks == (amount.minor, amount.currency):
                return PreparedCharge(transaction_id)
            # The session's intent cannot carry this charge (localstripe keeps a
            # declined intent unconfirmable), or no longer asks for this payment's
            # amount (changed at the provider): a fresh intent for this attempt will.
        return await self._fresh_intent(payment_id, attempt, amount, payment_method)

    async def _attach(self, payment_id: str, attempt: str, intent_id: str, payment_method: str) -> dict | ChargeResult:
        """The session's intent with this payment method on it, or why it would not take it."""
        try:
            return await self._call("attach_payment_method", "POST", f"/v1/payment_intents/{intent_id}",
                                    f"{payment_id}-attach-{attempt}", {"payment_method": payment_method})
        except StripeError as exc:
            if _is_decline(exc):
                return _declined(exc)
        # Refused without a decline: its own record says whether it was charged or is unusable.
        try:
            return await self._call("retrieve_intent", "GET", f"/v1/payment_intents/{intent_id}", None, {})
        except StripeError:
            return {}  # not there to carry a charge: a fresh intent will

    async def _fresh_intent(self, payment_id: str, attempt: str, amount: Money,
                            payment_method: str) -> PreparedCharge:
        try:
            intent = await self._call("create_intent", "POST", "/v1/payment_intents", f"{payment_id}-intent-{attempt}", {
                "metadata[payment_id]": payment_id, "amount": amount.minor,
                "currency": amount.currency.lower(), "payment_method": payment_method,
            })
        except StripeError as exc:
            if _is_decline(exc):
                return PreparedCharge(None, _declined(exc))
            # Refused outright (an unknown payment method, say): nothing was
            # charged, and the payment may be posted again.
            return PreparedCharge(None, _rejected(exc))
        return PreparedCharge(intent["id"])

    async def confirm(self, payment_id: str, attempt: str, intent_id: str) -> ChargeResult:
        try:
            return _result_of(await self._call("confirm", "POST", f"/v1/payment_intents/{intent_id}/confirm",
                                               f"{payment_id}-confirm-{attempt}", {}))
        except StripeError as exc:
            if _is_decline(exc):
                return _declined(exc)
            refusal = exc
        # Refused without a decline: a confirm repeated after its answer was lost
        # (the intent's own record says what became of it), or a confirm that
        # could not go through (an unknown payment method, say): nothing charged.
        try:
            intent = await self._call("retrieve_intent", "GET", f"/v1/payment_intents/{intent_id}", None, {})
        except StripeError:
            intent = {}
        result = _result_of(intent)
        if result.outcome != "not_charged" or intent.get("status") in IN_FLIGHT:
            return result  # charged, declined, or still under way: the record decides
        return _rejected(refusal)

    async def look_up(self, intent_ids: Sequence[str]) -> list[ProviderIntent]:
        return list(await asyncio.gather(*(self._look_up_one(i) for i in intent_ids)))

    async def _look_up_one(self, intent_id: str) -> ProviderIntent:
        try:
            intent = await self._call("retrieve_intent", "GET", f"/v1/payment_intents/{intent_id}", None, {})
        except StripeError as exc:
            if exc.status == 404:
                return ProviderIntent(intent_id, found=False, result=ChargeResult("not_charged"))
            raise ProviderUnavailable("provider_unavailable", f"the provider would not show {intent_id}: "
                                      f"{exc.error.get('message')}") from None
        return _record_of(intent)

    async def session_secret(self, transaction_id: str) -> str | None:
        """The client secret of an intent made earlier: paystream keeps none, the provider does."""
        kind = "setup_intents" if transaction_id.startswith("seti_") else "payment_intents"
        try:
            intent = await self._call("session_secret", "GET", f"/v1/{kind}/{transaction_id}", None, {})
        except StripeError:
            return None  # the payment stands; only its secret cannot be handed out again
        return intent.get("client_secret")

    # --- HTTP ---------------------------------------------------------------
    async def _call(self, operation: str, method: str, path: str, idempotency_key: str | None,
                    params: dict) -> dict:
        headers = {"Authorization": f"Bearer {self._api_key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = f"paystream-{idempotency_key}"
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(_Transient), stop=stop_after_attempt(self.max_attempts),
                wait=wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1), reraise=True,
            ):
                with attempt:
                    return await self._send(operation, method, path, headers, params)
        except _Transient as exc:
            raise ProviderUnavailable("provider_unavailable", f"card provider unreachable: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, operation: str, method: str, path: str, headers: dict, params: dict) -> dict:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, connector=aiohttp.TCPConnector(limit=self.max_connections))
        kwargs = {"params": params} if method == "GET" else {"data": {k: str(v) for k, v in params.items()}}
        started = time.perf_counter()
        try:
            async with self._session.request(method, self.api_base + path, headers=headers, **kwargs) as resp:
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            metrics.PROVIDER_ERRORS.labels(operation, "network").inc()
            log.warning("provider request failed, will retry", operation=operation, error=repr(exc))
            raise _Transient(repr(exc)) from exc
        finally:
            metrics.PROVIDER_LATENCY.labels(operation).observe(time.perf_counter() - started)
        if resp.status >= 500 or resp.status == 429:
            metrics.PROVIDER_ERRORS.labels(operation, f"http_{resp.status}").inc()
            log.warning("provider answered an error, will retry", operation=operation, status=resp.status)
            raise _Transient(f"HTTP {resp.status}")
        if resp.status >= 400:
            error = (body or {}).get("error", {})
            metrics.PROVIDER_ERRORS.labels(operation, error.get("code") or f"http_{resp.status}").inc()
            raise StripeError(resp.status, error)
        return body


def _is_decline(exc: StripeError) -> bool:
    return exc.status == 402 or exc.error.get("type") == "card_error" or exc.error.get("code") == "card_declined"


#: Intent states in which a charge may still be under way: never taken for "nothing charged".
IN_FLIGHT = frozenset({"processing", "requires_action", "requires_capture"})


def _rejected(exc: StripeError) -> ChargeResult:
    """A refusal that charged nothing, answered as a decline so the payment may be posted again."""
    return ChargeResult("declined", decline_code=exc.error.get("code") or "provider_rejected",
                        message=exc.error.get("message"))


def _declined(exc: StripeError) -> ChargeResult:
    return ChargeResult("declined", decline_code=exc.error.get("decline_code") or exc.error.get("code"),
                        message=exc.error.get("message"))


def _result_of(intent: dict) -> ChargeResult:
    status = intent.get("status")
    if status == "succeeded":
        charge = intent.get("latest_charge")
        if isinstance(charge, dict):
            charge = charge.get("id")
        if charge is None and (intent.get("charges") or {}).get("data"):
            charge = intent["charges"]["data"][0]["id"]
        return ChargeResult("succeeded", charge_id=charge)
    error = intent.get("last_payment_error") or {}
    if status == "requires_payment_method" and error:
        return ChargeResult("declined", decline_code=error.get("decline_code") or error.get("code"),
                            message=error.get("message"))
    return ChargeResult("not_charged")


def _record_of(intent: dict) -> ProviderIntent:
    """An intent as the provider shows it: its outcome, amount and charges (amounts in minor units)."""
    currency = intent.get("currency")
    charges = {}
    listed = (intent.get("charges") or {}).get("data") or []
    latest = intent.get("latest_charge")
    for charge in [*listed, latest]:
        if isinstance(charge, dict):
            charges[charge["id"]] = ProviderCharge(
                charge["id"], _minor(charge.get("amount")), _upper(charge.get("currency")),
                charge.get("status") == "succeeded" and not charge.get("refunded", False))
        elif isinstance(charge, str) and charge not in charges:
            # Only the charge's id (api.stripe.com): what the intent says it received.
            succeeded = intent.get("status") == "succeeded"
            charges[charge] = ProviderCharge(charge, _minor(intent.get("amount_received") or intent.get("amount")),
                                             _upper(currency), succeeded)
    return ProviderIntent(intent["id"], found=True, result=_result_of(intent), amount_minor=_minor(intent.get("amount")),
                          currency=_upper(currency), charges=tuple(charges.values()))


def _minor(value) -> int | None:
    # localstripe keeps an amount changed by an update as the string it was sent as.
    return int(value) if value is not None else None


def _upper(currency: str | None) -> str | None:
    return currency.upper() if currency else None
