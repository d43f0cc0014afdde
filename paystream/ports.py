"""The small interfaces the core needs from the outside world; connectors/ implements them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from paystream.domain.commands import Command, CommandReply
from paystream.domain.model import Payment
from paystream.domain.money import Money
from paystream.domain.provider import PaymentStatus, RefundReason, RefundStatus
from paystream.domain.records import PaymentView, Receipt


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


@dataclass(frozen=True)
class PreparedCharge:
    """What a post attempt will confirm, made ready without charging anything.

    `intent_id` is the provider object the attempt confirms (recorded in the
    payment, durably, before the confirm); `result` is set when there is
    nothing to confirm: refused outright, or found already charged."""

    intent_id: str | None
    result: ChargeResult | None = None


@dataclass(frozen=True)
class ProviderCharge:
    charge_id: str
    amount_minor: int | None
    currency: str | None  # ISO 4217, upper case
    succeeded: bool


@dataclass(frozen=True)
class ProviderIntent:
    """The provider's own record of one object that can carry a charge, looked up by its id."""

    intent_id: str
    found: bool
    result: ChargeResult  # succeeded (with its charge), declined, or not charged
    amount_minor: int | None = None
    currency: str | None = None  # ISO 4217, upper case
    charges: tuple[ProviderCharge, ...] = ()

    @property
    def succeeded_charges(self) -> tuple[ProviderCharge, ...]:
        return tuple(c for c in self.charges if c.succeeded)


@dataclass(frozen=True)
class ProviderPayment:
    """A payment as its provider holds it, synced by id: `status` is never guessed (`unknown` stays so)."""

    transaction_id: str
    found: bool
    status: PaymentStatus
    amount: Money | None = None
    amount_refunded: Money | None = None


@dataclass(frozen=True)
class ProviderRefund:
    """A refund as its provider holds it. `refund_id` is paystream's (the idempotency key derives from
    it); `provider_refund_id` is the provider's, None when it made none (refused, or the answer lost)."""

    refund_id: str
    found: bool
    status: RefundStatus
    provider_refund_id: str | None = None
    amount: Money | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class ProviderEvent:
    """A provider's webhook, verified and parsed: what it is about, and that object's status."""

    event_id: str
    type: str
    object_id: str
    payment_id: str | None = None
    refund_id: str | None = None
    payment_status: PaymentStatus | None = None
    refund_status: RefundStatus | None = None


class PaymentProvider(Protocol):
    """A payment provider (connector), in the shape payment switches share (Hyperswitch's connector
    trait, Kill Bill's payment plugin, Medusa's provider): authorize, capture, void, refund, sync by id,
    webhook parsing. Amounts are integer minor units here; each connector converts to its provider's.
    Every mutating call carries an idempotency key derived from paystream's own id (payment or refund).

    authorize is `create_session`; capture (a post) is `prepare_charge` then `confirm`, in two steps so
    that the object about to be charged is on record before the call that charges it.

    No call lists or searches the provider's history: every object that can carry a charge is
    recorded in the payment and looked up by its id (a refund not yet known by its provider id is
    found among its payment's own refunds, at most a handful)."""

    async def create_session(self, payment_id: str, amount: Money | None) -> ProviderSession: ...

    async def prepare_charge(
        self, payment_id: str, attempt: str, transaction_id: str, amount: Money, payment_method: str,
        used: Sequence[str] = (),
    ) -> PreparedCharge:
        """Make ready the object this attempt will confirm, charging nothing: the session's own intent
        unless an earlier attempt (`used`) took it or it cannot carry a charge, else a fresh one."""
        ...

    async def confirm(self, payment_id: str, attempt: str, intent_id: str) -> ChargeResult:
        """Charge: confirm the prepared object (repeating a confirm answers the first one's outcome)."""
        ...

    async def look_up(self, intent_ids: Sequence[str]) -> list[ProviderIntent]:
        """The provider's record of each object, by id (for crash recovery and reconciliation)."""
        ...

    async def session_secret(self, transaction_id: str) -> str | None:
        """The client secret of a session made earlier (paystream never keeps it)."""
        ...

    async def void(self, payment_id: str, transaction_id: str) -> ProviderPayment:
        """Cancel a payment not captured; `unknown` when the answer was lost (sync it)."""
        ...

    async def refund(self, refund_id: str, payment_id: str, transaction_id: str, amount: Money,
                     reason: RefundReason | None = None) -> ProviderRefund:
        """Refund `amount` of a captured payment, always named: paystream computes "the rest" itself (the
        Stripe sandbox refunds the whole charge again when no amount is sent). A refusal is `failed` with
        its reason; a lost answer is `unknown`, resolved by `sync_refund`, never by refunding again."""
        ...

    async def sync_payment(self, transaction_id: str) -> ProviderPayment:
        """The payment's state by id; raises `ProviderUnavailable` when the provider cannot say."""
        ...

    async def sync_refund(self, refund_id: str, transaction_id: str,
                          provider_refund_id: str | None = None) -> ProviderRefund:
        """The refund's state, by the provider's id when known, else by paystream's `refund_id` among
        the payment's refunds; `found=False` when the provider never made it."""
        ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderEvent:
        """Verify a webhook's signature and parse it; raises `InvalidWebhook` when it does not verify."""
        ...


