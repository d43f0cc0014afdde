"""Every error leaves Stripe-shaped, `{"error": {type, code, message, param, field, decline_code}}`,
with its HTTP status, and `Retry-After` where waiting helps."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ingress.http_errors import error_response, json_errors
from ingress.requests import StartPaymentRequest
from paystream.domain.errors import (
    CardDeclined,
    IllegalTransition,
    InvalidRequest,
    NotFound,
    ProviderUnavailable,
    Unavailable,
)


@pytest.mark.parametrize(
    ("type_", "code", "status"),
    [("invalid_request_error", "invalid_value", 422), ("invalid_request_error", "invalid_json", 400),
     ("invalid_request_error", "body_too_large", 413), ("not_found_error", "payment_not_found", 404),
     ("state_error", "payment_in_progress", 409), ("state_error", "amount_mismatch", 422),
     ("card_error", "card_declined", 402), ("provider_error", "provider_unavailable", 503),
     ("authentication_error", "invalid_api_key", 401), ("idempotency_error", "idempotency_key_reused", 409),
     ("unavailable_error", "command_unreadable", 503), ("rate_limit_error", "rate_limit_exceeded", 429),
     ("something_new", "x", 400)],
)
def test_status_follows_type_and_code(type_, code, status):
    assert error_response(type_, code, "m").status == status


RAISED = {
    "/invalid": InvalidRequest("invalid_amount", "bad amount", "amount"),
    "/missing": NotFound("receipt_not_found", "no such receipt for this user", "receipt_id"),
    "/state": IllegalTransition("payment_failed", "this payment failed"),
    "/declined": CardDeclined("card_declined", "declined", "payment_method", decline_code="insufficient_funds"),
    "/provider": ProviderUnavailable("provider_unavailable", "down"),
    "/unavailable": Unavailable("command_unreadable", "later"),
}


@pytest.fixture
async def client():
    async def raise_error(request):
        raise RAISED[request.path]

    async def parse(request):
        StartPaymentRequest.model_validate_json(await request.read())
        return web.json_response({})

    async def crash(request):
        raise RuntimeError("a bug")

    app = web.Application(middlewares=[json_errors], client_max_size=1024)
    for path in RAISED:
        app.router.add_get(path, raise_error)
    app.router.add_post("/parse", parse)
    app.router.add_get("/crash", crash)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


@pytest.mark.parametrize("path", list(RAISED))
async def test_domain_errors_become_their_status_and_body(client, path):
    error = RAISED[path]
    resp = await client.get(path)
    assert resp.status == error_response(error.type, error.code, "").status
    assert await resp.json() == {"error": {**error.as_dict(), "param": error.field}}
    assert ("Retry-After" in resp.headers) == (resp.status == 503)


def test_a_decline_carries_its_decline_code_and_a_503_says_when_to_retry():
    declined = error_response("card_error", "card_declined", "no", "payment_method", decline_code="expired_card")
    assert declined.status == 402
    error = json.loads(declined.body)["error"]
    assert (error["decline_code"], error["param"], error["field"]) == ("expired_card", "payment_method", "payment_method")
    assert error_response("unavailable_error", "command_unreadable", "later").headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [(b"{", 400, "invalid_json", None), (b"", 400, "invalid_json", None),
     (b'{"user_id": "u"}', 422, "missing_field", "email_id"),
     (b'{"user_id": 1, "email_id": "a@example.com", "timestamp": "2026-01-01T00:00:00Z", "payment_type": "credit"}',
      422, "invalid_type", "user_id"),
     (b'{"user_id": "u", "email_id": "a@example.com", "timestamp": "2026-01-01T00:00:00Z", '
      b'"payment_type": "credit", "amount": 5, "currency": "EUR"}', 422, "invalid_type", "amount"),
     (b'{"user_id": "u", "email_id": "a@example.com", "timestamp": "2026-01-01T00:00:00Z", '
      b'"payment_type": "credit", "x": 1}', 422, "unexpected_field", "x"),
     (b'{"user_id": "u", "email_id": "a@example.com", "timestamp": "2026-01-01T00:00:00Z", '
      b'"payment_type": "cash"}', 422, "invalid_value", "payment_type"),
     (b"x" * 2000, 413, "body_too_large", None)],
    ids=["truncated", "empty", "missing", "number-id", "number-amount", "unknown", "bad-literal", "too-large"],
)
async def test_validation_errors_name_the_field(client, body, status, code, field):
    resp = await client.post("/parse", data=body)
    error = (await resp.json())["error"]
    assert (resp.status, error["code"], error["field"]) == (status, code, field)
    assert error["type"] == "invalid_request_error" and error["message"]


async def test_an_unexpected_error_is_a_500_that_says_to_retry_and_leaks_nothing(client):
    resp = await client.get("/crash")
    body = await resp.json()
    assert resp.status == 500
    assert body["error"]["code"] == "internal_error"
    assert "a bug" not in body["error"]["message"] and "Idempotency-Key" in body["error"]["message"]


async def test_unknown_paths_and_methods_are_structured_too(client):
    resp = await client.get("/nowhere")
    assert (resp.status, (await resp.json())["error"]["code"]) == (404, "not_found")
    resp = await client.delete("/crash")
    assert (resp.status, (await resp.json())["error"]["code"]) == (405, "method_not_allowed")


async def test_an_outage_is_a_503_that_says_when_to_retry(client):
    resp = await client.get("/unavailable")
    assert (resp.status, resp.headers["Retry-After"]) == (503, "1")
    assert (await resp.json())["error"]["type"] == "unavailable_error"
    assert "Retry-After" not in (await client.get("/missing")).headers
