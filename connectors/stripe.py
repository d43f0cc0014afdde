"""The card-payment provider over Stripe's official SDK (`stripe`), async over aiohttp.

Works against api.stripe.com and against the localstripe sandbox. The SDK retries network
errors, 409 and 5xx answers (`max_network_retries`, with backoff), honours `Stripe-Should-Retry`
and does not retry a 429 unless told to; card declines and other 4xx answers are never retried.
Every mutating request carries an Idempotency-Key derived from our payment (or refund) id, so a
retry is the same request to Stripe. (localstripe ignores that header; what makes a retried charge
safe there is that every intent that can carry a charge is recorded in the payment before it is
confirmed, and looked up by its id afterwards.) Requests name a pinned `Stripe-Version`, the one
whose spec stripe-mock validates them against (tests/integration/test_stripe_contract.py).

No call lists or searches intents or charges: the cost of every call is independent of the
provider's history. (A refund not yet known by its Stripe id is looked for among its own
payment's refunds, at most a handful.)
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import time
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

import aiohttp
import stripe as stripe_sdk

from connectors.stripe_rules import from_stripe_amount, payment_status, refund_status, to_stripe_amount
from paystream.domain.errors import ProviderUnavailable, ProviderUnreachable
from paystream.domain.money import Money
from paystream.domain.provider import InvalidWebhook, PaymentStatus, RefundReason, RefundStatus
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.ports import (
    ChargeResult,
    PreparedCharge,
    ProviderCharge,
    ProviderEvent,
    ProviderIntent,
    ProviderPayment,
    ProviderRefund,
    ProviderSession,
)

log = get_logger("paystream.provider")

#: The API version every request names: the version of the spec stripe-mock (devstack/gotools.py,
#: v0.203.0) validates against, so the contract test checks what is sent to Stripe.
STRIPE_API_VERSION = "2026-08-26.dahlia"
#: Stripe signs a webhook with its time; an older one is refused (a replay).
WEBHOOK_TOLERANCE_S = 300

#: The operation the current request belongs to, for the metrics of each HTTP attempt.
_operation: contextvars.ContextVar[str] = contextvars.ContextVar("stripe_operation", default="unknown")
#: Whether any HTTP attempt of the current call reached Stripe (was sent): when none did, nothing was made.
_reached: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("stripe_reached", default=None)


class StripeError(Exception):
    """Stripe refused the request (a 4xx other than 429): its status and Stripe's error object."""

    def __init__(self, status: int, error: dict) -> None:
        super().__init__(f"Stripe answered {status}: {error.get('message')}")
        self.status = status
        self.error = error


