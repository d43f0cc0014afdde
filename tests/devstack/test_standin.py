"""The benchmarks' provider stand-in speaks what the Stripe connector needs, keeps Stripe's
idempotency, and adds the latency it was told to, without serialising calls."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestServer

from connectors.stripe import StripeProvider
from devstack.standin import Standin, parse_latency
from paystream.domain.money import Money

EUR_5 = Money(500, "EUR")


@pytest.fixture
async def standin():
    made = []

    async def start(latency=(0.0, 0.0), sleep=asyncio.sleep):
        server = TestServer(Standin(latency, seed=1, sleep=sleep).app())
        await server.start_server()
        provider = StripeProvider(str(server.make_url("")), "sk_test_x", timeout_s=5, max_attempts=2)
        made.append((server, provider))
        return provider

    yield start
    for server, provider in made:
        await provider.close()
        await server.close()


async def charge(provider, payment_id: str, attempt: str, transaction_id: str, method: str, used=()):
    """As the worker does it: prepare (charging nothing), then confirm what was prepared."""
    prepared = await provider.prepare_charge(payment_id, attempt, transaction_id, EUR_5, method, used=used)
    if prepared.result is not None:
        return prepared, prepared.result
    return prepared, await provider.confirm(payment_id, attempt, prepared.intent_id)


async def test_the_connector_charges_and_is_declined_as_against_stripe(standin):
    provider = await standin()
    session = await provider.create_session("pay-1", EUR_5)
    _, paid = await charge(provider, "pay-1", "cmd-1", session.transaction_id, "pm_card_visa")
    assert paid.outcome == "succeeded" and paid.charge_id.startswith("ch_")
    other = await provider.create_session("pay-2", EUR_5)
    first, declined = await charge(provider, "pay-2", "cmd-1", other.transaction_id, "pm_card_chargeCustomerFail")
    assert (declined.outcome, declined.decline_code) == ("declined", "card_declined")
    second, again = await charge(provider, "pay-2", "cmd-2", other.transaction_id, "pm_card_visa",
                                 used=[first.intent_id])
    assert again.outcome == "succeeded"
    # Recovery's look-up by id reads the stand-in's records as Stripe's.
    records = await provider.look_up([first.intent_id, second.intent_id])
    assert [r.result.outcome for r in records] == ["declined", "succeeded"]
    assert [(c.amount_minor, c.currency) for c in records[1].succeeded_charges] == [(500, "EUR")]


async def test_a_repeated_idempotency_key_answers_the_first_response(standin):
    provider = await standin()
    first = await provider.create_session("pay-1", EUR_5)
    assert (await provider.create_session("pay-1", EUR_5)).transaction_id == first.transaction_id
    assert (await provider.create_session("pay-2", EUR_5)).transaction_id != first.transaction_id


async def test_latency_is_added_per_call_and_calls_overlap(standin):
    calls, everyone_waiting = [], asyncio.Event()

    async def sleep(seconds: float) -> None:
        calls.append(seconds)
        if len(calls) == 50:
            everyone_waiting.set()
        # No call's latency ends before all 50 are in theirs: a stand-in that served calls one after
        # another would never get there (and the wait below would time out).
        await asyncio.wait_for(everyone_waiting.wait(), 30)

    provider = await standin((100.0, 100.0), sleep)
    sessions = await asyncio.gather(*(provider.create_session(f"pay-{i}", EUR_5) for i in range(50)))
    assert calls == [0.1] * 50
    assert len({s.transaction_id for s in sessions}) == 50


def test_latency_ranges():
    assert parse_latency("300-800") == (300.0, 800.0)
    assert parse_latency("0") == (0.0, 0.0)
