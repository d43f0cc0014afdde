"""The Payment state machine: pure transitions, no I/O."""

from __future__ import annotations

import json

import pytest

from paystream.domain.commands import PostPayment, StartPayment
from paystream.domain.errors import IllegalTransition, NotFound
from paystream.domain.model import (
    Payment,
    Status,
    check_owner,
    payment_for_post,
    receipt_id_for,
    validate_post_target,
)
from paystream.domain.money import Money

EUR_10 = Money(1000, "EUR")
T0, T1, T2, T3, T4, T5, T6 = (f"2024-05-01T12:00:0{i}Z" for i in range(7))


def start_cmd(amount: Money | None = EUR_10, **kw) -> StartPayment:
    base = dict(command_id="cmd-start", payment_id="pay-1", account="acct-1", user_id="user-1", email="a@example.com",
                requested_at=T0, payment_type="credit", amount=amount)
    return StartPayment(**{**base, **kw})


def post_cmd(amount: Money = EUR_10, command_id: str = "cmd-post", **kw) -> PostPayment:
    base = dict(command_id=command_id, payment_id="pay-1", account="acct-1", user_id="user-1", email="a@example.com",
                requested_at=T0, payment_type="credit", transaction_id="pi_1", amount=amount,
                payment_method="pm_card_visa")
    return PostPayment(**{**base, **kw})


def started(amount: Money | None = EUR_10) -> Payment:
    return Payment.start(start_cmd(amount), T0)


def tokenized(amount: Money | None = EUR_10) -> Payment:
    return started(amount).tokenized("pi_1", T1)


def posting() -> Payment:
    return tokenized().posting(post_cmd(), T2)


def succeeded() -> Payment:
    return posting().succeeded("ch_1", T3)


def receipted() -> Payment:
    return succeeded().receipted(T4)


def declined() -> Payment:
    return posting().declined("insufficient_funds", T3)


def failed() -> Payment:
    return started().failed("provider unavailable: down", T1)


BUILDERS = {
    Status.STARTED: started, Status.TOKENIZED: tokenized, Status.POSTING: posting,
    Status.SUCCEEDED: succeeded, Status.RECEIPTED: receipted, Status.DECLINED: declined,
    Status.FAILED: failed,
}

TRANSITIONS = {
    "tokenized": lambda p: p.tokenized("pi_2", T6),
    "posting": lambda p: p.posting(post_cmd(command_id="cmd-other"), T6),
    "succeeded": lambda p: p.succeeded("ch_2", T6),
    "declined": lambda p: p.declined("card_declined", T6),
    "receipted": lambda p: p.receipted(T6),
    "failed": lambda p: p.failed("boom", T6),
    "started_again": lambda p: p.started_again(T6),
}

LEGAL = {
    "tokenized": {Status.STARTED},
    "posting": {Status.TOKENIZED, Status.DECLINED},
    "succeeded": {Status.POSTING},
    "declined": {Status.POSTING},
    "receipted": {Status.SUCCEEDED},
    "failed": {Status.STARTED, Status.TOKENIZED, Status.POSTING, Status.DECLINED},
    "started_again": {Status.FAILED},
}


# --- legal transitions -------------------------------------------------------
def test_start():
    p = started()
    assert p.status == Status.STARTED
    assert (p.payment_id, p.user_id, p.email, p.payment_type) == ("pay-1", "user-1", "a@example.com", "credit")
    assert p.start_command_id == "cmd-start"
    assert p.amount == EUR_10
    assert p.created_at == p.updated_at == T0
    assert p.version == 1
    assert p.history == (("started", T0),)
    assert p.transaction_id is None and p.receipt_id is None and p.post_command_id is None


def test_start_without_amount():
    p = started(amount=None)
    assert p.amount is None
    assert p.status == Status.STARTED


def test_tokenized():
    before = started()
    p = before.tokenized("pi_1", T1)
    assert p.status == Status.TOKENIZED
    assert p.transaction_id == "pi_1"
    assert "client_secret" not in p.as_dict()  # handed to the client once, never kept
    assert p.version == 2
    assert p.history == (("started", T0), ("tokenized", T1))
    assert (p.created_at, p.updated_at) == (T0, T1)
    # Transitions return a new Payment; the old one is unchanged.
    assert before.status == Status.STARTED and before.version == 1


def test_posting():
    p = tokenized().posting(post_cmd(), T2)
    assert p.status == Status.POSTING
    assert p.post_command_id == "cmd-post"
    assert p.payment_method == "pm_card_visa"
    assert p.amount == EUR_10
    assert p.version == 3
    assert p.history[-1] == ("posting", T2)


def test_posting_sets_amount_when_start_had_none():
    p = tokenized(amount=None).posting(post_cmd(Money(500, "JPY")), T2)
    assert p.amount == Money(500, "JPY")


