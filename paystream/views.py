"""The read side: a receipt, a payment's status and a transaction's owner.

The cache answers first and the document store (the design's read replicas)
when the cache does not know. Every read ends in the one ownership rule, so
another user's object is answered exactly as a missing one.

A payment's status reads its own writes: the store's copy answers only once
it is final (receipted or failed: nothing can follow). Before that the sinks
may lag behind what the client was told, so the workers' table, which holds
every state before the client hears of it, answers instead; and a payment
the client was told is being processed (202) before the pipeline had it is
answered as such, also while no worker can answer. 404 only when every one
of them says there is no such payment; when one that might know cannot
answer, `Unavailable` (503).
"""

from __future__ import annotations

from paystream.domain.commands import StartPayment
from paystream.domain.errors import Unavailable
from paystream.domain.model import FINISHED, check_owner
from paystream.domain.records import PaymentView
from paystream.ports import AcceptedPayment, DocumentStore, PaymentTable, ReceiptCache, TransactionRef


async def receipt(cache: ReceiptCache, store: DocumentStore, user_id: str, receipt_id: str) -> tuple[bytes, bool]:
    """(the receipt as JSON, whether the cache had it). A miss fills the cache for the next read."""
    cached, cache_down = await _answer_or_outage(cache.get_receipt(user_id, receipt_id))
    if cached is not None:
        return cached, True
    found = await store.get_receipt(receipt_id)
    _not_known_while(cache_down, found)
    check_owner(found.user_id if found else None, user_id, "receipt", "receipt_id")
    await cache.put_receipt(found)
    return found.model_dump_json().encode(), False


async def payment(store: DocumentStore, table: PaymentTable, cache: ReceiptCache, payment_id: str,
                  user_id: str) -> PaymentView:
    try:
        stored = await store.get_payment(payment_id)
    except Unavailable:
        stored = None  # the workers' table answers in its place
    if stored is not None and stored.status in FINISHED:
        check_owner(stored.user_id, user_id)
        return stored.public_view()
    live, table_down = await _answer_or_outage(table.get_payment(payment_id, user_id))
    if live is not None:
        return live
    if table_down is not None and stored is not None:
        raise table_down  # the store's copy may be older than what the client was told
    accepted, cache_down = await _answer_or_outage(cache.get_accepted(payment_id))
    _not_known_while(table_down or cache_down, accepted)
    check_owner(accepted.user_id if accepted else None, user_id)
    return accepted.view


def accepted(command: StartPayment, at: str) -> AcceptedPayment:
    """What a client told 202 for a new payment may read of it until the pipeline has it."""
    return AcceptedPayment(command.user_id, PaymentView(
        payment_id=command.payment_id, status="processing", payment_type=command.payment_type,
        **(command.amount.as_dict() if command.amount else {}), created_at=at, updated_at=at,
    ))


async def transaction(cache: ReceiptCache, store: DocumentStore, transaction_id: str, user_id: str) -> TransactionRef:
    """The payment a provider transaction belongs to, if it is this user's."""
    ref, cache_down = await _answer_or_outage(cache.get_transaction(transaction_id))
    ref = ref or await store.get_transaction(transaction_id)
    _not_known_while(cache_down, ref)
    check_owner(ref.user_id if ref else None, user_id, "payment", "transaction_id")
    return ref


async def _answer_or_outage(read):
    """(what a source said, None), or (None, the outage) when it could not answer."""
    try:
        return await read, None
    except Unavailable as exc:
        return None, exc


def _not_known_while(outage: Unavailable | None, found) -> None:
    """Nothing found while a source that might know was down: unknown (503), not missing (404)."""
    if found is None and outage is not None:
        raise outage
