"""Refunds: the domain's rules (paystream/domain/refunds.py, the payment's refund transitions) and the
worker's handler (paystream/handlers.py handle_refund), over the in-memory table and provider."""

from __future__ import annotations

import asyncio

import pytest

from paystream.domain.errors import IllegalTransition, InvalidRequest, NotFound
from paystream.domain.model import Payment, Status
from paystream.domain.provider import RefundStatus
from paystream.domain.refunds import MAX_REFUNDS
from paystream.handlers import CommandHandler, handle_refund
from paystream.ports import ProviderRefund
from paystream.projection import Projection
from tables.analytics.counts import add_to_user, contribution, counted, counted_state
from tests.unit.fakes import RECEIPTED, DictStore, FakeProvider, Lost, clock, refund_cmd, unavailable

NOW = "2024-05-01T13:00:00Z"
PAID = RECEIPTED.model_copy(update={"payment_id": "pay-1"})  # 12.34 EUR, receipted


def refunded(payment: Payment, *amounts: str | None) -> Payment:
    for n, amount in enumerate(amounts):
        payment = payment.refunding(refund_cmd(f"rf_{n}", amount), NOW)
        payment = payment.refund_settled(f"rf_{n}", RefundStatus.SUCCEEDED, NOW, f"re_{n}")
    return payment


# --- the domain ---------------------------------------------------------------------------
def test_no_amount_refunds_the_rest():
    payment = PAID.refunding(refund_cmd("rf_a", "2.34"), NOW)
    payment = payment.refunding(refund_cmd("rf_b"), NOW)
    assert [r.amount.minor for r in payment.refunds] == [234, 1000]
    assert [r.status for r in payment.refunds] == ["pending", "pending"]


def test_partial_then_full_refund_status_and_amount_refunded():
    partial = refunded(PAID, "2.00")
    assert (partial.refund_status, partial.amount_refunded.minor) == ("partially_refunded", 200)
    view = partial.public_view()
    assert (view.amount_refunded, view.amount_refunded_minor, view.refund_status) == ("2.00", 200, "partially_refunded")
    assert view.status == "receipted" and len(view.refunds) == 1
    full = partial.refunding(refund_cmd("rf_x"), NOW).refund_settled("rf_x", RefundStatus.SUCCEEDED, NOW)
    assert (full.refund_status, full.amount_refunded.minor) == ("refunded", 1234)
    assert full.receipt().issued_at == PAID.receipt().issued_at


def test_a_pending_refund_holds_its_amount_but_is_not_refunded_yet():
    payment = PAID.refunding(refund_cmd("rf_a", "12.00"), NOW)
    assert payment.amount_refunded is None and payment.refund_status is None
    with pytest.raises(InvalidRequest) as exc:
        payment.refunding(refund_cmd("rf_b", "0.35"), NOW)
    assert (exc.value.code, exc.value.field) == ("amount_too_large", "amount")
    assert payment.refunding(refund_cmd("rf_b", "0.34"), NOW).refunds[-1].amount.minor == 34


def test_a_failed_refund_frees_its_amount():
    payment = PAID.refunding(refund_cmd("rf_a"), NOW).refund_settled("rf_a", RefundStatus.FAILED, NOW,
                                                                      failure_reason="expired_or_canceled_card")
    assert payment.refunds[0].failure_reason == "expired_or_canceled_card"
    assert payment.refunding(refund_cmd("rf_b"), NOW).refunds[-1].amount.minor == 1234


@pytest.mark.parametrize(("amount", "code"), [("12.35", "amount_too_large"), ("1.234", "invalid_amount"),
                                              ("0", "invalid_amount"), ("-1", "invalid_amount"),
                                              ("abc", "invalid_amount")])
def test_bad_amounts_are_refused_with_the_param(amount, code):
    with pytest.raises(InvalidRequest) as exc:
        PAID.refunding(refund_cmd("rf_a", amount), NOW)
    assert (exc.value.code, exc.value.field) == (code, "amount")


