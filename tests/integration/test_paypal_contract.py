"""The PayPal stand-in's answers against PayPal's own OpenAPI documents, through prism.

prism (`@stoplight/prism-cli`, installed by `stack up` from devstack/npmtools/) runs as a validating
proxy (`prism proxy <document> <stand-in> --errors`) in front of the stand-in the stack serves, one
for Orders v2 and one for Payments v2 (PayPal's documents `checkout_orders_v2.json` and
`payments_payment_v2.json`). Every request of a full order → approve → capture → partial refund →
refund of the rest, and of each error case, goes through prism; any request or answer that breaks
PayPal's documents comes back with prism's `sl-violations` header, and the test fails on it. The last
test points prism at a deliberately wrong upstream and asserts prism reports it: the check can fail.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import time
import uuid

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from devstack import npmtools

EUR_25 = {"intent": "CAPTURE", "purchase_units": [{"reference_id": "pay_contract", "custom_id": "pay_contract",
                                                   "amount": {"currency_code": "EUR", "value": "25.00"}}]}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_prism(settings, document: str, upstream: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([str(npmtools.prism(settings)), "proxy", str(npmtools.paypal_documents(settings)[document]),
                                upstream, "--errors", "--host", "127.0.0.1", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            assert process.poll() is None, f"prism exited: {process.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "prism did not listen within 60 s"
            time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def prisms(stack, settings):
    """prism in front of the stack's PayPal stand-in, with Orders' document and with Payments'."""
    standin = stack["paypal"]["address"]
    started = {what: start_prism(settings, what, standin) for what in npmtools.PAYPAL_DOCUMENTS}
    yield {what: base for what, (_, base) in started.items()}
    for process, _ in started.values():
        stop(process)


