"""Service-layer handlers against an in-memory store and a scripted fake provider."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from paystream.domain.commands import PostPayment, StartPayment
from paystream.domain.model import Payment, Status, receipt_id_for
from paystream.domain.money import Money
from paystream.domain.sealing import ReplyKey
from paystream.handlers import handle_post, handle_start, settle
from paystream.ports import ChargeResult, PreparedCharge, ProviderIntent
from tests.unit.fakes import EUR_10, DictStore, FakeProvider, Lost, clock, post_cmd, start_cmd, unavailable


def reply_of(outcome) -> dict:
    """The reply the worker would send for this outcome, as JSON, without the routing ids."""
    wire = outcome.reply(post_cmd(), "correlation-1").model_dump(mode="json")
    keys = ("ok", "payment", "receipt", "sealed_client_secret") if wire["ok"] else ("ok", "error", "payment")
    return {k: wire[k] for k in keys}


class World:
    def __init__(self, provider: FakeProvider | None = None) -> None:
        self.store = DictStore()
        self.provider = provider or FakeProvider()
        self.provider.store = self.store
        self.now = clock()

    def start(self, command: StartPayment | None = None):
        return asyncio.run(self._then_flush(handle_start(command or start_cmd(), self.store, self.provider, self.now)))

    def post(self, command: PostPayment | None = None):
        return asyncio.run(self._then_flush(handle_post(command or post_cmd(), self.store, self.provider, self.now)))

    async def _then_flush(self, handling):
        """As the worker does: what the handler left unflushed is flushed before the reply."""
        outcome = await handling
        await self.store.flush(outcome.unflushed)
        return outcome

    def stored(self, payment_id: str = "pay-1") -> Payment | None:
        return self.store.get(payment_id)


def statuses(outcome) -> list[str]:
    return [p.status.value for p in outcome.changes]


# --- happy path ---------------------------------------------------------------------
def test_start_then_post():
    w = World()
    started = w.start()
    assert started.error is None
    assert statuses(started) == ["started", "tokenized"]
    assert started.payment.transaction_id == "pi_pay-1"
    reply = reply_of(started)
    assert reply["ok"] is True
    # The client secret leaves sealed to the asking ingress's key: only that key opens it.
    asker = ReplyKey()
    sealed = started.reply(start_cmd(reply_key=asker.public), "correlation-1")
    assert asker.open(sealed.sealed_client_secret) == "secret_pay-1"
    assert ReplyKey().open(sealed.sealed_client_secret) is None
    assert "secret_pay-1" not in sealed.model_dump_json() and "secret_pay-1" not in str(started.payment.as_dict())
    assert reply["payment"]["status"] == "tokenized"
    assert reply["receipt"] is None
    assert w.provider.calls == [("create_session", "pay-1", EUR_10)]

    posted = w.post()
    assert posted.error is None
    assert statuses(posted) == ["posting", "succeeded", "receipted"]
    assert posted.payment.status == Status.RECEIPTED
    assert posted.payment.charge_id == "ch_cmd-post"
    reply = reply_of(posted)
    assert reply["ok"] is True
    assert reply["receipt"] == posted.payment.receipt().model_dump(mode="json")
    assert reply["receipt"]["receipt_id"] == receipt_id_for("pay-1")
    assert (reply["receipt"]["amount"], reply["receipt"]["amount_minor"], reply["receipt"]["currency"]) == \
        ("10.00", 1000, "EUR")
    assert reply["payment"]["status"] == "receipted"
    assert w.provider.calls[1:] == [("prepare_charge", "pay-1", "cmd-post", "pi_pay-1", EUR_10, "pm_card_visa", ()),
                                    ("confirm", "pay-1", "cmd-post", "pi_pay-1")]
    assert posted.payment.charge_intent_ids == ("pi_pay-1",)
    assert w.stored() == posted.payment


def test_what_is_charged_is_durable_before_the_charge():
    w = World()
    w.start()
    posted = w.post()
    # "posting", naming the intent it confirms, was flushed before the confirm; the rest before the reply.
    assert w.store.flushed == [["started", "tokenized"], ["posting"], ["succeeded", "receipted"]]
    assert posted.unflushed == posted.changes[1:]
    assert [p.status for p in posted.unflushed] == [Status.SUCCEEDED, Status.RECEIPTED]
    assert w.provider.confirmed_unrecorded == []


def test_changes_are_all_stored():
    w = World()
    w.start()
    assert w.store.puts == 2
    w.post()
    assert w.store.puts == 5


# --- idempotent replays ----------------------------------------------------------------
def test_replayed_start_calls_provider_once():
    w = World()
    first = w.start()
    again = w.start()
    assert w.provider.count("create_session") == 1
    assert again.error is None
    assert again.changes == []
    assert again.payment == first.payment
    assert reply_of(again) == reply_of(first)
    # Never kept, the secret of a replayed start is asked of the provider again.
    assert again.client_secret == first.client_secret == "secret_pay-1"
    assert w.provider.count("session_secret") == 1


def test_start_replayed_after_crash_before_tokenizing_finishes_it():
    w = World()
    w.store.put(Payment.start(start_cmd(), "2024-05-01T11:59:59Z"))  # crashed right after saving
    outcome = w.start()
    assert statuses(outcome) == ["tokenized"]
    assert w.provider.count("create_session") == 1


def test_replayed_post_returns_same_receipt_and_charges_once():
    w = World()
    w.start()
    first = w.post()
    again = w.post()
    third = w.post()
    assert w.provider.count("confirm") == 1
    assert again.error is None and third.error is None
    assert again.changes == [] and third.changes == []
    assert reply_of(again)["receipt"] == reply_of(first)["receipt"] == reply_of(third)["receipt"]
    assert reply_of(again) == reply_of(first)


def test_second_post_with_new_command_id_is_refused_without_charging():
    w = World()
    w.start()
    first = w.post()
    other = w.post(post_cmd(command_id="cmd-post-2"))
    assert other.error is not None
    assert other.error.code == "payment_already_posted"
    assert other.changes == []
    assert other.payment == first.payment
    reply = reply_of(other)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "payment_already_posted"
    assert w.provider.count("confirm") == 1


# --- ownership -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [post_cmd(user_id="user-2"), post_cmd(account="acct-2"), post_cmd(transaction_id="pi_other"),
     post_cmd(payment_id="pay-missing")],
    ids=["other-user", "other-account", "other-transaction", "missing"],
)
def test_post_for_someone_elses_payment_is_not_found(command):
    w = World()
    w.start()
    before = w.stored()
    outcome = w.post(command)
    assert outcome.error is not None
    assert outcome.error.type == "not_found_error"
    assert outcome.error.code == "payment_not_found"
    assert outcome.payment is None and outcome.changes == []
    assert reply_of(outcome) == {"ok": False, "error": outcome.error.as_dict(), "payment": None}
    assert w.provider.calls == [("create_session", "pay-1", EUR_10)]
    assert w.stored() == before


def test_not_found_is_identical_for_missing_and_foreign():
    w = World()
    w.start()
    replies = [reply_of(w.post(c)) for c in (post_cmd(user_id="user-2"), post_cmd(payment_id="pay-missing"))]
    assert replies[0] == replies[1]


# --- amount mismatch ----------------------------------------------------------------------------
@pytest.mark.parametrize("amount", [Money(999, "EUR"), Money(1000, "USD")])
def test_post_for_another_amount_is_refused_without_charging(amount):
    w = World()
    w.start()
    outcome = w.post(post_cmd(amount=amount))
    assert (outcome.error.code, outcome.error.field) == ("amount_mismatch", "amount")
    assert outcome.changes == []
    assert w.stored().status == Status.TOKENIZED
    assert w.provider.count("prepare_charge") == w.provider.count("confirm") == 0


# --- declines ------------------------------------------------------------------------------------
def test_declined_card_then_another_card_succeeds():
    w = World(FakeProvider(charges=[ChargeResult("declined", decline_code="insufficient_funds",
                                                 message="Your card has insufficient funds.")]))
    w.start()
    declined = w.post()
    assert declined.error is not None
    assert declined.error.type == "card_error"
    assert (declined.error.code, declined.error.decline_code) == ("card_declined", "insufficient_funds")
    assert declined.error.field == "payment_method"
    assert declined.error.message == "Your card has insufficient funds."
    assert declined.payment.status == Status.DECLINED
    assert declined.payment.decline_code == "insufficient_funds"
    assert statuses(declined) == ["posting", "declined"]
    reply = reply_of(declined)
    assert reply["ok"] is False
    assert reply["error"]["type"] == "card_error"
    assert reply["payment"]["status"] == "declined"
    assert reply["payment"]["decline_code"] == "insufficient_funds"
    assert w.stored().status == Status.DECLINED

    # The same declined request replayed: same answer, no new charge.
    replay = w.post()
    assert replay.error.decline_code == "insufficient_funds" and replay.error.type == "card_error"
    assert replay.changes == []
    assert w.provider.count("confirm") == 1

    retry = w.post(post_cmd(command_id="cmd-post-2", payment_method="pm_card_mastercard"))
    assert retry.error is None
    assert statuses(retry) == ["posting", "succeeded", "receipted"]
    assert retry.payment.decline_code is None
    assert reply_of(retry)["receipt"]["receipt_id"] == receipt_id_for("pay-1")
    # The session's intent carried the first attempt: the second gets its own, recorded beside it.
    assert w.provider.calls[-2:] == [
        ("prepare_charge", "pay-1", "cmd-post-2", "pi_pay-1", EUR_10, "pm_card_mastercard", ("pi_pay-1",)),
        ("confirm", "pay-1", "cmd-post-2", "pi_pay-1_cmd-post-2")]
    assert retry.payment.charge_intent_ids == ("pi_pay-1", "pi_pay-1_cmd-post-2")
    assert w.provider.confirmed_unrecorded == []


def test_decline_without_code_uses_card_declined():
    w = World(FakeProvider(charges=[ChargeResult("declined")]))
    w.start()
    outcome = w.post()
    assert (outcome.error.type, outcome.error.code) == ("card_error", "card_declined")
    assert outcome.payment.decline_code == "card_declined"


# --- crash recovery --------------------------------------------------------------------------------
class Crash(BaseException):
    """The worker dies (SIGKILL) in the middle of a call: nothing after it runs."""


@dataclass(frozen=True)
class Crashed:
    """A confirm during which the worker dies: after the provider charged (`result`), or before (None)."""

    result: ChargeResult | None


class CrashingProvider(FakeProvider):
    async def confirm(self, payment_id, attempt, intent_id):
        script = self.scripts["confirm"]
        if script and isinstance(script[0], Crashed):
            crashed = script.pop(0)
            self.calls.append(("confirm", payment_id, attempt, intent_id))
            if crashed.result is not None:
                self.intents[intent_id] = crashed.result
            raise Crash()
        return await super().confirm(payment_id, attempt, intent_id)


def crash_mid_charge(w: World, command: PostPayment | None = None) -> Payment:
    """Post, and kill the worker inside the confirm; what survives is what was flushed."""
    with pytest.raises(Crash):
        w.post(command)
    w.store.crash()
    w.provider.calls.clear()
    return w.stored()


def test_recovery_when_provider_already_charged():
    w = World(CrashingProvider(charges=[Crashed(ChargeResult("succeeded", charge_id="ch_earlier"))]))
    w.start()
    left = crash_mid_charge(w)
    assert (left.status, left.charge_intent_ids) == (Status.POSTING, ("pi_pay-1",))
    outcome = w.post()
    assert outcome.error is None
    assert statuses(outcome) == ["succeeded", "receipted"]
    assert outcome.payment.charge_id == "ch_earlier"
    assert reply_of(outcome)["receipt"]["receipt_id"] == receipt_id_for("pay-1")
    # One look-up by the recorded id: nothing listed, nothing charged again.
    assert w.provider.calls == [("look_up", ("pi_pay-1",))]


def test_recovery_when_provider_never_charged():
    w = World(CrashingProvider(charges=[Crashed(None)]))
    w.start()
    crash_mid_charge(w)
    outcome = w.post()
    assert outcome.error is None
    assert statuses(outcome) == ["succeeded", "receipted"]
    assert w.provider.calls == [("look_up", ("pi_pay-1",)), ("confirm", "pay-1", "cmd-post", "pi_pay-1")]


def test_recovery_when_provider_declined():
    w = World(CrashingProvider(charges=[Crashed(ChargeResult("declined", decline_code="expired_card"))]))
    w.start()
    crash_mid_charge(w)
    outcome = w.post()
    assert (outcome.error.type, outcome.error.code, outcome.error.decline_code) == (
        "card_error", "card_declined", "expired_card")
    assert outcome.payment.status == Status.DECLINED
    assert w.provider.count("confirm") == 0


def test_recovery_when_provider_cannot_say_keeps_posting():
    w = World(CrashingProvider(charges=[Crashed(None)], look_ups=[unavailable()]))
    w.start()
    payment = crash_mid_charge(w)
    outcome = w.post()
    assert outcome.error.type == "provider_error"
    assert outcome.changes == []
    assert w.stored() == payment
    assert w.provider.count("confirm") == 0


def test_recovery_of_a_fresh_intent_after_a_decline_finds_its_charge():
    """A second attempt charges an intent of its own; killed mid-charge, the recorded id finds it."""
    w = World(CrashingProvider(charges=[ChargeResult("declined", decline_code="insufficient_funds"),
                                        Crashed(ChargeResult("succeeded", charge_id="ch_fresh"))]))
    w.start()
    w.post()
    second = post_cmd(command_id="cmd-post-2", payment_method="pm_other")
    left = crash_mid_charge(w, second)
    assert (left.status, left.current_intent) == (Status.POSTING, "pi_pay-1_cmd-post-2")
    outcome = w.post(second)
    assert outcome.payment.status == Status.RECEIPTED and outcome.payment.charge_id == "ch_fresh"
    assert w.provider.calls == [("look_up", ("pi_pay-1", "pi_pay-1_cmd-post-2"))]


def test_an_earlier_attempts_decline_does_not_decline_the_current_one():
    w = World(CrashingProvider(charges=[ChargeResult("declined", decline_code="insufficient_funds"), Crashed(None)]))
    w.start()
    w.post()
    second = post_cmd(command_id="cmd-post-2", payment_method="pm_other")
    crash_mid_charge(w, second)
    outcome = w.post(second)
    assert outcome.error is None and outcome.payment.status == Status.RECEIPTED
    assert w.provider.calls[-1] == ("confirm", "pay-1", "cmd-post-2", "pi_pay-1_cmd-post-2")


def test_a_crash_before_the_fresh_intent_is_recorded_charges_nothing_unrecorded():
    """Killed after the fresh intent was made but before it was recorded: it was never confirmed,
    and the replay makes (and records) the one it confirms."""
    w = World(FakeProvider(charges=[ChargeResult("declined", decline_code="insufficient_funds")]))
    w.start()
    w.post()
    w.provider.scripts["prepare_charge"].append(Crash())
    second = post_cmd(command_id="cmd-post-2", payment_method="pm_other")
    with pytest.raises(Crash):
        w.post(second)
    w.store.crash()
    assert w.stored().status == Status.DECLINED
    outcome = w.post(second)
    assert outcome.payment.status == Status.RECEIPTED
    assert w.provider.count("confirm") == 2  # the declined first attempt and this one
    assert w.provider.confirmed_unrecorded == []


def test_posting_without_its_intent_recorded_records_it_before_confirming():
    """'posting' survived a crash but not what it would confirm (or was written before intents were
    recorded): nothing was confirmed for it, so it is prepared, recorded and flushed, then confirmed."""
    w = World()
    w.start()
    w.store.put(w.stored().posting(post_cmd(), "2024-05-01T12:00:30Z"))
    outcome = w.post()
    assert outcome.payment.status == Status.RECEIPTED
    assert [c for c, *_ in w.provider.calls[1:]] == ["prepare_charge", "confirm"]
    charging = outcome.changes[0]
    assert (charging.status, charging.charge_intent_ids, charging.entered_status) == (Status.POSTING, ("pi_pay-1",), False)
    assert w.store.flushed[-2] == ["posting"] and w.provider.confirmed_unrecorded == []


def test_session_intent_found_already_charged_at_prepare_is_not_confirmed_again():
    w = World(FakeProvider(prepares=[PreparedCharge("pi_pay-1", ChargeResult("succeeded", charge_id="ch_client"))]))
    w.start()
    outcome = w.post()
    assert statuses(outcome) == ["posting", "succeeded", "receipted"]
    assert outcome.payment.charge_id == "ch_client" and w.provider.count("confirm") == 0


def test_a_payment_method_refused_at_prepare_is_a_decline_with_nothing_charged():
    w = World(FakeProvider(prepares=[PreparedCharge(None, ChargeResult("declined", decline_code="resource_missing"))]))
    w.start()
    outcome = w.post()
    assert statuses(outcome) == ["posting", "declined"]
    assert outcome.error.decline_code == "resource_missing" and w.provider.count("confirm") == 0


def test_provider_unavailable_at_prepare_changes_nothing():
    w = World(FakeProvider(prepares=[unavailable()]))
    w.start()
    before = w.stored()
    outcome = w.post()
    assert outcome.error.code == "provider_unavailable" and outcome.changes == []
    assert w.stored() == before and w.provider.count("confirm") == 0
    assert w.post().payment.status == Status.RECEIPTED


def test_recovery_after_crash_between_succeeded_and_receipted():
    w = World()
    w.start()
    payment = w.stored().posting(post_cmd(), "2024-05-01T12:00:30Z", "pi_pay-1").succeeded("ch_1", "2024-05-01T12:00:31Z")
    w.store.put(payment)
    outcome = w.post()
    assert statuses(outcome) == ["receipted"]
    assert reply_of(outcome)["receipt"]["charge_id"] == "ch_1"
    assert w.provider.count("confirm") == 0 and w.provider.count("look_up") == 0


def test_settle_prefers_any_charge_then_the_current_attempts_decline():
    ok = ProviderIntent("pi_2", True, ChargeResult("succeeded", charge_id="ch_2"))
    old_decline = ProviderIntent("pi_1", True, ChargeResult("declined", decline_code="expired_card"))
    open_ = ProviderIntent("pi_3", True, ChargeResult("not_charged"))
    assert settle([old_decline, ok], "pi_3") == ok.result
    assert settle([old_decline, open_], "pi_3") is None
    assert settle([old_decline, open_], "pi_1") == old_decline.result
    assert settle([], None) is None


def crashed_mid_charge(w: World) -> Payment:
    """A payment saved as 'posting' for cmd-post, its intent recorded, whose confirm never reported back."""
    w.start()
    payment = w.stored().posting(post_cmd(), "2024-05-01T12:00:30Z", "pi_pay-1")
    w.store.put(payment)
    w.provider.calls.clear()
    return payment


def test_other_post_while_posting_is_refused():
    w = World()
    crashed_mid_charge(w)
    outcome = w.post(post_cmd(command_id="cmd-post-2"))
    assert outcome.error.code == "payment_in_progress"
    assert w.provider.calls == []


# --- provider outages ------------------------------------------------------------------------------
def test_provider_unavailable_at_start_fails_the_payment():
    w = World(FakeProvider(sessions=[unavailable("connection refused")]))
    outcome = w.start()
    assert outcome.error is not None
    assert outcome.error.type == "provider_error"
    assert outcome.error.code == "provider_unavailable"
    assert outcome.payment.status == Status.FAILED
    assert "connection refused" in outcome.payment.failure_reason
    assert statuses(outcome) == ["started", "failed"]
    reply = reply_of(outcome)
    assert reply["ok"] is False
    assert reply["error"]["code"] == "provider_unavailable"
    assert reply["payment"]["status"] == "failed"
    assert w.stored().status == Status.FAILED

    # Posting to it is refused without reaching the provider.
    # (A failed start has no transaction: a post can only name one that is not this payment's.)
    post = w.post(post_cmd(transaction_id="pi_pay-1"))
    assert post.error.code == "payment_not_found"
    assert post.changes == []
    assert w.provider.count("confirm") == 0


def test_a_start_failed_for_want_of_the_provider_is_tried_again_when_repeated():
    w = World(FakeProvider(sessions=[unavailable("timed out"), unavailable("timed out again")]))
    assert w.start().payment.status == Status.FAILED

    # The client's retry (the same command: ids derive from its Idempotency-Key) asks the provider again.
    still_down = w.start()
    assert still_down.error.code == "provider_unavailable"
    assert statuses(still_down) == ["started", "failed"]
    assert w.provider.count("create_session") == 2

    back = w.start()
    assert back.error is None
    assert statuses(back) == ["started", "tokenized"]
    assert back.payment.transaction_id == "pi_pay-1" and back.payment.failure_reason is None
    assert back.client_secret == "secret_pay-1"
    assert [s for s, _ in w.stored().history] == ["started", "failed", "started", "failed", "started", "tokenized"]
    assert w.provider.count("create_session") == 3

    # And it goes on to be posted and receipted, charged once.
    done = w.post(post_cmd(transaction_id="pi_pay-1"))
    assert done.payment.status == Status.RECEIPTED
    assert w.provider.count("confirm") == 1


def test_provider_unavailable_during_charge_leaves_payment_posting():
    w = World(FakeProvider(charges=[Lost(ChargeResult("succeeded", charge_id="ch_late"))]))
    w.start()
    outcome = w.post()
    assert outcome.error is not None
    assert outcome.error.type == "provider_error"
    assert outcome.error.code == "provider_unavailable"
    assert outcome.payment.status == Status.POSTING
    assert statuses(outcome) == ["posting"]
    assert reply_of(outcome)["ok"] is False
    assert w.stored().status == Status.POSTING
    assert w.provider.count("confirm") == 1

    # The same request repeated settles it from the provider's record first.
    settled = w.post()
    assert settled.error is None
    assert settled.payment.status == Status.RECEIPTED
    assert settled.payment.charge_id == "ch_late"
    assert w.provider.count("confirm") == 1
    assert w.provider.calls[-1] == ("look_up", ("pi_pay-1",))


def test_charge_not_confirmed_keeps_posting():
    w = World(FakeProvider(charges=[ChargeResult("not_charged")]))
    w.start()
    outcome = w.post()
    assert (outcome.error.type, outcome.error.code) == ("provider_error", "charge_not_confirmed")
    assert w.stored().status == Status.POSTING


def test_post_before_start_is_not_found():
    w = World()
    outcome = w.post()
    assert outcome.error.code == "payment_not_found"
    assert w.provider.calls == []


def test_handlers_do_not_mutate_stored_payment_in_place():
    w = World()
    started = w.start().payment
    snapshot = started.model_copy(deep=True)
    w.post()
    assert started == snapshot


def test_replayed_start_for_another_user_reveals_nothing():
    world = World()
    assert world.start().error is None
    for stranger in (start_cmd(user_id="someone-else"), start_cmd(account="another-account")):
        outcome = world.start(stranger)
        assert outcome.payment is None
        assert outcome.error.code == "payment_not_found"
    assert world.provider.count("create_session") == 1
