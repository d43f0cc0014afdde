"""The Stripe connector's decisions, against a scripted in-process HTTP stand-in of Stripe.

(The same connector runs against the real sandbox in tests/integration.) What
is checked here is the logic: which calls it makes, with which idempotency
keys, what it retries, and how it reads each answer.
"""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from connectors.stripe import StripeProvider
from paystream.domain.errors import ProviderUnavailable
from paystream.domain.money import Money

EUR_12 = Money(1234, "EUR")
DECLINE = (402, {"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                           "message": "Your card has insufficient funds."}})


def intent(intent_id: str, status: str, payment_id: str = "pay-1", **extra) -> dict:
    return {"id": intent_id, "object": "payment_intent", "status": status, "client_secret": f"{intent_id}_secret",
            "metadata": {"payment_id": payment_id}, **extra}


class FakeStripe:
    """Answers each (method, path) from a script of (status, body); records every request."""

    def __init__(self, script: dict[tuple[str, str], list[tuple[int, dict]]]) -> None:
        self.script = {key: list(answers) for key, answers in script.items()}
        self.requests: list[tuple[str, str, dict, str | None]] = []

    async def handle(self, request: web.Request) -> web.Response:
        form = dict(await request.post()) if request.method == "POST" else dict(request.query)
        self.requests.append((request.method, request.path, form, request.headers.get("Idempotency-Key")))
        answers = self.script.get((request.method, request.path))
        if not answers:
            return web.json_response({"error": {"message": f"unscripted {request.method} {request.path}"}}, status=404)
        status, body = answers.pop(0) if len(answers) > 1 else answers[0]
        return web.json_response(body, status=status)

    def paths(self) -> list[str]:
        return [f"{method} {path}" for method, path, _, _ in self.requests]


@pytest.fixture
async def stripe():
    servers = []

    async def start(script) -> tuple[FakeStripe, StripeProvider]:
        fake = FakeStripe(script)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", fake.handle)
        server = TestServer(app)
        await server.start_server()
        provider = StripeProvider(str(server.make_url("")), "sk_test_x", timeout_s=2, max_attempts=3)
        servers.append((server, provider))
        return fake, provider

    yield start
    for server, provider in servers:
        await provider.close()
        await server.close()


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


async def test_charge_attaches_then_confirms_with_keys_per_attempt(stripe):
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "requires_confirmation"))],
        ("POST", "/v1/payment_intents/pi_1/confirm"): [(200, intent("pi_1", "succeeded", latest_charge="ch_1"))],
    })
    result = await provider.charge("pay-1", "cmd-9", "pi_1", EUR_12, "pm_card_visa")
    assert (result.outcome, result.charge_id) == ("succeeded", "ch_1")
    assert [key for *_, key in fake.requests] == ["paystream-pay-1-attach-cmd-9", "paystream-pay-1-confirm-cmd-9"]


async def test_a_decline_is_read_with_its_code_and_not_retried(stripe):
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "requires_confirmation"))],
        ("POST", "/v1/payment_intents/pi_1/confirm"): [DECLINE],
    })
    result = await provider.charge("pay-1", "cmd-1", "pi_1", EUR_12, "pm_x")
    assert (result.outcome, result.decline_code) == ("declined", "insufficient_funds")
    assert fake.paths().count("POST /v1/payment_intents/pi_1/confirm") == 1


async def test_after_a_decline_a_fresh_intent_carries_the_next_attempt(stripe):
    """The session's intent refuses another confirm (the sandbox keeps declined intents unconfirmable):
    the provider's record shows nothing charged, so a new intent for this attempt is made and confirmed."""
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "requires_payment_method"))],
        ("POST", "/v1/payment_intents/pi_1/confirm"): [(400, {"error": {"message": "Bad request"}})],
        ("GET", "/v1/payment_intents"): [(200, {"data": [intent("pi_1", "requires_payment_method")]})],
        ("POST", "/v1/payment_intents"): [(200, intent("pi_2", "requires_confirmation"))],
        ("POST", "/v1/payment_intents/pi_2/confirm"): [(200, intent("pi_2", "succeeded", latest_charge="ch_2"))],
    })
    result = await provider.charge("pay-1", "cmd-2", "pi_1", EUR_12, "pm_good")
    assert (result.outcome, result.charge_id) == ("succeeded", "ch_2")
    created = next(form for method, path, form, _ in fake.requests if (method, path) == ("POST", "/v1/payment_intents"))
    assert created == {"metadata[payment_id]": "pay-1", "amount": "1234", "currency": "eur",
                       "payment_method": "pm_good"}


async def test_a_confirm_repeated_after_a_lost_answer_is_settled_from_the_provider_record(stripe):
    """The first confirm went through but its answer was lost; the repeat is refused. The provider's
    own record says succeeded: no new intent, no second charge."""
    fake, provider = await stripe({
        ("POST", "/v1/payment_intents/pi_1"): [(200, intent("pi_1", "succeeded"))],
        ("POST", "/v1/payment_intents/pi_1/confirm"): [(400, {"error": {"message": "Bad request"}})],
        ("GET", "/v1/payment_intents"): [(200, {"data": [intent("pi_1", "succeeded", latest_charge="ch_1")]})],
    })
    result = await provider.charge("pay-1", "cmd-1", "pi_1", EUR_12, "pm_card_visa")
    assert (result.outcome, result.charge_id) == ("succeeded", "ch_1")
    assert "POST /v1/payment_intents" not in fake.paths()


async def test_charge_state_finds_this_payments_charge_among_others(stripe):
    listing = {"data": [intent("pi_9", "succeeded", payment_id="pay-other", latest_charge="ch_9"),
                        intent("pi_1", "requires_payment_method"),
                        intent("pi_2", "succeeded", latest_charge={"id": "ch_2"})]}
    _, provider = await stripe({("GET", "/v1/payment_intents"): [(200, listing)]})
    result = await provider.charge_state("pay-1", "pi_1")
    assert (result.outcome, result.charge_id) == ("succeeded", "ch_2")


async def test_charge_state_says_not_charged_when_nothing_was(stripe):
    _, provider = await stripe({("GET", "/v1/payment_intents"): [(200, {"data": [intent("pi_1", "processing")]})]})
    assert (await provider.charge_state("pay-1", "pi_1")).outcome == "not_charged"


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
    assert len(fake.requests) == 3  # max_attempts


async def test_a_refused_payment_method_is_a_decline_nothing_charged(stripe):
    _, provider = await stripe({("POST", "/v1/payment_intents"): [
        (400, {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such pm"}})]})
    result = await provider.charge("pay-1", "cmd-1", "seti_1", EUR_12, "pm_missing")
    assert (result.outcome, result.decline_code) == ("declined", "resource_missing")

