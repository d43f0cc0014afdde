"""The Stripe connector's decisions, against a scripted in-process HTTP stand-in of Stripe.

(The same connector runs against the real sandbox in tests/integration.) What
is checked here is the logic: which calls it makes, with which idempotency
keys, what it retries, and how it reads each answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectors.stripe import STRIPE_API_VERSION, StripeProvider
from paystream.domain.errors import ProviderUnavailable, ProviderUnreachable
from paystream.domain.money import Money
from paystream.domain.provider import InvalidWebhook, PaymentStatus, RefundReason, RefundStatus

EUR_12 = Money(1234, "EUR")
WEBHOOK_SECRET = "whsec_test_paystream"
DECLINE = (402, {"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                           "message": "Your card has insufficient funds."}})


def intent(intent_id: str, status: str, payment_id: str = "pay-1", **extra) -> dict:
    return {"id": intent_id, "object": "payment_intent", "status": status, "client_secret": f"{intent_id}_secret",
            "amount": 1234, "currency": "eur", "metadata": {"payment_id": payment_id}, **extra}


class FakeStripe:
    """Answers each (method, path) from a script of (status, body); records every request."""

    def __init__(self, script: dict[tuple[str, str], list[tuple[int, dict]]]) -> None:
        self.script = {key: list(answers) for key, answers in script.items()}
        self.requests: list[tuple[str, str, dict, str | None]] = []
        self.versions: list[str | None] = []

    async def handle(self, request: web.Request) -> web.Response:
        form = dict(await request.post()) if request.method == "POST" else dict(request.query)
        self.requests.append((request.method, request.path, form, request.headers.get("Idempotency-Key")))
        self.versions.append(request.headers.get("Stripe-Version"))
        answers = self.script.get((request.method, request.path))
        if not answers:
            return web.json_response({"error": {"message": f"unscripted {request.method} {request.path}"}}, status=404)
        status, body, *headers = answers.pop(0) if len(answers) > 1 else answers[0]
        return web.json_response(body, status=status, headers=headers[0] if headers else None)

    def paths(self) -> list[str]:
        return [f"{method} {path}" for method, path, _, _ in self.requests]


@pytest.fixture
async def stripe():
    servers, fakes = [], []

    async def start(script) -> tuple[FakeStripe, StripeProvider]:
        fake = FakeStripe(script)
        fakes.append(fake)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", fake.handle)
        server = TestServer(app)
        await server.start_server()
        provider = StripeProvider(str(server.make_url("")), "sk_test_x", timeout_s=2, max_attempts=3,
                                  webhook_secret=WEBHOOK_SECRET)
        servers.append((server, provider))
        return fake, provider

    yield start
    for server, provider in servers:
        await provider.close()
        await server.close()
    # Never a listing: its cost would grow with the provider's history.
    for fake in fakes:
        assert not {"GET /v1/payment_intents", "GET /v1/charges"} & set(fake.paths()), fake.paths()


async def test_session_with_an_amount_is_a_payment_intent_keyed_by_the_payment(stripe):
    fake, provider = await stripe({("POST", "/v1/payment_intents"): [(200, intent("pi_1", "requires_payment_method"))]})
    session = await provider.create_session("pay-1", EUR_12)
    assert (session.transaction_id, session.client_secret) == ("pi_1", "pi_1_secret")
    (_, _, form, key), = fake.requests
    assert form == {"metadata[payment_id]": "pay-1", "amount": "1234", "currency": "eur"}
    assert key == "paystream-pay-1-session"


async def test_session_without_an_amount_is_a_setup_intent(stripe):
    fake, provider = await stripe({("POST", "/v1/setup_intents"): [(200, {"id": "seti_1", "client_secret": "s"})]})
    assert (await provider.create_session("pay-1", None)).transaction_id == "seti_1"


async def charge(provider, attempt: str, transaction_id: str, method: str, used=()):
    """What the handler does: prepare, then (once the intent is on record) confirm."""
    prepared = await provider.prepare_charge("pay-1", attempt, transaction_id, EUR_12, method, used=used)
    if prepared.result is not None:
        return prepared, prepared.result
    return prepared, await provider.confirm("pay-1", attempt, prepared.intent_id)


async def test_the_first_attempt_attaches_to_the_session_intent_then_confirms_with_keys_per_attempt(stripe):
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "requires_confirmation"))],
        ("POST", "/v1/payment_intents/pi_1/confirm"): [(200, intent("pi_1", "succeeded", latest_charge="ch_1"))],
    })
    prepared, result = await charge(provider, "cmd-9", "pi_1", "pm_card_visa")
    assert (prepared.intent_id, result.outcome, result.charge_id) == ("pi_1", "succeeded", "ch_1")
    assert fake.paths() == ["POST /v1/payment_intents/pi_1", "POST /v1/payment_intents/pi_1/confirm"]
    assert [key for *_, key in fake.requests] == ["paystream-pay-1-attach-cmd-9", "paystream-pay-1-confirm-cmd-9"]


async def test_preparing_charges_nothing(stripe):
    fake, provider = await stripe({("POST", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "requires_confirmation"))],
                                   ("POST", "/v1/payment_intents"): [(200, intent("pi_2", "requires_confirmation"))]})
    assert (await provider.prepare_charge("pay-1", "cmd-1", "pi_1", EUR_12, "pm_x")).intent_id == "pi_1"
    assert (await provider.prepare_charge("pay-1", "cmd-2", "pi_1", EUR_12, "pm_x", used=["pi_1"])).intent_id == "pi_2"
    assert not any(path.endswith("/confirm") for path in fake.paths())
    assert all("confirm" not in form for _, _, form, _ in fake.requests)


async def test_a_decline_is_read_with_its_code_and_not_retried(stripe):
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "requires_confirmation"))],
        ("POST", "/v1/payment_intents/pi_1/confirm"): [DECLINE],
    })
    _, result = await charge(provider, "cmd-1", "pi_1", "pm_x")
    assert (result.outcome, result.decline_code) == ("declined", "insufficient_funds")
    assert fake.paths().count("POST /v1/payment_intents/pi_1/confirm") == 1


async def test_a_later_attempt_gets_a_fresh_intent_of_its_own(stripe):
    """The session's intent carried an earlier attempt: this one is made, unconfirmed, for the handler to record."""
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents"): [(200, intent("pi_2", "requires_confirmation"))],
        ("POST", "/v1/payment_intents/pi_2/confirm"): [(200, intent("pi_2", "succeeded", latest_charge="ch_2"))],
    })
    prepared, result = await charge(provider, "cmd-2", "pi_1", "pm_good", used=["pi_1"])
    assert (prepared.intent_id, result.charge_id) == ("pi_2", "ch_2")
    assert fake.paths() == ["POST /v1/payment_intents", "POST /v1/payment_intents/pi_2/confirm"]
    _, _, created, key = fake.requests[0]
    assert created == {"metadata[payment_id]": "pay-1", "amount": "1234", "currency": "eur", "payment_method": "pm_good"}
    assert key == "paystream-pay-1-intent-cmd-2"


