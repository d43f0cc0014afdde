"""The PayPal connector against the dev stack's PayPal stand-in: an order as the session, the payer's
approval, the capture as the charge, declines, refunds, syncs by id, and what a lost answer or a
second request in flight does (never a second capture or refund)."""

from __future__ import annotations

import asyncio
import socket
import uuid

import aiohttp
import pytest

from connectors.paypal import PayPalProvider
from connectors.stripe import StripeProvider
from paystream import bootstrap
from paystream.domain.commands import StartPayment
from paystream.domain.errors import InvalidRequest, ProviderUnavailable, ProviderUnreachable
from paystream.domain.money import Money
from paystream.domain.provider import PaymentStatus, RefundReason, RefundStatus
from paystream.handlers import handle_start
from tests.unit.fakes import DictStore, clock
from tests.waits import wait_for

EUR_25 = Money(2500, "EUR")


@pytest.fixture
def standin(stack) -> str:
    return stack["paypal"]["address"]


@pytest.fixture
async def paypal(settings):
    provider = bootstrap.paypal_provider(settings)
    assert provider is not None, "stack up writes the stand-in's dev credentials into .env"
    yield provider
    await provider.close()


@pytest.fixture
async def payer(standin):
    """The payer's and PayPal's own doings at the stand-in (its test-only pages)."""
    async with aiohttp.ClientSession() as http:
        async def act(path: str, **body) -> dict:
            async with http.post(f"{standin}/_test/{path}", json=body) as response:
                assert response.status == 200, await response.text()
                return await response.json()
        yield act
        await act("latency", ms=0)


def payment_id() -> str:
    return f"pay_{uuid.uuid4().hex[:24]}"


def refund_ids(*names: str) -> list[str]:
    """Fresh refund ids (PayPal-Request-Id derives from them: a stand-in that outlives a run replays old ones)."""
    return [f"rf_{name}_{uuid.uuid4().hex[:12]}" for name in names]


async def charge(paypal, pid: str, attempt: str, order_id: str, amount: Money = EUR_25):
    """As the handler does it: prepare (charging nothing), then capture what was prepared."""
    prepared = await paypal.prepare_charge(pid, attempt, order_id, amount, "paypal")
    if prepared.result is not None:
        return prepared.result
    return await paypal.confirm(pid, attempt, prepared.intent_id)


async def captured_order(paypal, payer, amount: Money = EUR_25, **outcome) -> tuple[str, str, str]:
    pid = payment_id()
    session = await paypal.create_session(pid, amount)
    await payer(f"orders/{session.transaction_id}/approve", **outcome)
    result = await charge(paypal, pid, "cmd-1", session.transaction_id, amount)
    assert result.outcome == "succeeded", result
    return pid, session.transaction_id, result.charge_id


async def test_an_order_approved_then_captured(paypal, payer):
    pid = payment_id()
    session = await paypal.create_session(pid, EUR_25)
    assert session.client_secret and session.transaction_id in session.client_secret  # the approval link
    assert await paypal.session_secret(session.transaction_id) == session.client_secret
    # The same start again (a redelivered command) is the same order: PayPal-Request-Id replays it.
    assert (await paypal.create_session(pid, EUR_25)).transaction_id == session.transaction_id

    # Not approved yet: a decline that charges nothing (the payment may be posted once the payer approves).
    unapproved = await charge(paypal, pid, "cmd-0", session.transaction_id)
    assert (unapproved.outcome, unapproved.decline_code) == ("declined", "order_not_approved")
    assert (await paypal.sync_payment(session.transaction_id)).status == PaymentStatus.REQUIRES_ACTION

    await payer(f"orders/{session.transaction_id}/approve")
    assert (await paypal.sync_payment(session.transaction_id)).status == PaymentStatus.PENDING
    result = await charge(paypal, pid, "cmd-1", session.transaction_id)
    assert result.outcome == "succeeded" and result.charge_id
    # The same capture again (its answer lost) answers the first one's outcome, and captures nothing more.
    assert await paypal.confirm(pid, "cmd-1", session.transaction_id) == result
    # Another attempt finds it captured before capturing anything.
    again = await paypal.prepare_charge(pid, "cmd-2", session.transaction_id, EUR_25, "paypal")
    assert again.result == result
    (record,) = await paypal.look_up([session.transaction_id])
    assert (record.found, record.amount_minor, record.currency) == (True, 2500, "EUR")
    assert [(c.charge_id, c.amount_minor, c.currency) for c in record.succeeded_charges] == [
        (result.charge_id, 2500, "EUR")]
    synced = await paypal.sync_payment(session.transaction_id)
    assert (synced.status, synced.amount, synced.amount_refunded) == (PaymentStatus.SUCCEEDED, EUR_25, None)