def test_a_fully_refunded_payment_refuses_another_refund():
    with pytest.raises(InvalidRequest) as exc:
        refunded(PAID, None).refunding(refund_cmd("rf_z"), NOW)
    assert (exc.value.code, exc.value.field) == ("charge_already_refunded", "amount")


def test_reason_must_be_a_known_one():
    assert PAID.refunding(refund_cmd("rf_a", reason="fraudulent"), NOW).refunds[0].view().reason == "fraudulent"
    with pytest.raises(InvalidRequest) as exc:
        PAID.refunding(refund_cmd("rf_a", reason="changed_my_mind"), NOW)
    assert exc.value.field == "reason"


def test_at_most_ten_refunds():
    payment = refunded(PAID, *["0.01"] * MAX_REFUNDS)
    with pytest.raises(IllegalTransition) as exc:
        payment.refunding(refund_cmd("rf_more", "0.01"), NOW)
    assert exc.value.code == "too_many_refunds"


def test_only_a_charged_payment_is_refunded():
    tokenized = PAID.model_copy(update={"status": Status.TOKENIZED})
    with pytest.raises(IllegalTransition) as exc:
        tokenized.refunding(refund_cmd(), NOW)
    assert (exc.value.code, exc.value.field) == ("payment_not_refundable", "payment_id")


def test_a_terminal_refund_is_not_changed_by_a_later_answer():
    payment = refunded(PAID, "1.00")
    assert payment.refund_settled("rf_0", RefundStatus.FAILED, NOW) is payment


def test_unknown_keeps_the_refund_pending():
    payment = PAID.refunding(refund_cmd("rf_a"), NOW).refund_settled("rf_a", RefundStatus.UNKNOWN, NOW)
    assert payment.refunds[0].status == "pending"


def test_a_payment_with_refunds_round_trips():
    payment = refunded(PAID, "1.00")
    assert Payment.from_dict(payment.as_dict()) == payment


# --- the worker's handler ------------------------------------------------------------------
class World:
    def __init__(self) -> None:
        self.store = DictStore()
        self.store.put(PAID)
        self.store.durable = dict(self.store.data)
        self.provider = FakeProvider(store=self.store)
        self.now = clock()

    def refund(self, command):
        async def run():
            outcome = await handle_refund(command, self.store, self.provider, self.now)
            await self.store.flush(outcome.unflushed)
            return outcome
        return asyncio.run(run())


def test_a_refund_is_durable_before_the_provider_call_and_answers_succeeded():
    w = World()
    outcome = w.refund(refund_cmd("rf_a", "2.00"))
    reply = outcome.reply(refund_cmd("rf_a", "2.00"), "c-1")
    assert reply.ok and reply.refund.status == "succeeded" and reply.refund.amount_minor == 200
    assert reply.payment.refund_status == "partially_refunded"
    assert w.provider.confirmed_unrecorded == []
    assert w.provider.count("refund") == 1


def test_a_replayed_refund_returns_the_first_and_refunds_once():
    w = World()
    first = w.refund(refund_cmd("rf_a", "2.00"))
    again = w.refund(refund_cmd("rf_a", "2.00"))
    assert again.reply(refund_cmd("rf_a"), "c").refund == first.reply(refund_cmd("rf_a"), "c").refund
    assert w.provider.count("refund") == 1 and again.changes == []


def test_another_users_payment_is_not_found_and_nothing_is_written():
    w = World()
    for command in (refund_cmd(user_id="user-2"), refund_cmd(account="acct-2"), refund_cmd(payment_id="pay-x")):
        outcome = w.refund(command)
        assert isinstance(outcome.error, NotFound) and outcome.payment is None
    assert w.provider.calls == [] and w.store.puts == 1


def test_an_over_refund_writes_nothing_and_calls_no_provider():
    w = World()
    outcome = w.refund(refund_cmd("rf_a", "99.00"))
    assert outcome.error.code == "amount_too_large" and outcome.changes == []
    assert w.provider.calls == []