async def test_a_session_intent_that_cannot_carry_the_charge_is_replaced(stripe):
    """localstripe keeps a declined intent unconfirmable: attaching a card leaves it needing one."""
    declined = intent("pi_1", "requires_payment_method", last_payment_error={"code": "card_declined"})
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1"): [(200, declined)],
        ("POST", "/v1/payment_intents"): [(200, intent("pi_2", "requires_confirmation"))],
    })
    assert (await provider.prepare_charge("pay-1", "cmd-2", "pi_1", EUR_12, "pm_good")).intent_id == "pi_2"


async def test_a_session_intent_whose_amount_was_changed_is_never_charged(stripe):
    """Someone changed the intent's amount at the provider: paystream charges what it recorded, on a fresh intent."""
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "requires_confirmation", amount="9999"))],
        ("POST", "/v1/payment_intents"): [(200, intent("pi_2", "requires_confirmation"))],
    })
    assert (await provider.prepare_charge("pay-1", "cmd-1", "pi_1", EUR_12, "pm_good")).intent_id == "pi_2"
    assert fake.requests[-1][2]["amount"] == "1234"


async def test_a_session_intent_found_charged_is_not_confirmed_again(stripe):
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1"): [(400, {"error": {"message": "unexpected state"}})],
        ("GET", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "succeeded", latest_charge="ch_1"))],
    })
    prepared = await provider.prepare_charge("pay-1", "cmd-1", "pi_1", EUR_12, "pm_card_visa")
    assert (prepared.intent_id, prepared.result.outcome, prepared.result.charge_id) == ("pi_1", "succeeded", "ch_1")
    assert fake.paths() == ["POST /v1/payment_intents/pi_1", "GET /v1/payment_intents/pi_1"]


