"""Choosing a provider: which one a payment goes to, when its start may fall back to the other, and
that every later step goes to the payment's own provider."""

from __future__ import annotations

import asyncio

import pytest

from paystream.domain.errors import InvalidRequest, ProviderUnavailable, ProviderUnreachable
from paystream.domain.model import Payment, Status
from paystream.domain.money import Money
from paystream.domain.routing import ProviderChoice, choose_provider
from paystream.handlers import CommandHandler, handle_start
from paystream.ports import ProviderSession
from paystream.providers import Providers
from tests.unit.fakes import EUR_10, DictStore, FakeProvider, clock, post_cmd, start_cmd

BOTH = ("stripe", "paypal")


@pytest.mark.parametrize(("requested", "account", "fallback", "default", "chosen"), [
    (None, None, False, "stripe", ProviderChoice("stripe")),               # the setting
    (None, "paypal", False, "stripe", ProviderChoice("paypal")),           # the account's
    ("stripe", "paypal", False, "paypal", ProviderChoice("stripe")),       # the request's
    ("paypal", None, True, "stripe", ProviderChoice("paypal", "stripe")),  # opted in: the other one
    (None, None, True, "stripe", ProviderChoice("stripe", "paypal")),
])
def test_the_request_then_the_account_then_the_setting(requested, account, fallback, default, chosen):
    assert choose_provider(requested, account, fallback, default, BOTH, EUR_10) == chosen


def test_a_provider_not_offered_or_without_an_amount_is_refused_with_its_field():
    with pytest.raises(InvalidRequest) as refused:
        choose_provider("paypal", None, False, "stripe", ("stripe",), EUR_10)
    assert (refused.value.code, refused.value.field) == ("provider_not_offered", "provider")
    with pytest.raises(InvalidRequest) as refused:
        choose_provider("paypal", None, False, "stripe", BOTH, None)
    assert (refused.value.code, refused.value.field) == ("amount_required", "amount")
    with pytest.raises(InvalidRequest) as refused:
        choose_provider("paypal", None, False, "stripe", BOTH, Money(500, "ISK"))
    assert (refused.value.code, refused.value.field) == ("currency_not_supported", "currency")
    with pytest.raises(InvalidRequest) as refused:
        choose_provider("paypal", None, False, "stripe", BOTH, Money(123450, "HUF"))
    assert (refused.value.code, refused.value.field) == ("amount_not_supported", "amount")
    assert choose_provider("paypal", None, False, "stripe", BOTH, Money(123400, "HUF")).provider == "paypal"
    # A fallback only to a provider that can take the payment: PayPal needs an amount, and takes no ISK.
    assert choose_provider(None, None, True, "stripe", BOTH, Money(500, "ISK")) == ProviderChoice("stripe", None)
    assert choose_provider(None, None, True, "stripe", BOTH, None) == ProviderChoice("stripe", None)
    assert choose_provider(None, None, True, "stripe", ("stripe",), EUR_10) == ProviderChoice("stripe", None)


class Named(FakeProvider):
    """A fake provider whose transaction ids say which provider made them."""

    def __init__(self, name: str, *, sessions=()) -> None:
        super().__init__(sessions=sessions)
        self.name = name

    async def create_session(self, payment_id, amount):
        session = await super().create_session(payment_id, amount)
        return ProviderSession(f"{self.name}_{session.transaction_id}", session.client_secret)


def unreachable() -> ProviderUnreachable:
    return ProviderUnreachable("provider_unavailable", "connection refused")


def lost() -> ProviderUnavailable:
    return ProviderUnavailable("provider_unavailable", "timeout")


def start(store, providers, **command):
    return asyncio.run(handle_start(start_cmd(**command), store, providers, clock()))


def test_a_start_falls_back_when_its_provider_cannot_be_reached():
    stripe, paypal, store = Named("stripe", sessions=[unreachable()]), Named("paypal"), DictStore()
    outcome = start(store, {"stripe": stripe, "paypal": paypal}, provider="stripe", fallback_provider="paypal")
    assert outcome.error is None
    payment = store.get("pay-1")
    assert (payment.status, payment.provider, payment.fallback_provider) == (Status.TOKENIZED, "paypal", None)
    assert payment.transaction_id.startswith("paypal_") and outcome.payment.public_view().provider == "paypal"