class _MeteredClient(stripe_sdk.AIOHTTPClient):
    """The SDK's own aiohttp client, timing and counting each HTTP attempt (retries included)."""

    def __init__(self, observe, **kwargs) -> None:
        super().__init__(**kwargs)
        self._observe = observe

    async def request_async(self, method, url, headers, post_data=None):
        operation = _operation.get()
        started = time.perf_counter()
        try:
            try:
                content, status, response_headers = await super().request_async(method, url, headers, post_data)
            except (aiohttp.ClientError, TimeoutError) as exc:
                # Lost while reading the body (the SDK guards only the request itself): the same
                # retryable connection error, so the SDK retries it with the same idempotency key.
                self._handle_request_error(exc)
        except stripe_sdk.APIConnectionError as exc:
            if not isinstance(exc.__cause__, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
                _mark_reached()
            metrics.PROVIDER_ERRORS.labels(operation, "network").inc()
            log.warning("provider request failed", operation=operation, error=repr(exc.__cause__ or exc))
            raise
        finally:
            metrics.PROVIDER_LATENCY.labels(operation).observe(time.perf_counter() - started)
        _mark_reached()
        if status >= 500 or status == 429:
            metrics.PROVIDER_ERRORS.labels(operation, f"http_{status}").inc()
            log.warning("provider answered an error", operation=operation, status=status,
                        should_retry=response_headers.get("Stripe-Should-Retry"))
        self._observe(operation, method.upper(), urlsplit(url).path, status)
        return content, status, response_headers


class StripeProvider:
    def __init__(self, api_base: str, api_key: str, *, timeout_s: float = 10.0,
                 max_attempts: int = 4, max_connections: int = 100,
                 webhook_secret: str | None = None) -> None:
        self.api_base = api_base.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_attempts = max_attempts
        # aiohttp's default pool (100) would cap the calls in flight below what a worker overlaps.
        self.max_connections = max_connections
        self._api_key = api_key
        self._webhook_secret = webhook_secret
        self._session: aiohttp.ClientSession | None = None
        self._client: stripe_sdk.StripeClient | None = None

    @property
    def _stripe(self) -> stripe_sdk.StripeClient:
        """The SDK's client over our own aiohttp session, made in the running loop on first use."""
        if self._client is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.max_connections))
            http = _MeteredClient(self._observe, timeout=self.timeout, session=self._session)
            self._client = stripe_sdk.StripeClient(
                self._api_key, stripe_version=STRIPE_API_VERSION, http_client=http,
                base_addresses={"api": self.api_base}, max_network_retries=self.max_attempts - 1)
        return self._client

    def _observe(self, operation: str, method: str, path: str, status: int) -> None:
        """Each HTTP attempt's answer (a hook: the contract test records them)."""

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = self._client = None

    # --- PaymentProvider ----------------------------------------------------
    async def create_session(self, payment_id: str, amount: Money | None) -> ProviderSession:
        meta = {"metadata": {"payment_id": payment_id}}
        if amount is None:
            # No amount yet: a SetupIntent collects the card; the charge comes at post.
            body = await self._call("create_session", "setup_intents", "create", key=f"{payment_id}-session",
                                    params={**meta, "usage": "on_session"})
        else:
            body = await self._call("create_session", "payment_intents", "create", key=f"{payment_id}-session",
                                    params={**meta, **_amount_params(amount)})
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
            wanted = (to_stripe_amount(amount), amount.currency)
            if status not in ("requires_payment_method", "canceled") and asks == wanted:
                return PreparedCharge(transaction_id)
            # The session's intent cannot carry this charge (localstripe keeps a
            # declined intent unconfirmable), or no longer asks for this payment's
            # amount (changed at the provider): a fresh intent for this attempt will.
        return await self._fresh_intent(payment_id, attempt, amount, payment_method)

    async def _retrieve_intent(self, intent_id: str) -> dict:
        return await self._call("retrieve_intent", "payment_intents", "retrieve", intent_id)

    async def _attach(self, payment_id: str, attempt: str, intent_id: str, payment_method: str) -> dict | ChargeResult:
        """The session's intent with this payment method on it, or why it would not take it."""
        try:
            # localstripe refuses a payment method at confirm: it is set by an update first.
            return await self._call("attach_payment_method", "payment_intents", "update", intent_id,
                                    key=f"{payment_id}-attach-{attempt}", params={"payment_method": payment_method})
        except StripeError as exc:
            if _is_decline(exc):
                return _declined(exc)
        # Refused without a decline: its own record says whether it was charged or is unusable.
        try:
            return await self._retrieve_intent(intent_id)
        except StripeError:
            return {}  # not there to carry a charge: a fresh intent will

    async def _fresh_intent(self, payment_id: str, attempt: str, amount: Money,
                            payment_method: str) -> PreparedCharge:
        try:
            intent = await self._call("create_intent", "payment_intents", "create", key=f"{payment_id}-intent-{attempt}",
                                      params={"metadata": {"payment_id": payment_id}, **_amount_params(amount),
                                              "payment_method": payment_method})
        except StripeError as exc:
            if _is_decline(exc):
                return PreparedCharge(None, _declined(exc))
            # Refused outright (an unknown payment method, say): nothing was
            # charged, and the payment may be posted again.
            return PreparedCharge(None, _rejected(exc))
        return PreparedCharge(intent["id"])

    async def confirm(self, payment_id: str, attempt: str, intent_id: str) -> ChargeResult:
        try:
            return _result_of(await self._call("confirm", "payment_intents", "confirm", intent_id,
                                               key=f"{payment_id}-confirm-{attempt}"))
        except StripeError as exc:
            if _is_decline(exc):
                return _declined(exc)
            refusal = exc
        # Refused without a decline: a confirm repeated after its answer was lost
        # (the intent's own record says what became of it), or a confirm that
        # could not go through (an unknown payment method, say): nothing charged.
        try:
            intent = await self._retrieve_intent(intent_id)
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
            intent = await self._retrieve_intent(intent_id)
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
            intent = await self._call("session_secret", kind, "retrieve", transaction_id)
        except StripeError:
            return None  # the payment stands; only its secret cannot be handed out again
        return intent.get("client_secret")

    async def void(self, payment_id: str, transaction_id: str) -> ProviderPayment:
        try:
            intent = await self._call("void", "payment_intents", "cancel", transaction_id,
                                      key=f"{payment_id}-void")
        except ProviderUnavailable:
            return ProviderPayment(transaction_id, found=True, status=PaymentStatus.UNKNOWN)
        except StripeError as exc:
            if exc.status == 404:
                return ProviderPayment(transaction_id, found=False, status=PaymentStatus.UNKNOWN)
            # Refused (captured already, say): the intent's own record says what it is.
            return await self.sync_payment(transaction_id)
        return _payment_of(intent)

    async def refund(self, refund_id: str, payment_id: str, transaction_id: str, amount: Money,
                     reason: RefundReason | None = None) -> ProviderRefund:
        params: dict = {"payment_intent": transaction_id, "amount": to_stripe_amount(amount),
                        "metadata": {"refund_id": refund_id, "payment_id": payment_id}}
        if reason is not None:
            params["reason"] = reason.value  # (localstripe refuses `reason`: paystream keeps its own)
        try:
            body = await self._call("refund", "refunds", "create", key=f"{refund_id}-refund", params=params)
        except ProviderUnavailable:
            # It may have been made: only a sync may say, never a second refund.
            return ProviderRefund(refund_id, found=True, status=RefundStatus.UNKNOWN)
        except StripeError as exc:
            # Refused outright (over the amount, refunded already, no such payment): nothing was made.
            return ProviderRefund(refund_id, found=False, status=RefundStatus.FAILED,
                                  failure_reason=exc.error.get("code") or f"http_{exc.status}")
        return _refund_of(body, refund_id)

    async def sync_payment(self, transaction_id: str) -> ProviderPayment:
        try:
            intent = await self._retrieve_intent(transaction_id)
        except StripeError as exc:
            if exc.status == 404:
                return ProviderPayment(transaction_id, found=False, status=PaymentStatus.UNKNOWN)
            raise ProviderUnavailable("provider_unavailable", f"the provider would not show {transaction_id}: "
                                      f"{exc.error.get('message')}") from None
        return _payment_of(intent)

    async def sync_refund(self, refund_id: str, transaction_id: str,
                          provider_refund_id: str | None = None) -> ProviderRefund:
        try:
            if provider_refund_id is not None:
                return _refund_of(await self._call("sync_refund", "refunds", "retrieve", provider_refund_id), refund_id)
            # Not known by Stripe's id (the answer to the refund was lost): one of this payment's refunds.
            listed = await self._call("sync_refund", "refunds", "list",
                                      params={"payment_intent": transaction_id, "limit": 100})
        except StripeError as exc:
            if exc.status == 404:
                return ProviderRefund(refund_id, found=False, status=RefundStatus.UNKNOWN)
            raise ProviderUnavailable("provider_unavailable", f"the provider would not show refund {refund_id}: "
                                      f"{exc.error.get('message')}") from None
        for body in listed.get("data") or []:
            if (body.get("metadata") or {}).get("refund_id") == refund_id:
                return _refund_of(body, refund_id)
        return ProviderRefund(refund_id, found=False, status=RefundStatus.UNKNOWN)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """`Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")`, at most 300 s old, by the SDK's own check."""
        if not self._webhook_secret:
            raise InvalidWebhook("no webhook secret is set for this provider")
        signature = next((v for k, v in headers.items() if k.lower() == "stripe-signature"), None)
        payload = body.decode("utf-8", errors="replace")
        try:
            stripe_sdk.WebhookSignature.verify_header(payload, signature or "", self._webhook_secret,
                                                      WEBHOOK_TOLERANCE_S)
            event = json.loads(payload)
            return _event_of(event)
        except (stripe_sdk.SignatureVerificationError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidWebhook(f"rejected webhook: {exc}") from None

    # --- HTTP, through the SDK -------------------------------------------------
    async def _call(self, operation: str, service: str, action: str, *ids: str, key: str | None = None,
                    params: dict | None = None) -> dict:
        """One SDK call: `v1.<service>.<action>_async(*ids, params)`, keyed by `key` when it mutates.

        Unreachable, 5xx after retries, or 429: `ProviderUnavailable`; another refusal: `StripeError`."""
        call = getattr(getattr(self._stripe.v1, service), f"{action}_async")
        options = {"idempotency_key": f"paystream-{key}"} if key is not None else {}
        token = _operation.set(operation)
        reached = [False]
        reached_token = _reached.set(reached)
        try:
            answer = await call(*ids, params or {}, options)
        except stripe_sdk.StripeError as exc:
            status = exc.http_status or 0
            if isinstance(exc, stripe_sdk.APIConnectionError | stripe_sdk.RateLimitError) or status >= 500 or not status:
                # No attempt connected: nothing was sent, so nothing was made (what allows a fallback).
                error = ProviderUnavailable if reached[0] else ProviderUnreachable
                raise error("provider_unavailable", f"card provider unavailable: {exc.user_message or exc}") from None
            error = (exc.json_body or {}).get("error") if isinstance(exc.json_body, dict) else None
            error = error or {"message": exc.user_message or str(exc), "code": exc.code}
            metrics.PROVIDER_ERRORS.labels(operation, error.get("code") or f"http_{status}").inc()
            raise StripeError(status, error) from None
        finally:
            _operation.reset(token)
            _reached.reset(reached_token)
        return answer.to_dict()


def _mark_reached() -> None:
    reached = _reached.get()
    if reached is not None:
        reached[0] = True

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
                charge["id"], _paystream_minor(charge.get("amount"), charge.get("currency")),
                _upper(charge.get("currency")),
                charge.get("status") == "succeeded" and not charge.get("refunded", False))
        elif isinstance(charge, str) and charge not in charges:
            # Only the charge's id (api.stripe.com): what the intent says it received.
            succeeded = intent.get("status") == "succeeded"
            charges[charge] = ProviderCharge(charge, _paystream_minor(intent.get("amount_received")
                                                                      or intent.get("amount"), currency),
                                             _upper(currency), succeeded)
    return ProviderIntent(intent["id"], found=True, result=_result_of(intent), amount_minor=_paystream_minor(intent.get("amount"), currency),
                          currency=_upper(currency), charges=tuple(charges.values()))


