"""The analytics tables (Faust, RocksDB, changelog-backed) and how one process reads its share.

- three windowed tables of tallies per group (tables/analytics/counts.py), by
  event time (the `at` of each event, so a late event lands in its own
  window): per minute and per hour (tumbling), and 10 minutes wide every
  5 minutes (hopping);
- the groups seen, so a reader looks windows up by key instead of scanning
  every record;
- the last version of each payment counted, so a state the worker published
  twice (after a crash) is counted once;
- per-user totals, keyed by account and user id (fed through a topic keyed the same way,
  so each user's totals live in one partition and a query goes to its owner).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import faust
from faust.types.windows import WindowRange_from_start

from paystream.domain.model import Payment
from paystream.settings import Settings
from tables.analytics.counts import Group, add, add_to_user, contribution, user_key
from tables.analytics.views import HOUR, MINUTE, ROLLING, WINDOWS, Partials, WindowQuery, read_partials, wanted

#: Records read between two yields to the event loop, so a long read never stalls the payment agent.
READ_BATCH = 500


def _windowed(app: faust.App, name: str, partitions: int, help_: str) -> faust.Table:
    # Keys are (dimension, (window start, window end)): JSON, not Faust's default raw bytes.
    return app.Table(name, default=dict, partitions=partitions, help=help_,
                     schema=faust.Schema(key_serializer="json", value_serializer="json"))


class AnalyticsTables:
    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        partitions = settings.payment_topic_partitions
        (minute_s, _), (hour_s, _), (rolling_size, rolling_step) = WINDOWS[MINUTE], WINDOWS[HOUR], WINDOWS[ROLLING]
        self.windows = {
            MINUTE: _windowed(app, "windows-minute", partitions, "Tallies per group and minute.")
            .tumbling(minute_s, expires=settings.analytics_minute_retention_s),
            HOUR: _windowed(app, "windows-hour", partitions, "Tallies per group and hour.")
            .tumbling(hour_s, expires=settings.analytics_hour_retention_s),
            ROLLING: _windowed(app, "windows-rolling", partitions, "Tallies per group, 10 minutes every 5.")
            .hopping(rolling_size, rolling_step, expires=settings.analytics_minute_retention_s),
        }
        self.groups = app.Table("groups", default=None, partitions=partitions, key_type=str,
                                help="Every group key counted (value 1).")
        self.versions = app.Table("versions", default=None, partitions=partitions, key_type=str,
                                  help="Last version of each payment counted.")
        # JSON keys, like the topic that feeds it: Faust's router finds a user's partition by hashing the
        # key as the table serialises it, and Kafka put the user there by hashing the same bytes.
        self.users = app.Table("users", default=None, partitions=partitions, help="Per-user totals.",
                               schema=faust.Schema(key_serializer="json", value_serializer="json"))

    # --- writing (inside the agents) -----------------------------------------------------
    def is_repeat(self, payment: Payment) -> bool:
        last = self.versions.get(payment.payment_id)
        return last is not None and payment.version <= last

    def count(self, payment: Payment, at: float, partition: int, offset: int) -> None:
        """Add one event to every window it falls in. Call `counted` after everything else it feeds."""
        group, tallies = contribution(payment, partition)
        if group.key not in self.groups:
            self.groups[group.key] = 1
        for windows in self.windows.values():
            windows.relative_to(at)[group.key].apply(add, (tallies, offset))

    def counted(self, payment: Payment) -> None:
        self.versions[payment.payment_id] = payment.version

    def count_for_user(self, payment: Payment, source: str, offset: int) -> None:
        key = user_key(payment.account, payment.user_id)
        self.users[key] = add_to_user(self.users.get(key), payment, source, offset)

    # --- reading (this process's share) ---------------------------------------------------
    async def read_partials(self, query: WindowQuery) -> Partials:
        """This worker's partials for a query: every window of the range, every group it wants."""
        table = self.windows[query.table].table
        partitions = active_partitions(self.app, table)
        groups = [g for g in map(Group.parse, self.groups.keys()) if g.partition in partitions and wanted(query, g)]
        records = []
        for n, start in enumerate(query.window_starts):
            window_range = WindowRange_from_start(float(start), table.window.size)
            for group in groups:
                record = table.data.get((group.key, window_range))
                if record:
                    records.append((group, start, record))
            if n % 20 == 19:
                await asyncio.sleep(0)
        return read_partials(query, partitions, records)


def active_partitions(app: faust.App, table: faust.Table) -> set[int]:
    """The partitions of `table` this process holds as their active copy (not as a standby)."""
    topic = table.changelog_topic.get_topic_name()
    return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}


class PartitionSnapshot:
    """One partition of a table as of one moment: its records and the changelog offset they reflect.

    Read through a RocksDB snapshot, in batches with the event loop free in
    between: the agents go on writing, the snapshot sees none of it. Faust's
    store keeps one RocksDB per partition (`_dbs`) and its offset mark inside
    it; neither is public API, so both are read here and only here.
    """

    def __init__(self, table: faust.Table, partition: int) -> None:
        store = table.data
        self.offset_key = store.offset_key
        db = store._dbs.get(partition)
        self.snapshot = db.snapshot() if db is not None else None  # None: nothing was ever written here
        self.offset: int | None = None
        if self.snapshot is not None:
            it = self.snapshot.iter()
            it.seek(self.offset_key)
            if it.valid() and it.key() == self.offset_key:
                self.offset = int(it.value())

    async def records(self) -> AsyncIterator[tuple[object, object]]:
        if self.snapshot is None:
            return
        for n, (raw_key, raw_value) in enumerate(self.snapshot.items()):
            if raw_key == self.offset_key:
                continue
            # Every table here keeps JSON keys and values (Faust's serialisers for them).
            yield json.loads(raw_key), json.loads(raw_value)
            if n % READ_BATCH == READ_BATCH - 1:
                await asyncio.sleep(0)