def test_succeeded_and_receipted():
    s = succeeded()
    assert s.status == Status.SUCCEEDED and s.charge_id == "ch_1" and s.version == 4
    assert s.receipt_id is None
    r = s.receipted(T4)
    assert r.status == Status.RECEIPTED
    assert r.receipt_id == receipt_id_for("pay-1")
    assert r.version == 5
    assert r.history == (("started", T0), ("tokenized", T1), ("posting", T2), ("succeeded", T3), ("receipted", T4))
    assert r.updated_at == T4


def test_declined_then_posted_again_with_another_card():
    d = declined()
    assert d.status == Status.DECLINED
    assert d.decline_code == "insufficient_funds"
    assert d.version == 4
    again = d.posting(post_cmd(command_id="cmd-post-2", payment_method="pm_card_mastercard"), T4)
    assert again.status == Status.POSTING
    assert again.post_command_id == "cmd-post-2"
    assert again.payment_method == "pm_card_mastercard"
    assert again.decline_code is None
    done = again.succeeded("ch_2", T5).receipted(T6)
    assert done.status == Status.RECEIPTED
    assert done.version == 7
    assert [s for s, _ in done.history] == [
        "started", "tokenized", "posting", "declined", "posting", "succeeded", "receipted",
    ]


@pytest.mark.parametrize("status", sorted(LEGAL["failed"]))
def test_unfinished_payment_can_fail(status):
    before = BUILDERS[status]()
    p = before.failed("provider unavailable: down", T6)
    assert p.status == Status.FAILED
    assert p.failure_reason == "provider unavailable: down"
    assert p.version == before.version + 1
    assert p.history == (*before.history, ("failed", T6))


def test_a_failed_start_can_be_started_again():
    before = failed()
    p = before.started_again(T6)
    assert p.status == Status.STARTED
    assert p.failure_reason is None and p.transaction_id is None
    assert p.version == before.version + 1
    assert [s for s, _ in p.history] == ["started", "failed", "started"]
    assert p.tokenized("pi_2", T6).status == Status.TOKENIZED


def test_a_failure_after_the_provider_gave_a_transaction_is_not_started_again():
    with pytest.raises(IllegalTransition) as info:
        tokenized().failed("provider unavailable: down", T5).started_again(T6)
    assert info.value.code == "payment_failed"


def test_version_counts_history():
    for build in BUILDERS.values():
        p = build()
        assert p.version == len(p.history)


# --- illegal transitions -----------------------------------------------------
ILLEGAL = [
    (name, status)
    for name in TRANSITIONS
    for status in Status
    if status not in LEGAL[name]
]


@pytest.mark.parametrize(("name", "status"), ILLEGAL, ids=[f"{n}-from-{s.value}" for n, s in ILLEGAL])
def test_illegal_transition_raises_with_code(name, status):
    payment = BUILDERS[status]()
    with pytest.raises(IllegalTransition) as info:
        TRANSITIONS[name](payment)
    err = info.value
    expected = "payment_finished" if name == "failed" else f"payment_{status.value}"
    assert err.code == expected
    assert err.type == "state_error"
    assert err.message


def test_every_status_has_a_builder():
    assert set(BUILDERS) == set(Status)


# --- amount checks at posting --------------------------------------------------
@pytest.mark.parametrize(
    "amount", [Money(999, "EUR"), Money(1001, "EUR"), Money(1000, "USD"), Money(1000, "JPY"), Money(1000, "BHD")],
)
def test_amount_mismatch_at_posting(amount):
    with pytest.raises(IllegalTransition) as info:
        tokenized().posting(post_cmd(amount), T2)
    assert (info.value.code, info.value.field) == ("amount_mismatch", "amount")


def test_amount_mismatch_after_decline():
    with pytest.raises(IllegalTransition) as info:
        declined().posting(post_cmd(Money(1000, "USD"), command_id="cmd-post-2"), T4)
    assert (info.value.code, info.value.field) == ("amount_mismatch", "amount")


# --- receipt -----------------------------------------------------------------
def test_receipt_contents():
    r = receipted().receipt().model_dump(mode="json")
    assert r["receipt_id"] == receipt_id_for("pay-1")
    assert r["amount"] == "10.00"
    assert isinstance(r["amount"], str)
    assert r["amount_minor"] == 1000
    assert r["currency"] == "EUR"
    assert r["status"] == "succeeded"
    assert r["payment_id"] == "pay-1"
    assert r["transaction_id"] == "pi_1"
    assert r["user_id"] == "user-1"
    assert r["email_id"] == "a@example.com"
    assert r["payment_type"] == "credit"
    assert r["charge_id"] == "ch_1"
    assert (r["created_at"], r["paid_at"], r["issued_at"]) == (T0, T3, T4)
    json.dumps(r)  # plain JSON


def test_receipt_for_other_currencies():
    p = tokenized(amount=None).posting(post_cmd(Money(1234, "BHD")), T2).succeeded("ch_1", T3).receipted(T4)
    r = p.receipt().model_dump(mode="json")
    assert (r["amount"], r["amount_minor"], r["currency"]) == ("1.234", 1234, "BHD")