class PaymentStore(Protocol):
    """Where the worker keeps in-flight payments (a Faust table in production)."""

    def get(self, payment_id: str) -> Payment | None: ...

    def put(self, payment: Payment) -> None: ...

    async def flush(self, changes: Sequence[Payment]) -> None:
        """Make every put so far, and these changes' events, durable: before any call that can
        charge, so a crash never loses the record of what it may have charged, and before a reply."""
        ...


@dataclass(frozen=True)
class TransactionRef:
    """Which payment, and whose (account and user), a provider transaction id belongs to."""

    payment_id: str
    user_id: str
    account: str


@dataclass(frozen=True)
class AcceptedPayment:
    """A payment a client was told is being processed (202) before the pipeline had it: what it may read."""

    account: str
    user_id: str
    view: PaymentView


class CommandSender(Protocol):
    """Hands a command to the worker and waits for its reply (Kafka in production)."""

    async def send(self, command: Command, correlation_id: str, timeout_s: float) -> CommandReply | None:
        """The reply, or None when none came within `timeout_s` (the command goes on).

        Raises `Unavailable`, having written nothing, when the command cannot reach the log."""
        ...


class CommandBus(CommandSender, Protocol):
    """The ingress's side of Kafka: commands out and replies back, plus its own small messages (heartbeats)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def waiting(self) -> int:
        """Commands sent whose reply has not come yet."""
        ...

    async def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Write one message to `topic`, acknowledged."""
        ...


class RateLimits(Protocol):
    """Requests admitted per API key over a moving window (Redis in production)."""

    async def hit(self, key_id: str, limit: str) -> tuple[bool, int]:
        """(admitted, seconds until the next request would be) for one request of this key under `limit`
        (a rate such as "100/second")."""
        ...

    async def close(self) -> None: ...


class ReceiptCache(Protocol):
    """The fast read side (Redis): receipts, the transaction index, idempotency records.

    A read raises `Unavailable` when the cache cannot answer (the caller goes on without it)."""

    async def get_receipt(self, account: str, user_id: str, receipt_id: str) -> bytes | None: ...

    async def put_receipt(self, receipt: Receipt) -> None: ...

    async def get_transaction(self, transaction_id: str) -> TransactionRef | None: ...

    async def put_transaction(self, transaction_id: str, ref: TransactionRef) -> None: ...

    async def claim_idempotency_key(self, key: str, fingerprint: str) -> tuple[str, bytes | None] | None:
        """Record `fingerprint` for this key; or (the fingerprint recorded first, its stored response)."""
        ...

    async def store_response(self, key: str, sealed_response: bytes) -> None:
        """Keep the first response to this idempotency key (sealed) for its replays."""
        ...

    async def put_accepted(self, accepted: AcceptedPayment) -> None: ...

    async def get_accepted(self, payment_id: str) -> AcceptedPayment | None: ...


class DocumentStore(Protocol):
    """The durable read side (Couchbase): what the sinks wrote from the events.

    Every read raises `Unavailable` when neither a document's active copy nor a replica can answer."""

    async def get_payment(self, payment_id: str) -> Payment | None: ...

    async def get_receipt(self, receipt_id: str) -> Receipt | None:
        """From any copy (the design's read replicas): receipts never change once written."""
        ...

    async def get_transaction(self, transaction_id: str) -> TransactionRef | None: ...

    async def user_index(self, kind: str, account: str, user_id: str) -> dict[str, str]:
        """A user's "payments" or "receipts": {id: created_at}."""
        ...

    async def holds_history(self) -> bool:
        """Whether the store holds what the topics recorded (its markers are there): False on a
        store that came back empty and was not rebuilt yet, where a miss proves nothing."""
        ...


@dataclass(frozen=True)
class StoredDataKey:
    """A user's data key as the store holds it, and whether the data-keys topic has it yet."""

    key: bytes
    journaled: bool


