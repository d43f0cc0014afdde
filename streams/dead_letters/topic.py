"""The dead-letter topic read back and replayed (`paystream dlq list|replay`).

Read with a consumer outside any group (nothing committed); a replay sends each
letter's original key, value and headers back to the topic it came from, with a
`replayed_from` header naming the letter (`<partition>:<offset>` of the
dead-letter topic), so a replayed message is told apart in the logs. Every
consumer's handling is safe to run again, so replaying a message twice does
nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from connectors.kafka_log import KafkaEventLog
from paystream import messages
from paystream.messages import DeadLetter


@dataclass(frozen=True)
class StoredLetter:
    partition: int
    offset: int
    letter: DeadLetter | None  # None: not a dead letter at all (shown, never replayed)

    @property
    def id(self) -> str:
        return f"{self.partition}:{self.offset}"


class KafkaDeadLetters:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.log = KafkaEventLog(bootstrap)

    async def all(self) -> list[StoredLetter]:
        """Every letter on the topic, oldest first per partition."""
        ends = await self.log.end_offsets(self.topic)
        ranges = {(self.topic, p): (0, end) for p, end in ends.items() if end > 0}
        found: list[StoredLetter] = []
        if not ranges:
            return found
        async for records in self.log.read(ranges, batch=1000):
            for record in records:
                try:
                    letter = messages.decode("dead_letters", record.value)
                except messages.UnreadableMessage:
                    letter = None
                found.append(StoredLetter(record.partition, record.offset, letter))
        return sorted(found, key=lambda s: (s.letter.at if s.letter else "", s.partition, s.offset))

    async def replay(self, letters: list[StoredLetter]) -> int:
        """Send each letter's original message back to its topic; how many were sent."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        sent = 0
        try:
            for stored in letters:
                letter = stored.letter
                if letter is None:
                    continue
                headers = [(k, v.encode()) for k, v in letter.headers.items() if k != "replayed_from"]
                headers.append(("replayed_from", stored.id.encode()))
                await producer.send_and_wait(letter.topic, key=letter.key.encode() if letter.key is not None else None,
                                             value=letter.value, headers=headers)
                sent += 1
        finally:
            await producer.stop()
        return sent
