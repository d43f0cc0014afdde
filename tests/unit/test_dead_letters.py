"""The dead-letter runner (streams/dead_letters/letters.py) against an in-memory topic: a handler that keeps raising
is tried `poison_max_attempts` times, then its message is set aside whole with the last error, flushed
before its partition moves on; one that recovers is not; an unreadable message is set aside at once."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from paystream import messages
from streams.dead_letters.letters import DeadLetters
from tests.unit.fakes import START


class MemoryTopic:
    def __init__(self, app: MemoryApp) -> None:
        self.app = app

    async def send(self, key, value, force=False):
        self.app.sent.append((key, value))


class MemoryApp:
    """What the runner uses of a Faust app: a topic to send to, and its producer's flush."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []
        self.flushed_after: list[int] = []  # how many letters were sent at each flush
        self.producer = SimpleNamespace(flush=self.flush)

    def topic(self, name, **_):
        self.topic_name = name
        return MemoryTopic(self)

    async def flush(self):
        self.flushed_after.append(len(self.sent))


def event(value: bytes, topic: str = "paystream.events", offset: int = 7) -> SimpleNamespace:
    return SimpleNamespace(message=SimpleNamespace(topic=topic, partition=2, offset=offset, key=b"pay-1", value=value),
                           headers={"correlation_id": b"corr-1"}, value=value)


@pytest.fixture
def runner() -> tuple[DeadLetters, MemoryApp]:
    app = MemoryApp()
    settings = SimpleNamespace(topics=SimpleNamespace(dead_letters="paystream.dead-letters"), poison_max_attempts=3,
                               poison_retry_backoff_s=0.001)
    return DeadLetters(app, settings, "sinks"), app


def letters(app: MemoryApp) -> list[messages.DeadLetter]:
    return [messages.decode("dead_letters", value) for _, value in app.sent]


async def test_work_that_succeeds_is_not_retried_and_nothing_is_set_aside(runner):
    dead, app = runner
    calls = []

    async def work():
        calls.append(1)
        return "done"

    assert await dead.attempt(event(b"{}"), work) == (True, "done")
    assert (len(calls), app.sent) == (1, [])


async def test_work_that_recovers_within_its_attempts_is_not_set_aside(runner):
    dead, app = runner
    calls = []

    async def work():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("store busy")
        return "done"

    assert await dead.attempt(event(b"{}"), work) == (True, "done")
    assert (len(calls), app.sent) == (3, [])


async def test_a_poison_message_is_tried_its_attempts_then_set_aside_whole_and_flushed(runner):
    dead, app = runner
    calls = []

    async def work():
        calls.append(1)
        raise ValueError(f"cannot store it (try {len(calls)})")

    assert await dead.attempt(event(b'{"poison": true}'), work) == (False, None)
    assert len(calls) == 3
    (letter,) = letters(app)
    assert (letter.component, letter.topic, letter.partition, letter.offset, letter.key) == \
        ("sinks", "paystream.events", 2, 7, "pay-1")
    assert (letter.value, letter.headers, letter.attempts) == (b'{"poison": true}', {"correlation_id": "corr-1"}, 3)
    assert letter.error == "ValueError: cannot store it (try 3)"  # the last error
    assert app.sent[0][0] == b"pay-1" and app.topic_name == "paystream.dead-letters"
    assert app.flushed_after == [1]  # flushed once it was sent, before the runner returned


async def test_unreadable_messages_are_set_aside_at_once_and_the_readable_kept_in_order(runner):
    dead, app = runner
    good = messages.encode(START)
    other = messages.encode(START.model_copy(update={"payment_id": "pay-2"}))
    batch = [event(good, offset=1), event(b"not json", offset=2), event(other, offset=3)]
    readable = await dead.readable_of(batch, "commands")
    assert [(e.message.offset, v.payment_id) for e, v in readable] == [(1, "pay-1"), (3, "pay-2")]
    (letter,) = letters(app)
    assert (letter.offset, letter.attempts, letter.value) == (2, 1, b"not json")
    assert app.flushed_after == [1]