@pytest.mark.parametrize("status", [s for s in Status if s != Status.RECEIPTED])
def test_non_receipted_payment_has_no_receipt(status):
    with pytest.raises(IllegalTransition) as info:
        BUILDERS[status]().receipt()
    assert info.value.code == "no_receipt"


def test_receipt_id_is_derived_and_stable():
    assert receipt_id_for("pay-1") == receipt_id_for("pay-1")
    assert receipt_id_for("pay-1") != receipt_id_for("pay-2")
    assert receipt_id_for("pay-1").startswith("rcpt_")


# --- serialisation -------------------------------------------------------------
@pytest.mark.parametrize("status", list(Status))
def test_dict_round_trip(status):
    p = BUILDERS[status]()
    assert Payment.from_dict(p.as_dict()) == p


@pytest.mark.parametrize("status", list(Status))
def test_json_round_trip(status):
    p = BUILDERS[status]()
    back = Payment.from_dict(json.loads(json.dumps(p.as_dict())))
    assert back == p
    assert isinstance(back.status, Status)
    assert isinstance(back.history, tuple) and all(isinstance(h, tuple) for h in back.history)


def test_json_round_trip_keeps_receipt():
    p = receipted()
    assert Payment.from_dict(json.loads(json.dumps(p.as_dict()))).receipt() == p.receipt()


def test_as_dict_shape():
    d = receipted().as_dict()
    assert d["status"] == "receipted"
    assert d["amount"] == {"amount": "10.00", "amount_minor": 1000, "currency": "EUR"}
    assert d["history"][0] == ["started", T0]


def test_round_trip_without_amount():
    p = started(amount=None)
    assert p.as_dict()["amount"] is None
    assert Payment.from_dict(json.loads(json.dumps(p.as_dict()))) == p


def test_public_view_hides_the_card():
    view = receipted().public_view().model_dump(mode="json")
    assert view["status"] == "receipted"
    assert view["receipt_id"] == receipt_id_for("pay-1")
    assert (view["amount"], view["amount_minor"], view["currency"]) == ("10.00", 1000, "EUR")
    assert "payment_method" not in view and "client_secret" not in view
    assert "pm_card_visa" not in json.dumps(view)


# --- ownership -----------------------------------------------------------------
def test_check_owner_lets_the_owner_through():
    assert check_owner(("acct-1", "user-1"), "acct-1", "user-1") is None
    assert check_owner(("acct-1", "user-1"), "acct-1", None) is None  # the account's own view
    assert payment_for_post(tokenized(), post_cmd()) == tokenized()


@pytest.mark.parametrize(("owner", "account", "user_id"),
                         [(None, "acct-1", "user-1"), (("acct-1", "user-1"), "acct-1", "user-2"),
                          (("acct-1", "user-1"), "acct-1", ""), (("acct-1", "user-1"), "acct-2", "user-1"),
                          (("acct-1", "user-1"), "acct-2", None)],
                         ids=["missing", "other-user", "empty-user", "same-user-other-account", "other-account"])
def test_check_owner_gives_the_same_not_found(owner, account, user_id):
    with pytest.raises(NotFound) as info:
        check_owner(owner, account, user_id, "receipt", "receipt_id")
    assert info.value.as_dict() == {
        "type": "not_found_error", "code": "receipt_not_found",
        "message": "no such receipt for this user", "field": "receipt_id", "decline_code": None,
    }


@pytest.mark.parametrize(
    ("payment", "command"),
    [(None, post_cmd()), ("own", post_cmd(user_id="user-2")), ("own", post_cmd(account="acct-2")),
     ("own", post_cmd(transaction_id="pi_other"))],
    ids=["missing", "other-user", "other-account", "other-transaction"],
)
def test_a_post_to_what_is_not_yours_is_the_same_not_found(payment, command):
    with pytest.raises(NotFound) as info:
        payment_for_post(tokenized() if payment == "own" else None, command)
    assert info.value.as_dict() == {
        "type": "not_found_error", "code": "payment_not_found",
        "message": "no such payment for this user", "field": "transaction_id", "decline_code": None,
    }


# --- validate_post_target ----------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "code"),
    [(Status.SUCCEEDED, "payment_already_posted"), (Status.RECEIPTED, "payment_already_posted"),
     (Status.POSTING, "payment_in_progress"), (Status.FAILED, "payment_failed"),
     (Status.STARTED, "payment_not_ready")],
)
def test_validate_post_target_refuses(status, code):
    with pytest.raises(IllegalTransition) as info:
        validate_post_target(BUILDERS[status](), post_cmd(command_id="cmd-new"))
    assert info.value.code == code


def test_already_posted_names_the_receipt():
    with pytest.raises(IllegalTransition) as info:
        validate_post_target(receipted(), post_cmd(command_id="cmd-new"))
    assert receipt_id_for("pay-1") in info.value.message


@pytest.mark.parametrize("status", [Status.TOKENIZED, Status.DECLINED])
def test_validate_post_target_allows(status):
    assert validate_post_target(BUILDERS[status](), post_cmd(command_id="cmd-new")) is None
