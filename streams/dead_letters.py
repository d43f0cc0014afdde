"""The dead-letter topic: where a consumer sets aside a message it cannot handle.

The message goes there whole (key, value, headers, where it came from) with
the error, is counted and logged, and its partition moves on; nothing is
skipped silently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import faust

from paystream import messages
from paystream.clock import utc_now
from paystream.observability import metrics
from paystream.observability.logs import get_logger
from paystream.settings import Settings

log = get_logger("paystream.dead_letters")


def headers_of(event: faust.types.EventT) -> dict[str, str]:
    return {k: (v.decode(errors="replace") if isinstance(v, bytes) else str(v))
            for k, v in (event.headers or {}).items()}


class DeadLetters:
    def __init__(self, app: faust.App, settings: Settings, component: str) -> None:
        self.app = app
        self.component = component
        self.topic = app.topic(settings.topics.dead_letters, key_serializer="raw", value_serializer="raw")

    async def put(self, event: faust.types.EventT, error: str) -> None:
        message = event.message
        letter = messages.dead_letter(
            self.component, message.topic, message.partition, message.offset, message.key, message.value,
            headers_of(event), error, utc_now(),
        )
        await self.topic.send(key=message.key, value=messages.encode(letter), force=True)
        # Flushed before the partition moves past it: a crash now must not lose the letter.
        await self.app.producer.flush()
        metrics.DEAD_LETTERS.labels(self.component, message.topic).inc()
        log.error("message set aside on the dead-letter topic", topic=message.topic,
                  partition=message.partition, offset=message.offset, error=error)

    async def readable(self, stream: faust.StreamT, kind: str) -> AsyncIterator[tuple[faust.types.EventT, Any]]:
        """(event, typed value) for each message of a `kind` topic; the unreadable go to the dead letters."""
        async for event in stream.events():
            try:
                value = messages.decode(kind, event.value)
            except messages.UnreadableMessage as exc:
                await self.put(event, str(exc))
                continue
            yield event, value