class Checked:
    """A PayPal client whose every answer must carry no violation of PayPal's documents."""

    def __init__(self, http: aiohttp.ClientSession, prisms: dict[str, str], standin: str) -> None:
        self.http, self.prisms, self.standin, self.token = http, prisms, standin, ""
        self.answers: list[tuple[str, str, int]] = []

    async def login(self) -> None:
        basic = base64.b64encode(b"paystream-contract:secret").decode()
        async with self.http.post(f"{self.standin}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                                  headers={"Authorization": f"Basic {basic}"}) as response:
            assert response.status == 200
            self.token = (await response.json())["access_token"]

    async def call(self, method: str, path: str, body: dict | None = None, request_id: str | None = None,
                   mock: str | None = None) -> tuple[int, dict]:
        base = self.prisms["orders" if path.startswith("/v2/checkout/") else "payments"]
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        if method == "POST":
            headers["PayPal-Request-Id"] = request_id or uuid.uuid4().hex
        if mock is not None:
            headers["PayPal-Mock-Response"] = json.dumps({"mock_application_codes": mock})
        data = json.dumps(body) if body is not None else ("{}" if method == "POST" else None)
        async with self.http.request(method, base + path, data=data, headers=headers) as response:
            answer = await response.json(content_type=None)
            violations = response.headers.get("sl-violations")
            assert violations is None, f"{method} {path} -> {response.status}: {violations}"
            assert "stoplight.io/prism/errors" not in str(answer.get("type", "")), answer
            self.answers.append((method, path, response.status))
            return response.status, answer

    async def approve(self, order_id: str, **outcome: str) -> None:
        async with self.http.post(f"{self.standin}/_test/orders/{order_id}/approve", json=outcome) as response:
            assert response.status == 200, await response.text()


@pytest.fixture
async def paypal(prisms, stack):
    async with aiohttp.ClientSession() as http:
        client = Checked(http, prisms, stack["paypal"]["address"])
        await client.login()
        yield client


def issue(answer: dict) -> str:
    return answer["details"][0]["issue"]


async def test_a_full_order_capture_and_refunds_keep_to_paypals_documents(paypal):
    status, order = await paypal.call("POST", "/v2/checkout/orders", EUR_25)
    assert (status, order["status"]) == (201, "CREATED")
    assert (await paypal.call("GET", f"/v2/checkout/orders/{order['id']}"))[0] == 200
    await paypal.approve(order["id"])
    status, completed = await paypal.call("POST", f"/v2/checkout/orders/{order['id']}/capture")
    assert (status, completed["status"]) == (201, "COMPLETED")
    capture_id = completed["purchase_units"][0]["payments"]["captures"][0]["id"]
    status, capture = await paypal.call("GET", f"/v2/payments/captures/{capture_id}")
    assert (status, capture["status"]) == (200, "COMPLETED")

    status, part = await paypal.call("POST", f"/v2/payments/captures/{capture_id}/refund",
                                     {"amount": {"currency_code": "EUR", "value": "10.00"}, "note_to_payer": "sorry"})
    assert (status, part["status"]) == (201, "COMPLETED")
    assert (await paypal.call("GET", f"/v2/payments/captures/{capture_id}"))[1]["status"] == "PARTIALLY_REFUNDED"
    status, rest = await paypal.call("POST", f"/v2/payments/captures/{capture_id}/refund")
    assert (status, rest["amount"]["value"]) == (201, "15.00")
    status, refund = await paypal.call("GET", f"/v2/payments/refunds/{rest['id']}")
    assert (status, refund["status"]) == (200, "COMPLETED")
    assert (await paypal.call("GET", f"/v2/payments/captures/{capture_id}"))[1]["status"] == "REFUNDED"
    status, order = await paypal.call("GET", f"/v2/checkout/orders/{order['id']}")
    assert len(order["purchase_units"][0]["payments"]["refunds"]) == 2


async def test_the_error_cases_keep_to_paypals_documents(paypal):
    _, order = await paypal.call("POST", "/v2/checkout/orders", EUR_25)
    status, answer = await paypal.call("POST", f"/v2/checkout/orders/{order['id']}/capture")
    assert (status, issue(answer)) == (422, "ORDER_NOT_APPROVED")
    await paypal.approve(order["id"])
    status, answer = await paypal.call("POST", f"/v2/checkout/orders/{order['id']}/capture", mock="INSTRUMENT_DECLINED")
    assert (status, issue(answer)) == (422, "INSTRUMENT_DECLINED")
    _, completed = await paypal.call("POST", f"/v2/checkout/orders/{order['id']}/capture")
    status, answer = await paypal.call("POST", f"/v2/checkout/orders/{order['id']}/capture")
    assert (status, issue(answer)) == (422, "ORDER_ALREADY_CAPTURED")

    capture_id = completed["purchase_units"][0]["payments"]["captures"][0]["id"]
    refund = f"/v2/payments/captures/{capture_id}/refund"
    status, answer = await paypal.call("POST", refund, {"amount": {"currency_code": "EUR", "value": "25.01"}})
    assert (status, issue(answer)) == (422, "REFUND_AMOUNT_EXCEEDED")
    assert (await paypal.call("POST", refund))[0] == 201
    status, answer = await paypal.call("POST", refund)
    assert (status, issue(answer)) == (422, "CAPTURE_FULLY_REFUNDED")
    status, answer = await paypal.call("GET", "/v2/payments/refunds/NOSUCHREFUND1")
    assert (status, answer["name"]) == (404, "RESOURCE_NOT_FOUND")

    _, declining = await paypal.call("POST", "/v2/checkout/orders", EUR_25)
    await paypal.approve(declining["id"], outcome="INSTRUMENT_DECLINED")
    status, answer = await paypal.call("POST", f"/v2/checkout/orders/{declining['id']}/capture")
    assert (status, issue(answer)) == (422, "INSTRUMENT_DECLINED")
    _, pending = await paypal.call("POST", "/v2/checkout/orders", EUR_25)
    await paypal.approve(pending["id"], outcome="PENDING", refund_outcome="PENDING")
    status, answer = await paypal.call("POST", f"/v2/checkout/orders/{pending['id']}/capture")
    assert answer["purchase_units"][0]["payments"]["captures"][0]["status"] == "PENDING"


async def test_a_replay_and_a_request_in_flight_keep_to_paypals_documents(paypal):
    request_id = f"pay_contract_{uuid.uuid4().hex}"
    async with paypal.http.post(f"{paypal.standin}/_test/latency", json={"ms": 500}) as response:
        assert response.status == 200
    try:
        first, second = await asyncio.gather(
            paypal.call("POST", "/v2/checkout/orders", EUR_25, request_id=request_id),
            paypal.call("POST", "/v2/checkout/orders", EUR_25, request_id=request_id))
    finally:
        async with paypal.http.post(f"{paypal.standin}/_test/latency", json={"ms": 0}) as response:
            assert response.status == 200
    created, conflict = sorted([first, second], key=lambda answer: answer[0])
    assert created[0] == 201
    assert (conflict[0], issue(conflict[1])) == (409, "PREVIOUS_REQUEST_IN_PROGRESS")
    status, replay = await paypal.call("POST", "/v2/checkout/orders", EUR_25, request_id=request_id)
    assert (status, replay["id"]) == (201, created[1]["id"])


async def test_prism_reports_an_answer_that_breaks_paypals_documents(settings):
    """The check can fail: a capture whose amount is a number and whose status PayPal does not know."""
    async def malformed_capture(request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["id"], "status": "CAPTURED",
                                  "amount": {"currency_code": "EUR", "value": 25.0}})

    app = web.Application()
    app.router.add_get("/v2/payments/captures/{id}", malformed_capture)
    upstream = TestServer(app, host="127.0.0.1")
    await upstream.start_server()
    process, base = await asyncio.to_thread(start_prism, settings, "payments", str(upstream.make_url("")))
    try:
        async with aiohttp.ClientSession() as http, http.get(
                f"{base}/v2/payments/captures/3C679366HH908993F",
                headers={"Authorization": "Bearer x", "Content-Type": "application/json"}) as response:
            violations = json.loads(response.headers["sl-violations"])
            assert response.status == 500
    finally:
        await asyncio.to_thread(stop, process)
        await upstream.close()
    wrong = {(".".join(v["location"]), v["code"]) for v in violations}
    assert {("response.body.status", "enum"), ("response.body.amount.value", "type")} <= wrong
