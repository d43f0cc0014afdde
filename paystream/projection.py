"""Which documents, index entries and cache entries the events imply: the one statement of it.

A `Projection` folds payment events and receipts into what the read side
holds: each payment's latest version, the transaction id of each of its
sessions (payment and owner), each receipt (in the document store and the
receipt cache), and the ids to add to each user's index of payments and of
receipts. The live sinks fold one batch into one (streams/sinks.py), the store
rebuild a batch of records read back from the log (paystream/rebuild.py), a
single write a batch of one; `write` puts any of them in the stores through the
one store writer (the StoreWriter port: connectors/couchbase_writer.py), which
never replaces a payment with an older version of itself. Only ports here; no
I/O of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from paystream import messages
from paystream.domain.model import Payment, Status
from paystream.domain.records import Receipt
from paystream.ports import LogRecord, ReceiptCacheWriter, StoreWriter, TransactionRef
from paystream.topics import TopicNames

#: A user's index: (kind, account, user id), as `DocumentStore.user_index` reads it.
IndexKey = tuple[str, str, str]


@dataclass
class Projection:
    payments: dict[str, Payment] = field(default_factory=dict)
    transactions: dict[str, TransactionRef] = field(default_factory=dict)
    #: Stored, and cached.
    receipts: list[Receipt] = field(default_factory=list)
    unreadable: int = 0
    #: Ids to add to users' indexes: {(kind, account, user): {id: created_at}}.
    user_index: dict[IndexKey, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of_payments(cls, payments: Iterable[Payment]) -> Projection:
        projection = cls()
        for payment in payments:
            projection.add_payment(payment)
        return projection

    @classmethod
    def of_receipts(cls, receipts: Iterable[Receipt]) -> Projection:
        projection = cls()
        for receipt in receipts:
            projection.add_receipt(receipt)
        return projection

    @classmethod
    def of_records(cls, records: Iterable[LogRecord], topics: TopicNames) -> Projection:
        """What records read back from the events and receipts topics imply (a message that cannot be
        read is counted: the live sinks already set it aside on the dead-letter topic)."""
        projection = cls()
        for record in records:
            try:
                if record.topic == topics.events:
                    projection.add_payment(messages.decode("events", record.value).payment)
                elif record.topic == topics.receipts:
                    projection.add_receipt(messages.decode("receipts", record.value))
            except messages.UnreadableMessage:
                projection.unreadable += 1
        return projection

    def index(self, kind: str, account: str, user_id: str, object_id: str, created_at: str) -> None:
        self.user_index.setdefault((kind, account, user_id), {})[object_id] = created_at

    def add_payment(self, payment: Payment) -> None:
        """One version of a payment: the latest version seen wins; its user's index entry when it starts,
        its transaction id once the provider gave one."""
        known = self.payments.get(payment.payment_id)
        if known is None or payment.version > known.version:
            self.payments[payment.payment_id] = payment
        if payment.status is Status.STARTED:
            self.index("payments", payment.account, payment.user_id, payment.payment_id, payment.created_at)
        if payment.status is Status.TOKENIZED:
            self.transactions[payment.transaction_id] = transaction_ref(payment.payment_id, payment.user_id,
                                                                        payment.account)
        # Which payment each refund belongs to (refund ids share the transaction index: `rf_…` is no
        # provider's id), so a refund is read by its id alone.
        for refund in payment.changed_refunds:
            self.transactions[refund.refund_id] = transaction_ref(payment.payment_id, payment.user_id,
                                                                  payment.account)

    def add_receipt(self, receipt: Receipt) -> None:
        self.receipts.append(receipt)
        self.index("receipts", receipt.account, receipt.user_id, receipt.receipt_id, receipt.issued_at)

    @property
    def index_entries(self) -> int:
        return sum(len(ids) for ids in self.user_index.values())


def transaction_ref(payment_id: str, user_id: str, account: str) -> TransactionRef:
    """The transaction index's entry of a payment's session: which payment, and whose."""
    return TransactionRef(payment_id, user_id, account)


@dataclass(frozen=True)
class Written:
    #: Documents and cache entries written (a payment the store held at the same or a newer version,
    #: or a receipt or transaction id it held already, is not).
    documents: int
    #: Ids written into users' indexes.
    index_entries: int


async def write(projection: Projection, store: StoreWriter, cache: ReceiptCacheWriter, *,
                whole_lifetime: bool) -> Written:
    """Put a projection in the stores: the payments and receipts (and the receipts in the cache: for
    their `whole_lifetime` from now when live, else for what is left of it), then what points at them,
    transaction ids and users' index entries, so an indexed id is always found."""
    payments, receipts, _ = await asyncio.gather(
        store.write_payments(list(projection.payments.values())), store.write_receipts(projection.receipts),
        cache.put_receipts(projection.receipts, whole_lifetime=whole_lifetime))
    transactions, indexed = await asyncio.gather(store.write_transactions(projection.transactions),
                                                 store.write_user_index(projection.user_index))
    return Written(documents=payments + receipts + transactions + len(projection.receipts), index_entries=indexed)
