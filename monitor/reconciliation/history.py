"""paystream's own record read back from its topics (the PaymentHistory port): the latest state of each
payment from the events topic, and the receipts from the receipts topic, since a moment or from the start.

A group-less consumer: it seeks each partition to the first message at or after `since` (Kafka's
time index) and reads up to the end offsets taken when it started, so a run ends however busy the topic.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from paystream import messages
from paystream.domain.model import Payment
from paystream.domain.records import Receipt
from paystream.observability.logs import get_logger
from paystream.settings import Settings

log = get_logger("paystream.history")


class KafkaHistory:
    def __init__(self, bootstrap: str, events_topic: str, receipts_topic: str) -> None:
        self.bootstrap = bootstrap
        self.events_topic = events_topic
        self.receipts_topic = receipts_topic

    @classmethod
    def of(cls, settings: Settings) -> KafkaHistory:
        """What paystream recorded, read back from its events and receipts topics."""
        return cls(settings.kafka_bootstrap, settings.topics.events, settings.topics.receipts)

    async def payments_since(self, since: datetime | None) -> list[Payment]:
        latest: dict[str, Payment] = {}
        async for event in self._read(self.events_topic, "events", since):
            known = latest.get(event.payment.payment_id)
            if known is None or event.payment.version >= known.version:
                latest[event.payment.payment_id] = event.payment
        return list(latest.values())

    async def receipts_since(self, since: datetime | None) -> list[Receipt]:
        return list({r.receipt_id: r async for r in self._read(self.receipts_topic, "receipts", since)}.values())

    async def _read(self, topic: str, kind: str, since: datetime | None) -> AsyncIterator:
        # Without a group, a consumer given its topic is assigned every partition of it once started.
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=self.bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="latest")
        await consumer.start()
        try:
            tps = sorted(consumer.assignment())
            if not tps:
                return
            ends = await consumer.end_offsets(tps)
            starts = await self._starts(consumer, tps, since)
            remaining = {tp for tp in tps if starts.get(tp) is not None and starts[tp] < ends[tp]}
            for tp in remaining:
                consumer.seek(tp, starts[tp])
            skipped, first_error = 0, None
            while remaining:
                for tp, records in (await consumer.getmany(*remaining, timeout_ms=1000)).items():
                    for record in records:
                        if record.offset < ends[tp]:
                            try:
                                yield messages.decode(kind, record.value)
                            except messages.UnreadableMessage as exc:
                                # Set aside on the dead-letter topic by the sinks already; said once here.
                                skipped, first_error = skipped + 1, first_error or exc.error
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        remaining.discard(tp)
            if skipped:
                log.warning("unreadable messages skipped", topic=topic, count=skipped, first_error=first_error)
        finally:
            await consumer.stop()

    @staticmethod
    async def _starts(consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                      since: datetime | None) -> dict[TopicPartition, int | None]:
        if since is None:
            return await consumer.beginning_offsets(tps)
        found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in tps})
        return {tp: (found[tp].offset if found.get(tp) is not None else None) for tp in tps}
