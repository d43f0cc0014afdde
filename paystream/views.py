"""The read side: receipts, payments and a transaction's owner, and a user's lists of them.

The cache answers first and the document store (the design's read replicas)
when the cache does not know. Every read ends in the one ownership rule, so
another account's or another user's object is answered exactly as a missing
one. E-mails are kept sealed with each user's data key; they are opened here,
for the answer only (None once the user was forgotten).

A payment's status reads its own writes: the store's copy answers first only
once it is final (receipted: nothing can follow; a failed start can still be
started again by its client's retry). Before that the sinks
may lag behind what the client was told, so the workers' table, which holds
every state before the client hears of it, answers instead; and a payment
the client was told is being processed (202) before the pipeline had it is
answered as such, also while no worker can answer. 404 only when every one
of them says there is no such payment; when one that might know cannot
answer, `Unavailable` (503).
"""

from __future__ import annotations

from paystream.domain.commands import StartPayment
from paystream.domain.errors import InvalidRequest, NotFound, Unavailable
from paystream.domain.model import FINAL, Payment, check_owner
from paystream.domain.records import PaymentView, Receipt, RefundView
from paystream.domain.sealing import unseal_personal
from paystream.ports import (
    AcceptedPayment,
    DocumentStore,
    PaymentTable,
    PersonalDataKeys,
    ReceiptCache,
    TransactionRef,
)


async def unsealed(keys: PersonalDataKeys, receipt: Receipt) -> Receipt:
    """The receipt as its owner reads it: the e-mail in plaintext, or None when forgotten."""
    return opened(await keys.get(receipt.account, receipt.user_id), receipt)


def opened(key: bytes | None, receipt: Receipt) -> Receipt:
    """The receipt with its e-mail opened by this data key (None without one)."""
    return receipt.model_copy(update={
        "email_id": unseal_personal(key, receipt.email_id, receipt.account, receipt.user_id)})


async def receipt(cache: ReceiptCache, store: DocumentStore, keys: PersonalDataKeys, account: str, user_id: str,
                  receipt_id: str) -> tuple[Receipt, bool]:
    """(the receipt, whether the cache had it). A miss fills the cache for the next read."""
    cached, cache_down = await _answer_or_outage(cache.get_receipt(account, user_id, receipt_id))
    if cached is not None:
        found, hit = Receipt.model_validate_json(cached), True
    else:
        found, hit = await store.get_receipt(receipt_id), False
        _not_known_while(cache_down, found)
        await _not_known_while_rebuilding(store, found)
        check_owner((found.account, found.user_id) if found else None, account, user_id, "receipt", "receipt_id")
        await cache.put_receipt(found)
    return await unsealed(keys, found), hit


async def payment(store: DocumentStore, table: PaymentTable, cache: ReceiptCache, account: str, payment_id: str,
                  user_id: str | None) -> PaymentView:
    try:
        stored = await store.get_payment(payment_id)
    except Unavailable:
        stored = None  # the workers' table answers in its place
    if stored is not None and stored.status in FINAL:
        return _owned(stored, account, user_id)
    live, table_down = await _answer_or_outage(table.get_payment(payment_id, account, user_id))
    if live is not None:
        return live
    if stored is not None:
        if table_down is not None:
            raise table_down  # the store's copy may be older than what the client was told
        return _owned(stored, account, user_id)  # no worker holds a newer state
    accepted, cache_down = await _answer_or_outage(cache.get_accepted(payment_id))
    _not_known_while(table_down or cache_down, accepted)
    check_owner((accepted.account, accepted.user_id) if accepted else None, account, user_id)
    return accepted.view


def _owned(stored: Payment, account: str, user_id: str | None) -> PaymentView:
    check_owner((stored.account, stored.user_id), account, user_id)
    return stored.public_view()


def accepted(command: StartPayment, at: str) -> AcceptedPayment:
    """What a client told 202 for a new payment may read of it until the pipeline has it."""
    return AcceptedPayment(command.account, command.user_id, PaymentView(
        payment_id=command.payment_id, user_id=command.user_id, status="processing",
        payment_type=command.payment_type,
        **(command.amount.as_dict() if command.amount else {}), created_at=at, updated_at=at,
    ))


