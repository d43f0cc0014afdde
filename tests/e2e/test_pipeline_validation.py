"""Bad input gets a structured error and writes nothing to Kafka."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.api_client import identity
from tests.kafka_probe import end_offsets

START = {**identity("validation-user"), "amount": "12.34", "currency": "EUR"}
POST = {**identity("validation-user"), "transaction_id": "pi_unknown", "amount": "12.34",
        "currency": "EUR", "payment_method": "pm_card_visa"}


def without(body: dict, field: str) -> dict:
    return {k: v for k, v in body.items() if k != field}


CASES = [
    # (name, path, body or raw bytes, status, code, field)
    ("float amount", "/startPayment", {**START, "amount": 12.34}, 422, "invalid_type", "amount"),
    ("integer amount", "/postPayment", {**POST, "amount": 12}, 422, "invalid_type", "amount"),
    ("negative amount", "/startPayment", {**START, "amount": "-1.00"}, 422, "invalid_amount", "amount"),
    ("zero amount", "/startPayment", {**START, "amount": "0.00"}, 422, "invalid_amount", "amount"),
    ("too many decimals", "/startPayment", {**START, "amount": "1.234"}, 422, "invalid_amount", "amount"),
    ("exponent amount", "/startPayment", {**START, "amount": "1e3"}, 422, "invalid_amount", "amount"),
    ("unknown currency", "/startPayment", {**START, "currency": "ABC"}, 422, "invalid_currency", "currency"),
    ("two-letter currency", "/postPayment", {**POST, "currency": "eu"}, 422, "invalid_value", "currency"),
    ("separator in user_id", "/startPayment", {**START, "user_id": "acct:u1"}, 422, "invalid_value", "user_id"),
    ("gold is no currency", "/startPayment", {**START, "currency": "XAU"}, 422, "invalid_currency", "currency"),
    ("amount without currency", "/startPayment", without(START, "currency"), 422, "missing_field", "currency"),
    ("unknown payment_type", "/startPayment", {**START, "payment_type": "bitcoin"}, 422, "invalid_value", "payment_type"),
    ("missing user_id", "/startPayment", without(START, "user_id"), 422, "missing_field", "user_id"),
    ("missing transaction_id", "/postPayment", without(POST, "transaction_id"), 422, "missing_field", "transaction_id"),
    ("missing amount on post", "/postPayment", without(POST, "amount"), 422, "missing_field", "amount"),
    ("extra field", "/startPayment", {**START, "card_number": "4242424242424242"}, 422, "unexpected_field", "card_number"),
    ("bad email", "/startPayment", {**START, "email_id": "not-an-email"}, 422, "invalid_value", "email_id"),
    ("bad timestamp", "/startPayment", {**START, "timestamp": "yesterday"}, 422, "invalid_value", "timestamp"),
    ("numeric user_id", "/startPayment", {**START, "user_id": 42}, 422, "invalid_type", "user_id"),
    ("body is a list", "/startPayment", [START], 422, "invalid_type", None),
    ("malformed JSON", "/startPayment", b'{"user_id": ', 400, "invalid_json", None),
    ("empty body", "/postPayment", b"", 400, "invalid_json", None),
    ("body over 64 KiB", "/startPayment", json.dumps({**START, "pad": "x" * 70_000}).encode(), 413, "body_too_large", None),
    ("unknown transaction", "/postPayment", POST, 404, "payment_not_found", "transaction_id"),
]


@pytest.fixture
def commands_unchanged(stack, settings):
    bootstrap = stack["kafka"]["address"]
    before = end_offsets(bootstrap, settings.topics.commands)
    yield
    assert end_offsets(bootstrap, settings.topics.commands) == before, "a refused request reached Kafka"


@pytest.mark.parametrize(("name", "path", "body", "status", "code", "field"), CASES, ids=[c[0] for c in CASES])
async def test_bad_input_is_refused_with_structured_error(api, commands_unchanged, name, path, body, status,
                                                           code, field):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await api.call("POST", path, raw=raw, headers={"Content-Type": "application/json"},
                              idempotency_key=uuid.uuid4().hex)
    assert response.status == status, response.body
    error = response.body["error"]
    assert set(error) == {"type", "code", "message", "param", "field", "decline_code"}
    assert (error["code"], error["param"], error["field"]) == (code, field, field)
    assert error["message"]


@pytest.mark.parametrize("key", [None, "", "wrong-key"])
async def test_missing_or_wrong_api_key_is_401(api, commands_unchanged, key):
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    async with api.session.post(api.base + "/startPayment", json=START, headers=headers) as resp:
        body = await resp.json()
    assert resp.status == 401
    assert body["error"]["code"] == "invalid_api_key"


async def test_bad_receipt_queries(api, commands_unchanged):
    missing = await api.call("GET", "/getReceipt", params={"receipt_id": "rcpt_x"})
    assert (missing.status, missing.body["error"]["code"], missing.body["error"]["field"]) == (422, "missing_field", "user_id")
    unknown = await api.call("GET", "/getReceipt", params={"receipt_id": "rcpt_nope", "user_id": "u"})
    assert (unknown.status, unknown.body["error"]["code"]) == (404, "receipt_not_found")
    posted = await api.call("POST", "/getReceipt", {"receipt_id": "rcpt_nope", "user_id": "u", "extra": 1})
    assert (posted.status, posted.body["error"]["code"]) == (422, "unexpected_field")


async def test_reused_idempotency_key_with_other_body_is_409_and_writes_nothing(api, stack, settings):
    key = uuid.uuid4().hex
    who = identity()
    first = await api.start(who, "1.00", "EUR", idempotency_key=key)
    assert first.status == 201
    before = end_offsets(stack["kafka"]["address"], settings.topics.commands)
    reused = await api.start(who, "2.00", "EUR", idempotency_key=key)
    assert reused.status == 409
    assert reused.body["error"]["code"] == "idempotency_key_reused"
    assert end_offsets(stack["kafka"]["address"], settings.topics.commands) == before
