"""The PayPal stand-in keeps PayPal's rules: tokens that expire, PayPal-Request-Id replays and the 409
for one in flight, the order → approve → capture → refund states, refunds bounded by the capture, the
422 issues in PayPal's error shape, and PayPal-Mock-Response. (Its shapes are checked against PayPal's
own documents by tests/integration/test_paypal_contract.py.)"""

from __future__ import annotations

import asyncio
import base64
import json
from decimal import Decimal

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from devstack.paypal_standin import PayPalError, PayPalStandin, parse_amount

BASIC = "Basic " + base64.b64encode(b"client:secret").decode()
EUR_10 = {"intent": "CAPTURE", "purchase_units": [{"reference_id": "pay_1", "amount": {"currency_code": "EUR",
                                                                                      "value": "10.00"}}]}


class Client:
    def __init__(self, http: ClientSession, base: str) -> None:
        self.http, self.base, self.token = http, base, ""

    async def call(self, method: str, path: str, body: dict | None = None, request_id: str | None = None,
                   mock: str | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if request_id is not None:
            headers["PayPal-Request-Id"] = request_id
        if mock is not None:
            headers["PayPal-Mock-Response"] = json.dumps({"mock_application_codes": mock})
        async with self.http.request(method, self.base + path, json=body, headers=headers) as response:
            return response.status, await response.json()

    async def login(self) -> None:
        async with self.http.post(self.base + "/v1/oauth2/token", data={"grant_type": "client_credentials"},
                                  headers={"Authorization": BASIC}) as response:
            assert response.status == 200
            self.token = (await response.json())["access_token"]

    async def approved_capture(self, approval: dict | None = None) -> tuple[str, dict]:
        status, order = await self.call("POST", "/v2/checkout/orders", EUR_10)
        assert status == 201, order
        status, _ = await self.call("POST", f"/_test/orders/{order['id']}/approve", approval or {})
        assert status == 200
        status, order = await self.call("POST", f"/v2/checkout/orders/{order['id']}/capture")
        assert status == 201, order
        return order["id"], order["purchase_units"][0]["payments"]["captures"][0]


@pytest.fixture
async def paypal():
    made = []

    async def start(**options) -> Client:
        server = TestServer(PayPalStandin(**options).app())
        await server.start_server()
        http = ClientSession()
        made.append((server, http))
        client = Client(http, str(server.make_url("")).rstrip("/"))
        await client.login()
        return client

    yield start
    for server, http in made:
        await http.close()
        await server.close()


def issue(body: dict) -> str:
    return body["details"][0]["issue"]


async def test_a_token_is_needed_and_expires(paypal):
    client = await paypal(token_ttl_s=0)
    status, body = await client.call("GET", "/v2/checkout/orders/X")
    assert (status, body["name"]) == (401, "AUTHENTICATION_FAILURE")
    async with client.http.post(client.base + "/v1/oauth2/token", data={"grant_type": "client_credentials"},
                                headers={"Authorization": "Basic bm9zZWNyZXQ="}) as response:  # "nosecret"
        assert response.status == 401


async def test_order_approve_capture_refund_in_parts_then_the_rest(paypal):
    client = await paypal()
    status, order = await client.call("POST", "/v2/checkout/orders", EUR_10)
    assert (status, order["status"]) == (201, "CREATED")
    assert {link["rel"] for link in order["links"]} >= {"self", "approve"}
    status, refused = await client.call("POST", f"/v2/checkout/orders/{order['id']}/capture")
    assert (status, refused["name"], issue(refused)) == (422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED")
    assert refused["debug_id"]

    await client.call("POST", f"/_test/orders/{order['id']}/approve")
    status, completed = await client.call("POST", f"/v2/checkout/orders/{order['id']}/capture")
    assert (status, completed["status"]) == (201, "COMPLETED")
    capture = completed["purchase_units"][0]["payments"]["captures"][0]
    assert (capture["status"], capture["amount"]) == ("COMPLETED", {"currency_code": "EUR", "value": "10.00"})
    status, again = await client.call("POST", f"/v2/checkout/orders/{order['id']}/capture")
    assert (status, issue(again)) == (422, "ORDER_ALREADY_CAPTURED")

    path = f"/v2/payments/captures/{capture['id']}"
    status, part = await client.call("POST", f"{path}/refund", {"amount": {"currency_code": "EUR", "value": "2.50"}})
    assert (status, part["status"], part["amount"]["value"]) == (201, "COMPLETED", "2.50")
    assert (await client.call("GET", path))[1]["status"] == "PARTIALLY_REFUNDED"
    status, over = await client.call("POST", f"{path}/refund", {"amount": {"currency_code": "EUR", "value": "7.51"}})
    assert (status, issue(over), over["details"][0]["field"]) == (422, "REFUND_AMOUNT_EXCEEDED", "/amount/value")
    status, rest = await client.call("POST", f"{path}/refund")
    assert (status, rest["amount"]["value"]) == (201, "7.50")
    assert (await client.call("GET", path))[1]["status"] == "REFUNDED"
    assert (await client.call("GET", f"/v2/payments/refunds/{rest['id']}"))[1]["status"] == "COMPLETED"
    status, more = await client.call("POST", f"{path}/refund")
    assert (status, issue(more)) == (422, "CAPTURE_FULLY_REFUNDED")
    status, order = await client.call("GET", f"/v2/checkout/orders/{order['id']}")
    assert len(order["purchase_units"][0]["payments"]["refunds"]) == 2


async def test_a_replayed_request_id_answers_the_first_result_and_one_in_flight_gets_409(paypal):
    client = await paypal(latency_s=0.3)
    first, in_flight = await asyncio.gather(
        client.call("POST", "/v2/checkout/orders", EUR_10, request_id="pay_1-order"),
        client.call("POST", "/v2/checkout/orders", EUR_10, request_id="pay_1-order"))
    answers = sorted([first, in_flight], key=lambda answer: answer[0])
    assert answers[0][0] == 201
    assert (answers[1][0], issue(answers[1][1])) == (409, "PREVIOUS_REQUEST_IN_PROGRESS")
    status, replay = await client.call("POST", "/v2/checkout/orders", EUR_10, request_id="pay_1-order")
    assert (status, replay["id"]) == (201, answers[0][1]["id"])
    status, other = await client.call("POST", "/v2/checkout/orders", EUR_10, request_id="pay_2-order")
    assert other["id"] != replay["id"]


async def test_instrument_declined_leaves_the_order_approved_and_a_declined_capture_completes_it(paypal):
    client = await paypal()
    status, order = await client.call("POST", "/v2/checkout/orders", EUR_10)
    await client.call("POST", f"/_test/orders/{order['id']}/approve", {"outcome": "INSTRUMENT_DECLINED"})
    status, declined = await client.call("POST", f"/v2/checkout/orders/{order['id']}/capture")
    assert (status, issue(declined)) == (422, "INSTRUMENT_DECLINED")
    assert (await client.call("GET", f"/v2/checkout/orders/{order['id']}"))[1]["status"] == "APPROVED"

    _, capture = await client.approved_capture({"outcome": "DECLINED"})
    assert capture["status"] == "DECLINED"
    status, refused = await client.call("POST", f"/v2/payments/captures/{capture['id']}/refund")
    assert status == 422


async def test_pending_captures_and_refunds_settle_and_a_failed_refund_frees_its_amount(paypal):
    client = await paypal()
    _, capture = await client.approved_capture({"outcome": "PENDING", "refund_outcome": "PENDING"})
    assert (capture["status"], capture["status_details"]["reason"]) == ("PENDING", "PENDING_REVIEW")
    status, settled = await client.call("POST", f"/_test/captures/{capture['id']}/settle", {"status": "COMPLETED"})
    assert (status, settled["status"]) == (200, "COMPLETED")

    path = f"/v2/payments/captures/{capture['id']}"
    _, pending = await client.call("POST", f"{path}/refund")
    assert (pending["status"], pending["amount"]["value"]) == ("PENDING", "10.00")
    status, held = await client.call("POST", f"{path}/refund", {"amount": {"currency_code": "EUR", "value": "1.00"}})
    assert (status, issue(held)) == (422, "CAPTURE_FULLY_REFUNDED")  # the pending refund holds it all
    await client.call("POST", f"/_test/refunds/{pending['id']}/settle", {"status": "FAILED"})
    assert (await client.call("GET", f"/v2/payments/refunds/{pending['id']}"))[1]["status"] == "FAILED"
    status, again = await client.call("POST", f"{path}/refund", {"amount": {"currency_code": "EUR", "value": "1.00"}})
    assert (status, again["status"]) == (201, "PENDING")
    await client.call("POST", f"/_test/refunds/{again['id']}/settle", {"status": "CANCELLED"})
    assert (await client.call("GET", path))[1]["status"] == "COMPLETED"


async def test_paypal_mock_response_forces_the_named_error(paypal):
    client = await paypal()
    order_id, capture = await client.approved_capture()
    status, body = await client.call("POST", f"/v2/payments/captures/{capture['id']}/refund",
                                     mock="REFUND_AMOUNT_EXCEEDED")
    assert (status, issue(body)) == (422, "REFUND_AMOUNT_EXCEEDED")
    assert (await client.call("GET", f"/v2/payments/captures/{capture['id']}"))[1]["status"] == "COMPLETED"
    status, order = await client.call("POST", "/v2/checkout/orders", EUR_10)
    await client.call("POST", f"/_test/orders/{order['id']}/approve")
    status, body = await client.call("POST", f"/v2/checkout/orders/{order['id']}/capture",
                                     mock="INSTRUMENT_DECLINED")
    assert (status, issue(body)) == (422, "INSTRUMENT_DECLINED")


@pytest.mark.parametrize(("amount", "issue_"), [
    ({"currency_code": "EUR", "value": "10.001"}, "DECIMAL_PRECISION"),
    ({"currency_code": "JPY", "value": "10.5"}, "DECIMAL_PRECISION"),
    ({"currency_code": "EUR", "value": "0.00"}, "AMOUNT_MUST_BE_POSITIVE"),
    ({"currency_code": "XXX", "value": "1.00"}, "CURRENCY_NOT_SUPPORTED"),
    ({"currency_code": "EUR", "value": 10.0}, "INVALID_PARAMETER_SYNTAX"),
    ({"currency_code": "EUR", "value": "ten"}, "DECIMAL_PRECISION"),
])
def test_amounts_are_decimal_strings_at_the_currencys_precision(amount, issue_):
    with pytest.raises(PayPalError) as refused:
        parse_amount(amount, "/amount")
    assert refused.value.issue == issue_


def test_an_amount_is_read_exactly():
    assert parse_amount({"currency_code": "EUR", "value": "0.10"}, "/amount") == (Decimal("0.10"), "EUR")
    assert parse_amount({"currency_code": "JPY", "value": "1500"}, "/amount") == (Decimal(1500), "JPY")


async def test_bad_input_changes_nothing(paypal):
    client = await paypal()
    status, body = await client.call("POST", "/v2/checkout/orders", {"intent": "CAPTURE", "purchase_units": [
        {"amount": {"currency_code": "EUR", "value": "1.001"}}]})
    assert (status, issue(body)) == (422, "DECIMAL_PRECISION")
    status, body = await client.call("POST", "/v2/checkout/orders", {"purchase_units": []})
    assert (status, body["name"]) == (400, "INVALID_REQUEST")