def test_a_crash_after_the_refund_call_is_settled_by_a_sync_not_a_second_refund():
    w = World()
    w.provider.scripts["refund"].append(Lost(RefundStatus.SUCCEEDED))
    lost = w.refund(refund_cmd("rf_a"))
    assert lost.reply(refund_cmd("rf_a"), "c").refund.status == "pending"
    replay = w.refund(refund_cmd("rf_a"))  # the client's retry, or Kafka's redelivery
    assert replay.reply(refund_cmd("rf_a"), "c").refund.status == "succeeded"
    assert w.provider.count("refund") == 1 and w.provider.count("sync_refund") == 1


def test_a_refund_recorded_but_never_made_is_made_by_its_replay():
    w = World()
    w.store.put(PAID.refunding(refund_cmd("rf_a"), NOW))  # recorded, then the worker died before the call
    w.store.durable = dict(w.store.data)
    outcome = w.refund(refund_cmd("rf_a"))
    assert outcome.payment.refund("rf_a").status == "succeeded"
    assert w.provider.count("sync_refund") == 1 and w.provider.count("refund") == 1


def test_a_provider_that_cannot_say_leaves_the_refund_pending():
    w = World()
    w.provider.scripts["refund"].append(Lost(RefundStatus.SUCCEEDED))
    w.refund(refund_cmd("rf_a"))
    w.provider.scripts["sync_refund"].append(unavailable())
    outcome = w.refund(refund_cmd("rf_a"))
    assert outcome.error is None and outcome.payment.refund("rf_a").status == "pending"
    assert w.provider.count("refund") == 1


def test_a_refund_the_provider_refuses_is_failed_and_frees_its_amount():
    w = World()
    w.provider.scripts["refund"].append(RefundStatus.FAILED)
    failed = w.refund(refund_cmd("rf_a"))
    assert failed.payment.refund("rf_a").status == "failed" and failed.payment.refund("rf_a").failure_reason
    assert w.refund(refund_cmd("rf_b")).payment.refund("rf_b").status == "succeeded"


def test_a_pending_answer_is_synced_until_terminal():
    w = World()
    w.provider.scripts["refund"].append(RefundStatus.PENDING)
    assert w.refund(refund_cmd("rf_a")).payment.refund("rf_a").status == "pending"
    w.provider.scripts["sync_refund"].append(ProviderRefund("rf_a", found=True, status=RefundStatus.SUCCEEDED,
                                                            provider_refund_id="re_0"))
    assert w.refund(refund_cmd("rf_a")).payment.refund("rf_a").status == "succeeded"
    assert w.provider.count("refund") == 1


def test_simultaneous_refunds_of_the_rest_make_exactly_one():
    w = World()
    handler = CommandHandler(w.store, w.provider, w.now)

    async def run():
        return await asyncio.gather(*(handler(refund_cmd(f"rf_{n}")) for n in range(8)))
    outcomes = asyncio.run(run())
    assert sum(1 for o in outcomes if o.error is None) == 1
    assert {o.error.code for o in outcomes if o.error} == {"charge_already_refunded"}
    assert len(w.provider.refunds) == 1


# --- the read side ---------------------------------------------------------------------------
def test_a_refunds_change_of_a_receipted_payment_is_not_counted_as_another_receipt():
    assert counted_state(PAID)
    done = refunded(PAID, "1.00")
    assert counted(done) and not counted_state(done)
    assert contribution(done, 0)[1] == {"status|refunded": [1, 100]}
    pending = PAID.refunding(refund_cmd("rf_p", "1.00"), NOW)
    assert not counted(pending)  # counted once it succeeds
    user = add_to_user(None, PAID, "0", 1)
    assert add_to_user(user, done, "0", 2)["currencies"] == user["currencies"]


