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
from paystream.domain.money import Money

#: The payments a provider cannot take without an amount at start (a PayPal order names its amount).
NEEDS_AMOUNT = frozenset({"paypal"})


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
    if provider in NEEDS_AMOUNT and amount is None:
        raise InvalidRequest("amount_required", f"a {provider} payment needs its amount and currency at start",
                             "amount")
    fallback = None
    if account_fallback:
        fallback = next((p for p in offered if p != provider and (amount is not None or p not in NEEDS_AMOUNT)),
                        None)
    return ProviderChoice(provider, fallback)