async def test_a_zero_decimal_currency_goes_as_whole_units(paypal, payer, standin):
    _, order_id, _ = await captured_order(paypal, payer, Money(1500, "JPY"))
    (record,) = await paypal.look_up([order_id])
    assert (record.amount_minor, record.currency) == (1500, "JPY")
    huf = await paypal.sync_payment((await paypal.create_session(payment_id(), Money(123400, "HUF"))).transaction_id)
    assert huf.amount == Money(123400, "HUF")  # HUF 1234.00 went as "1234"
    with pytest.raises(InvalidRequest) as refused:
        await paypal.create_session(payment_id(), Money(123450, "HUF"))
    assert (refused.value.code, refused.value.field) == ("amount_not_supported", "amount")
    with pytest.raises(InvalidRequest) as refused:
        await paypal.create_session(payment_id(), Money(500, "ISK"))
    assert refused.value.code == "currency_not_supported"


async def test_a_declined_instrument_is_a_decline_with_its_code(paypal, payer):
    pid = payment_id()
    session = await paypal.create_session(pid, EUR_25)
    await payer(f"orders/{session.transaction_id}/approve", outcome="INSTRUMENT_DECLINED")
    result = await charge(paypal, pid, "cmd-1", session.transaction_id)
    assert (result.outcome, result.decline_code) == ("declined", "instrument_declined")
    (record,) = await paypal.look_up([session.transaction_id])
    assert record.result.outcome == "not_charged" and record.charges == ()
    # The payer approves again with another instrument: the next attempt captures.
    await payer(f"orders/{session.transaction_id}/approve")
    assert (await charge(paypal, pid, "cmd-2", session.transaction_id)).outcome == "succeeded"


async def test_a_declined_capture_is_a_decline(paypal, payer):
    pid = payment_id()
    session = await paypal.create_session(pid, EUR_25)
    await payer(f"orders/{session.transaction_id}/approve", outcome="DECLINED")
    result = await charge(paypal, pid, "cmd-1", session.transaction_id)
    assert (result.outcome, result.decline_code) == ("declined", "capture_declined")
    assert (await paypal.sync_payment(session.transaction_id)).status == PaymentStatus.FAILED


async def test_a_pending_capture_is_not_charged_until_paypal_settles_it(paypal, payer):
    pid = payment_id()
    session = await paypal.create_session(pid, EUR_25)
    await payer(f"orders/{session.transaction_id}/approve", outcome="PENDING")
    assert (await charge(paypal, pid, "cmd-1", session.transaction_id)).outcome == "not_charged"
    assert (await paypal.sync_payment(session.transaction_id)).status == PaymentStatus.PROCESSING
    # Tried again, the capture is not made twice: the pending one is read again.
    assert (await charge(paypal, pid, "cmd-1", session.transaction_id)).outcome == "not_charged"
    (record,) = await paypal.look_up([session.transaction_id])
    assert len(record.charges) == 1
    await payer(f"captures/{record.charges[0].charge_id}/settle", status="COMPLETED")
    (record,) = await paypal.look_up([session.transaction_id])
    assert record.result.outcome == "succeeded" and record.result.charge_id == record.charges[0].charge_id