def test_no_fallback_once_the_provider_was_reached_or_without_opting_in():
    # Reached, its answer lost: a session may exist there, so the payment stays with it (503, retry).
    stripe, paypal, store = Named("stripe", sessions=[lost(), lost()]), Named("paypal"), DictStore()
    providers = {"stripe": stripe, "paypal": paypal}
    outcome = start(store, providers, fallback_provider="paypal")
    assert isinstance(outcome.error, ProviderUnavailable) and paypal.count("create_session") == 0
    payment = store.get("pay-1")
    assert (payment.status, payment.provider, payment.fallback_provider) == (Status.FAILED, "stripe", None)
    # Its retry meets Stripe unreachable now: still no fallback (something may have been made before).
    stripe.scripts["create_session"] = [unreachable()]
    assert isinstance(start(store, providers, fallback_provider="paypal").error, ProviderUnreachable)
    assert paypal.count("create_session") == 0 and store.get("pay-1").provider == "stripe"

    # An account that did not opt in: 503, nothing asked of the other provider.
    stripe, paypal, store = Named("stripe", sessions=[unreachable()]), Named("paypal"), DictStore()
    outcome = start(store, {"stripe": stripe, "paypal": paypal})
    assert isinstance(outcome.error, ProviderUnreachable) and paypal.count("create_session") == 0


def test_neither_reached_keeps_the_choice_and_a_lost_fallback_keeps_the_fallback():
    stripe, paypal, store = Named("stripe", sessions=[unreachable()]), Named("paypal", sessions=[unreachable()]), \
        DictStore()
    providers = {"stripe": stripe, "paypal": paypal}
    assert isinstance(start(store, providers, fallback_provider="paypal").error, ProviderUnavailable)
    assert (store.get("pay-1").provider, store.get("pay-1").fallback_provider) == ("stripe", "paypal")

    stripe.scripts["create_session"] = [unreachable()]
    paypal.scripts["create_session"] = [lost()]
    assert isinstance(start(store, providers, fallback_provider="paypal").error, ProviderUnavailable)
    # PayPal was reached and may hold an order now: the payment is PayPal's from here on.
    assert (store.get("pay-1").provider, store.get("pay-1").fallback_provider) == ("paypal", None)
    assert start(store, providers, fallback_provider="paypal").error is None
    assert store.get("pay-1").transaction_id.startswith("paypal_") and stripe.count("create_session") == 2


def test_every_later_step_goes_to_the_payments_own_provider():
    stripe, paypal, store = Named("stripe"), Named("paypal"), DictStore()
    handler = CommandHandler(store, {"stripe": stripe, "paypal": paypal}, clock())
    asyncio.run(handler(start_cmd(provider="paypal")))
    transaction_id = store.get("pay-1").transaction_id
    # A replayed start asks the payment's provider for its secret (PayPal: the approval link).
    asyncio.run(handler(start_cmd(provider="paypal")))
    assert paypal.count("session_secret") == 1
    posted = asyncio.run(handler(post_cmd(transaction_id=transaction_id)))
    assert posted.error is None and posted.payment.status == Status.RECEIPTED
    assert paypal.count("confirm") == 1 and stripe.calls == []


def test_a_payment_stored_before_the_choice_is_stripes():
    legacy = Payment.start(start_cmd(), "2024-05-01T12:00:00Z").as_dict()
    del legacy["provider"], legacy["fallback_provider"]
    payment = Payment.from_dict(legacy)
    assert (payment.provider, payment.fallback_provider) == ("stripe", None)
    assert Providers.of(FakeProvider()).of_payment(payment) is not None


def test_a_provider_the_worker_does_not_offer_is_unavailable_not_a_crash():
    store = DictStore()
    outcome = start(store, {"stripe": FakeProvider()}, provider="paypal", amount=Money(100, "EUR"))
    assert isinstance(outcome.error, ProviderUnavailable) and outcome.error.code == "provider_not_offered"
