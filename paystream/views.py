"""The read side: receipts, payments and a transaction's owner, and a user's lists of them.

The cache answers first and the document store (the design's read replicas)
when the cache does not know. Every read ends in the one ownership rule, so
another account's or another user's object is answered exactly as a missing
one. E-mails are kept sealed with each user's data key; they are opened here,
for the answer only (None once the user was forgotten).
"""

from __future__ import annotations

from paystream.domain.errors import InvalidRequest
from paystream.domain.model import check_owner
from paystream.domain.records import PaymentView, Receipt
from paystream.domain.sealing import unseal_personal
from paystream.ports import DocumentStore, PersonalDataKeys, ReceiptCache, TransactionRef


async def unsealed(keys: PersonalDataKeys, receipt: Receipt) -> Receipt:
    """The receipt as its owner reads it: the e-mail in plaintext, or None when forgotten."""
    key = await keys.get(receipt.account, receipt.user_id)
    return receipt.model_copy(update={
        "email_id": unseal_personal(key, receipt.email_id, receipt.account, receipt.user_id)})


async def receipt(cache: ReceiptCache, store: DocumentStore, keys: PersonalDataKeys, account: str, user_id: str,
                  receipt_id: str) -> tuple[Receipt, bool]:
    """(the receipt, whether the cache had it). A miss fills the cache for the next read."""
    cached = await cache.get_receipt(account, user_id, receipt_id)
    if cached is not None:
        found, hit = Receipt.model_validate_json(cached), True
    else:
        found, hit = await store.get_receipt(receipt_id), False
        check_owner((found.account, found.user_id) if found else None, account, user_id, "receipt", "receipt_id")
        await cache.put_receipt(found)
    return await unsealed(keys, found), hit


async def payment(store: DocumentStore, account: str, payment_id: str, user_id: str | None) -> PaymentView:
    found = await store.get_payment(payment_id)
    check_owner((found.account, found.user_id) if found else None, account, user_id)
    return found.public_view()


async def transaction(cache: ReceiptCache, store: DocumentStore, account: str, transaction_id: str,
                      user_id: str) -> TransactionRef:
    """The payment a provider transaction belongs to, if it is this user's."""
    ref = await cache.get_transaction(transaction_id) or await store.get_transaction(transaction_id)
    check_owner((ref.account, ref.user_id) if ref else None, account, user_id, "payment", "transaction_id")
    return ref


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
    ids, more = page(await store.user_index("payments", account, user_id), limit, starting_after)
    found = [await store.get_payment(i) for i in ids]
    return [p.public_view() for p in found if p is not None and (p.account, p.user_id) == (account, user_id)], more


async def receipts(store: DocumentStore, keys: PersonalDataKeys, account: str, user_id: str, limit: int,
                   starting_after: str | None) -> tuple[list[Receipt], bool]:
    ids, more = page(await store.user_index("receipts", account, user_id), limit, starting_after)
    found = [await store.get_receipt(i) for i in ids]
    return [await unsealed(keys, r) for r in found
            if r is not None and (r.account, r.user_id) == (account, user_id)], more