async def test_two_captures_in_flight_make_one(paypal, payer):
    """The same capture sent twice at once: PayPal answers the second 409 PREVIOUS_REQUEST_IN_PROGRESS while
    the first runs; the connector tries it again with the same PayPal-Request-Id and gets the first's result."""
    pid = payment_id()
    session = await paypal.create_session(pid, EUR_25)
    await payer(f"orders/{session.transaction_id}/approve")
    await payer("latency", ms=100)
    first, second = await asyncio.gather(paypal.confirm(pid, "cmd-1", session.transaction_id),
                                         paypal.confirm(pid, "cmd-1", session.transaction_id))
    assert first.outcome == second.outcome == "succeeded" and first.charge_id == second.charge_id
    (record,) = await paypal.look_up([session.transaction_id])
    assert len(record.charges) == 1


async def test_refunds_partial_then_the_rest_and_the_refusals(paypal, payer):
    _, order_id, _ = await captured_order(paypal, payer)
    rf_part1, rf_over, rf_rest, rf_more, rf_never = refund_ids("part1", "over", "rest", "more", "never")
    part = await paypal.refund(rf_part1, "pay_x", order_id, Money(1000, "EUR"), RefundReason.REQUESTED_BY_CUSTOMER)
    assert (part.found, part.status, part.amount) == (True, RefundStatus.SUCCEEDED, Money(1000, "EUR"))
    # The same refund again (a redelivered command) is the same refund, not a second one.
    assert (await paypal.refund(rf_part1, "pay_x", order_id, Money(1000, "EUR"))).provider_refund_id \
        == part.provider_refund_id
    synced = await paypal.sync_payment(order_id)
    assert synced.amount_refunded == Money(1000, "EUR")

    over = await paypal.refund(rf_over, "pay_x", order_id, Money(1501, "EUR"))
    assert (over.found, over.status, over.failure_reason) == (False, RefundStatus.FAILED, "amount_too_large")
    rest = await paypal.refund(rf_rest, "pay_x", order_id, Money(1500, "EUR"))
    assert rest.status == RefundStatus.SUCCEEDED
    done = await paypal.refund(rf_more, "pay_x", order_id, Money(100, "EUR"))
    assert (done.status, done.failure_reason) == (RefundStatus.FAILED, "charge_already_refunded")
    assert (await paypal.sync_payment(order_id)).amount_refunded == EUR_25

    # Synced by PayPal's id, and by paystream's own among the order's refunds.
    assert (await paypal.sync_refund(rf_rest, order_id, rest.provider_refund_id)).status == RefundStatus.SUCCEEDED
    by_ours = await paypal.sync_refund(rf_part1, order_id)
    assert (by_ours.found, by_ours.provider_refund_id, by_ours.amount) == (True, part.provider_refund_id,
                                                                            Money(1000, "EUR"))
    assert not (await paypal.sync_refund(rf_never, order_id)).found


async def test_a_pending_refund_is_synced_until_it_settles(paypal, payer):
    _, order_id, _ = await captured_order(paypal, payer, refund_outcome="PENDING")
    (rf_pend,) = refund_ids("pend")
    refund = await paypal.refund(rf_pend, "pay_x", order_id, Money(500, "EUR"))
    assert refund.status == RefundStatus.PENDING
    await payer(f"refunds/{refund.provider_refund_id}/settle", status="FAILED")
    assert (await paypal.sync_refund(rf_pend, order_id, refund.provider_refund_id)).status == RefundStatus.FAILED


async def test_a_refund_whose_outcome_is_not_known_is_unknown_and_a_sync_finds_it(paypal, payer, standin):
    """The same refund asked twice at once (a redelivery while the first call runs): the second meets 409
    PREVIOUS_REQUEST_IN_PROGRESS past its one try, so its outcome is unknown; never a second refund."""
    _, order_id, _ = await captured_order(paypal, payer)
    (rf_twice,) = refund_ids("twice")
    impatient = PayPalProvider(standin, "paystream-dev", "x", timeout_s=5, max_attempts=1)
    try:
        await impatient.sync_payment(order_id)  # its token, before the stand-in slows down
        await payer("latency", ms=400)
        first = asyncio.create_task(paypal.refund(rf_twice, "pay_x", order_id, Money(700, "EUR")))
        await asyncio.sleep(0.2)
        second = await impatient.refund(rf_twice, "pay_x", order_id, Money(700, "EUR"))
        assert (second.found, second.status) == (True, RefundStatus.UNKNOWN)
        assert (await first).status == RefundStatus.SUCCEEDED
    finally:
        await impatient.close()
    await payer("latency", ms=0)
    found = await paypal.sync_refund(rf_twice, order_id)
    assert (found.found, found.status, found.amount) == (True, RefundStatus.SUCCEEDED, Money(700, "EUR"))
    assert (await paypal.sync_payment(order_id)).amount_refunded == Money(700, "EUR")


