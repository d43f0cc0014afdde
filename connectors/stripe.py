"""The card-payment provider over Stripe's HTTP API (aiohttp).

Works against api.stripe.com and against the localstripe sandbox. Network
errors, timeouts and 5xx answers are retried with exponential backoff; card
declines and other 4xx answers never are. Every request carries an
Idempotency-Key derived from our payment id, so a retry is the same request
to Stripe. (localstripe ignores that header; `charge_state` is what makes a
retried charge safe there.)
"""

from __future__ import annotations

import time

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
from paystream.ports import ChargeResult, ProviderSession

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
                 max_attempts: int = 4, session: aiohttp.ClientSession | None = None) -> None:
        self.api_base = api_base.rstrip("/")
        self._api_key = api_key
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_attempts = max_attempts
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

    async def charge(self, payment_id: str, attempt: str, transaction_id: str,
                     amount: Money, payment_method: str) -> ChargeResult:
        if transaction_id.startswith("seti_"):
            return await self._charge_new_intent(payment_id, attempt, amount, payment_method)
        try:
            await self._call("attach_payment_method", "POST", f"/v1/payment_intents/{transaction_id}",
                             f"{payment_id}-attach-{attempt}", {"payment_method": payment_method})
            return _result_of(await self._call("confirm", "POST", f"/v1/payment_intents/{transaction_id}/confirm",
                                               f"{payment_id}-confirm-{attempt}", {}))
        except StripeError as exc:
            if _is_decline(exc):
                return _declined(exc)
        # The intent refused the charge without a decline: either a confirm
        # repeated after a lost answer (the provider's record says it
        # succeeded), or an intent that cannot be confirmed again after an
        # earlier decline (localstripe keeps those unconfirmable), which a
        # fresh intent for this attempt replaces.
        state = await self.charge_state(payment_id, transaction_id)
        if state.outcome == "succeeded":
            return state
        return await self._charge_new_intent(payment_id, attempt, amount, payment_method)

    async def _charge_new_intent(self, payment_id: str, attempt: str, amount: Money,
                                 payment_method: str) -> ChargeResult:
        try:
            intent = await self._call("create_intent", "POST", "/v1/payment_intents", f"{payment_id}-intent-{attempt}", {
                "metadata[payment_id]": payment_id, "amount": amount.minor,
                "currency": amount.currency.lower(), "payment_method": payment_method,
            })
            return _result_of(await self._call("confirm", "POST", f"/v1/payment_intents/{intent['id']}/confirm",
                                               f"{payment_id}-confirm-{attempt}", {}))
        except StripeError as exc:
            if _is_decline(exc):
                return _declined(exc)
            # Refused outright (an unknown payment method, say): nothing was
            # charged, and the payment may be posted again.
            return ChargeResult("declined", decline_code=exc.error.get("code") or "provider_rejected",
                                message=exc.error.get("message"))

    async def charge_state(self, payment_id: str, transaction_id: str) -> ChargeResult:
        """Whether any intent of this payment was charged: the session's own, or one made at post.

        localstripe has no search, so this lists intents and filters on our
        metadata; on api.stripe.com /v1/payment_intents/search does the same.
        """
        listing = await self._call("charge_state", "GET", "/v1/payment_intents", None, {"limit": 100000})
        intents = [i for i in listing["data"]
                   if i["id"] == transaction_id or i.get("metadata", {}).get("payment_id") == payment_id]
        results = [_result_of(i) for i in intents]
        for wanted in ("succeeded", "declined"):
            for result in results:
                if result.outcome == wanted:
                    return result
        return ChargeResult("not_charged")

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
            self._session = aiohttp.ClientSession(timeout=self.timeout)
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


def _declined(exc: StripeError) -> ChargeResult:
    return ChargeResult("declined", decline_code=exc.error.get("decline_code") or exc.error.get("code"),
                        message=exc.error.get("message"))


def _result_of(intent: dict) -> ChargeResult:
    status = intent.get("status")
    if status == "succeeded":
        charge = intent.get("latest_charge")
        if isinstance(charge, dict):
            charge = charge.get("id")
        if charge is None and intent.get("charges", {}).get("data"):
            charge = intent["charges"]["data"][0]["id"]
        return ChargeResult("succeeded", charge_id=charge)
    error = intent.get("last_payment_error") or {}
    if status == "requires_payment_method" and error:
        return ChargeResult("declined", decline_code=error.get("decline_code") or error.get("code"),
                            message=error.get("message"))
    return ChargeResult("not_charged")
