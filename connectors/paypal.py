"""The PayPal provider: Orders v2 and Payments v2 over aiohttp, behind paystream's provider port.

Why not a client library: PayPal's own server SDK (PyPI `paypal-server-sdk`) is synchronous (requests
under APIMatic's core), which would block the worker's event loop or need a thread per call; the async
clients on PyPI are small and unmaintained. The subset paystream needs is six calls of one JSON shape.

How a payment maps: the session is an order (intent CAPTURE), its id the transaction id, and what the
client needs is the order's approval link (handed over once, where Stripe hands its client secret).
The payer approves at PayPal; the post is the order's capture; a refund refunds that capture.

- OAuth 2 client credentials: one access token, kept until shortly before it expires, fetched again
  once when an answer says 401.
- Every mutating call carries `PayPal-Request-Id` derived from paystream's ids (payment, post attempt,
  refund): a retry is the same request to PayPal, which answers the first one's result. Network errors,
  5xx, 429 and 409 PREVIOUS_REQUEST_IN_PROGRESS are tried again with that id; past the tries the call
  raises `ProviderUnavailable` (the outcome is unknown, found later by id, never by a second capture),
  or `ProviderUnreachable` when no try reached PayPal at all (nothing can have been made).
- Amounts: minor units at the port, PayPal's decimal strings on the wire (connectors/paypal_rules.py).
- No call lists or searches PayPal's history: an order is read by its id, and a refund not yet known by
  PayPal's id is found among its own order's refunds by the invoice id paystream gave it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Mapping, Sequence

import aiohttp

from connectors.paypal_rules import (
    CAPTURED,
    DECLINES,
    approve_link,
    captures_of,
    decline_code,
    from_paypal_money,
    issue_of,
    order_amount,
    payment_status,
    refund_failure_reason,
    refund_status,
    refunds_of,
    to_paypal_money,
)
from paystream.domain.errors import InvalidRequest, PaymentError, ProviderUnavailable, ProviderUnreachable
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

#: A token this close to its expiry is fetched again before use (seconds).
TOKEN_MARGIN_S = 60
#: First wait between tries of one call (doubling).
RETRY_BACKOFF_S = 0.05


class PayPalError(Exception):
    """PayPal refused the request (a 4xx it will answer the same way again): its status and error body."""

    def __init__(self, status: int, body: dict) -> None:
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        self.issue = issue_of(self.body)
        super().__init__(f"PayPal answered {status}: {self.issue}")


class _Retry(Exception):
    """One try that may succeed when tried again: why, and whether the request reached PayPal."""

    def __init__(self, kind: str, reached: bool) -> None:
        super().__init__(kind)
        self.kind = kind
        self.reached = reached


class PayPalProvider:
    def __init__(self, api_base: str, client_id: str, secret: str, *, timeout_s: float = 10.0,
                 max_attempts: int = 4, max_connections: int = 100) -> None:
        self.api_base = api_base.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.max_attempts = max(1, max_attempts)
        self.max_connections = max_connections
        self._basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._token_until = 0.0  # monotonic
        self._token_lock: asyncio.Lock | None = None

    @property
    def _http(self) -> aiohttp.ClientSession:
        """One aiohttp session, made in the running loop on first use."""
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.max_connections),
                                                  timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = None

    # --- PaymentProvider ----------------------------------------------------
    async def create_session(self, payment_id: str, amount: Money | None) -> ProviderSession:
        if amount is None:
            # An order names its amount from the start (PayPal has no card-only setup like Stripe's).
            raise InvalidRequest("amount_required", "a PayPal payment needs its amount and currency at start",
                                 "amount")
        body = {"intent": "CAPTURE", "purchase_units": [
            {"reference_id": "default", "custom_id": payment_id, "invoice_id": payment_id,
             "amount": to_paypal_money(amount)}]}
        try:
            order = await self._call("create_session", "POST", "/v2/checkout/orders", body=body,
                                     request_id=f"{payment_id}-session")
        except PayPalError as exc:
            # Refused outright (a currency or amount PayPal will not take): nothing was made.
            raise _refused(exc) from None
        return ProviderSession(transaction_id=order["id"], client_secret=approve_link(order))

    async def prepare_charge(self, payment_id: str, attempt: str, transaction_id: str, amount: Money,
                             payment_method: str, used: Sequence[str] = ()) -> PreparedCharge:
        """The order itself is what a capture charges, whatever the attempt: PayPal declines leave it
        capturable once the payer approves again, so `used` is no reason for another."""
        order = await self._order(transaction_id)
        if order is None:
            return PreparedCharge(None, ChargeResult("declined", decline_code="order_not_found",
                                                     message="PayPal has no such order"))
        result = _result_of(order)
        if result.outcome == "succeeded":
            return PreparedCharge(transaction_id, result)  # captured already (a lost answer's)
        if order_amount(order) != amount:
            return PreparedCharge(None, ChargeResult("declined", decline_code="amount_mismatch",
                                                     message="the order asks for another amount"))
        status = order.get("status")
        if status == "APPROVED" or (status == "COMPLETED" and result.outcome == "not_charged"):
            return PreparedCharge(transaction_id)  # (a pending capture is read again by the capture)
        if status in ("CREATED", "SAVED", "PAYER_ACTION_REQUIRED"):
            return PreparedCharge(None, ChargeResult(
                "declined", decline_code="order_not_approved",
                message="the payer has not approved this order yet: send them to its approval link"))
        if result.outcome == "declined":
            return PreparedCharge(None, result)
        return PreparedCharge(None, ChargeResult("declined", decline_code=decline_code(f"order_{status}"),
                                                 message=f"the order is {status}"))

    async def confirm(self, payment_id: str, attempt: str, intent_id: str) -> ChargeResult:
        try:
            order = await self._call("confirm", "POST", f"/v2/checkout/orders/{intent_id}/capture", body={},
                                     request_id=f"{payment_id}-capture-{attempt}")
        except PayPalError as exc:
            if exc.issue == "ORDER_ALREADY_CAPTURED":
                # Captured by an earlier attempt (or the client's own): its record says with what outcome.
                found = await self._order(intent_id)
                return _result_of(found) if found else ChargeResult("not_charged")
            if exc.issue in DECLINES:
                return ChargeResult("declined", decline_code=decline_code(exc.issue), message=_message(exc))
            if exc.status == 404:
                return ChargeResult("declined", decline_code="order_not_found", message=_message(exc))
            # Refused without a decline (a malformed request, say): nothing was captured.
            return ChargeResult("declined", decline_code=decline_code(exc.issue or "provider_rejected"),
                                message=_message(exc))
        return _result_of(order)

    async def look_up(self, intent_ids: Sequence[str]) -> list[ProviderIntent]:
        return list(await asyncio.gather(*(self._look_up_one(i) for i in intent_ids)))

    async def _look_up_one(self, order_id: str) -> ProviderIntent:
        order = await self._order(order_id)
        if order is None:
            return ProviderIntent(order_id, found=False, result=ChargeResult("not_charged"))
        amount = order_amount(order)
        charges = []
        for capture in captures_of(order):
            money = from_paypal_money(capture["amount"])
            charges.append(ProviderCharge(capture["id"], money.minor, money.currency,
                                          capture.get("status") in ("COMPLETED", "PARTIALLY_REFUNDED")))
        return ProviderIntent(order_id, found=True, result=_result_of(order),
                              amount_minor=amount.minor if amount else None,
                              currency=amount.currency if amount else None, charges=tuple(charges))

    async def session_secret(self, transaction_id: str) -> str | None:
        """The order's approval link again (paystream keeps none)."""
        try:
            order = await self._order(transaction_id)
        except ProviderUnavailable:
            return None
        return approve_link(order) if order else None

    async def void(self, payment_id: str, transaction_id: str) -> ProviderPayment:
        """PayPal has no call that voids an order of intent CAPTURE: one not captured lapses (after 3 h
        unapproved, or 72 h approved), and paystream never captures a payment it voided. So a void is
        the order's own state: canceled unless captured (or its capture is still being decided)."""
        try:
            synced = await self.sync_payment(transaction_id)
        except ProviderUnavailable:
            return ProviderPayment(transaction_id, found=True, status=PaymentStatus.UNKNOWN)
        if not synced.found or synced.status.terminal or synced.status == PaymentStatus.PROCESSING:
            return synced
        return ProviderPayment(transaction_id, found=True, status=PaymentStatus.CANCELED, amount=synced.amount)

    async def refund(self, refund_id: str, payment_id: str, transaction_id: str, amount: Money,
                     reason: RefundReason | None = None) -> ProviderRefund:
        try:
            order = await self._order(transaction_id)
        except ProviderUnavailable:
            # Nothing was asked yet; a sync finds no refund and the refund is asked again.
            return ProviderRefund(refund_id, found=False, status=RefundStatus.UNKNOWN)
        capture = next((c for c in captures_of(order or {}) if c.get("status") in CAPTURED), None)
        if capture is None:
            return ProviderRefund(refund_id, found=False, status=RefundStatus.FAILED, failure_reason="not_captured")
        body: dict = {"invoice_id": refund_id}
        try:
            body["amount"] = to_paypal_money(amount)
        except PaymentError as exc:
            return ProviderRefund(refund_id, found=False, status=RefundStatus.FAILED, failure_reason=exc.code)
        if reason is not None:
            body["note_to_payer"] = reason.value.replace("_", " ")
        try:
            answer = await self._call("refund", "POST", f"/v2/payments/captures/{capture['id']}/refund", body=body,
                                      request_id=f"{refund_id}-refund")
        except ProviderUnavailable:
            # It may have been made: only a sync may say, never a second refund.
            return ProviderRefund(refund_id, found=True, status=RefundStatus.UNKNOWN)
        except PayPalError as exc:
            # Refused outright (more than what is left, refunded in full already): nothing was made.
            return ProviderRefund(refund_id, found=False, status=RefundStatus.FAILED,
                                  failure_reason=refund_failure_reason(exc.issue))
        return _refund_of(answer, refund_id)

    async def sync_payment(self, transaction_id: str) -> ProviderPayment:
        order = await self._order(transaction_id)
        if order is None:
            return ProviderPayment(transaction_id, found=False, status=PaymentStatus.UNKNOWN)
        amount = order_amount(order)
        given = [from_paypal_money(r["amount"]) for r in refunds_of(order) if r.get("status") == "COMPLETED"]
        refunded = Money(sum(m.minor for m in given), amount.currency) if given and amount else None
        return ProviderPayment(transaction_id, found=True, status=payment_status(order), amount=amount,
                               amount_refunded=refunded)

    async def sync_refund(self, refund_id: str, transaction_id: str,
                          provider_refund_id: str | None = None) -> ProviderRefund:
        if provider_refund_id is not None:
            try:
                return _refund_of(await self._call("sync_refund", "GET", f"/v2/payments/refunds/{provider_refund_id}"),
                                  refund_id)
            except PayPalError as exc:
                if exc.status == 404:
                    return ProviderRefund(refund_id, found=False, status=RefundStatus.UNKNOWN)
                raise _unavailable(exc, f"refund {provider_refund_id}") from None
        # Not known by PayPal's id (the answer to the refund was lost): one of its order's refunds.
        order = await self._order(transaction_id)
        for body in refunds_of(order or {}):
            if body.get("invoice_id") == refund_id:
                return _refund_of(body, refund_id)
        return ProviderRefund(refund_id, found=False, status=RefundStatus.UNKNOWN)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """PayPal signs webhooks asymmetrically and verifies them by a post back to PayPal
        (`/v1/notifications/verify-webhook-signature`), which a synchronous parse cannot make: refused
        until webhooks are taken in (the next issue)."""
        raise InvalidWebhook("PayPal webhooks are not taken in yet")

    # --- HTTP -----------------------------------------------------------------
    async def _order(self, order_id: str) -> dict | None:
        """The order by id, or None when PayPal has none such."""
        try:
            return await self._call("retrieve_order", "GET", f"/v2/checkout/orders/{order_id}")
        except PayPalError as exc:
            if exc.status == 404:
                return None
            raise _unavailable(exc, f"order {order_id}") from None

    async def _call(self, operation: str, method: str, path: str, *, body: dict | None = None,
                    request_id: str | None = None) -> dict:
        """One API call, tried up to `max_attempts` times with the same `PayPal-Request-Id`.

        A refusal (4xx) raises `PayPalError`; past the tries, `ProviderUnavailable`, or
        `ProviderUnreachable` when no try reached PayPal."""
        reached = False
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                return await self._try(operation, method, path, body, request_id)
            except _Retry as retry:
                reached = reached or retry.reached
                kind = retry.kind
            except _Unauthorized:
                if renewed:
                    raise ProviderUnreachable("provider_unavailable", "PayPal refused paystream's access token") \
                        from None
                renewed = True  # the token expired early (or was revoked): one fresh token, then again
                self._token = None
                attempt -= 1
                continue
            finally:
                metrics.PROVIDER_LATENCY.labels(f"paypal_{operation}").observe(time.perf_counter() - started)
            metrics.PROVIDER_ERRORS.labels(f"paypal_{operation}", kind).inc()
            log.warning("PayPal call failed", operation=operation, kind=kind, attempt=attempt)
            if attempt >= self.max_attempts:
                error = ProviderUnavailable if reached else ProviderUnreachable
                raise error("provider_unavailable", f"PayPal unavailable ({kind})")
            await asyncio.sleep(RETRY_BACKOFF_S * 2 ** (attempt - 1))

    async def _try(self, operation: str, method: str, path: str, body: dict | None,
                   request_id: str | None) -> dict:
        token = await self._access_token()
        headers = {"Authorization": f"Bearer {token}", "Prefer": "return=representation"}
        if request_id is not None:
            headers["PayPal-Request-Id"] = f"paystream-{request_id}"
        try:
            async with self._http.request(method, f"{self.api_base}{path}", headers=headers,
                                          json=body if method == "POST" else None) as response:
                status = response.status
                text = await response.text()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
            raise _Retry("unreachable", reached=False) from None  # not connected: nothing was sent
        except (aiohttp.ClientError, TimeoutError):
            raise _Retry("network", reached=True) from None
        payload = _json(text)
        if status == 401:
            raise _Unauthorized()
        if status >= 500 or status == 429 or (status == 409 and issue_of(payload) == "PREVIOUS_REQUEST_IN_PROGRESS"):
            # Retried with the same PayPal-Request-Id: once the first request is done, PayPal answers its result.
            raise _Retry(f"http_{status}", reached=True)
        if status >= 400:
            metrics.PROVIDER_ERRORS.labels(f"paypal_{operation}", (issue_of(payload) or f"http_{status}").lower()).inc()
            raise PayPalError(status, payload)
        return payload

    async def _access_token(self) -> str:
        """The cached access token, or a fresh one (client credentials) when it is close to expiring."""
        if self._token is not None and time.monotonic() < self._token_until:
            return self._token
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        async with self._token_lock:  # one fetch for every call waiting on it
            if self._token is not None and time.monotonic() < self._token_until:
                return self._token
            try:
                async with self._http.post(f"{self.api_base}/v1/oauth2/token",
                                           data={"grant_type": "client_credentials"},
                                           headers={"Authorization": f"Basic {self._basic}"}) as response:
                    status, text = response.status, await response.text()
            except aiohttp.ClientConnectorError:
                raise _Retry("unreachable", reached=False) from None
            except (aiohttp.ClientError, TimeoutError):
                # A token request makes nothing: nothing was made whatever became of it.
                raise _Retry("network", reached=False) from None
            if status >= 500 or status == 429:
                raise _Retry(f"token_http_{status}", reached=False)
            payload = _json(text)
            if status != 200 or not payload.get("access_token"):
                raise ProviderUnreachable("provider_unavailable",
                                          f"PayPal refused paystream's client credentials ({status})")
            lifetime = float(payload.get("expires_in") or 0)
            self._token = payload["access_token"]
            self._token_until = time.monotonic() + max(0.0, lifetime - min(TOKEN_MARGIN_S, lifetime / 2))
            return self._token