async def test_a_session_intent_the_provider_does_not_know_is_replaced(stripe):
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1"): [(404, {"error": {"message": "Not Found"}})],
        ("GET", "/v1/payment_intents/pi_1"): [(404, {"error": {"message": "Not Found"}})],
        ("POST", "/v1/payment_intents"): [(200, intent("pi_2", "requires_confirmation"))],
    })
    assert (await provider.prepare_charge("pay-1", "cmd-1", "pi_1", EUR_12, "pm_good")).intent_id == "pi_2"


async def test_a_confirm_repeated_after_a_lost_answer_is_settled_from_the_intent_by_id(stripe):
    """The first confirm went through but its answer was lost; the repeat is refused. The intent's
    own record, fetched by its id, says succeeded: no new intent, no second charge."""
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1/confirm"): [(400, {"error": {"message": "Bad request"}})],
        ("GET", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "succeeded", latest_charge="ch_1"))],
    })
    result = await provider.confirm("pay-1", "cmd-1", "pi_1")
    assert (result.outcome, result.charge_id) == ("succeeded", "ch_1")
    assert fake.paths() == ["POST /v1/payment_intents/pi_1/confirm", "GET /v1/payment_intents/pi_1"]


async def test_a_confirm_refused_outright_charged_nothing_and_is_a_decline(stripe):
    """An unknown payment method is found only at confirm (the sandbox takes any id when attaching):
    the intent's record shows nothing under way, so the payment may be posted again."""
    _, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1/confirm"): [(404, {"error": {"code": "resource_missing",
                                                                        "message": "No such PaymentMethod"}})],
        ("GET", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "requires_confirmation"))],
    })
    result = await provider.confirm("pay-1", "cmd-1", "pi_1")
    assert (result.outcome, result.decline_code) == ("declined", "resource_missing")


async def test_a_confirm_refused_while_a_charge_is_under_way_stays_unknown(stripe):
    _, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1/confirm"): [(400, {"error": {"message": "Bad request"}})],
        ("GET", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "processing"))],
    })
    assert (await provider.confirm("pay-1", "cmd-1", "pi_1")).outcome == "not_charged"


async def test_look_up_fetches_each_recorded_intent_by_id(stripe):
    charged = intent("pi_2", "succeeded", amount="1234", currency="eur", latest_charge={
        "id": "ch_2", "amount": 1234, "currency": "eur", "status": "succeeded"})
    fake, provider = await stripe({
        ("GET", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "requires_payment_method", amount=1234, currency="eur",
                                                           last_payment_error={"code": "card_declined"}))],
        ("GET", "/v1/payment_intents/pi_2"): [(200, charged)],
        ("GET", "/v1/payment_intents/pi_gone"): [(404, {"error": {"message": "Not Found"}})],
    })
    first, second, gone = await provider.look_up(["pi_1", "pi_2", "pi_gone"])
    assert (first.result.outcome, first.result.decline_code, first.charges) == ("declined", "card_declined", ())
    assert (second.result.charge_id, second.amount_minor, second.currency) == ("ch_2", 1234, "EUR")
    assert [(c.charge_id, c.amount_minor, c.currency, c.succeeded) for c in second.succeeded_charges] == \
        [("ch_2", 1234, "EUR", True)]
    assert (gone.found, gone.result.outcome) == (False, "not_charged")
    assert sorted(fake.paths()) == ["GET /v1/payment_intents/pi_1", "GET /v1/payment_intents/pi_2",
                                    "GET /v1/payment_intents/pi_gone"]


