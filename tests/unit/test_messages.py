"""Every topic's typed messages: one codec, tolerant of unknown fields, strict about the rest,
and JSON Schemas in docs/schemas/ that match the types."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from paystream import messages
from paystream.domain.commands import CommandReply, ErrorBody
from paystream.domain.events import PaymentChanged, RefundChanged
from paystream.domain.provider import RefundStatus
from paystream.messages import Alert, Heartbeat, UnreadableMessage
from tests.unit.fakes import POST, RECEIPTED, START, START_NO_AMOUNT, refund_cmd

REFUNDED = (RECEIPTED.refunding(refund_cmd("rf_1", "2.00", reason="duplicate"), "2024-05-01T13:00:00Z")
            .refund_settled("rf_1", RefundStatus.SUCCEEDED, "2024-05-01T13:00:01Z", "re_1"))

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"

BEAT = Heartbeat(component_id="worker@h:6066", kind="worker", host="h", pid=1, at="2024-05-01T12:00:00.000Z",
                 uptime_s=1.5, rss_bytes=1, cpu_percent=0.0, open_connections=2, consumer_lag=0)
SAMPLES = {
    "commands": [START, START_NO_AMOUNT, POST, refund_cmd("rf_1", "2.00", reason="fraudulent"), refund_cmd()],
    "replies": [CommandReply(correlation_id="c", payment_id="pay-1", command_id="cmd-2", ok=True,
                             payment=RECEIPTED.public_view(), receipt=RECEIPTED.receipt()),
                CommandReply(payment_id="pay-1", ok=False,
                             error=ErrorBody(type="card_error", code="card_declined", message="declined"))],
    "events": [PaymentChanged.of(RECEIPTED), PaymentChanged.of(REFUNDED)],
    "receipts": [RECEIPTED.receipt()],
    "heartbeats": [BEAT],
    "alerts": [Alert(at="2024-05-01T12:00:00Z", subject="worker@h:6066", kind="worker", state="down",
                     previous="up", reason="no heartbeat for 6.1 s")],
    "dead_letters": [messages.dead_letter("worker", "paystream.payment-commands", 0, 7, b"pay-1", b"{}",
                                          {"correlation_id": "c"}, "commands: kind: missing", "2024-05-01T12:00:00Z")],
    "data_keys": [messages.DataKeyRecorded.of("acct-1", "u1", b"k" * 32)],
    "refunds": [RefundChanged(at=REFUNDED.updated_at, account="acct-1", user_id="user-1",
                              refund=REFUNDED.refunds[0].view())],
}


@pytest.mark.parametrize("topic", list(messages.TOPIC_TYPES))
def test_every_topic_round_trips(topic):
    for message in SAMPLES[topic]:
        assert messages.decode(topic, messages.encode(message)) == message


def test_money_travels_as_minor_units_and_decimal_string():
    wire = json.loads(messages.encode(START))
    assert wire["amount"] == {"amount": "12.34", "amount_minor": 1234, "currency": "EUR"}
    assert wire["kind"] == "start" and wire["schema_version"] == 1
    assert json.loads(messages.encode(START_NO_AMOUNT))["amount"] is None


def test_an_unknown_field_is_ignored_not_refused():
    """A newer ingress may add fields; an older worker still reads the command."""
    wire = json.loads(messages.encode(POST)) | {"loyalty_points": 12, "schema_version": 2}
    assert messages.decode("commands", json.dumps(wire)) == POST.model_copy(update={"schema_version": 2})


@pytest.mark.parametrize(
    ("change", "where"),
    [({"kind": "chargeback"}, "kind"), ({"payment_id": None}, "payment_id"),
     ({"amount": {"amount": "15", "amount_minor": 15.5, "currency": "JPY"}}, "amount"),
     ({"amount": {"amount_minor": 1500, "currency": "XXX"}}, "amount"),
     ({"payment_type": "cash"}, "payment_type")],
    ids=["unknown-kind", "null-id", "fractional-minor-units", "not-a-currency", "unknown-payment-type"],
)
def test_a_message_that_does_not_fit_is_unreadable(change, where):
    wire = json.loads(messages.encode(POST)) | change
    with pytest.raises(UnreadableMessage) as info:
        messages.decode("commands", json.dumps(wire))
    assert where in str(info.value)


@pytest.mark.parametrize("raw", [b"", b"not json", None, b"[]"])
def test_garbage_is_unreadable(raw):
    with pytest.raises(UnreadableMessage):
        messages.decode("commands", raw)


@pytest.mark.parametrize("topic", list(messages.TOPIC_TYPES))
def test_docs_hold_the_generated_schema(topic):
    """docs/schemas/ is generated (`make schemas`); a changed type without regenerated docs fails here."""
    path = SCHEMAS / f"{topic.replace('_', '-')}.schema.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(messages.json_schemas()[topic]))


@pytest.mark.parametrize("topic", list(messages.TOPIC_TYPES))
def test_encoded_messages_fit_their_schema(topic):
    schema = json.loads((SCHEMAS / f"{topic.replace('_', '-')}.schema.json").read_text())
    for message in SAMPLES[topic]:
        jsonschema.validate(json.loads(messages.encode(message)), schema)
