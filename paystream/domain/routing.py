"""Which provider a payment goes to, and when it may go to the other one instead.

The start names a provider, else its account's choice, else the installation's default. An account
that opts in to fallback has its start go to the other provider when the chosen one cannot be reached
at all: only then, when nothing can have been made there. Once a provider object exists for the
payment (a session, or an answer lost on the way back, which may have made one), every later step,
refund and sync goes to that provider, never another. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from paystream.domain.errors import InvalidRequest
from paystream.domain.money import Money, currency_exponent

#: The payments a provider cannot take without an amount at start (a PayPal order names its amount).
NEEDS_AMOUNT = frozenset({"paypal"})
#: The currencies PayPal's REST API takes (developer.paypal.com, "Currency codes"), and those it takes in
#: whole units only (ISO 4217 gives HUF and TWD two decimals): checked before anything reaches the worker.
PAYPAL_CURRENCIES = frozenset({"AUD", "BRL", "CAD", "CNY", "CZK", "DKK", "EUR", "HKD", "HUF", "ILS", "JPY", "MYR",
                               "MXN", "TWD", "NZD", "NOK", "PHP", "PLN", "GBP", "SGD", "SEK", "CHF", "THB", "USD"})
PAYPAL_WHOLE_UNITS = frozenset({"HUF", "JPY", "TWD"})


def refusal(provider: str, amount: Money | None) -> InvalidRequest | None:
    """Why `provider` cannot take a payment of `amount`, or None when it can."""
    if amount is None:
        return InvalidRequest("amount_required", f"a {provider} payment needs its amount and currency at start",
                              "amount") if provider in NEEDS_AMOUNT else None
    if provider == "paypal":
        if amount.currency not in PAYPAL_CURRENCIES:
            return InvalidRequest("currency_not_supported", f"PayPal does not take {amount.currency}", "currency")
        if amount.currency in PAYPAL_WHOLE_UNITS and amount.minor % 10 ** currency_exponent(amount.currency):
            return InvalidRequest("amount_not_supported", f"PayPal takes {amount.currency} in whole units only",
                                  "amount")
    return None


@dataclass(frozen=True)
class ProviderChoice:
    provider: str
    #: The provider to start with instead when `provider` cannot be reached; None: no fallback (503).
    fallback: str | None = None


def choose_provider(requested: str | None, account_default: str | None, account_fallback: bool, default: str,
                    offered: Sequence[str], amount: Money | None) -> ProviderChoice:
    """The provider of a new payment, and its fallback, or why the request cannot have it (`provider`)."""
    provider = requested or account_default or default
    if provider not in offered:
        raise InvalidRequest("provider_not_offered", f"{provider} payments are not offered here", "provider")
    refused = refusal(provider, amount)
    if refused is not None:
        raise refused
    fallback = None
    if account_fallback:
        fallback = next((p for p in offered if p != provider and refusal(p, amount) is None), None)
    return ProviderChoice(provider, fallback)
