"""A poison command (its handler raises every time) is tried a bounded number of times, then set aside on
the dead-letter topic with the error and the original message; its client is told, its partition moves on,
and `paystream dlq list|replay` finds it and sends it back. Against the running worker."""

from __future__ import annotations

import json
import uuid

import aiohttp

from paystream import messages
from tests.conftest import paystream
from tests.kafka_probe import command, end_offsets, produce, read_raw_since, wait_reply

#: Well-formed base64 but no X25519 public key: the worker cannot seal the client secret to it, every time
#: (what a buggy producer's command does; the command itself reads fine).
UNSEALABLE_REPLY_KEY = "bm90LWEta2V5"


def letters_for(bootstrap: str, topic: str, since: dict[int, int], correlation_id: str, want: int = 1):
    found = []
    for _ in range(10):
        found = [messages.decode("dead_letters", raw) for raw in read_raw_since(bootstrap, topic, since, until=3)]
        found = [letter for letter in found if letter.headers.get("correlation_id") == correlation_id]
        if len(found) >= want:
            return found
    raise AssertionError(f"no dead letter for {correlation_id}: {found}")


async def retries_counted(worker_address: str) -> float:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{worker_address}/metrics") as resp:
            text = await resp.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('paystream_message_retries_total{component="worker"'))


async def test_a_poison_command_is_set_aside_after_bounded_tries_and_its_partition_moves_on(stack, settings,
                                                                                           pipeline):
    bootstrap = stack["kafka"]["address"]
    replies = end_offsets(bootstrap, settings.topics.replies)
    dead = end_offsets(bootstrap, settings.topics.dead_letters)
    retried_before = await retries_counted(pipeline["worker"]["address"])
    poison, payment_id = command(reply_key=UNSEALABLE_REPLY_KEY)
    bad_corr, good_corr = f"corr-poison-{uuid.uuid4().hex[:8]}", f"corr-after-{uuid.uuid4().hex[:8]}"
    produce(bootstrap, settings.topics.commands, payment_id, poison, bad_corr)
    # The same start without the bad key: same key, so the same partition, right behind it.
    good = {k: v for k, v in json.loads(poison).items() if k != "reply_key"} | {"command_id": f"cmd_{uuid.uuid4().hex}"}
    produce(bootstrap, settings.topics.commands, payment_id, json.dumps(good).encode(), good_corr)

    told = wait_reply(bootstrap, settings.topics.replies, replies, bad_corr, timeout=60)
    assert (told["ok"], told["error"]["type"], told["error"]["code"]) == (False, "unavailable_error", "command_failed")
    assert wait_reply(bootstrap, settings.topics.replies, replies, good_corr, timeout=60)["ok"] is True

    (letter,) = letters_for(bootstrap, settings.topics.dead_letters, dead, bad_corr)
    assert (letter.component, letter.topic, letter.key) == ("worker", settings.topics.commands, payment_id)
    assert letter.value == poison
    assert letter.attempts == settings.poison_max_attempts
    assert "ValueError" in letter.error
    assert await retries_counted(pipeline["worker"]["address"]) - retried_before >= settings.poison_max_attempts - 1

    # `dlq list` shows it; `dlq replay` sends the original back, and (still poison) it is set aside again,
    # naming the letter it was replayed from.
    listed = paystream("dlq", "list", "--json", "--component", "worker")
    assert listed.returncode == 0, listed.stderr
    (row,) = [r for r in json.loads(listed.stdout) if r.get("correlation_id") == bad_corr]
    assert (row["key"], row["attempts"], row["topic"]) == (payment_id, settings.poison_max_attempts,
                                                           settings.topics.commands)
    dead_again = end_offsets(bootstrap, settings.topics.dead_letters)
    replayed = paystream("dlq", "replay", row["id"])
    assert replayed.returncode == 0, replayed.stderr
    assert json.loads(replayed.stdout) == {"replayed": 1, "ids": [row["id"]]}
    (again,) = letters_for(bootstrap, settings.topics.dead_letters, dead_again, bad_corr)
    assert again.headers["replayed_from"] == row["id"] and again.value == poison
    assert paystream("dlq", "replay", "99:99999999").returncode == 1