class DataKeyStore(Protocol):
    """Where data keys are looked up (Couchbase): the first writer of a user's key wins."""

    async def data_key(self, account: str, user_id: str) -> StoredDataKey | None: ...

    async def insert_data_key(self, account: str, user_id: str, key: bytes) -> StoredDataKey:
        """Store `key` unless the user has one already; return the one stored (the first writer's)."""
        ...

    async def mark_journaled(self, account: str, user_id: str) -> None: ...

    async def remove_data_key(self, account: str, user_id: str) -> bool: ...

    async def holds_history(self) -> bool:
        """Whether the store holds what the topics recorded (its markers are there): False on a
        store that came back empty and was not rebuilt yet."""
        ...


class DataKeyJournal(Protocol):
    """The compacted data-keys topic: each user's key, or a tombstone once they are forgotten."""

    async def record(self, account: str, user_id: str, key: bytes | None) -> None:
        """Written and acknowledged by every replica, or `Unavailable`."""
        ...


class PersonalDataKeys(Protocol):
    """Each user's data key, which seals their personal fields; deleting it forgets them."""

    async def get(self, account: str, user_id: str) -> bytes | None: ...

    async def get_or_create(self, account: str, user_id: str) -> bytes: ...

    async def forget(self, account: str, user_id: str) -> bool:
        """Delete the key (True when there was one): every sealed copy becomes unreadable."""
        ...


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as paystream keeps it: the SHA-256 of the key, never the key."""

    key_id: str
    key_hash: str
    account: str
    created_at: str
    prefix: str  # the first characters, so people can tell their keys apart
    rate_limit: str | None = None  # e.g. "100/second"; None: the default from settings


class ApiKeyStore(Protocol):
    async def find(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def add(self, record: ApiKeyRecord) -> None: ...

    async def all(self) -> list[ApiKeyRecord]: ...

    async def revoke(self, key_id: str) -> bool: ...


class PaymentTable(Protocol):
    """The workers' own table of payments, asked directly (an interactive query): the latest state of
    every payment, whatever the sinks' lag. Raises `Unavailable` when no worker can answer."""

    async def get_payment(self, payment_id: str, account: str, user_id: str | None) -> PaymentView | None:
        """The payment as its owner sees it, or None when the account (and user, if given) has none such."""
        ...


# --- writing the stores, and rebuilding them from the log (paystream/projection.py, rebuild.py) ----
@dataclass(frozen=True)
class LogRecord:
    """One message of a topic, where it sits in the log."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    #: The message key (the data-keys topic is read by it: a tombstone has no value).
    key: bytes | None = None


class EventLog(Protocol):
    """The topics read as a log (Kafka): where they end, what a consumer group has committed, ranges."""

    async def end_offsets(self, topic: str) -> dict[int, int]: ...

    async def committed(self, group: str, topic: str) -> dict[int, int]:
        """The group's committed offset of each partition it has one for."""
        ...

    def read(self, ranges: dict[tuple[str, int], tuple[int, int]], batch: int) -> AsyncIterator[list[LogRecord]]:
        """The records of each (topic, partition) from start (inclusive) to end (exclusive), in
        batches; within a partition in log order. No ranges: no batches."""
        ...


class StoreWriter(Protocol):
    """The one writer of the store's documents (Couchbase), for the live sinks' batches, the rebuild and
    single writes alike (paystream/projection.py says what to write): never replaces a payment with an
    older version of itself, so a batch written again, late or twice writes nothing that goes back.
    Each raises on the first failure, having written what it could (the caller writes the lot again)."""

    async def write_payments(self, payments: list[Payment]) -> int:
        """Write each payment unless the store holds the same or a newer version; return how many were written."""
        ...

    async def write_transactions(self, refs: dict[str, TransactionRef]) -> int: ...

    async def write_receipts(self, receipts: list[Receipt]) -> int: ...

    async def write_user_index(self, entries: dict[tuple[str, str, str], dict[str, str]]) -> int:
        """Add ids to users' indexes, {(kind, account, user): {id: created_at}}, keeping what they hold;
        return how many ids were written."""
        ...

    async def write_data_keys(self, keys: dict[tuple[str, str], bytes | None]) -> int:
        """Put back users' data keys, {(account, user): key, or None for a forgotten user (removed)},
        keeping a key the store holds; return how many were written or removed."""
        ...

    async def applied_offsets(self, names: list[str]) -> dict[str, int | None]:
        """The markers: for each (topic, partition) name, the offset below which the store holds everything."""
        ...

    async def set_applied_offsets(self, offsets: dict[str, int]) -> None: ...


class ReceiptCacheWriter(Protocol):
    async def put_receipts(self, receipts: Sequence[Receipt], *, whole_lifetime: bool = False) -> None:
        """Cache receipts in one round trip: each for what is left of its lifetime (a rebuild), or with
        `whole_lifetime` for all of it from now (a live receipt, as `ReceiptCache.put_receipt`)."""
        ...
