"""What really travels on the topics: every message of a run fits its published JSON Schema,
a newer producer's extra field is read, and an unreadable command is set aside, not skipped."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import jsonschema

from paystream import messages
from tests.api_client import DECLINING_CARD, identity
from tests.conftest import ROOT
from tests.kafka_probe import command, end_offsets, produce, read_raw_since, wait_reply

SCHEMAS = ROOT / "docs" / "schemas"


def schema(topic: str) -> dict:
    return json.loads((SCHEMAS / f"{topic.replace('_', '-')}.schema.json").read_text())


async def test_every_topic_carries_messages_that_fit_its_schema(api, stack, settings, pipeline):
    bootstrap = stack["kafka"]["address"]
    topics = {kind: getattr(settings.topics, kind) for kind in messages.TOPIC_TYPES}
    since = {kind: end_offsets(bootstrap, name) for kind, name in topics.items()}

    who = identity()
    started = await api.start(who, "7.00", "EUR")
    posted = await api.post(who, started.body["transaction_id"], await api.card(), "7.00", "EUR")
    assert posted.status == 201, posted.body
    other = identity()
    started_too = await api.start(other, "3.00", "EUR")
    declined = await api.post(other, started_too.body["transaction_id"], await api.card(DECLINING_CARD), "3.00", "EUR")
    assert declined.status == 402, declined.body
    refunded = await api.call("POST", "/v1/refunds", {"payment_id": started.body["payment_id"], "user_id": who["user_id"],
                                                       "amount": "1.00"})
    assert refunded.status == 201, refunded.body
    bad, _ = command(kind="chargeback")
    produce(bootstrap, topics["commands"], "pay_unreadable", bad, "corr-schema-check")
    # Every topic has carried something of this run (the heartbeats come every few seconds): polled.
    def moved(kind: str) -> bool:
        return sum(end_offsets(bootstrap, topics[kind]).values()) > sum(since[kind].values())
    deadline = time.monotonic() + 30
    while not all(moved(kind) for kind in topics if kind != "alerts"):
        assert time.monotonic() < deadline, [kind for kind in topics if kind != "alerts" and not moved(kind)]
        await asyncio.sleep(0.5)
    since["alerts"] = {p: 0 for p in since["alerts"]}  # kept forever: every alert since the stack began

    for kind, name in topics.items():
        # Every message but the one made unreadable on purpose (its dead letter is checked).
        values = [raw for raw in read_raw_since(bootstrap, name, since[kind]) if raw != bad]
        assert values, f"no {kind} message in the run"
        for raw in values:
            jsonschema.validate(json.loads(raw), schema(kind))
            messages.decode(kind, raw)  # and our own reader agrees


async def test_a_command_with_an_unknown_field_is_processed(stack, settings, pipeline):
    """A newer ingress adds a field and a schema version; this worker still carries the payment."""
    bootstrap = stack["kafka"]["address"]
    replies = end_offsets(bootstrap, settings.topics.replies)
    value, payment_id = command(coupon="WELCOME10", schema_version=2)
    correlation_id = f"corr-{uuid.uuid4().hex}"
    produce(bootstrap, settings.topics.commands, payment_id, value, correlation_id)

    reply = wait_reply(bootstrap, settings.topics.replies, replies, correlation_id)
    assert reply["ok"] is True, reply
    assert (reply["payment_id"], reply["payment"]["status"]) == (payment_id, "tokenized")


async def test_an_unreadable_command_is_set_aside_and_its_partition_moves_on(stack, settings, pipeline):
    bootstrap = stack["kafka"]["address"]
    replies = end_offsets(bootstrap, settings.topics.replies)
    letters = end_offsets(bootstrap, settings.topics.dead_letters)
    bad, payment_id = command(kind="chargeback")
    produce(bootstrap, settings.topics.commands, payment_id, bad, "corr-bad")
    good, _ = command(payment_id=payment_id)  # same key, so the same partition, right behind it
    produce(bootstrap, settings.topics.commands, payment_id, good, "corr-good")

    told = wait_reply(bootstrap, settings.topics.replies, replies, "corr-bad")
    assert (told["ok"], told["error"]["code"], told["error"]["type"]) == (False, "command_unreadable",
                                                                          "unavailable_error")
    assert wait_reply(bootstrap, settings.topics.replies, replies, "corr-good")["ok"] is True

    (letter,) = [messages.decode("dead_letters", raw) for raw in read_raw_since(bootstrap, settings.topics.dead_letters,
                                                                               letters)
                 if json.loads(raw)["headers"].get("correlation_id") == "corr-bad"]
    assert (letter.component, letter.topic, letter.key) == ("worker", settings.topics.commands, payment_id)
    assert letter.value == bad and "kind" in letter.error

    # The worker's metrics count it.
    async with api_session() as http:
        async with http.get(f"{pipeline['worker']['address']}/metrics") as resp:
            text = await resp.text()
    assert 'paystream_dead_letters_total{component="worker"' in text


def api_session():
    import aiohttp

    return aiohttp.ClientSession()


async def test_the_same_post_sent_twice_at_once_charges_once(api, sandbox):
    """Two posts with one Idempotency-Key reach the worker together; the per-payment lock makes the
    second wait and answer with the first one's receipt."""
    who = identity()
    started = await api.start(who, "11.00", "EUR")
    method = await api.card()
    key = uuid.uuid4().hex
    first, second = await asyncio.gather(*(
        api.post(who, started.body["transaction_id"], method, "11.00", "EUR", idempotency_key=key)
        for _ in range(2)))
    assert (first.status, second.status) == (201, 201), (first.body, second.body)
    assert first.body["receipt_id"] == second.body["receipt_id"]
    assert [c["amount"] for c in sandbox.succeeded_charges(started.body["payment_id"])] == [1100]