async def test_look_up_reads_a_charge_known_only_by_id(stripe):
    """api.stripe.com names the latest charge by id: what the intent received is its amount."""
    _, provider = await stripe({("GET", "/v1/payment_intents/pi_1"): [(200, intent(
        "pi_1", "succeeded", amount=1234, amount_received=1234, currency="eur", latest_charge="ch_1"))]})
    (record,) = await provider.look_up(["pi_1"])
    assert [(c.charge_id, c.amount_minor, c.currency) for c in record.succeeded_charges] == [("ch_1", 1234, "EUR")]


async def test_a_5xx_is_retried_with_the_same_key_and_then_succeeds(stripe):
    fake, provider = await stripe({("POST", "/v1/payment_intents"): [
        (503, {"error": {"message": "try later"}}), (200, intent("pi_1", "requires_payment_method"))]})
    assert (await provider.create_session("pay-1", EUR_12)).transaction_id == "pi_1"
    assert [key for *_, key in fake.requests] == ["paystream-pay-1-session"] * 2


async def test_a_provider_that_keeps_failing_is_unavailable(stripe):
    fake, provider = await stripe({("POST", "/v1/payment_intents"): [(500, {"error": {"message": "down"}})]})
    with pytest.raises(ProviderUnavailable) as info:
        await provider.create_session("pay-1", EUR_12)
    assert info.value.code == "provider_unavailable"
    assert not isinstance(info.value, ProviderUnreachable)  # reached: something may have been made
    assert len(fake.requests) == 3  # max_attempts


