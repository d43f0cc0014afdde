"""PayPal through the whole pipeline (ingress, Kafka, worker, sinks, stores) and the dev stack's PayPal
stand-in: a payment started with `provider: paypal` (an order), approved by the payer, captured by
postPayment, receipted; a declined instrument answers 402 with its `decline_code`; a provider not
offered, or a PayPal start without an amount, is refused with its field."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiohttp
import pytest

from connectors.paypal import PayPalProvider
from tests.api_client import identity


@pytest.fixture
async def payer(stack):
    """The payer at PayPal (the stand-in's test-only approval page)."""
    async with aiohttp.ClientSession() as http:
        async def approve(order_id: str, **outcome: str) -> None:
            async with http.post(f"{stack['paypal']['address']}/_test/orders/{order_id}/approve",
                                 json=outcome) as response:
                assert response.status == 200, await response.text()
        yield approve


@pytest.fixture
async def paypal(settings):
    """PayPal's own record, read by id (what a merchant's PayPal dashboard shows)."""
    provider = PayPalProvider(settings.paypal_api_base, settings.paypal_client_id,
                              settings.paypal_secret.get_secret_value())
    yield provider
    await provider.close()


async def answered(api, path: str, body: dict):
    """The request's outcome: on a 202 (a busy machine), the same request again with its Idempotency-Key,
    as the API asks, until it says how it went."""
    key = uuid.uuid4().hex
    deadline = time.monotonic() + 120
    while True:
        response = await api.call("POST", path, body, idempotency_key=key)
        if response.status != 202 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))


async def start_paypal(api, who: dict, amount: str = "25.00", currency: str = "EUR"):
    return await answered(api, "/v1/startPayment", {**who, "amount": amount, "currency": currency,
                                                    "provider": "paypal"})


async def post(api, who: dict, order_id: str, amount: str, currency: str):
    return await answered(api, "/v1/postPayment", {**who, "transaction_id": order_id, "payment_method": "paypal",
                                                   "amount": amount, "currency": currency})


async def test_a_paypal_payment_started_approved_captured_and_receipted(api, payer, paypal):
    who = identity()
    started = await start_paypal(api, who)
    assert started.status == 201, started.body
    order_id = started.body["transaction_id"]
    assert (started.body["provider"], started.body["status"]) == ("paypal", "tokenized")
    assert order_id in started.body["client_secret"]  # the approval link the payer is sent to
    assert (started.body["amount"], started.body["amount_minor"], started.body["currency"]) == ("25.00", 2500, "EUR")

    # Posted before the payer approved: a decline that charges nothing; posted again once approved.
    early = await post(api, who, order_id, "25.00", "EUR")
    assert (early.status, early.body["error"]["decline_code"]) == (402, "order_not_approved"), early.body
    await payer(order_id)
    posted = await post(api, who, order_id, "25.00", "EUR")
    assert posted.status == 201, posted.body
    receipt = posted.body
    assert (receipt["status"], receipt["transaction_id"], receipt["amount_minor"]) == ("succeeded", order_id, 2500)

    # PayPal's own record: one capture, of that amount, the receipt's charge.
    (record,) = await paypal.look_up([order_id])
    assert [(c.charge_id, c.amount_minor, c.currency) for c in record.succeeded_charges] == [
        (receipt["charge_id"], 2500, "EUR")]
    read = await api.receipt(who, receipt["receipt_id"])
    assert read.status == 200 and read.body["receipt_id"] == receipt["receipt_id"]
    status = await api.payment(who, receipt["payment_id"])
    assert (status.status, status.body["status"], status.body["provider"]) == (200, "receipted", "paypal")


async def test_a_paypal_decline_is_402_with_its_decline_code(api, payer, paypal):
    who = identity()
    started = await start_paypal(api, who, "1500", "JPY")
    assert started.status == 201, started.body
    order_id = started.body["transaction_id"]
    await payer(order_id, outcome="INSTRUMENT_DECLINED")
    declined = await post(api, who, order_id, "1500", "JPY")
    assert declined.status == 402, declined.body
    assert (declined.body["error"]["code"], declined.body["error"]["decline_code"]) == (
        "card_declined", "instrument_declined")
    (record,) = await paypal.look_up([order_id])
    assert record.charges == () and record.result.outcome == "not_charged"
    status = await api.payment(who, started.body["payment_id"])
    assert (status.body["status"], status.body["decline_code"]) == ("declined", "instrument_declined")


async def test_a_paypal_start_is_refused_with_its_field_when_it_cannot_be_made(api):
    who = identity()
    no_amount = await api.call("POST", "/v1/startPayment", {**who, "provider": "paypal"})
    assert (no_amount.status, no_amount.body["error"]["code"], no_amount.body["error"]["param"]) == (
        422, "amount_required", "amount")
    unknown = await api.call("POST", "/v1/startPayment", {**who, "amount": "1.00", "currency": "EUR",
                                                          "provider": "paybuddy"})
    assert (unknown.status, unknown.body["error"]["param"]) == (422, "provider")
    isk = await start_paypal(api, who, "500", "ISK")  # a currency PayPal does not take: nothing made
    assert (isk.status, isk.body["error"]["code"], isk.body["error"]["param"]) == (
        422, "currency_not_supported", "currency"), isk.body


async def test_a_start_naming_no_provider_is_stripes(api):
    started = await answered(api, "/v1/startPayment", {**identity(), "amount": "12.34", "currency": "EUR"})
    assert started.status == 201, started.body
    assert (started.body["provider"], started.body["transaction_id"][:3]) == ("stripe", "pi_")
