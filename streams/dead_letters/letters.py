"""The dead-letter topic: where a consumer sets aside a message it cannot handle.

The message goes there whole (key, value, headers, where it came from) with
the error, is counted and logged, and its partition moves on; nothing is
skipped silently. Two kinds: a message that cannot be read (at once: reading
it again gives the same answer), and a poison message, one its handler keeps
raising on: tried `poison_max_attempts` times with backoff (every handler is
safe to run again, as after a redelivery), then set aside with the last error
and the number of attempts, so one bad message never blocks its partition nor
is retried forever. `paystream dlq list|replay` reads and replays them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import faust
from tenacity import AsyncRetrying, RetryError, stop_after_attempt, wait_exponential

from paystream import messages
from paystream.clock import utc_now
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.settings import Settings

log = get_logger("paystream.dead_letters")
T = TypeVar("T")


def headers_of(event: faust.types.EventT) -> dict[str, str]:
    return {k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v))
            for k, v in (event.headers or {}).items()}


class DeadLetters:
    def __init__(self, app: faust.App, settings: Settings, component: str) -> None:
        self.app = app
        self.component = component
        self.topic = app.topic(settings.topics.dead_letters, key_serializer="raw", value_serializer="raw")
        self.max_attempts = settings.poison_max_attempts
        self.backoff_s = settings.poison_retry_backoff_s

    async def attempt(self, event: faust.types.EventT, work: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        """(True, what `work` gave), or (False, None) once it raised `max_attempts` times and the message
        was set aside."""
        message = event.message

        def retrying(state) -> None:
            metrics.POISON_RETRIES.labels(self.component, message.topic).inc()
            log.warning("handling a message failed; trying it again", topic=message.topic,
                        partition=message.partition, offset=message.offset, attempt=state.attempt_number,
                        error=repr(state.outcome.exception()))

        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(self.max_attempts), before_sleep=retrying,
                                               wait=wait_exponential(multiplier=self.backoff_s, max=10 * self.backoff_s)):
                with attempt:
                    return True, await work()
        except RetryError as exc:
            error = exc.last_attempt.exception()
            await self.put(event, f"{type(error).__name__}: {error}"[:2000], attempts=self.max_attempts)
        return False, None

    async def put(self, event: faust.types.EventT, error: str, attempts: int = 1) -> None:
        message = event.message
        letter = messages.dead_letter(
            self.component, message.topic, message.partition, message.offset, message.key, message.value,
            headers_of(event), error, utc_now(), attempts=attempts,
        )
        await self.topic.send(key=message.key, value=messages.encode(letter), force=True)
        # Flushed before the partition moves past it: a crash now must not lose the letter.
        await self.app.producer.flush()
        metrics.DEAD_LETTERS.labels(self.component, message.topic).inc()
        log.error("message set aside on the dead-letter topic", topic=message.topic,
                  partition=message.partition, offset=message.offset, error=error, attempts=attempts)

    async def readable(self, stream: faust.StreamT, kind: str) -> AsyncIterator[tuple[faust.types.EventT, Any]]:
        """(event, typed value) for each message of a `kind` topic; the unreadable go to the dead letters."""
        async for event in stream.events():
            decoded = await self._decoded(event, kind)
            if decoded is not None:
                yield event, decoded

    async def readable_of(self, events: Sequence[faust.types.EventT], kind: str) -> list[tuple[faust.types.EventT, Any]]:
        """The same for a batch of events: (event, typed value) of each readable one, in order."""
        readable = []
        for event in events:
            decoded = await self._decoded(event, kind)
            if decoded is not None:
                readable.append((event, decoded))
        return readable

    async def _decoded(self, event: faust.types.EventT, kind: str) -> Any:
        try:
            return messages.decode(kind, event.value)
        except messages.UnreadableMessage as exc:
            await self.put(event, str(exc))
            return None