async def test_a_provider_never_connected_to_is_unreachable():
    """No attempt connected, so nothing was sent: what lets a start fall back to another provider."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    provider = StripeProvider(f"http://127.0.0.1:{closed}", "sk_test_x", max_attempts=2)
    try:
        with pytest.raises(ProviderUnreachable):
            await provider.create_session("pay-1", EUR_12)
    finally:
        await provider.close()


async def test_a_refused_payment_method_is_a_decline_nothing_charged(stripe):
    _, provider = await stripe({("POST", "/v1/payment_intents"): [
        (400, {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such pm"}})]})
    prepared = await provider.prepare_charge("pay-1", "cmd-1", "seti_1", EUR_12, "pm_missing")
    assert (prepared.intent_id, prepared.result.outcome, prepared.result.decline_code) == \
        (None, "declined", "resource_missing")



async def test_every_request_names_the_pinned_stripe_version(stripe):
    fake, provider = await stripe({("POST", "/v1/payment_intents"): [(200, intent("pi_1", "requires_payment_method"))],
                                   ("GET", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "requires_payment_method"))]})
    await provider.create_session("pay-1", EUR_12)
    await provider.look_up(["pi_1"])
    assert fake.versions == [STRIPE_API_VERSION] * 2


async def test_a_429_is_not_retried_blindly_and_is_unavailable(stripe):
    fake, provider = await stripe({("POST", "/v1/payment_intents"): [
        (429, {"error": {"type": "rate_limit_error", "message": "slow down"}})]})
    with pytest.raises(ProviderUnavailable):
        await provider.create_session("pay-1", EUR_12)
    assert len(fake.requests) == 1


async def test_stripe_should_retry_is_honoured(stripe):
    """A 503 Stripe says not to retry is not retried; a 400 Stripe says to retry is."""
    fake, provider = await stripe({("POST", "/v1/payment_intents"): [
        (503, {"error": {"message": "no"}}, {"Stripe-Should-Retry": "false"})]})
    with pytest.raises(ProviderUnavailable):
        await provider.create_session("pay-1", EUR_12)
    assert len(fake.requests) == 1

    fake, provider = await stripe({("POST", "/v1/payment_intents"): [
        (400, {"error": {"message": "lock timeout"}}, {"Stripe-Should-Retry": "true"}),
        (200, intent("pi_1", "requires_payment_method"))]})
    assert (await provider.create_session("pay-1", EUR_12)).transaction_id == "pi_1"
    assert [key for *_, key in fake.requests] == ["paystream-pay-1-session"] * 2


def refund(refund_id: str, status: str, amount: int = 500, **extra) -> dict:
    return {"id": refund_id, "object": "refund", "status": status, "amount": amount, "currency": "eur",
            "payment_intent": "pi_1", "metadata": {"refund_id": "rf_1", "payment_id": "pay-1"}, **extra}


async def test_a_refund_is_keyed_by_the_refund_id_and_converted(stripe):
    fake, provider = await stripe({("POST", "/v1/refunds"): [(200, refund("re_1", "succeeded"))]})
    result = await provider.refund("rf_1", "pay-1", "pi_1", Money(500, "EUR"), RefundReason.REQUESTED_BY_CUSTOMER)
    assert (result.status, result.provider_refund_id, result.amount) == (RefundStatus.SUCCEEDED, "re_1", Money(500, "EUR"))
    (_, _, form, key), = fake.requests
    assert form == {"payment_intent": "pi_1", "amount": "500", "reason": "requested_by_customer",
                    "metadata[refund_id]": "rf_1", "metadata[payment_id]": "pay-1"}
    assert key == "paystream-rf_1-refund"


async def test_a_refund_in_isk_is_sent_times_100_and_read_back(stripe):
    fake, provider = await stripe({("POST", "/v1/refunds"): [(200, refund("re_1", "pending", amount=50000,
                                                                           currency="isk"))]})
    result = await provider.refund("rf_2", "pay-1", "pi_1", Money(500, "ISK"))
    assert (result.status, result.amount) == (RefundStatus.PENDING, Money(500, "ISK"))
    assert fake.requests[0][2]["amount"] == "50000"


async def test_a_refused_refund_failed_with_its_code_and_a_lost_answer_is_unknown(stripe):
    fake, provider = await stripe({("POST", "/v1/refunds"): [
        (400, {"error": {"type": "invalid_request_error", "code": "charge_already_refunded", "message": "done"}})]})
    refused = await provider.refund("rf_1", "pay-1", "pi_1", EUR_12)
    assert (refused.found, refused.status, refused.failure_reason) == (False, RefundStatus.FAILED, "charge_already_refunded")

    fake, provider = await stripe({("POST", "/v1/refunds"): [(500, {"error": {"message": "down"}})]})
    lost = await provider.refund("rf_1", "pay-1", "pi_1", EUR_12)
    assert (lost.status, lost.provider_refund_id) == (RefundStatus.UNKNOWN, None)
    assert [key for *_, key in fake.requests] == ["paystream-rf_1-refund"] * 3  # retried, one key


async def test_a_refund_is_synced_by_its_stripe_id_or_found_by_ours_among_its_payments(stripe):
    fake, provider = await stripe({
        ("GET", "/v1/refunds/re_1"): [(200, refund("re_1", "succeeded"))],
        ("GET", "/v1/refunds"): [(200, {"object": "list", "data": [
            refund("re_0", "succeeded", metadata={"refund_id": "rf_0"}), refund("re_1", "pending")]})],
    })
    assert (await provider.sync_refund("rf_1", "pi_1", "re_1")).status is RefundStatus.SUCCEEDED
    found = await provider.sync_refund("rf_1", "pi_1")
    assert (found.found, found.provider_refund_id, found.status) == (True, "re_1", RefundStatus.PENDING)
    never = await provider.sync_refund("rf_9", "pi_1")
    assert (never.found, never.status) == (False, RefundStatus.UNKNOWN)
    assert fake.requests[1][2] == {"payment_intent": "pi_1", "limit": "100"}


async def test_void_cancels_with_a_key_and_sync_reads_the_state(stripe):
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1/cancel"): [(200, intent("pi_1", "canceled"))],
        ("GET", "/v1/payment_intents/pi_2"): [(200, intent("pi_2", "succeeded", latest_charge={
            "id": "ch_2", "amount": 1234, "amount_refunded": 500, "currency": "eur", "status": "succeeded"}))],
        ("GET", "/v1/payment_intents/pi_3"): [(200, intent("pi_3", "a_state_from_the_future"))],
    })
    voided = await provider.void("pay-1", "pi_1")
    assert voided.status is PaymentStatus.CANCELED and fake.requests[0][3] == "paystream-pay-1-void"
    synced = await provider.sync_payment("pi_2")
    assert (synced.status, synced.amount, synced.amount_refunded) == \
        (PaymentStatus.SUCCEEDED, EUR_12, Money(500, "EUR"))
    assert (await provider.sync_payment("pi_3")).status is PaymentStatus.UNKNOWN


async def test_a_void_whose_answer_is_lost_is_unknown(stripe):
    _, provider = await stripe({("POST", "/v1/payment_intents/pi_1/cancel"): [(502, {"error": {"message": "x"}})]})
    assert (await provider.void("pay-1", "pi_1")).status is PaymentStatus.UNKNOWN


def signed(body: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> dict:
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={at},v1={mac}"}


EVENT = json.dumps({"id": "evt_1", "object": "event", "type": "refund.updated", "data": {"object": refund(
    "re_1", "succeeded")}}).encode()


async def test_a_signed_webhook_is_parsed(stripe):
    _, provider = await stripe({})
    event = provider.parse_webhook(signed(EVENT), EVENT)
    assert (event.event_id, event.type, event.object_id, event.refund_id, event.payment_id, event.refund_status) == \
        ("evt_1", "refund.updated", "re_1", "rf_1", "pay-1", RefundStatus.SUCCEEDED)
    intent_event = json.dumps({"id": "evt_2", "type": "payment_intent.succeeded",
                               "data": {"object": intent("pi_1", "succeeded")}}).encode()
    assert provider.parse_webhook(signed(intent_event), intent_event).payment_status is PaymentStatus.SUCCEEDED


@pytest.mark.parametrize("headers, body", [
    (signed(EVENT, secret="whsec_other"), EVENT),                 # another secret
    (signed(EVENT), EVENT.replace(b"succeeded", b"failed")),      # altered after signing
    (signed(EVENT, at=int(time.time()) - 301), EVENT),            # older than 300 s
    ({}, EVENT),                                                  # unsigned
], ids=["wrong-secret", "altered", "stale", "unsigned"])
async def test_a_webhook_that_does_not_verify_is_refused(stripe, headers, body):
    _, provider = await stripe({})
    with pytest.raises(InvalidWebhook):
        provider.parse_webhook(headers, body)


async def test_an_answer_cut_off_mid_body_is_retried_with_the_same_key_then_unavailable():
    """Headers came, the body never did: a connection error, retried, then the provider is unavailable."""
    keys = []

    async def stall(request: web.Request) -> web.StreamResponse:
        keys.append(request.headers.get("Idempotency-Key"))
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = 100
        await response.prepare(request)
        await response.write(b'{"id": ')
        await asyncio.sleep(5)
        return response

    app = web.Application()
    app.router.add_post("/v1/payment_intents", stall)
    server = TestServer(app)
    await server.start_server()
    provider = StripeProvider(str(server.make_url("")), "sk_test_x", timeout_s=0.5, max_attempts=2)
    try:
        with pytest.raises(ProviderUnavailable) as info:
            await provider.create_session("pay-1", EUR_12)
        assert not isinstance(info.value, ProviderUnreachable)
    finally:
        await provider.close()
        await server.close()
    assert keys == ["paystream-pay-1-session"] * 2
