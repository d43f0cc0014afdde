"""The payment providers by name, and the one each payment goes to.

The worker holds one connector per provider offered (paystream/bootstrap.py builds them); a payment
names its provider (paystream/domain/routing.py), and every step, refund and sync of it is asked of
that one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from paystream.domain.errors import ProviderUnavailable
from paystream.domain.model import Payment
from paystream.ports import PaymentProvider


class Providers(Mapping[str, PaymentProvider]):
    def __init__(self, connectors: Mapping[str, PaymentProvider]) -> None:
        self._connectors = dict(connectors)

    @classmethod
    def of(cls, given: PaymentProvider | Mapping[str, PaymentProvider]) -> Providers:
        """`given` as a registry: a lone connector is Stripe's (the only provider before there was a choice)."""
        if isinstance(given, Providers):
            return given
        return cls(given if isinstance(given, Mapping) else {"stripe": given})

    def named(self, name: str) -> PaymentProvider:
        try:
            return self._connectors[name]
        except KeyError:
            # A payment of a provider this worker does not offer (its credentials unset): a setting to
            # fix, and the command may be repeated once it is.
            raise ProviderUnavailable("provider_not_offered", f"this worker has no {name} connector") from None

    def of_payment(self, payment: Payment) -> PaymentProvider:
        return self.named(payment.provider)

    def __getitem__(self, name: str) -> PaymentProvider:
        return self._connectors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._connectors)

    def __len__(self) -> int:
        return len(self._connectors)

    async def close(self) -> None:
        for connector in self._connectors.values():
            close = getattr(connector, "close", None)
            if close is not None:
                await close()
