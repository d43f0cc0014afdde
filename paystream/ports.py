"""The small interfaces the core needs from the outside world; connectors/ implements them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from paystream.domain.model import Payment
from paystream.domain.money import Money


@dataclass(frozen=True)
class ProviderSession:
    """What the provider gives for a new payment: the id the client pays against."""

    transaction_id: str
    client_secret: str | None


@dataclass(frozen=True)
class ChargeResult:
    outcome: Literal["succeeded", "declined", "not_charged"]
    charge_id: str | None = None
    decline_code: str | None = None
    message: str | None = None


class PaymentProvider(Protocol):
    """A card-payment provider. Every call carries an idempotency key derived from payment_id."""

    async def create_session(self, payment_id: str, amount: Money | None) -> ProviderSession: ...

    async def charge(
        self, payment_id: str, attempt: str, transaction_id: str, amount: Money, payment_method: str
    ) -> ChargeResult: ...

    async def charge_state(self, payment_id: str, transaction_id: str) -> ChargeResult:
        """The provider's own record of whether this payment was charged (for crash recovery)."""
        ...


class PaymentStore(Protocol):
    """Where the worker keeps in-flight payments (a Faust table in production)."""

    def get(self, payment_id: str) -> Payment | None: ...

    def put(self, payment: Payment) -> None: ...
