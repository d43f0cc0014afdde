"""The worker's table of payments: every payment by id, in RocksDB, backed by a changelog topic."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import faust

from paystream.domain.model import Payment

Publish = Callable[[Sequence[Payment]], Awaitable[None]]


def payments_table(app: faust.App, partitions: int) -> faust.Table:
    return app.Table(
        "payments", default=None, partitions=partitions,
        key_type=str,
        # Recovery writes to RocksDB in batches of this many changelog records;
        # larger batches rebuild a big table several times faster.
        recovery_buffer_size=10_000,
        help="In-flight and finished payments by payment_id.",
    )


class TableStore:
    """The PaymentStore port over a Faust table (see paystream/ports.py).

    `publish` sends the events of the given changes and waits until the
    producer has flushed everything, table changelog included (the worker's
    `publish`): what `flush` promises."""

    def __init__(self, table: faust.Table, publish: Publish) -> None:
        self.table = table
        self._publish = publish

    def get(self, payment_id: str) -> Payment | None:
        data = self.table.get(payment_id)
        return Payment.from_dict(data) if data else None

    def put(self, payment: Payment) -> None:
        self.table[payment.payment_id] = payment.as_dict()

    async def flush(self, changes: Sequence[Payment]) -> None:
        await self._publish(changes)
