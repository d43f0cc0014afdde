"""The read side: cache first, then the store; another account's or user's object is the same 404 as
none; e-mails are opened for the answer only, and not at all once the user was forgotten; lists page
newest first."""

from __future__ import annotations

import asyncio
import json

import pytest

from paystream import views
from paystream.domain.errors import InvalidRequest, NotFound
from paystream.domain.sealing import new_data_key, seal_personal
from paystream.ports import TransactionRef
from tests.unit.test_messages import RECEIPTED

KEY = new_data_key()
RECEIPT = RECEIPTED.receipt().model_copy(update={"email_id": seal_personal(KEY, "a@example.com", "acct-1", "user-1")})


class MemoryCache:
    def __init__(self) -> None:
        self.receipts: dict[tuple[str, str, str], bytes] = {}
        self.transactions: dict[str, TransactionRef] = {}

    async def get_receipt(self, account, user_id, receipt_id):
        return self.receipts.get((account, user_id, receipt_id))

    async def put_receipt(self, receipt):
        self.receipts[(receipt.account, receipt.user_id, receipt.receipt_id)] = receipt.model_dump_json().encode()

    async def get_transaction(self, transaction_id):
        return self.transactions.get(transaction_id)

    async def put_transaction(self, transaction_id, ref):
        self.transactions[transaction_id] = ref


class MemoryStore:
    def __init__(self, payments=(), receipts=(), transactions=None, index=None) -> None:
        self.payments = {p.payment_id: p for p in payments}
        self.receipts = {r.receipt_id: r for r in receipts}
        self.transactions = transactions or {}
        self.index = index or {}

    async def get_payment(self, payment_id):
        return self.payments.get(payment_id)

    async def get_receipt(self, receipt_id):
        return self.receipts.get(receipt_id)

    async def get_transaction(self, transaction_id):
        return self.transactions.get(transaction_id)

    async def user_index(self, kind, account, user_id):
        return self.index.get((kind, account, user_id), {})


class MemoryKeys:
    def __init__(self, keys=None) -> None:
        self.keys = dict(keys if keys is not None else {("acct-1", "user-1"): KEY})

    async def get(self, account, user_id):
        return self.keys.get((account, user_id))


def run(coro):
    return asyncio.run(coro)


def test_a_receipt_missing_from_the_cache_comes_from_the_store_and_is_cached():
    cache, store = MemoryCache(), MemoryStore(receipts=[RECEIPT])
    found, hit = run(views.receipt(cache, store, MemoryKeys(), "acct-1", "user-1", RECEIPT.receipt_id))
    assert not hit and found.receipt_id == RECEIPT.receipt_id and found.email_id == "a@example.com"
    again, hit_again = run(views.receipt(cache, store, MemoryKeys(), "acct-1", "user-1", RECEIPT.receipt_id))
    assert hit_again and again == found
    # The cache holds the receipt as it travels: e-mail sealed.
    (cached,) = cache.receipts.values()
    assert json.loads(cached)["email_id"] == RECEIPT.email_id and b"a@example.com" not in cached


def test_a_forgotten_users_receipt_has_no_email():
    found, _ = run(views.receipt(MemoryCache(), MemoryStore(receipts=[RECEIPT]), MemoryKeys({}), "acct-1", "user-1",
                                 RECEIPT.receipt_id))
    assert found.email_id is None and found.amount_minor == RECEIPT.amount_minor


@pytest.mark.parametrize(("account", "user_id", "receipt_id"),
                         [("acct-1", "user-2", RECEIPT.receipt_id), ("acct-2", "user-1", RECEIPT.receipt_id),
                          ("acct-1", "user-1", "rcpt_nope")],
                         ids=["another-users", "another-accounts", "missing"])
def test_a_receipt_that_is_not_yours_is_not_found(account, user_id, receipt_id):
    cache = MemoryCache()
    with pytest.raises(NotFound) as info:
        run(views.receipt(cache, MemoryStore(receipts=[RECEIPT]), MemoryKeys(), account, user_id, receipt_id))
    assert (info.value.code, info.value.field) == ("receipt_not_found", "receipt_id")
    assert cache.receipts == {}


def test_payment_status_is_its_owners_view():
    store = MemoryStore(payments=[RECEIPTED])
    view = run(views.payment(store, "acct-1", RECEIPTED.payment_id, "user-1"))
    assert view.status == "receipted" and view.receipt_id == RECEIPT.receipt_id
    for account, user in (("acct-1", "user-2"), ("acct-2", "user-1"), ("acct-2", None)):
        with pytest.raises(NotFound):
            run(views.payment(store, account, RECEIPTED.payment_id, user))


def test_a_transaction_is_found_in_the_cache_then_in_the_store():
    ref = TransactionRef("pay-1", "user-1", "acct-1")
    cache = MemoryCache()
    assert run(views.transaction(cache, MemoryStore(transactions={"pi_1": ref}), "acct-1", "pi_1", "user-1")) == ref
    cache.transactions["pi_2"] = TransactionRef("pay-2", "user-1", "acct-1")
    assert run(views.transaction(cache, MemoryStore(), "acct-1", "pi_2", "user-1")).payment_id == "pay-2"
    for account, user in (("acct-1", "user-2"), ("acct-2", "user-1")):
        with pytest.raises(NotFound) as info:
            run(views.transaction(cache, MemoryStore(transactions={"pi_1": ref}), account, "pi_1", user))
        assert (info.value.code, info.value.field) == ("payment_not_found", "transaction_id")


INDEX = {f"pay_{n}": f"2026-11-25T10:00:{n:02d}Z" for n in range(7)} | {"pay_x": "2026-11-25T10:00:03Z"}


def test_pages_go_newest_first_and_say_whether_more_follow():
    first, more = views.page(INDEX, 3, None)
    assert (first, more) == (["pay_6", "pay_5", "pay_4"], True)
    second, more = views.page(INDEX, 3, first[-1])
    assert (second, more) == (["pay_x", "pay_3", "pay_2"], True)  # same time: the larger id first
    last, more = views.page(INDEX, 3, second[-1])
    assert (last, more) == (["pay_1", "pay_0"], False)
    with pytest.raises(InvalidRequest) as info:
        views.page(INDEX, 3, "pay_someone_elses")
    assert info.value.field == "starting_after"


def test_a_list_shows_only_this_users_objects():
    mine, theirs = RECEIPTED, RECEIPTED.model_copy(update={"payment_id": "pay-2", "user_id": "user-2"})
    # An index entry naming another's payment (it cannot happen; if it did, nothing leaks).
    store = MemoryStore(payments=[mine, theirs],
                        index={("payments", "acct-1", "user-1"): {"pay-1": "t1", "pay-2": "t2"}})
    data, more = run(views.payments(store, "acct-1", "user-1", 10, None))
    assert [p.payment_id for p in data] == ["pay-1"] and not more
    assert run(views.payments(store, "acct-2", "user-1", 10, None)) == ([], False)
