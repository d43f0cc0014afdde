"""The Stripe connector's requests against Stripe's own OpenAPI spec, as stripe-mock serves it.

stripe-mock (github.com/stripe/stripe-mock, built by `stack up`) validates every request against
Stripe's published spec and answers 400 to any parameter or path the real API would refuse. It
keeps no state (a confirmed intent still reads `requires_payment_method`), so it cannot carry a
payment to the end; here it only judges the requests. Every kind of request the connector makes is
sent through the connector's own code; the test fails on any that stripe-mock rejects, and on any
kind of request the connector makes (every `_call` in connectors/stripe.py) that was not sent.
Each request goes through the official SDK with the connector's pinned `Stripe-Version`, the
version of the spec this stripe-mock serves.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from connectors.stripe import StripeProvider
from devstack import gotools
from paystream.domain.money import Money
from paystream.domain.provider import RefundReason

CONNECTOR = Path(__file__).resolve().parents[2] / "connectors" / "stripe.py"
EUR_9 = Money(900, "EUR")


def operations_in_the_connector() -> set[str]:
    return set(re.findall(r'_call\(\s*"([a-z_]+)"', CONNECTOR.read_text()))


@pytest.fixture(scope="module")
def stripe_mock(stack, settings):
    """stripe-mock on its own port (the sandbox's + 2 unless set), from the binary `stack up` built."""
    binary = gotools.installed(settings, gotools.STRIPE_MOCK)
    where = urlsplit(settings.stripe_mock_base)
    server = subprocess.Popen([str(binary), "-http-addr", f"{where.hostname}:{where.port}",
                               # HTTPS too, else on its fixed default port (12112) that may be taken
                               "-https-addr", f"{where.hostname}:0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection((where.hostname, where.port), timeout=1).close()
            break
        except OSError:
            assert server.poll() is None, f"stripe-mock exited: {server.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "stripe-mock did not listen within 30 s"
            time.sleep(0.2)
    yield settings.stripe_mock_base
    server.terminate()
    server.wait(timeout=10)


class RecordingProvider(StripeProvider):
    """The connector as it is, noting each request it sends and what the server answered."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str, str, int]] = []

    def _observe(self, operation, method, path, status):
        self.sent.append((operation, method, path, status))


async def test_every_request_the_connector_makes_is_valid_by_stripes_spec(stripe_mock, settings):
    provider = RecordingProvider(stripe_mock, "sk_test_123", timeout_s=10, max_attempts=1)
    try:
        card_session = await provider.create_session("pay_contract1", None)          # a SetupIntent
        session = await provider.create_session("pay_contract2", EUR_9)              # a PaymentIntent
        await provider.session_secret(card_session.transaction_id)
        await provider.session_secret(session.transaction_id)
        # The session's intent given a payment method; stripe-mock's fixture intent never asks for
        # this amount, so the connector then makes a fresh intent with the method on it.
        prepared = await provider.prepare_charge("pay_contract2", "cmd-1", session.transaction_id, EUR_9,
                                                 "pm_card_visa")
        await provider.confirm("pay_contract2", "cmd-1", prepared.intent_id or session.transaction_id)
        # A fresh intent outright (the session's was used already), then a look-up of the record.
        await provider.prepare_charge("pay_contract2", "cmd-2", session.transaction_id, EUR_9, "pm_card_visa",
                                      used=[session.transaction_id])
        await provider.look_up([session.transaction_id])
        # The rest of the port: sync, refund (part, with a reason), the refund synced both ways, void.
        await provider.sync_payment(session.transaction_id)
        made = await provider.refund("rf_contract", "pay_contract2", session.transaction_id, Money(300, "EUR"),
                                     RefundReason.REQUESTED_BY_CUSTOMER)
        await provider.sync_refund("rf_contract", session.transaction_id, made.provider_refund_id)
        await provider.sync_refund("rf_contract", session.transaction_id)
        await provider.void("pay_contract1", session.transaction_id)
    finally:
        await provider.close()

    rejected = [sent for sent in provider.sent if sent[3] >= 400]
    assert not rejected, f"stripe-mock refused these requests as Stripe's spec does: {rejected}"
    assert operations_in_the_connector() - {op for op, *_ in provider.sent} == set()
    assert {(m, re.sub(r"/(pi|seti|re)_\w+", "/{id}", p)) for _, m, p, _ in provider.sent} >= {
        ("POST", "/v1/setup_intents"), ("POST", "/v1/payment_intents"), ("POST", "/v1/payment_intents/{id}"),
        ("POST", "/v1/payment_intents/{id}/confirm"), ("GET", "/v1/payment_intents/{id}"),
        ("GET", "/v1/setup_intents/{id}"), ("POST", "/v1/refunds"), ("GET", "/v1/refunds/{id}"),
        ("GET", "/v1/refunds"), ("POST", "/v1/payment_intents/{id}/cancel")}