def _amount_params(amount: Money) -> dict:
    return {"amount": to_stripe_amount(amount), "currency": amount.currency.lower()}


def _paystream_minor(value, currency: str | None) -> int | None:
    """A Stripe amount as paystream's minor units (ISK is sent ×100, say)."""
    if value is None or not currency:
        return _minor(value)
    return from_stripe_amount(value, currency).minor


def _payment_of(intent: dict) -> ProviderPayment:
    currency = _upper(intent.get("currency"))
    amount = _paystream_minor(intent.get("amount"), currency)
    charge = intent.get("latest_charge")
    refunded = _paystream_minor(charge.get("amount_refunded"), currency) if isinstance(charge, dict) else None
    return ProviderPayment(
        intent["id"], found=True, status=payment_status(intent.get("status"), intent.get("last_payment_error")),
        amount=Money(amount, currency) if amount is not None and currency else None,
        amount_refunded=Money(refunded, currency) if refunded is not None and currency else None)


def _refund_of(body: dict, refund_id: str) -> ProviderRefund:
    currency = _upper(body.get("currency"))
    amount = _paystream_minor(body.get("amount"), currency)
    return ProviderRefund(refund_id, found=True, status=refund_status(body.get("status")),
                          provider_refund_id=body.get("id"),
                          amount=Money(amount, currency) if amount is not None and currency else None,
                          failure_reason=body.get("failure_reason"))


def _event_of(event: dict) -> ProviderEvent:
    obj = event["data"]["object"]
    metadata = obj.get("metadata") or {}
    kind = obj.get("object")
    return ProviderEvent(
        event["id"], event["type"], obj["id"], payment_id=metadata.get("payment_id"),
        refund_id=metadata.get("refund_id"),
        payment_status=payment_status(obj.get("status"), obj.get("last_payment_error"))
        if kind == "payment_intent" else None,
        refund_status=refund_status(obj.get("status")) if kind == "refund" else None)


def _minor(value) -> int | None:
    # localstripe keeps an amount changed by an update as the string it was sent as.
    return int(value) if value is not None else None


def _upper(currency: str | None) -> str | None:
    return currency.upper() if currency else None
