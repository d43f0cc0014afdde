"""The read side: a receipt, a payment's status and a transaction's owner.

The cache answers first and the document store (the design's read replicas)
when the cache does not know. Every read ends in the one ownership rule, so
another user's object is answered exactly as a missing one.
"""

from __future__ import annotations

from paystream.domain.model import check_owner
from paystream.domain.records import PaymentView
from paystream.ports import DocumentStore, ReceiptCache, TransactionRef


async def receipt(cache: ReceiptCache, store: DocumentStore, user_id: str, receipt_id: str) -> tuple[bytes, bool]:
    """(the receipt as JSON, whether the cache had it). A miss fills the cache for the next read."""
    cached = await cache.get_receipt(user_id, receipt_id)
    if cached is not None:
        return cached, True
    found = await store.get_receipt(receipt_id)
    check_owner(found.user_id if found else None, user_id, "receipt", "receipt_id")
    await cache.put_receipt(found)
    return found.model_dump_json().encode(), False


async def payment(store: DocumentStore, payment_id: str, user_id: str) -> PaymentView:
    found = await store.get_payment(payment_id)
    check_owner(found.user_id if found else None, user_id)
    return found.public_view()


async def transaction(cache: ReceiptCache, store: DocumentStore, transaction_id: str, user_id: str) -> TransactionRef:
    """The payment a provider transaction belongs to, if it is this user's."""
    ref = await cache.get_transaction(transaction_id) or await store.get_transaction(transaction_id)
    check_owner(ref.user_id if ref else None, user_id, "payment", "transaction_id")
    return ref
