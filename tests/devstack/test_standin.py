"""The benchmarks' provider stand-in speaks what the Stripe connector needs, keeps Stripe's
idempotency, and adds the latency it was told to, without serialising calls."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp.test_utils import TestServer

from connectors.stripe import StripeProvider
from devstack.standin import Standin, parse_latency
from paystream.domain.money import Money

EUR_5 = Money(500, "EUR")


@pytest.fixture
async def standin():
    made = []

    async def start(latency=(0.0, 0.0)):
        server = TestServer(Standin(latency, seed=1).app())
        await server.start_server()
        provider = StripeProvider(str(server.make_url("")), "sk_test_x", timeout_s=5, max_attempts=2)
        made.append((server, provider))
        return provider

    yield start
    for server, provider in made:
        await provider.close()
        await server.close()


async def test_the_connector_charges_and_is_declined_as_against_stripe(standin):
    provider = await standin()
    session = await provider.create_session("pay-1", EUR_5)
    paid = await provider.charge("pay-1", "cmd-1", session.transaction_id, EUR_5, "pm_card_visa")
    assert paid.outcome == "succeeded" and paid.charge_id.startswith("ch_")
    other = await provider.create_session("pay-2", EUR_5)
    declined = await provider.charge("pay-2", "cmd-1", other.transaction_id, EUR_5, "pm_card_chargeCustomerFail")
    assert (declined.outcome, declined.decline_code) == ("declined", "card_declined")
    again = await provider.charge("pay-2", "cmd-2", other.transaction_id, EUR_5, "pm_card_visa")
    assert again.outcome == "succeeded"


async def test_a_repeated_idempotency_key_answers_the_first_response(standin):
    provider = await standin()
    first = await provider.create_session("pay-1", EUR_5)
    assert (await provider.create_session("pay-1", EUR_5)).transaction_id == first.transaction_id
    assert (await provider.create_session("pay-2", EUR_5)).transaction_id != first.transaction_id


async def test_latency_is_added_per_call_and_calls_overlap(standin):
    provider = await standin((100.0, 100.0))
    started = time.perf_counter()
    await asyncio.gather(*(provider.create_session(f"pay-{i}", EUR_5) for i in range(50)))
    elapsed = time.perf_counter() - started
    # 50 calls of 100 ms each: one after another would take 5 s.
    assert 0.1 <= elapsed < 2.5


def test_latency_ranges():
    assert parse_latency("300-800") == (300.0, 800.0)
    assert parse_latency("0") == (0.0, 0.0)
