"""The small interfaces the core needs from the outside world; connectors/ implements them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

from paystream.domain.commands import Command, CommandReply
from paystream.domain.model import Payment
from paystream.domain.money import Money
from paystream.domain.records import Receipt


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


@dataclass(frozen=True)
class TransactionRef:
    """Which payment, and whose, a provider transaction id belongs to."""

    payment_id: str
    user_id: str


class CommandSender(Protocol):
    """Hands a command to the worker and waits for its reply (Kafka in production)."""

    async def send(self, command: Command, correlation_id: str, timeout_s: float) -> CommandReply | None:
        """The reply, or None when none came within `timeout_s` (the command goes on)."""
        ...


class ReceiptCache(Protocol):
    """The fast read side (Redis): receipts, the transaction index, idempotency records."""

    async def get_receipt(self, user_id: str, receipt_id: str) -> bytes | None: ...

    async def put_receipt(self, receipt: Receipt) -> None: ...

    async def get_transaction(self, transaction_id: str) -> TransactionRef | None: ...

    async def put_transaction(self, transaction_id: str, ref: TransactionRef) -> None: ...

    async def claim_idempotency_key(self, key: str, fingerprint: str) -> str | None:
        """Record `fingerprint` for this key, or return the one recorded first."""
        ...


class DocumentStore(Protocol):
    """The durable read side (Couchbase): what the sinks wrote from the events."""

    async def get_payment(self, payment_id: str) -> Payment | None: ...

    async def get_receipt(self, receipt_id: str) -> Receipt | None:
        """From any copy (the design's read replicas): receipts never change once written."""
        ...

    async def get_transaction(self, transaction_id: str) -> TransactionRef | None: ...


# --- rebuilding the stores from the log (paystream/rebuild.py) ----------------------------
@dataclass(frozen=True)
class LogRecord:
    """One message of a topic, where it sits in the log."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


class EventLog(Protocol):
    """The topics read as a log (Kafka): where they end, what a consumer group has committed, ranges."""

    async def end_offsets(self, topic: str) -> dict[int, int]: ...

    async def committed(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed offset of each partition it has one for."""
        ...

    def read(self, ranges: dict[tuple[str, int], tuple[int, int]], batch: int) -> AsyncIterator[list[LogRecord]]:
        """The records of each (topic, partition) from start (inclusive) to end (exclusive), in
        batches; within a partition in log order."""
        ...


class StoreWriter(Protocol):
    """Bulk writes for a rebuild (Couchbase): never replaces a payment with an older version of itself."""

    async def write_payments(self, payments: list[Payment]) -> int:
        """Write each payment unless the store holds the same or a newer version; return how many were written."""
        ...

    async def write_transactions(self, refs: dict[str, TransactionRef]) -> int: ...

    async def write_receipts(self, receipts: list[Receipt]) -> int: ...

    async def applied_offsets(self, names: list[str]) -> dict[str, int | None]:
        """The markers: for each (topic, partition) name, the offset below which the store holds everything."""
        ...

    async def set_applied_offsets(self, offsets: dict[str, int]) -> None: ...


class ReceiptCacheWriter(Protocol):
    async def put_receipts(self, receipts: list[Receipt]) -> None:
        """Cache receipts in one round trip (each for what is left of its lifetime)."""
        ...
