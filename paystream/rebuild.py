"""The stores are derived: rebuilt from the log whenever they lose what they held.

The events topic (kept forever), the receipts topic and the compacted data-keys
topic are the source of truth; Couchbase and the Redis receipt cache are
projections of them. `StoreRebuild`
replays ranges of those topics into the stores in batches: the latest version of
each payment in a batch, written only where the store does not hold that version
or a newer one (so a replay running beside the live sinks never takes a payment
back), transaction ids and receipts written once, and each user's index of
payments and receipts added to: the documents the sinks write (streams/sinks.py),
no more and no less. Markers in the store say, for each topic partition, the
offset below which the store holds everything.

`StoreWatch` is how the sinks keep those markers and notice a store that lost
data (wiped, restarted empty, restored from an older copy): a marker missing or
below what the sinks last recorded means the store is behind, and the gap is
replayed without anyone asking, users' data keys first (paystream/data_keys.py:
no ingress makes a user a new key while the markers are missing). Only ports here; no I/O of its own.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from paystream import messages
from paystream.domain.model import Payment, Status
from paystream.domain.records import Receipt
from paystream.ports import EventLog, LogRecord, ReceiptCacheWriter, StoreWriter, TransactionRef
from paystream.topics import TopicNames

Partition = tuple[str, int]


def marker_name(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"


@dataclass
class Replayed:
    records: int = 0
    documents: int = 0
    #: Ids added to users' indexes (sub-document writes into their index documents).
    index_entries: int = 0
    unreadable: int = 0
    seconds: float = 0.0

    def add(self, other: Replayed) -> None:
        self.records += other.records
        self.documents += other.documents
        self.index_entries += other.index_entries
        self.unreadable += other.unreadable

    @property
    def documents_per_s(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0


#: A user's index: (kind, account, user id), as `DocumentStore.user_index` reads it.
IndexKey = tuple[str, str, str]


@dataclass
class Projection:
    """What a batch of records puts in the stores: the rebuild folds records read back from the log
    into one (`project`), the live sinks the events of one batch (streams/sinks.py)."""

    payments: dict[str, Payment] = field(default_factory=dict)
    transactions: dict[str, TransactionRef] = field(default_factory=dict)
    receipts: list[Receipt] = field(default_factory=list)
    unreadable: int = 0
    #: Ids to add to users' indexes: {(kind, account, user): {id: created_at}}.
    user_index: dict[IndexKey, dict[str, str]] = field(default_factory=dict)

    def index(self, kind: str, account: str, user_id: str, object_id: str, created_at: str) -> None:
        self.user_index.setdefault((kind, account, user_id), {})[object_id] = created_at

    def add_payment(self, payment: Payment) -> None:
        """One version of a payment: the latest version seen wins; the index entry and transaction id
        on the states where the sinks write them."""
        known = self.payments.get(payment.payment_id)
        if known is None or payment.version > known.version:
            self.payments[payment.payment_id] = payment
        if payment.status is Status.STARTED:
            self.index("payments", payment.account, payment.user_id, payment.payment_id, payment.created_at)
        if payment.status is Status.TOKENIZED:
            self.transactions[payment.transaction_id] = TransactionRef(payment.payment_id, payment.user_id,
                                                                       payment.account)

    def add_receipt(self, receipt: Receipt) -> None:
        self.receipts.append(receipt)
        self.index("receipts", receipt.account, receipt.user_id, receipt.receipt_id, receipt.issued_at)

    @property
    def index_entries(self) -> int:
        return sum(len(ids) for ids in self.user_index.values())


def project(records: list[LogRecord], topics: TopicNames) -> Projection:
    """The documents a batch implies: each payment's latest version, the transaction id of each of its
    sessions, each receipt, and the users' index entries of both."""
    out = Projection()
    for record in records:
        try:
            if record.topic == topics.events:
                out.add_payment(messages.decode("events", record.value).payment)
            elif record.topic == topics.receipts:
                out.add_receipt(messages.decode("receipts", record.value))
        except messages.UnreadableMessage:
            # The live sinks already set it aside on the dead-letter topic.
            out.unreadable += 1
    return out


