"""How the sinks take a topic in batches and write each one, setting aside only a poison message.

A batch is at most `sinks_batch_max` events, taken once it is full or
`sinks_batch_within_ms` passed; its offsets are committed only once it is
written. A batch is folded into one `Projection` (paystream/projection.py) and
written whole, retried as a whole: an outage (connectors/outages.py) for as long
as it lasts, a failure of its own `poison_max_attempts` times; after that it is
written again one event at a time (a batch of one each), so only the message the
failure belongs to goes to the dead-letter topic, and its partition moves on.
Writing a batch again is harmless: the store writer never takes a payment back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import faust
from tenacity import AsyncRetrying, wait_exponential_jitter

from paystream import bootstrap
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.projection import Projection
from paystream.settings import Settings
from streams.dead_letters.letters import DeadLetters

log = get_logger("paystream.sinks")


class BatchSink:
    def __init__(self, settings: Settings, dead_letters: DeadLetters, write: Callable[[Projection], Awaitable[Any]],
                 applied: Callable[[faust.types.EventT], None]) -> None:
        self.settings = settings
        self.dead_letters = dead_letters
        #: Puts a projection in the stores.
        self.write = write
        #: Told of every event once its batch is done with (written, or set aside).
        self.applied = applied

    async def batches(self, stream: faust.StreamT) -> AsyncIterator[list[faust.types.EventT]]:
        """The stream's events in batches. `take_events` acks a batch's events when the next one is asked
        for (after this one was written), but also when it is closed: an agent stopped mid-batch would
        let those offsets be committed unwritten. So each event is held (one more reference) and acked
        here only after its batch was written; a batch never written is never committed, and comes again."""
        within = self.settings.sinks_batch_within_ms / 1000
        async for events in stream.take_events(self.settings.sinks_batch_max, within=within):
            for event in events:
                event.message.incref()
            yield events
            for event in events:
                await stream.ack(event)

    async def written(self, events: list[faust.types.EventT], kind: str,
                      project: Callable[[list], Projection]) -> list:
        """Write a batch: the `project`ion of its readable events' typed values; returns those values."""
        readable = await self.dead_letters.readable_of(events, kind)
        values = [value for _, value in readable]
        if readable:
            try:
                await self._until_done(lambda: self.write(project(values)), f"batch of {len(readable)} {kind}")
            except Exception as exc:  # not an outage: find the message it belongs to
                log.warning("a batch failed on its own: writing it one message at a time", topic=kind,
                            messages=len(readable), error=repr(exc))
                for event, value in readable:
                    await self._or_set_aside(event, lambda value=value: self._until_done(
                        lambda: self.write(project([value])), f"one of {kind}"))
        for event in events:
            self.applied(event)
        metrics.SINK_BATCH_SIZE.labels(kind).observe(len(events))
        return values

    def _worth_retrying(self, state) -> bool:
        """An outage, for as long as it lasts; a failure of the message's own, a bounded number of times."""
        failed = state.outcome.exception()
        return failed is not None and (bootstrap.is_outage(failed)
                                       or state.attempt_number < self.settings.poison_max_attempts)

    async def _until_done(self, write: Callable[[], Awaitable[Any]], what: str) -> None:
        async for attempt in AsyncRetrying(
            retry=self._worth_retrying, reraise=True, wait=wait_exponential_jitter(multiplier=0.2, max=10),
            before_sleep=lambda state: log.warning("store write failed, retrying", what=what,
                                                   error=repr(state.outcome.exception())),
        ):
            with attempt:
                await write()

    async def _or_set_aside(self, event: faust.types.EventT, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception as exc:  # not an outage, and failed every time: a poison message
            await self.dead_letters.put(event, f"{type(exc).__name__}: {exc}"[:2000],
                                        attempts=self.settings.poison_max_attempts)
