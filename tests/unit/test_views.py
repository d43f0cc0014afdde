"""The read side: cache first, then the store; another account's or user's object is the same 404 as
none; e-mails are opened for the answer only, and not at all once the user was forgotten; lists page
newest first; a payment's status never older than what its client was told, and unknown (503) rather
than missing (404) while a source that might know cannot answer."""

from __future__ import annotations

import asyncio
import json

import pytest

from paystream import views
from paystream.domain.errors import InvalidRequest, NotFound, Unavailable
from paystream.domain.model import Payment
from paystream.domain.sealing import seal_personal
from paystream.ports import TransactionRef
from tests.unit.fakes import (
    KEY,
    RECEIPTED,
    MemoryCache,
    MemoryKeys,
    MemoryStore,
    MemoryTable,
    post_cmd,
    start_cmd,
)

RECEIPT = RECEIPTED.receipt().model_copy(update={"email_id": seal_personal(KEY, "a@example.com", "acct-1", "user-1")})


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


T = "2024-05-01T12:00:0{}Z"
TOKENIZED = Payment.start(start_cmd(), T.format(0)).tokenized("pi_pay-1", T.format(1))
POSTING = TOKENIZED.posting(post_cmd(), T.format(2), "pi_pay-1")
DONE = POSTING.succeeded("ch_1", T.format(3)).receipted(T.format(4))


def status_of(store, table, cache=None, account="acct-1", user_id="user-1", payment_id="pay-1"):
    return run(views.payment(store, table, cache or MemoryCache(), account, payment_id, user_id))


def test_payment_status_is_its_owners_view():
    store = MemoryStore(payments=[RECEIPTED])
    view = status_of(store, MemoryTable(), payment_id=RECEIPTED.payment_id)
    assert view.status == "receipted" and view.receipt_id == RECEIPT.receipt_id
    for account, user in (("acct-1", "user-2"), ("acct-2", "user-1"), ("acct-2", None)):
        with pytest.raises(NotFound):
            status_of(store, MemoryTable(), account=account, user_id=user, payment_id=RECEIPTED.payment_id)


def test_a_final_state_in_the_store_answers_without_asking_the_workers():
    table = MemoryTable(is_down=True)
    assert status_of(MemoryStore(payments=[DONE]), table).status == "receipted"
    assert table.asked == 0


@pytest.mark.parametrize("stored", [[], [TOKENIZED], [POSTING]], ids=["not-yet-stored", "tokenized", "posting"])
def test_a_lagging_store_never_answers_older_than_the_workers_table(stored):
    """The client was told 'receipted' (a 201); the sinks have not caught up yet."""
    view = status_of(MemoryStore(payments=stored), MemoryTable([DONE]))
    assert (view.status, view.receipt_id) == ("receipted", DONE.receipt_id)
    # The account's own view (no user) reads the same; another account's, nothing.
    assert status_of(MemoryStore(payments=stored), MemoryTable([DONE]), user_id=None).status == "receipted"
    with pytest.raises(NotFound):
        status_of(MemoryStore(payments=stored), MemoryTable([DONE]), account="acct-2")


FAILED_START = Payment.start(start_cmd(), T.format(0)).failed("provider unavailable: timed out", T.format(1))


def test_a_failed_start_in_the_store_does_not_hide_its_retry():
    """The provider was down at the first try; the client's retry was answered 201 with a transaction."""
    retried = FAILED_START.started_again(T.format(2)).tokenized("pi_pay-1", T.format(3))
    view = status_of(MemoryStore(payments=[FAILED_START]), MemoryTable([retried]))
    assert (view.status, view.transaction_id) == ("tokenized", "pi_pay-1")


def test_a_store_copy_no_worker_holds_answers_for_its_owner_only():
    view = status_of(MemoryStore(payments=[FAILED_START]), MemoryTable())
    assert view.status == "failed"
    with pytest.raises(NotFound):
        status_of(MemoryStore(payments=[FAILED_START]), MemoryTable(), user_id="user-2")


