"""The worker's table of payments: every payment by id, in RocksDB, backed by a changelog topic."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar

import faust
from faust.types import FutureMessage

from paystream.domain.model import Payment

Publish = Callable[[Sequence[Payment]], Awaitable[None]]


#: The changelog records written by the command the current task is handling (see `track_writes`).
_written: ContextVar[list[FutureMessage] | None] = ContextVar("changelog_written", default=None)


class PaymentsTable(faust.Table):
    """A Faust table that notes, per command, the changelog records its writes produce, so the worker
    can wait for exactly those to be acknowledged instead of flushing the whole producer (which, with
    hundreds of commands in flight, waits for everybody's records: seconds)."""

    def send_changelog(self, *args, **kwargs) -> FutureMessage:
        sent = super().send_changelog(*args, **kwargs)
        written = _written.get()
        if written is not None:
            written.append(sent)
        return sent


def track_writes() -> None:
    """From here on in this task (one command), note the changelog records the table's writes produce."""
    _written.set([])


def take_writes() -> list[FutureMessage]:
    """The changelog records noted since `track_writes` or the last take (each acknowledged once awaited)."""
    written = _written.get()
    if not written:
        return []
    _written.set([])
    return written


def payments_table(app: faust.App, partitions: int) -> faust.Table:
    return app.tables.add(PaymentsTable(
        app, name="payments", default=None, partitions=partitions, beacon=app.tables.beacon,
        key_type=str,
        # Recovery writes to RocksDB in batches of this many changelog records;
        # larger batches rebuild a big table several times faster.
        recovery_buffer_size=10_000,
        help="In-flight and finished payments by payment_id.",
    ))


class TableStore:
    """The PaymentStore port over a Faust table (see paystream/ports.py).

    `publish` sends the events of the given changes and waits until Kafka has
    acknowledged them and every changelog record this command's writes
    produced (the worker's `publish`): what `flush` promises."""

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