def test_the_projection_indexes_each_refund_to_its_payment_and_keeps_the_latest_version():
    payment = refunded(PAID, "1.00", "2.00")
    projection = Projection.of_payments([PAID, payment])
    assert projection.payments["pay-1"].refunds == payment.refunds
    assert {k: v.payment_id for k, v in projection.transactions.items()} == {"rf_0": "pay-1", "rf_1": "pay-1"}


def test_the_openapi_document_has_the_refund_operations():
    from ingress.openapi import document

    operations = {op["operationId"]: (path, method) for path, item in document()["paths"].items()
                  for method, op in item.items() if isinstance(op, dict) and "operationId" in op}
    assert operations["createRefund"] == ("/v1/refunds", "post")
    assert operations["getRefund"] == ("/v1/refunds/{refund_id}", "get")
    assert operations["listRefunds"] == ("/v1/payments/{payment_id}/refunds", "get")


# --- reconciliation -----------------------------------------------------------------------------
def _records(provider_refunded: int | None, **refunds: ProviderRefund):
    from monitor.reconciliation.differences import RefundRecords
    from paystream.domain.money import Money
    from paystream.domain.provider import PaymentStatus
    from paystream.ports import ProviderPayment

    synced = ProviderPayment("pi_1", found=True, status=PaymentStatus.SUCCEEDED,
                             amount_refunded=Money(provider_refunded, "EUR") if provider_refunded else None)
    return RefundRecords(synced, refunds)


def _made(refund_id: str, minor: int, status=RefundStatus.SUCCEEDED) -> ProviderRefund:
    from paystream.domain.money import Money

    return ProviderRefund(refund_id, found=True, status=status, provider_refund_id="re_x", amount=Money(minor, "EUR"))


def test_reconciliation_finds_refunds_as_the_provider_holds_them_clean():
    from monitor.reconciliation.differences import judge_refunds

    payment = refunded(PAID, "1.00", "2.00")
    assert judge_refunds(payment, _records(300, rf_0=_made("rf_0", 100), rf_1=_made("rf_1", 200))) == []


def test_reconciliation_finds_a_double_refund_a_missing_one_and_a_pending_one():
    from monitor.reconciliation.differences import judge_refunds

    payment = refunded(PAID, "1.00", "2.00").refunding(refund_cmd("rf_p", "1.00"), NOW)
    missing = ProviderRefund("rf_1", found=False, status=RefundStatus.UNKNOWN)
    found = judge_refunds(payment, _records(200, rf_0=_made("rf_0", 100), rf_1=missing))
    assert sorted(d.kind for d in found) == ["refund_mismatch", "refund_pending", "refunded_amount_mismatch"]
    doubled = judge_refunds(refunded(PAID, "1.00"), _records(200, rf_0=_made("rf_0", 100)))
    assert [d.kind for d in doubled] == ["refunded_amount_mismatch"]


def test_the_handler_remembers_pending_refunds_and_their_sync_command_settles_them():
    from paystream.handlers import refund_sync_command

    w = World()
    handler = CommandHandler(w.store, w.provider, w.now)
    w.provider.scripts["refund"].append(RefundStatus.PENDING)
    asyncio.run(handler(refund_cmd("rf_a", "1.00", reason="duplicate")))
    assert handler.pending_refunds == {"pay-1": {"rf_a"}}
    again = refund_sync_command(w.store.get("pay-1"), "rf_a", NOW)
    assert (again.command_id, again.amount, again.reason) == ("cmd-rf_a", "1.00", "duplicate")
    made = w.provider.refunds["rf_a"]
    w.provider.refunds["rf_a"] = ProviderRefund("rf_a", True, RefundStatus.SUCCEEDED, made.provider_refund_id,
                                                made.amount)  # the provider settled it meanwhile
    outcome = asyncio.run(handler(again))
    assert outcome.payment.refund("rf_a").status == "succeeded" and handler.pending_refunds == {}
    assert w.provider.count("refund") == 1
