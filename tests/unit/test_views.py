"""The read side: cache first, then the store; another user's object is the same 404 as none."""

from __future__ import annotations

import asyncio
import json

import pytest

from paystream import views
from paystream.domain.errors import NotFound
from paystream.ports import TransactionRef
from tests.unit.test_messages import RECEIPTED


class MemoryCache:
    def __init__(self) -> None:
        self.receipts: dict[tuple[str, str], bytes] = {}
        self.transactions: dict[str, TransactionRef] = {}

    async def get_receipt(self, user_id, receipt_id):
        return self.receipts.get((user_id, receipt_id))

    async def put_receipt(self, receipt):
        self.receipts[(receipt.user_id, receipt.receipt_id)] = receipt.model_dump_json().encode()

    async def get_transaction(self, transaction_id):
        return self.transactions.get(transaction_id)

    async def put_transaction(self, transaction_id, ref):
        self.transactions[transaction_id] = ref


class MemoryStore:
    def __init__(self, payments=(), receipts=(), transactions=None) -> None:
        self.payments = {p.payment_id: p for p in payments}
        self.receipts = {r.receipt_id: r for r in receipts}
        self.transactions = transactions or {}

    async def get_payment(self, payment_id):
        return self.payments.get(payment_id)

    async def get_receipt(self, receipt_id):
        return self.receipts.get(receipt_id)

    async def get_transaction(self, transaction_id):
        return self.transactions.get(transaction_id)


RECEIPT = RECEIPTED.receipt()


def run(coro):
    return asyncio.run(coro)


def test_a_receipt_missing_from_the_cache_comes_from_the_store_and_is_cached():
    cache, store = MemoryCache(), MemoryStore(receipts=[RECEIPT])
    body, hit = run(views.receipt(cache, store, "user-1", RECEIPT.receipt_id))
    assert not hit and json.loads(body)["receipt_id"] == RECEIPT.receipt_id
    body_again, hit_again = run(views.receipt(cache, store, "user-1", RECEIPT.receipt_id))
    assert hit_again and json.loads(body_again) == json.loads(body)


@pytest.mark.parametrize(("user_id", "receipt_id"), [("user-2", RECEIPT.receipt_id), ("user-1", "rcpt_nope")],
                         ids=["another-users", "missing"])
def test_a_receipt_that_is_not_yours_is_not_found(user_id, receipt_id):
    cache = MemoryCache()
    with pytest.raises(NotFound) as info:
        run(views.receipt(cache, MemoryStore(receipts=[RECEIPT]), user_id, receipt_id))
    assert (info.value.code, info.value.field) == ("receipt_not_found", "receipt_id")
    assert cache.receipts == {}


def test_payment_status_is_its_owners_view():
    view = run(views.payment(MemoryStore(payments=[RECEIPTED]), RECEIPTED.payment_id, "user-1"))
    assert view.status == "receipted" and view.receipt_id == RECEIPT.receipt_id
    with pytest.raises(NotFound):
        run(views.payment(MemoryStore(payments=[RECEIPTED]), RECEIPTED.payment_id, "user-2"))


def test_a_transaction_is_found_in_the_cache_then_in_the_store():
    ref = TransactionRef("pay-1", "user-1")
    cache = MemoryCache()
    assert run(views.transaction(cache, MemoryStore(transactions={"pi_1": ref}), "pi_1", "user-1")) == ref
    cache.transactions["pi_2"] = TransactionRef("pay-2", "user-1")
    assert run(views.transaction(cache, MemoryStore(), "pi_2", "user-1")).payment_id == "pay-2"
    with pytest.raises(NotFound) as info:
        run(views.transaction(cache, MemoryStore(transactions={"pi_1": ref}), "pi_1", "user-2"))
    assert (info.value.code, info.value.field) == ("payment_not_found", "transaction_id")