class StoreRebuild:
    def __init__(self, log: EventLog, store: StoreWriter, cache: ReceiptCacheWriter, topics: TopicNames,
                 batch: int = 2000) -> None:
        self.log = log
        self.store = store
        self.cache = cache
        self.topics = topics
        self.batch = batch

    async def replay(self, ranges: dict[Partition, tuple[int, int]]) -> Replayed:
        """Write what the records in `ranges` imply. Batches are written one after another, so a
        later version of a payment is never overtaken by an earlier one from the same replay."""
        done = Replayed()
        started = time.monotonic()
        ranges = {tp: span for tp, span in ranges.items() if span[0] < span[1]}
        if ranges:
            async for records in self.log.read(ranges, self.batch):
                projection = project(records, self.topics)
                written = await asyncio.gather(
                    self.store.write_payments(list(projection.payments.values())),
                    self.store.write_transactions(projection.transactions),
                    self.store.write_receipts(projection.receipts),
                    self.cache.put_receipts(projection.receipts),
                )
                # Indexed once the documents are written, as the sinks do: a listed id is always found.
                indexed = await self.store.write_user_index(projection.user_index)
                done.add(Replayed(records=len(records), unreadable=projection.unreadable,
                                  documents=sum(n for n in written if n) + len(projection.receipts),
                                  index_entries=indexed))
        done.seconds = time.monotonic() - started
        return done

    async def replay_data_keys(self) -> Replayed:
        """Put back every user's data key from the data-keys topic, read whole (it is compacted: about
        one record per user). Each user's latest record decides: a key, or none once forgotten."""
        done = Replayed()
        started = time.monotonic()
        ends = await self.log.end_offsets(self.topics.data_keys)
        latest: dict[tuple[str, str], bytes | None] = {}
        ranges = {(self.topics.data_keys, p): (0, end) for p, end in ends.items() if end > 0}
        async for records in self.log.read(ranges, self.batch):
            done.records += len(records)
            for record in records:
                if record.key is None:
                    done.unreadable += 1
                    continue
                owner = messages.data_key_owner(record.key)
                try:
                    latest[owner] = None if record.value is None else messages.decode("data_keys", record.value).key
                except messages.UnreadableMessage:
                    done.unreadable += 1
        done.documents = await self.store.write_data_keys(latest) if latest else 0
        done.seconds = time.monotonic() - started
        return done

    async def rebuild(self) -> Replayed:
        """Replay the topics whole, as they are now (users' data keys first: nothing is readable without
        them), and mark the store as holding all of it."""
        done = await self.replay_data_keys()
        ends = {(topic, partition): end for topic in (self.topics.events, self.topics.receipts)
                for partition, end in (await self.log.end_offsets(topic)).items()}
        done.add(await self.replay({tp: (0, end) for tp, end in ends.items()}))
        markers = await self.store.applied_offsets([marker_name(*tp) for tp in ends])
        await self.store.set_applied_offsets({
            marker_name(*tp): end for tp, end in ends.items() if end > (markers[marker_name(*tp)] or 0)})
        return done


class StoreWatch:
    """The sinks' side: record what they applied, keep the markers, replay what the store lost."""

    def __init__(self, group: str, rebuild: StoreRebuild | None = None) -> None:
        #: Set before the first check (the sinks connect to the store lazily).
        self.rebuild = rebuild
        self.group = group
        #: Per partition: the offset after the last record the sinks applied.
        self.applied: dict[Partition, int] = {}
        #: Per partition: the offset the store must hold everything below (the last marker we wrote,
        #: or at first the group's committed offset: the previous owner applied all before it).
        self.floor: dict[Partition, int] = {}

    def note(self, topic: str, partition: int, offset: int) -> None:
        self.applied[(topic, partition)] = offset + 1

    async def check(self, assigned: set[Partition]) -> Replayed | None:
        """One round: returns what was replayed, or None when the store held everything."""
        for tp in set(self.floor) - assigned:
            del self.floor[tp]
            self.applied.pop(tp, None)
        for topic in {topic for topic, _ in assigned - set(self.floor)}:
            committed = await self.rebuild.log.committed(self.group, topic)
            for tp in assigned:
                if tp[0] == topic and tp not in self.floor:
                    self.floor[tp] = committed.get(tp[1], 0)
        targets = {tp: max(self.floor[tp], self.applied.get(tp, 0)) for tp in assigned}
        names = {tp: marker_name(*tp) for tp in assigned}
        markers = await self.rebuild.store.applied_offsets(list(names.values()))
        missing = {tp for tp in assigned if markers[names[tp]] is None}
        held = {tp: markers[names[tp]] or 0 for tp in assigned}
        gaps = {tp: (held[tp], targets[tp]) for tp in assigned if held[tp] < self.floor[tp]}
        replayed = None
        if gaps or missing:
            # A store that lost data may have lost users' keys too (a fresh one has none to lose: the
            # topic is empty). They go back first, and the markers last: while a marker is missing, no
            # ingress makes a new key for a user whose old one is merely not back yet.
            replayed = await self.rebuild.replay_data_keys()
        if gaps:
            replayed.add(await self.rebuild.replay(gaps))
        # A missing marker is written even at offset 0: its presence says the store holds the history.
        moved = {tp: target for tp, target in targets.items() if target > held[tp] or tp in missing}
        if moved:
            await self.rebuild.store.set_applied_offsets({names[tp]: target for tp, target in moved.items()})
            self.floor.update(moved)
        return replayed if replayed is not None and replayed.records else None
