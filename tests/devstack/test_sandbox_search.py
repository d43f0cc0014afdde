"""The sandbox's search by payment id (devstack/stack/stripe_sandbox.py): every object carrying the id and
every charge made on one of them, however many objects the payment's attempts opened."""

from __future__ import annotations

from types import SimpleNamespace

from devstack.stack.stripe_sandbox import by_payment


def obj(kind: str, id_: str, payment_id: str | None = None, **more) -> SimpleNamespace:
    return SimpleNamespace(object=kind, id=id_, metadata={"payment_id": payment_id} if payment_id else {}, **more)


def charge(id_: str, on: str | None, status: str = "succeeded", payment_id: str | None = None) -> SimpleNamespace:
    return obj("charge", id_, payment_id, payment_intent=on, status=status, amount=900, currency="eur")


def test_charges_on_every_object_carrying_the_payment_id_are_found():
    found = by_payment([
        obj("payment_intent", "pi_session", "pay-1"), obj("payment_intent", "pi_fresh", "pay-1"),
        obj("payment_intent", "pi_other", "pay-2"), obj("setup_intent", "seti_1", "pay-3"),
        charge("ch_declined", "pi_session", "failed"), charge("ch_1", "pi_fresh"), charge("ch_2", "pi_other"),
        charge("ch_direct", None, payment_id="pay-1"), charge("ch_unrelated", "pi_unknown"),
        SimpleNamespace(),  # localstripe keeps other things in its store too
    ], {"pay-1", "pay-3", "pay-4"})
    assert found["pay-1"]["objects"] == ["pi_session", "pi_fresh"]
    assert [(c["id"], c["status"], c["on"]) for c in found["pay-1"]["charges"]] == [
        ("ch_declined", "failed", "pi_session"), ("ch_1", "succeeded", "pi_fresh"), ("ch_direct", "succeeded", None)]
    assert found["pay-3"] == {"objects": ["seti_1"], "charges": []}
    assert found["pay-4"] == {"objects": [], "charges": []}
    assert "pay-2" not in found


def test_each_charge_lists_its_refunds_with_the_paystream_refund_they_carry():
    refund = SimpleNamespace(object="refund", id="re_1", charge="ch_1", status="succeeded", amount=300,
                             metadata={"payment_id": "pay-1", "refund_id": "rf_1"})
    found = by_payment([obj("payment_intent", "pi_1", "pay-1"), charge("ch_1", "pi_1"), refund,
                        SimpleNamespace(object="refund", id="re_2", charge="ch_other", status="succeeded",
                                        amount=100, metadata={})], {"pay-1"})
    assert found["pay-1"]["objects"] == ["pi_1"]  # a refund is not an object a charge is made on
    assert found["pay-1"]["charges"][0]["refunds"] == [
        {"id": "re_1", "status": "succeeded", "amount": 300, "refund_id": "rf_1"}]
