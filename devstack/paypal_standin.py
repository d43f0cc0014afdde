"""A stateful PayPal stand-in: the part of Orders v2 and Payments v2 a PayPal connector uses.

No PayPal sandbox can be installed (PayPal's only sandbox is hosted), so the dev stack serves this one
(`paystream dev stack up` starts it as the service `paypal`). It keeps PayPal's shapes and rules, and
its answers are checked against PayPal's own OpenAPI documents by prism in the contract test
(tests/integration/test_paypal_contract.py):

- `POST /v1/oauth2/token`: client credentials over HTTP Basic, a Bearer token that expires after
  `expires_in` seconds; every other call needs a live token (401 AUTHENTICATION_FAILURE otherwise).
- Orders (`/v2/checkout/orders`, `/{id}`, `/{id}/capture`), captures (`/v2/payments/captures/{id}`,
  `/{id}/refund`) and refunds (`/v2/payments/refunds/{id}`), with PayPal's states and its error shape
  (`name`, `message`, `debug_id`, `details[].issue`, `links`).
- `PayPal-Request-Id` on every POST: a replay answers the stored result; the same id while the first
  request is still being answered gets 409 PREVIOUS_REQUEST_IN_PROGRESS.
- `PayPal-Mock-Response: {"mock_application_codes": "INSTRUMENT_DECLINED"}` forces that error, as
  PayPal's negative testing does.
- Money is PayPal's decimal string, read with Decimal (never a float) at the currency's precision.

Test-only pages, under `/_test/` as the payer's and PayPal's own doings: `POST /_test/orders/{id}/approve`
(the payer approves; `{"outcome": ...}` chooses what the capture will do: COMPLETED, PENDING, DECLINED,
FAILED or INSTRUMENT_DECLINED; `{"refund_outcome": "PENDING"}` makes its refunds pend), and
`POST /_test/captures/{id}/settle`, `POST /_test/refunds/{id}/settle` (`{"status": ...}`) to end what pends;
`POST /_test/latency` (`{"ms": 300}`) makes each answer wait, so that two requests overlap.

    python -m devstack.paypal_standin --port 8423
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from aiohttp import web

#: PayPal's currencies, and those it takes without decimals.
CURRENCIES = {"AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY", "MYR", "MXN", "TWD",
              "NZD", "NOK", "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD"}
NO_DECIMALS = {"HUF", "JPY", "TWD"}
CAPTURE_OUTCOMES = {"COMPLETED", "PENDING", "DECLINED", "FAILED", "INSTRUMENT_DECLINED"}
REFUND_OUTCOMES = {"COMPLETED", "PENDING", "FAILED", "CANCELLED"}
#: Refunds that hold their amount (a failed or cancelled one gives it back).
HOLDING = {"PENDING", "COMPLETED"}
REQUEST_ID_MAX = 108

#: The issues `PayPal-Mock-Response` can force, with their status and message (as PayPal's documents word them).
MOCKABLE = {
    "INSTRUMENT_DECLINED": (422, "The instrument presented was either declined by the processor or bank, or it "
                                 "can't be used for this payment."),
    "ORDER_NOT_APPROVED": (422, "Payer has not yet approved the Order for payment."),
    "ORDER_ALREADY_CAPTURED": (422, "Order already captured.If 'intent=CAPTURE' only one capture per order is "
                                    "allowed."),
    "TRANSACTION_REFUSED": (422, "The request was refused."),
    "PAYER_ACTION_REQUIRED": (422, "Transaction cannot complete successfully, instruct the buyer to return to "
                                   "PayPal."),
    "REFUND_AMOUNT_EXCEEDED": (422, "The refund amount must be less than or equal to the capture amount that has "
                                    "not yet been refunded."),
    "CAPTURE_FULLY_REFUNDED": (422, "The capture has already been fully refunded."),
    "INTERNAL_SERVER_ERROR": (500, "An internal server error has occurred."),
}
NAMES = {400: "INVALID_REQUEST", 401: "AUTHENTICATION_FAILURE", 404: "RESOURCE_NOT_FOUND", 409: "RESOURCE_CONFLICT",
         422: "UNPROCESSABLE_ENTITY", 500: "INTERNAL_SERVER_ERROR"}
MESSAGES = {400: "Request is not well-formed, syntactically incorrect, or violates schema.",
            401: "Authentication failed due to invalid authentication credentials or a missing Authorization "
                 "header.",
            404: "The specified resource does not exist.",
            409: "The server has detected a conflict while processing this request.",
            422: "The requested action could not be performed, semantically incorrect, or failed business "
                 "validation.",
            500: "An internal server error has occurred."}


class PayPalError(Exception):
    """An answer in PayPal's error shape."""

    def __init__(self, status: int, issue: str | None = None, description: str = "", field_: str | None = None,
                 value: str | None = None, location: str = "body") -> None:
        super().__init__(issue or NAMES[status])
        self.status, self.issue, self.description = status, issue, description
        self.field, self.value, self.location = field_, value, location

    def body(self) -> dict:
        body: dict = {"name": NAMES[self.status], "message": MESSAGES[self.status],
                      "debug_id": secrets.token_hex(7)}
        if self.issue is not None:
            detail = {"issue": self.issue, "description": self.description or self.issue}
            if self.field is not None:
                detail.update(field=self.field, location=self.location)
            if self.value is not None:
                detail["value"] = self.value
            body["details"] = [detail]
            body["links"] = [{"href": f"https://developer.paypal.com/docs/api/orders/v2/#error-{self.issue}",
                              "rel": "information_link", "method": "GET"}]
        return body