async def transaction(cache: ReceiptCache, store: DocumentStore, account: str, transaction_id: str,
                      user_id: str) -> TransactionRef:
    """The payment a provider transaction belongs to, if it is this user's."""
    ref, cache_down = await _answer_or_outage(cache.get_transaction(transaction_id))
    ref = ref or await store.get_transaction(transaction_id)
    _not_known_while(cache_down, ref)
    await _not_known_while_rebuilding(store, ref)
    check_owner((ref.account, ref.user_id) if ref else None, account, user_id, "payment", "transaction_id")
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


async def _not_known_while_rebuilding(store: DocumentStore, found) -> None:
    """Not in a store that came back empty and is still being rebuilt from the topics: unknown (503),
    not missing (404). Asked only on a miss."""
    if not found and not await store.holds_history():
        raise Unavailable("store_rebuilding", "the document store is being rebuilt from the log; retry shortly")


def page(index: dict[str, str], limit: int, starting_after: str | None) -> tuple[list[str], bool]:
    """Ids newest first (by creation time, then id), after `starting_after`, at most `limit`; and whether
    more follow. Stripe's cursor pagination over a user index ({id: created_at})."""
    ordered = sorted(index, key=lambda i: (index[i], i), reverse=True)
    if starting_after is not None:
        if starting_after not in index:
            raise InvalidRequest("invalid_cursor", "starting_after must be the id of an object of this list",
                                 "starting_after")
        ordered = ordered[ordered.index(starting_after) + 1:]
    return ordered[:limit], len(ordered) > limit


async def payments(store: DocumentStore, account: str, user_id: str, limit: int,
                   starting_after: str | None) -> tuple[list[PaymentView], bool]:
    index = await store.user_index("payments", account, user_id)
    await _not_known_while_rebuilding(store, index)
    ids, more = page(index, limit, starting_after)
    found = [await store.get_payment(i) for i in ids]
    return [p.public_view() for p in found if p is not None and (p.account, p.user_id) == (account, user_id)], more


async def receipts(store: DocumentStore, keys: PersonalDataKeys, account: str, user_id: str, limit: int,
                   starting_after: str | None) -> tuple[list[Receipt], bool]:
    index = await store.user_index("receipts", account, user_id)
    await _not_known_while_rebuilding(store, index)
    ids, more = page(index, limit, starting_after)
    found = [await store.get_receipt(i) for i in ids]
    return [await unsealed(keys, r) for r in found
            if r is not None and (r.account, r.user_id) == (account, user_id)], more


# --- refunds: read from their payment, live first -----------------------------------------------
async def live_payment(store: DocumentStore, table: PaymentTable, account: str, payment_id: str,
                       user_id: str | None, field: str = "payment_id") -> PaymentView:
    """The payment as the workers' table holds it (a refund changes even a receipted payment, and the
    sinks may lag behind what its client was told); the store's copy when no worker can answer."""
    live, table_down = await _answer_or_outage(table.get_payment(payment_id, account, user_id))
    if live is not None:
        return live
    try:
        stored = await store.get_payment(payment_id)
    except Unavailable:
        stored = None
    _not_known_while(table_down, stored)
    check_owner((stored.account, stored.user_id) if stored else None, account, user_id, "payment", field)
    return stored.public_view()


async def refund(cache: ReceiptCache, store: DocumentStore, table: PaymentTable, account: str, refund_id: str,
                 user_id: str) -> RefundView:
    """A refund, found through the index of which payment an id belongs to (refund ids are indexed with
    transaction ids: `rf_…` is no provider's), then in its payment as it stands."""
    ref, cache_down = await _answer_or_outage(cache.get_transaction(refund_id))
    if ref is None:
        try:
            ref = await store.get_transaction(refund_id)
        except Unavailable as exc:
            cache_down = cache_down or exc
    _not_known_while(cache_down, ref)
    missing = NotFound("refund_not_found", "no such refund for this user", "refund_id")
    if ref is None or not refund_id.startswith("rf_"):
        raise missing
    check_owner((ref.account, ref.user_id), account, user_id, "refund", "refund_id")
    payment = await live_payment(store, table, account, ref.payment_id, user_id, "refund_id")
    found = next((r for r in payment.refunds if r.id == refund_id), None)
    if found is None:
        raise missing
    return found


def refunds_page(payment: PaymentView, limit: int, starting_after: str | None) -> tuple[list[RefundView], bool]:
    """A payment's refunds, newest first, as every list pages."""
    by_id = {r.id: r for r in payment.refunds}
    ids, more = page({r.id: r.created_at for r in payment.refunds}, limit, starting_after)
    return [by_id[i] for i in ids], more
