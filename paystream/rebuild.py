"""The stores are derived: rebuilt from the log whenever they lose what they held.

The events topic (kept forever), the receipts topic and the compacted data-keys
topic are the source of truth; Couchbase and the Redis receipt cache are
projections of them. `StoreRebuild`
replays ranges of those topics into the stores in batches, each folded into the
`Projection` the live sinks write (paystream/projection.py) and written through
the same store writer, which never takes a payment back (so a replay running
beside the live sinks is harmless): the same documents, no more and no less. Markers in the store say, for each topic partition, the
offset below which the store holds everything.

`StoreWatch` is how the sinks keep those markers and notice a store that lost
data (wiped, restarted empty, restored from an older copy): a marker missing or
below what the sinks last recorded means the store is behind, and the gap is
replayed without anyone asking, users' data keys first (paystream/data_keys.py:
no ingress makes a user a new key while the markers are missing). Only ports here; no I/O of its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from paystream import messages
from paystream.ports import EventLog, ReceiptCacheWriter, StoreWriter
from paystream.projection import Projection, write
from paystream.topics import TopicNames

Partition = tuple[str, int]


def marker_name(topic: str, partition: int) -> str:
    return f"{topic}/{partition}"


@dataclass
class Replayed:
    records: int = 0
    documents: int = 0
    #: Ids added to users' indexes (sub-document writes into their index documents).
    index_entries: int = 0
    unreadable: int = 0
    seconds: float = 0.0

    def add(self, other: Replayed) -> None:
        self.records += other.records
        self.documents += other.documents
        self.index_entries += other.index_entries
        self.unreadable += other.unreadable

    @property
    def documents_per_s(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0


class StoreRebuild:
    def __init__(self, log: EventLog, store: StoreWriter, cache: ReceiptCacheWriter, topics: TopicNames,
                 batch: int = 2000) -> None:
        self.log = log
        self.store = store
        self.cache = cache
        self.topics = topics
        self.batch = batch

    async def replay(self, ranges: dict[Partition, tuple[int, int]]) -> Replayed:
        """Write what the records in `ranges` imply. Batches are written one after another, so a
        later version of a payment is never overtaken by an earlier one from the same replay."""
        done = Replayed()
        started = time.monotonic()
        ranges = {tp: span for tp, span in ranges.items() if span[0] < span[1]}
        if ranges:
            async for records in self.log.read(ranges, self.batch):
                projection = Projection.of_records(records, self.topics)
                # Each receipt cached for what is left of its lifetime.
                written = await write(projection, self.store, self.cache, whole_lifetime=False)
                done.add(Replayed(records=len(records), unreadable=projection.unreadable,
                                  documents=written.documents, index_entries=written.index_entries))
        done.seconds = time.monotonic() - started
        return done

    async def replay_data_keys(self) -> Replayed:
        """Put back every user's data key from the data-keys topic, read whole (it is compacted: about
        one record per user). Each user's latest record decides: a key, or none once forgotten."""
        done = Replayed()
        started = time.monotonic()
        ends = await self.log.end_offsets(self.topics.data_keys)
        latest: dict[tuple[str, str], bytes | None] = {}
        ranges = {(self.topics.data_keys, p): (0, end) for p, end in ends.items() if end > 0}
        async for records in self.log.read(ranges, self.batch):
            done.records += len(records)
            for record in records:
                if record.key is None:
                    done.unreadable += 1
                    continue
                owner = messages.data_key_owner(record.key)
                try:
                    latest[owner] = None if record.value is None else messages.decode("data_keys", record.value).key
                except messages.UnreadableMessage:
                    done.unreadable += 1
        done.documents = await self.store.write_data_keys(latest) if latest else 0
        done.seconds = time.monotonic() - started
        return done

    async def rebuild(self) -> Replayed:
        """Replay the topics whole, as they are now (users' data keys first: nothing is readable without
        them), and mark the store as holding all of it."""
        done = await self.replay_data_keys()
        ends = {(topic, partition): end for topic in (self.topics.events, self.topics.receipts)
                for partition, end in (await self.log.end_offsets(topic)).items()}
        done.add(await self.replay({tp: (0, end) for tp, end in ends.items()}))
        markers = await self.store.applied_offsets([marker_name(*tp) for tp in ends])
        await self.store.set_applied_offsets({
            marker_name(*tp): end for tp, end in ends.items() if end > (markers[marker_name(*tp)] or 0)})
        return done


class StoreWatch:
    """The sinks' side: record what they applied, keep the markers, replay what the store lost."""

    def __init__(self, group: str, rebuild: StoreRebuild | None = None) -> None:
        #: Set before the first check (the sinks connect to the store lazily).
        self.rebuild = rebuild
        self.group = group
        #: Per partition: the offset after the last record the sinks applied.
        self.applied: dict[Partition, int] = {}
        #: Per partition: the offset the store must hold everything below (the last marker we wrote,
        #: or at first the group's committed offset: the previous owner applied all before it).
        self.floor: dict[Partition, int] = {}
        #: The partitions whose marker this watch wrote: one of them missing means the store lost it.
        self.marked: set[Partition] = set()

    def note(self, topic: str, partition: int, offset: int) -> None:
        self.applied[(topic, partition)] = offset + 1

    async def check(self, assigned: set[Partition]) -> Replayed | None:
        """One round: returns what was replayed, or None when the store held everything."""
        for tp in set(self.floor) - assigned:
            del self.floor[tp]
            self.applied.pop(tp, None)
            self.marked.discard(tp)
        for topic in {topic for topic, _ in assigned - set(self.floor)}:
            committed = await self.rebuild.log.committed(self.group, topic)
            for tp in assigned:
                if tp[0] == topic and tp not in self.floor:
                    self.floor[tp] = committed.get(tp[1], 0)
        targets = {tp: max(self.floor[tp], self.applied.get(tp, 0)) for tp in assigned}
        names = {tp: marker_name(*tp) for tp in assigned}
        markers = await self.rebuild.store.applied_offsets(list(names.values()))
        missing = {tp for tp in assigned if markers[names[tp]] is None}
        held = {tp: markers[names[tp]] or 0 for tp in assigned}
        # Behind the last marker we wrote: lost. A marker we wrote gone altogether: everything the sinks
        # applied is lost, also what they applied since that marker (a partition whose first events came
        # after the last round has a marker of 0 but documents all the same).
        gaps = {tp: (held[tp], targets[tp]) for tp in assigned
                if held[tp] < self.floor[tp] or (tp in missing and tp in self.marked and held[tp] < targets[tp])}
        replayed = None
        if gaps or missing:
            # A store that lost data may have lost users' keys too (a fresh one has none to lose: the
            # topic is empty). They go back first, and the markers last: while a marker is missing, no
            # ingress makes a new key for a user whose old one is merely not back yet.
            replayed = await self.rebuild.replay_data_keys()
        if gaps:
            replayed.add(await self.rebuild.replay(gaps))
        # A missing marker is written even at offset 0: its presence says the store holds the history.
        moved = {tp: target for tp, target in targets.items() if target > held[tp] or tp in missing}
        if moved:
            await self.rebuild.store.set_applied_offsets({names[tp]: target for tp, target in moved.items()})
            self.floor.update(moved)
            self.marked |= set(moved)
        return replayed if replayed is not None and replayed.records else None