def parse_amount(amount: object, where: str) -> tuple[Decimal, str]:
    """PayPal's `{currency_code, value}`: the value a decimal string at the currency's precision, over 0."""
    if not isinstance(amount, dict):
        raise PayPalError(400, "MISSING_REQUIRED_PARAMETER", "A required field is missing.", where)
    currency, value = amount.get("currency_code"), amount.get("value")
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise PayPalError(422, "CURRENCY_NOT_SUPPORTED", "Currency code is not supported.",
                          f"{where}/currency_code", str(currency))
    if not isinstance(value, str):
        raise PayPalError(400, "INVALID_PARAMETER_SYNTAX", "The value of a field does not conform to the expected "
                          "format.", f"{where}/value", str(value))
    try:
        amount_value = Decimal(value)
    except InvalidOperation:
        amount_value = Decimal("NaN")
    places = 0 if currency in NO_DECIMALS else 2
    if not amount_value.is_finite() or amount_value.as_tuple().exponent < -places:  # type: ignore[operator]
        raise PayPalError(422, "DECIMAL_PRECISION", "If the currency supports decimals, only two decimal place "
                          "precision is supported.", f"{where}/value", value)
    if amount_value <= 0:
        raise PayPalError(422, "AMOUNT_MUST_BE_POSITIVE", "The amount must be greater than zero.",
                          f"{where}/value", value)
    return amount_value, currency


def money(value: Decimal, currency: str) -> dict:
    places = Decimal(1) if currency in NO_DECIMALS else Decimal("0.01")
    return {"currency_code": currency, "value": str(value.quantize(places))}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id() -> str:
    return secrets.token_hex(9).upper()[:17]


@dataclass
class Refund:
    id: str
    capture_id: str
    value: Decimal
    currency: str
    status: str
    invoice_id: str | None
    note_to_payer: str | None
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)


@dataclass
class Capture:
    id: str
    order_id: str
    value: Decimal
    currency: str
    status: str
    invoice_id: str | None
    custom_id: str | None
    refund_outcome: str
    refunds: list[str] = field(default_factory=list)
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)


@dataclass
class Order:
    id: str
    intent: str
    units: list[dict]
    status: str
    outcome: str = "COMPLETED"
    refund_outcome: str = "COMPLETED"
    captures: list[str] = field(default_factory=list)
    created: str = field(default_factory=_now)
    updated: str = field(default_factory=_now)