async def test_a_lost_capture_answer_is_unavailable_and_the_look_up_settles_it(paypal, payer, standin):
    pid = payment_id()
    session = await paypal.create_session(pid, EUR_25)
    await payer(f"orders/{session.transaction_id}/approve")
    impatient = PayPalProvider(standin, "paystream-dev", "x", timeout_s=0.2, max_attempts=1)
    try:
        await impatient.sync_payment(session.transaction_id)
        await payer("latency", ms=600)
        with pytest.raises(ProviderUnavailable) as lost:
            await impatient.confirm(pid, "cmd-1", session.transaction_id)
        assert not isinstance(lost.value, ProviderUnreachable)  # it reached PayPal: something may be made
    finally:
        await impatient.close()
    await payer("latency", ms=0)

    async def captured():
        (record,) = await paypal.look_up([session.transaction_id])
        return record if record.result.outcome == "succeeded" else None
    record = await wait_for(captured, timeout=5)  # the stand-in finishes the capture it was asked for
    assert await paypal.confirm(pid, "cmd-1", session.transaction_id) == record.result


async def test_an_expired_token_is_fetched_again_once(paypal, payer):
    session = await paypal.create_session(payment_id(), EUR_25)
    paypal._token = "revoked"  # as a token PayPal no longer takes before its expiry
    assert (await paypal.sync_payment(session.transaction_id)).found
    assert paypal._token != "revoked"


async def test_an_unknown_order_and_a_provider_that_cannot_be_reached(paypal):
    (record,) = await paypal.look_up(["NOSUCHORDER0001"])
    assert not record.found
    assert not (await paypal.sync_payment("NOSUCHORDER0001")).found
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    nowhere = PayPalProvider(f"http://127.0.0.1:{closed}", "id", "secret", max_attempts=2)
    try:
        with pytest.raises(ProviderUnreachable):
            await nowhere.create_session(payment_id(), EUR_25)
    finally:
        await nowhere.close()


async def test_a_start_falls_back_to_paypal_only_when_stripe_cannot_be_reached(paypal):
    """The worker's start over the real connectors: Stripe at a port nothing listens on (no request can
    have made anything there) and the PayPal stand-in; an account that opts in starts at PayPal."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    stripe = StripeProvider(f"http://127.0.0.1:{closed}", "sk_test_x", max_attempts=2)
    try:
        store, pid = DictStore(), payment_id()
        command = StartPayment(command_id="cmd-1", payment_id=pid, account="acme", user_id="u1", email="sealed",
                               requested_at="2026-12-08T00:00:00Z", payment_type="credit", amount=EUR_25,
                               provider="stripe", fallback_provider="paypal")
        outcome = await handle_start(command, store, {"stripe": stripe, "paypal": paypal}, clock())
        assert outcome.error is None, outcome.error
        payment = store.get(pid)
        assert (payment.provider, payment.status.value) == ("paypal", "tokenized")
        assert (await paypal.sync_payment(payment.transaction_id)).amount == EUR_25
        assert outcome.client_secret and payment.transaction_id in outcome.client_secret

        # Not opted in: 503 (provider_unavailable), nothing made anywhere.
        other = payment_id()
        refused = await handle_start(command.model_copy(update={"payment_id": other, "fallback_provider": None}),
                                     store, {"stripe": stripe, "paypal": paypal}, clock())
        assert isinstance(refused.error, ProviderUnreachable)
        assert (store.get(other).status.value, store.get(other).transaction_id) == ("failed", None)
    finally:
        await stripe.close()
