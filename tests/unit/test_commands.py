"""Commands travel as JSON; the dict round trip must be lossless."""

from __future__ import annotations

import json

import pytest

from paystream.domain.commands import PostPayment, StartPayment, command_as_dict, command_from_dict
from paystream.domain.money import Money

START = StartPayment("cmd-1", "pay-1", "user-1", "a@example.com", "2024-05-01T12:00:00Z", "credit",
                     Money(1234, "EUR"))
START_NO_AMOUNT = StartPayment("cmd-1", "pay-1", "user-1", "a@example.com", "2024-05-01T12:00:00Z", "debit")
POST = PostPayment("cmd-2", "pay-1", "user-1", "a@example.com", "2024-05-01T12:00:01Z", "credit", "pi_1",
                   Money(1500, "JPY"), "pm_card_visa")


@pytest.mark.parametrize("command", [START, START_NO_AMOUNT, POST], ids=["start", "start-no-amount", "post"])
def test_round_trip(command):
    assert command_from_dict(command_as_dict(command)) == command
    assert command_from_dict(json.loads(json.dumps(command_as_dict(command)))) == command


def test_dict_shape():
    assert command_as_dict(START)["kind"] == "start"
    assert command_as_dict(START)["amount"] == {"amount": "12.34", "amount_minor": 1234, "currency": "EUR"}
    assert command_as_dict(START_NO_AMOUNT)["amount"] is None
    assert command_as_dict(POST)["kind"] == "post"
    assert command_as_dict(POST)["amount"] == {"amount": "1500", "amount_minor": 1500, "currency": "JPY"}


def test_unknown_kind_is_refused():
    data = command_as_dict(START) | {"kind": "refund"}
    with pytest.raises(ValueError):
        command_from_dict(data)


def test_round_trip_does_not_mutate_input():
    data = command_as_dict(POST)
    copy = json.loads(json.dumps(data))
    command_from_dict(data)
    assert data == copy
