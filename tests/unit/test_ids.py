"""Payment and command ids derived from the account-scoped Idempotency-Key (paystream/domain/ids.py): a repeat
names the very same payment, another key or account another one, no key a fresh one; every id fits the one
charset store keys are built from."""

from __future__ import annotations

import re

import pytest

from paystream.domain.ids import ID_PATTERN, derived_id, receipt_id_for, store_key


def test_the_same_scoped_key_always_names_the_same_payment_and_command():
    assert derived_id("pay", "acct-1:start:order-1") == derived_id("pay", "acct-1:start:order-1")
    assert derived_id("cmd", "acct-1:start:order-1") == derived_id("cmd", "acct-1:start:order-1")
    # Pinned: a change of derivation between two deployments would make a repeat that straddles them name a
    # new payment (and charge it again).
    assert derived_id("pay", "acct-1:start:order-1") == "pay_332c85e5d64a42b146515afb"


def test_another_key_another_account_or_another_endpoint_names_another_payment():
    ids = {derived_id("pay", scoped) for scoped in ("acct-1:start:order-1", "acct-1:start:order-2",
                                                     "acct-2:start:order-1", "acct-1:post:order-1")}
    assert len(ids) == 4


def test_without_a_key_each_id_is_new():
    assert len({derived_id("pay", None) for _ in range(100)}) == 100


@pytest.mark.parametrize("scoped", [None, "acct-1:start:order-1", "acct:x:" + "é" * 200, "a:b:c\n"])
def test_every_derived_id_fits_the_id_charset_with_its_prefix(scoped):
    made = derived_id("pay", scoped)
    assert re.fullmatch(ID_PATTERN, made) and made.startswith("pay_") and len(made) == len("pay_") + 24


def test_a_receipt_id_follows_from_its_payment_alone():
    assert receipt_id_for("pay_1") == receipt_id_for("pay_1") != receipt_id_for("pay_2")
    assert re.fullmatch(ID_PATTERN, receipt_id_for("pay_1")) and receipt_id_for("pay_1").startswith("rcpt_")


def test_store_keys_refuse_any_part_that_could_hold_a_separator():
    assert store_key("receipt", "acct-1", "user-1") == "receipt:acct-1:user-1"
    assert store_key("payment", "pay_1", separator="::") == "payment::pay_1"
    for bad in ("a:b", "a::b", "", "x" * 129, "sp ace"):
        with pytest.raises(ValueError):
            store_key("receipt", bad)