class PayPalStandin:
    def __init__(self, base: str = "", latency_s: float = 0.0, token_ttl_s: int = 32_400) -> None:
        self.base = base.rstrip("/")
        self.latency_s = latency_s
        self.token_ttl_s = token_ttl_s
        self.tokens: dict[str, float] = {}  # access token -> when it expires (monotonic)
        self.orders: dict[str, Order] = {}
        self.captures: dict[str, Capture] = {}
        self.refunds: dict[str, Refund] = {}
        self.replies: dict[tuple[str, str], tuple[int, bytes]] = {}  # (path, PayPal-Request-Id) -> answer
        self.in_flight: set[tuple[str, str]] = set()

    # --- plumbing -------------------------------------------------------------------------------------
    @web.middleware
    async def behave(self, request: web.Request, handler) -> web.StreamResponse:
        """Errors in PayPal's shape, a live token for the API, and PayPal-Request-Id on each POST."""
        try:
            if not request.path.startswith(("/v1/oauth2/", "/_test/")):
                self._authorize(request)
            request_id = request.headers.get("PayPal-Request-Id") if request.method == "POST" else None
            if request_id is None:
                return await self._answer(request, handler)
            if len(request_id) > REQUEST_ID_MAX:
                raise PayPalError(400, "INVALID_PARAMETER_SYNTAX", "PayPal-Request-Id is too long.",
                                  "PayPal-Request-Id", location="header")
            key = (request.path, request_id)
            if key in self.replies:
                status, body = self.replies[key]
                return web.Response(body=body, status=status, content_type="application/json")
            if key in self.in_flight:
                raise PayPalError(409, "PREVIOUS_REQUEST_IN_PROGRESS", "A previous request with this "
                                  "PayPal-Request-Id is still being processed.", "PayPal-Request-Id",
                                  request_id, location="header")
            self.in_flight.add(key)
            try:
                response = await self._answer(request, handler)
            finally:
                self.in_flight.discard(key)
            if response.status < 500:
                self.replies[key] = (response.status, response.body)
            return response
        except PayPalError as error:
            return web.json_response(error.body(), status=error.status)

    async def _answer(self, request: web.Request, handler) -> web.StreamResponse:
        if self.latency_s > 0:
            # A request received is carried out even if its client stops waiting (an answer lost, as at PayPal):
            # its body is read before the wait, while the client is still there.
            await request.read()
            await asyncio.sleep(self.latency_s)
        try:
            return await handler(request)
        except PayPalError as error:
            return web.json_response(error.body(), status=error.status)

    def _authorize(self, request: web.Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expires = self.tokens.get(token) if scheme == "Bearer" else None
        if expires is None or expires < time.monotonic():
            raise PayPalError(401)

    @staticmethod
    def _mocked(request: web.Request, *allowed: str) -> None:
        """PayPal's negative testing: `PayPal-Mock-Response` names the error this call answers."""
        header = request.headers.get("PayPal-Mock-Response")
        if header is None:
            return
        try:
            code = json.loads(header)["mock_application_codes"]
        except (ValueError, KeyError, TypeError):
            raise PayPalError(400, "INVALID_PARAMETER_SYNTAX", "PayPal-Mock-Response is not valid.",
                              "PayPal-Mock-Response", location="header") from None
        if code in allowed or code == "INTERNAL_SERVER_ERROR":
            raise PayPalError(MOCKABLE[code][0], code, MOCKABLE[code][1])

    @staticmethod
    async def _body(request: web.Request) -> dict:
        if not request.body_exists:  # (not can_read_body: a body read already before a wait is still there)
            return {}
        try:
            body = await request.json()
        except ValueError:
            raise PayPalError(400, "MALFORMED_REQUEST_JSON", "The request JSON is not well formed.") from None
        if not isinstance(body, dict):
            raise PayPalError(400, "MALFORMED_REQUEST_JSON", "The request JSON is not well formed.")
        return body

    def _link(self, path: str, rel: str, method: str = "GET") -> dict:
        return {"href": f"{self.base}{path}", "rel": rel, "method": method}

    # --- OAuth 2 ---------------------------------------------------------------------------------------
    async def token(self, request: web.Request) -> web.Response:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except ValueError:
            client_id = secret = ""
        if scheme != "Basic" or not client_id or not secret:
            return web.json_response({"error": "invalid_client", "error_description": "Client Authentication "
                                      "failed"}, status=401)
        form = await request.post()
        if form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "unsupported_grant_type", "error_description": "Grant Type is "
                                      "NULL"}, status=400)
        access_token = f"A21AA{secrets.token_urlsafe(48)}"
        self.tokens[access_token] = time.monotonic() + self.token_ttl_s
        return web.json_response({"scope": "https://uri.paypal.com/services/payments/payment",
                                  "access_token": access_token, "token_type": "Bearer",
                                  "app_id": f"APP-{client_id[:12].upper()}", "expires_in": self.token_ttl_s,
                                  "nonce": f"{_now()}{secrets.token_hex(8)}"})

    # --- orders ---------------------------------------------------------------------------------------
    def _order(self, request: web.Request) -> Order:
        order = self.orders.get(request.match_info["id"])
        if order is None:
            raise PayPalError(404, "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        return order

    def order_view(self, order: Order) -> dict:
        unit = dict(order.units[0])  # one purchase unit (create_order's rule)
        if order.captures:
            refunds = [self.refund_view(self.refunds[r]) for c in order.captures for r in self.captures[c].refunds]
            unit["payments"] = {"captures": [self.capture_view(self.captures[c]) for c in order.captures],
                                **({"refunds": refunds} if refunds else {})}
        path = f"/v2/checkout/orders/{order.id}"
        links = [self._link(path, "self")]
        if order.status == "CREATED":
            links.append(self._link(f"/checkoutnow?token={order.id}", "approve"))
        elif order.status == "PAYER_ACTION_REQUIRED":
            links.append(self._link(f"/checkoutnow?token={order.id}", "payer-action"))
        if order.status in ("CREATED", "APPROVED"):
            links.append(self._link(f"{path}/capture", "capture", "POST"))
        return {"id": order.id, "intent": order.intent, "status": order.status, "purchase_units": [unit],
                "create_time": order.created, "update_time": order.updated, "links": links}

    async def create_order(self, request: web.Request) -> web.Response:
        self._mocked(request, "TRANSACTION_REFUSED")
        body = await self._body(request)
        intent = body.get("intent")
        if intent != "CAPTURE":
            issue = "MISSING_REQUIRED_PARAMETER" if intent is None else "INVALID_PARAMETER_VALUE"
            raise PayPalError(400, issue, "Only intent CAPTURE is supported here.", "/intent", intent)
        units = body.get("purchase_units")
        if not isinstance(units, list) or len(units) != 1:
            raise PayPalError(400, "INVALID_ARRAY_LENGTH", "One purchase unit is supported here.",
                              "/purchase_units")
        unit = units[0] if isinstance(units[0], dict) else {}
        value, currency = parse_amount(unit.get("amount"), "/purchase_units/@reference_id=='default'/amount")
        kept = {key: unit[key] for key in ("reference_id", "custom_id", "invoice_id", "description") if key in unit}
        kept.setdefault("reference_id", "default")
        kept["amount"] = money(value, currency)
        # A payment source with an experience context sends the payer to PayPal first (PayPal's own rule).
        status = "PAYER_ACTION_REQUIRED" if body.get("payment_source") else "CREATED"
        order = Order(_id(), intent, [kept], status)
        self.orders[order.id] = order
        return web.json_response(self.order_view(order), status=201)

    async def get_order(self, request: web.Request) -> web.Response:
        return web.json_response(self.order_view(self._order(request)))

    async def capture_order(self, request: web.Request) -> web.Response:
        order = self._order(request)
        self._mocked(request, "INSTRUMENT_DECLINED", "ORDER_NOT_APPROVED", "ORDER_ALREADY_CAPTURED",
                     "TRANSACTION_REFUSED", "PAYER_ACTION_REQUIRED")
        await self._body(request)
        if order.status == "COMPLETED":
            raise PayPalError(422, "ORDER_ALREADY_CAPTURED", MOCKABLE["ORDER_ALREADY_CAPTURED"][1])
        if order.status == "PAYER_ACTION_REQUIRED":
            raise PayPalError(422, "PAYER_ACTION_REQUIRED", MOCKABLE["PAYER_ACTION_REQUIRED"][1])
        if order.status != "APPROVED":
            raise PayPalError(422, "ORDER_NOT_APPROVED", MOCKABLE["ORDER_NOT_APPROVED"][1])
        if order.outcome == "INSTRUMENT_DECLINED":  # the payer may choose another instrument: the order stays
            raise PayPalError(422, "INSTRUMENT_DECLINED", MOCKABLE["INSTRUMENT_DECLINED"][1])
        unit = order.units[0]
        value = Decimal(unit["amount"]["value"])
        capture = Capture(_id(), order.id, value, unit["amount"]["currency_code"], order.outcome,
                          unit.get("invoice_id"), unit.get("custom_id"), order.refund_outcome)
        self.captures[capture.id] = capture
        order.captures.append(capture.id)
        order.status, order.updated = "COMPLETED", _now()
        return web.json_response(self.order_view(order), status=201)

    # --- captures and refunds -----------------------------------------------------------------------------
    def _capture(self, request: web.Request) -> Capture:
        capture = self.captures.get(request.match_info["id"])
        if capture is None:
            raise PayPalError(404, "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        return capture

    def refunded(self, capture: Capture) -> Decimal:
        return sum((self.refunds[r].value for r in capture.refunds if self.refunds[r].status in HOLDING),
                   Decimal(0))

    def capture_view(self, capture: Capture) -> dict:
        path = f"/v2/payments/captures/{capture.id}"
        view: dict = {"id": capture.id, "status": capture.status, "amount": money(capture.value, capture.currency),
                      "final_capture": True, "seller_protection": {"status": "NOT_ELIGIBLE"},
                      "create_time": capture.created, "update_time": capture.updated,
                      "supplementary_data": {"related_ids": {"order_id": capture.order_id}},
                      "links": [self._link(path, "self"),
                                self._link(f"/v2/checkout/orders/{capture.order_id}", "up")]}
        if capture.status in ("COMPLETED", "PARTIALLY_REFUNDED"):
            view["links"].insert(1, self._link(f"{path}/refund", "refund", "POST"))
        if capture.status == "PENDING":
            view["status_details"] = {"reason": "PENDING_REVIEW"}
        for key in ("invoice_id", "custom_id"):
            if getattr(capture, key):
                view[key] = getattr(capture, key)
        return view

    def refund_view(self, refund: Refund) -> dict:
        view: dict = {"id": refund.id, "status": refund.status, "amount": money(refund.value, refund.currency),
                      "create_time": refund.created, "update_time": refund.updated,
                      "links": [self._link(f"/v2/payments/refunds/{refund.id}", "self"),
                                self._link(f"/v2/payments/captures/{refund.capture_id}", "up")]}
        if refund.status == "PENDING":
            view["status_details"] = {"reason": "ECHECK"}
        for key in ("invoice_id", "note_to_payer"):
            if getattr(refund, key):
                view[key] = getattr(refund, key)
        return view

    async def get_capture(self, request: web.Request) -> web.Response:
        return web.json_response(self.capture_view(self._capture(request)))

    async def refund_capture(self, request: web.Request) -> web.Response:
        capture = self._capture(request)
        self._mocked(request, "REFUND_AMOUNT_EXCEEDED", "CAPTURE_FULLY_REFUNDED", "TRANSACTION_REFUSED")
        body = await self._body(request)
        if capture.status == "REFUNDED":
            raise PayPalError(422, "CAPTURE_FULLY_REFUNDED", MOCKABLE["CAPTURE_FULLY_REFUNDED"][1])
        if capture.status not in ("COMPLETED", "PARTIALLY_REFUNDED"):
            raise PayPalError(422, "TRANSACTION_REFUSED", "A capture that has not completed cannot be refunded.")
        remaining = capture.value - self.refunded(capture)
        if remaining <= 0:  # what is left is held by pending refunds
            raise PayPalError(422, "CAPTURE_FULLY_REFUNDED", MOCKABLE["CAPTURE_FULLY_REFUNDED"][1])
        if "amount" in body:
            value, currency = parse_amount(body["amount"], "/amount")
            if currency != capture.currency:
                raise PayPalError(422, "REFUND_CURRENCY_MISMATCH", "Refund must be in the same currency as the "
                                  "capture.", "/amount/currency_code", currency)
            if value > remaining:
                raise PayPalError(422, "REFUND_AMOUNT_EXCEEDED", MOCKABLE["REFUND_AMOUNT_EXCEEDED"][1],
                                  "/amount/value", body["amount"]["value"])
        else:
            value = remaining
        refund = Refund(_id(), capture.id, value, capture.currency, capture.refund_outcome,
                        body.get("invoice_id"), body.get("note_to_payer"))
        self.refunds[refund.id] = refund
        capture.refunds.append(refund.id)
        self._settle_capture_refunds(capture)
        return web.json_response(self.refund_view(refund), status=201)

    def _settle_capture_refunds(self, capture: Capture) -> None:
        done = sum((self.refunds[r].value for r in capture.refunds if self.refunds[r].status == "COMPLETED"),
                   Decimal(0))
        if done > 0:
            capture.status = "REFUNDED" if done >= capture.value else "PARTIALLY_REFUNDED"
            capture.updated = _now()

    async def get_refund(self, request: web.Request) -> web.Response:
        refund = self.refunds.get(request.match_info["id"])
        if refund is None:
            raise PayPalError(404, "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        return web.json_response(self.refund_view(refund))

    # --- test-only: the payer's and PayPal's own doings -------------------------------------------------
    async def approve(self, request: web.Request) -> web.Response:
        order = self._order(request)
        body = await self._body(request)
        outcome, refund_outcome = body.get("outcome", "COMPLETED"), body.get("refund_outcome", "COMPLETED")
        if outcome not in CAPTURE_OUTCOMES or refund_outcome not in REFUND_OUTCOMES:
            raise PayPalError(400, "INVALID_PARAMETER_VALUE", f"outcome: one of {sorted(CAPTURE_OUTCOMES)}; "
                              f"refund_outcome: one of {sorted(REFUND_OUTCOMES)}", "/outcome")
        if order.status not in ("CREATED", "PAYER_ACTION_REQUIRED", "APPROVED"):
            raise PayPalError(422, "ORDER_ALREADY_CAPTURED", MOCKABLE["ORDER_ALREADY_CAPTURED"][1])
        order.status, order.outcome, order.refund_outcome, order.updated = "APPROVED", outcome, refund_outcome, _now()
        return web.json_response(self.order_view(order))

    async def settle_capture(self, request: web.Request) -> web.Response:
        capture = self._capture(request)
        status = (await self._body(request)).get("status")
        if capture.status != "PENDING" or status not in ("COMPLETED", "DECLINED", "FAILED"):
            raise PayPalError(422, "INVALID_PARAMETER_VALUE", "Only a PENDING capture settles, to COMPLETED, "
                              "DECLINED or FAILED.", "/status", str(status))
        capture.status, capture.updated = status, _now()
        return web.json_response(self.capture_view(capture))

    async def settle_refund(self, request: web.Request) -> web.Response:
        refund = self.refunds.get(request.match_info["id"])
        if refund is None:
            raise PayPalError(404, "INVALID_RESOURCE_ID", "Specified resource ID does not exist.")
        status = (await self._body(request)).get("status")
        if refund.status != "PENDING" or status not in ("COMPLETED", "FAILED", "CANCELLED"):
            raise PayPalError(422, "INVALID_PARAMETER_VALUE", "Only a PENDING refund settles, to COMPLETED, "
                              "FAILED or CANCELLED.", "/status", str(status))
        refund.status, refund.updated = status, _now()
        self._settle_capture_refunds(self.captures[refund.capture_id])
        return web.json_response(self.refund_view(refund))

    async def set_latency(self, request: web.Request) -> web.Response:
        """How long each answer waits (`{"ms": 300}`): what makes two requests overlap, as PayPal's do."""
        self.latency_s = float((await self._body(request)).get("ms", 0)) / 1000
        return web.json_response({"ms": self.latency_s * 1000})

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.behave])
        app.router.add_post("/v1/oauth2/token", self.token)
        app.router.add_post("/v2/checkout/orders", self.create_order)
        app.router.add_get("/v2/checkout/orders/{id}", self.get_order)
        app.router.add_post("/v2/checkout/orders/{id}/capture", self.capture_order)
        app.router.add_get("/v2/payments/captures/{id}", self.get_capture)
        app.router.add_post("/v2/payments/captures/{id}/refund", self.refund_capture)
        app.router.add_get("/v2/payments/refunds/{id}", self.get_refund)
        app.router.add_post("/_test/orders/{id}/approve", self.approve)
        app.router.add_post("/_test/captures/{id}/settle", self.settle_capture)
        app.router.add_post("/_test/refunds/{id}/settle", self.settle_refund)
        app.router.add_post("/_test/latency", self.set_latency)
        return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8423)
    parser.add_argument("--dir", help="the service's folder (names the process for `stack`)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="wait this long before each answer")
    parser.add_argument("--token-ttl-s", type=int, default=32_400, help="an access token's life (expires_in)")
    args = parser.parse_args()
    standin = PayPalStandin(f"http://{args.host}:{args.port}", args.latency_ms / 1000, args.token_ttl_s)
    web.run_app(standin.app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