def test_a_store_that_cannot_answer_is_replaced_by_the_workers_table():
    assert status_of(MemoryStore(payments=[DONE], is_down=True), MemoryTable([DONE])).status == "receipted"


def test_when_no_worker_can_answer_an_unfinished_payment_is_unavailable_not_stale_nor_missing():
    for store in (MemoryStore(payments=[TOKENIZED]), MemoryStore(), MemoryStore(is_down=True)):
        with pytest.raises(Unavailable):
            status_of(store, MemoryTable([DONE], is_down=True))


def test_a_payment_accepted_with_202_reads_as_processing_until_the_pipeline_has_it():
    cache = MemoryCache()
    run(cache.put_accepted(views.accepted(start_cmd(), T.format(5))))
    view = status_of(MemoryStore(), MemoryTable(), cache)
    assert (view.payment_id, view.status, view.amount, view.currency) == ("pay-1", "processing", "10.00", "EUR")
    for account, user in (("acct-1", "user-2"), ("acct-2", "user-1")):
        with pytest.raises(NotFound):
            status_of(MemoryStore(), MemoryTable(), cache, account=account, user_id=user)
    # While no worker can answer (the reason for the 202), still "processing", never 404.
    assert status_of(MemoryStore(), MemoryTable(is_down=True), cache).status == "processing"
    # Once the worker has it, its state answers.
    assert status_of(MemoryStore(), MemoryTable([TOKENIZED]), cache).status == "tokenized"


def test_a_payment_nobody_knows_is_not_found():
    with pytest.raises(NotFound):
        status_of(MemoryStore(), MemoryTable())
    with pytest.raises(NotFound):
        status_of(MemoryStore(payments=[POSTING]), MemoryTable([POSTING]), user_id="user-2")


def test_with_the_cache_down_reads_come_from_the_store_and_unknown_is_unavailable_not_missing():
    cache = MemoryCache(is_down=True)
    found, hit = run(views.receipt(cache, MemoryStore(receipts=[RECEIPT]), MemoryKeys(), "acct-1", "user-1",
                                   RECEIPT.receipt_id))
    assert not hit and found.receipt_id == RECEIPT.receipt_id
    ref = TransactionRef("pay-1", "user-1", "acct-1")
    assert run(views.transaction(cache, MemoryStore(transactions={"pi_1": ref}), "acct-1", "pi_1", "user-1")) == ref
    # Not (yet) in the store, and the cache that might know cannot say: 503, not 404.
    with pytest.raises(Unavailable):
        run(views.receipt(cache, MemoryStore(), MemoryKeys(), "acct-1", "user-1", RECEIPT.receipt_id))
    with pytest.raises(Unavailable):
        run(views.transaction(cache, MemoryStore(), "acct-1", "pi_1", "user-1"))
    with pytest.raises(Unavailable):
        status_of(MemoryStore(), MemoryTable(), cache)
    # Found, but another user's: the same 404 as ever.
    with pytest.raises(NotFound):
        run(views.transaction(cache, MemoryStore(transactions={"pi_1": ref}), "acct-1", "pi_1", "user-2"))


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


def test_on_a_store_being_rebuilt_a_miss_is_unavailable_not_missing():
    """A store that came back empty (its markers gone) cannot say an object does not exist."""
    rebuilding = MemoryStore(history=False)
    for read in (lambda: views.transaction(MemoryCache(), rebuilding, "acct-1", "pi_1", "user-1"),
                 lambda: views.receipt(MemoryCache(), rebuilding, MemoryKeys(), "acct-1", "user-1", "rcpt_1"),
                 lambda: views.payments(rebuilding, "acct-1", "user-1", 10, None),
                 lambda: views.receipts(rebuilding, MemoryKeys(), "acct-1", "user-1", 10, None)):
        with pytest.raises(Unavailable) as info:
            run(read())
        assert info.value.code == "store_rebuilding"
    # What it holds already is served meanwhile.
    ref = TransactionRef("pay-1", "user-1", "acct-1")
    found = MemoryStore(transactions={"pi_1": ref}, history=False)
    assert run(views.transaction(MemoryCache(), found, "acct-1", "pi_1", "user-1")) == ref


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