class _Unauthorized(Exception):
    """PayPal answered 401 to an API call: the access token is no longer good."""


def _json(text: str) -> dict:
    try:
        payload = json.loads(text) if text else {}
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _message(exc: PayPalError) -> str | None:
    details = exc.body.get("details") or []
    if details and isinstance(details[0], dict) and details[0].get("description"):
        return details[0]["description"]
    return exc.body.get("message")


def _refused(exc: PayPalError) -> PaymentError:
    return InvalidRequest(decline_code(exc.issue or f"http_{exc.status}"), _message(exc) or "PayPal refused the payment",
                          "amount")


def _unavailable(exc: PayPalError, what: str) -> ProviderUnavailable:
    return ProviderUnavailable("provider_unavailable", f"PayPal would not show {what}: {exc.issue}")


def _result_of(order: dict) -> ChargeResult:
    """What the order's captures say: charged (a capture moved money), declined (its last capture was), or
    not charged (none yet, or one still pending: never taken for a decline)."""
    captures = captures_of(order)
    done = next((c for c in captures if c.get("status") in CAPTURED), None)
    if done is not None:
        return ChargeResult("succeeded", charge_id=done["id"])
    if captures and captures[-1].get("status") in ("DECLINED", "FAILED"):
        status = captures[-1]["status"]
        return ChargeResult("declined", decline_code=f"capture_{status.lower()}",
                            message=f"PayPal's capture was {status.lower()}")
    return ChargeResult("not_charged")


def _refund_of(body: dict, refund_id: str) -> ProviderRefund:
    amount = from_paypal_money(body["amount"]) if body.get("amount") else None
    status = refund_status(body.get("status"))
    reason = (body.get("status_details") or {}).get("reason")
    return ProviderRefund(refund_id, found=True, status=status, provider_refund_id=body.get("id"), amount=amount,
                          failure_reason=reason.lower() if reason and status == RefundStatus.FAILED else None)
