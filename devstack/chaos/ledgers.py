"""What the providers themselves hold for a chaos run's payments: charges and refunds, read from their own
records, never from paystream's.

- The Stripe sandbox: its search by payment id (devstack/stack/stripe_sandbox.py `/_config/charges`),
  every charge on any object carrying the payment's id, with each charge's refunds and the paystream
  refund id their metadata carry. Not only the ids paystream told: a charge or refund on an object it
  never named counts too.
- The PayPal stand-in: each PayPal payment's order read by its id through PayPal's own API (a token
  of its own), its captures and refunds, a refund named by the invoice id paystream gave it.

Both come back in one shape, `Ledger`, in minor units.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import aiohttp

from paystream.domain.money import Money

#: PayPal's capture statuses that took the money (a later refund does not undo the capture).
PAYPAL_CAPTURED = {"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"}
#: Provider refund statuses in paystream's words.
PAYPAL_REFUND_STATUS = {"COMPLETED": "succeeded", "PENDING": "pending", "FAILED": "failed", "CANCELLED": "canceled"}
#: Refunds that give money back or are about to: what the captured amount must cover.
HOLDING = {"succeeded", "pending"}


@dataclass
class ProviderRefund:
    refund_id: str | None  # the paystream refund it carries (None: it names none)
    amount_minor: int
    status: str  # succeeded | pending | failed | canceled


@dataclass
class Ledger:
    """One payment at its provider."""

    charges: int = 0  # succeeded charges / captures
    captured_minor: int = 0
    refunds: list[ProviderRefund] = field(default_factory=list)

    @property
    def refunded_minor(self) -> int:
        """What the provider gives back or holds for giving back."""
        return sum(r.amount_minor for r in self.refunds if r.status in HOLDING)

    def plus(self, other: Ledger) -> Ledger:
        """The payment at two providers at once (a fallback, or anything else that put it at both)."""
        return Ledger(self.charges + other.charges, self.captured_minor + other.captured_minor,
                      self.refunds + other.refunds)


async def stripe_ledgers(http: aiohttp.ClientSession, stripe_base: str, payment_ids: list[str]) -> dict[str, Ledger]:
    """The Stripe sandbox's charges and refunds of each payment, a few hundred ids at a time."""
    ledgers: dict[str, Ledger] = {}
    for i in range(0, len(payment_ids), 200):
        query = [("payment_id", pid) for pid in payment_ids[i:i + 200]]
        async with http.get(f"{stripe_base}/_config/charges", params=query) as resp:
            resp.raise_for_status()
            found = await resp.json()
        for pid, row in found.items():
            ledger = ledgers[pid] = Ledger()
            for charge in row["charges"]:
                if charge["status"] == "succeeded":
                    ledger.charges += 1
                    ledger.captured_minor += charge["amount"]
                ledger.refunds += [ProviderRefund(r.get("refund_id"), r["amount"], r["status"])
                                   for r in charge.get("refunds", [])]
    return ledgers


async def paypal_ledgers(http: aiohttp.ClientSession, paypal_base: str, orders: dict[str, str],
                         client_id: str, secret: str) -> dict[str, Ledger]:
    """The PayPal stand-in's captures and refunds of each payment, read by its order id (`orders`:
    payment id -> order id)."""
    if not orders:
        return {}
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    async with http.post(f"{paypal_base}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                         headers={"Authorization": f"Basic {basic}"}) as resp:
        resp.raise_for_status()
        auth = {"Authorization": f"Bearer {(await resp.json())['access_token']}"}
    ledgers: dict[str, Ledger] = {}
    for pid, order_id in orders.items():
        async with http.get(f"{paypal_base}/v2/checkout/orders/{order_id}", headers=auth) as resp:
            if resp.status == 404:
                ledgers[pid] = Ledger()
                continue
            resp.raise_for_status()
            order = await resp.json()
        payments = order["purchase_units"][0].get("payments", {})
        ledger = ledgers[pid] = Ledger()
        for capture in payments.get("captures", []):
            if capture["status"] in PAYPAL_CAPTURED:
                ledger.charges += 1
                ledger.captured_minor += _minor(capture["amount"])
        ledger.refunds = [ProviderRefund(r.get("invoice_id"), _minor(r["amount"]),
                                         PAYPAL_REFUND_STATUS.get(r["status"], r["status"].lower()))
                          for r in payments.get("refunds", [])]
    return ledgers


def _minor(amount: dict) -> int:
    return Money.parse(amount["value"], amount["currency_code"]).minor
