"""CommandHandler: commands of one payment run one at a time, in order; other payments overlap.

The worker's agent runs many commands at once (a charge takes hundreds of
milliseconds); these tests show that the per-payment lock is what makes its
writes to the payments table safe. Remove the lock and the first test charges
the same payment twice.
"""

from __future__ import annotations

import asyncio

from paystream.handlers import CommandHandler
from paystream.ports import ChargeResult, ProviderIntent
from tests.unit.fakes import DictStore, FakeProvider, clock, post_cmd, start_cmd


class SlowProvider(FakeProvider):
    """Charges take a while and record how many run at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most_at_once = 0

    async def confirm(self, payment_id, attempt, intent_id):
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        await asyncio.sleep(0.01)
        self.running -= 1
        return await super().confirm(payment_id, attempt, intent_id)

    async def create_session(self, payment_id, amount):
        await asyncio.sleep(0.01)
        return await super().create_session(payment_id, amount)

    async def look_up(self, intent_ids):
        # Asked mid-charge, the provider has not finished the first charge yet.
        self.calls.append(("look_up", tuple(intent_ids)))
        return [ProviderIntent(i, True, ChargeResult("not_charged")) for i in intent_ids]


async def _handler_with_started(payment_ids):
    handler = CommandHandler(DictStore(), SlowProvider(), clock())
    for payment_id in payment_ids:
        outcome = await handler(start_cmd(payment_id=payment_id))
        assert outcome.error is None
    return handler


def test_a_post_delivered_twice_at_once_charges_once():
    """The client repeated its request while the first was being charged: both reach the worker."""

    async def scenario():
        handler = await _handler_with_started(["pay-1"])
        command = post_cmd(transaction_id="pi_pay-1")
        first, second = await asyncio.gather(handler(command), handler(command))
        return handler, first, second

    handler, first, second = asyncio.run(scenario())
    assert handler.providers["stripe"].count("confirm") == 1
    assert first.payment.status == second.payment.status == "receipted"
    assert first.receipt == second.receipt


def test_commands_of_one_payment_run_in_the_order_they_came():
    async def scenario():
        handler = CommandHandler(DictStore(), SlowProvider(), clock())
        start = start_cmd(payment_id="pay-1")
        post = post_cmd(transaction_id="pi_pay-1")
        # Both taken off the partition before the start has finished.
        return await asyncio.gather(handler(start), handler(post))

    started, posted = asyncio.run(scenario())
    assert started.error is None
    assert posted.error is None and posted.payment.status == "receipted"


def test_different_payments_are_charged_at_the_same_time():
    ids = [f"pay-{i}" for i in range(8)]

    async def scenario():
        handler = await _handler_with_started(ids)
        outcomes = await asyncio.gather(*(handler(post_cmd(payment_id=p, transaction_id=f"pi_{p}")) for p in ids))
        return handler, outcomes

    handler, outcomes = asyncio.run(scenario())
    assert all(o.payment.status == "receipted" for o in outcomes)
    assert handler.providers["stripe"].most_at_once == len(ids)
    assert handler.in_flight == 0
