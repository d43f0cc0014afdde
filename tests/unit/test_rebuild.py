"""Rebuilding the stores from the log, against in-process stand-ins of the ports."""

from __future__ import annotations

from paystream import messages
from paystream.domain.commands import StartPayment
from paystream.domain.events import PaymentChanged
from paystream.domain.model import Payment, Status
from paystream.domain.records import Receipt
from paystream.ports import LogRecord, TransactionRef
from paystream.projection import Projection
from paystream.rebuild import StoreRebuild, StoreWatch, marker_name
from paystream.topics import TopicNames

TOPICS = TopicNames.for_prefix("t")


def started(n: int) -> Payment:
    command = StartPayment(command_id=f"cmd{n}", payment_id=f"pay_{n}", account="acct", user_id=f"u{n}",
                           email="sealed1.AAAA", requested_at="2026-11-26T00:00:00Z", payment_type="credit")
    return Payment.start(command, f"2026-11-26T00:00:0{n % 10}.000Z")


def history(n: int) -> list[Payment]:
    first = started(n)
    return [first, first.tokenized(f"pi_{n}", "2026-11-26T00:00:11.000Z")]


def receipt(n: int) -> Receipt:
    return Receipt(receipt_id=f"rcpt_{n}", payment_id=f"pay_{n}", transaction_id=f"pi_{n}", account="acct",
                   user_id=f"u{n}", email_id="sealed1.AAAA", payment_type="credit", amount="1.00", amount_minor=100,
                   currency="EUR", created_at="2026-11-26T00:00:00Z", paid_at="2026-11-26T00:00:12Z",
                   issued_at=f"2026-11-26T00:00:1{n % 10}Z")


class Log:
    def __init__(self) -> None:
        self.topics: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}

    def append(self, topic: str, partition: int, value: bytes | None, key: bytes | None = None) -> None:
        self.topics.setdefault((topic, partition), []).append((key, value))

    def data_key(self, account: str, user_id: str, key: bytes | None) -> None:
        """A user's key on the data-keys topic, or their tombstone (None)."""
        value = None if key is None else messages.encode(messages.DataKeyRecorded.of(account, user_id, key))
        self.append(TOPICS.data_keys, 0, value, messages.data_key_id(account, user_id))

    def event(self, partition: int, payment: Payment) -> None:
        self.append(TOPICS.events, partition, messages.encode(PaymentChanged.of(payment)))

    async def end_offsets(self, topic):
        return {p: len(values) for (t, p), values in self.topics.items() if t == topic}

    async def committed(self, group, topic):
        return {}

    async def read(self, ranges, batch):
        for (topic, partition), (start, end) in sorted(ranges.items()):
            values = self.topics.get((topic, partition), [])[start:end]
            for i in range(0, len(values), batch):
                yield [LogRecord(topic, partition, start + i + j, v, k) for j, (k, v) in enumerate(values[i:i + batch])]


class Store:
    def __init__(self) -> None:
        self.payments: dict[str, Payment] = {}
        self.transactions: dict[str, TransactionRef] = {}
        self.receipts: dict[str, object] = {}
        self.index: dict[tuple[str, str, str], dict[str, str]] = {}
        self.markers: dict[str, int] = {}
        self.data_keys: dict[tuple[str, str], bytes] = {}

    async def write_payments(self, payments):
        newer = [p for p in payments if p.payment_id not in self.payments
                 or self.payments[p.payment_id].version < p.version]
        self.payments.update({p.payment_id: p for p in newer})
        return len(newer)

    async def write_transactions(self, refs):
        fresh = {k: v for k, v in refs.items() if k not in self.transactions}
        self.transactions.update(fresh)
        return len(fresh)

    async def write_receipts(self, receipts):
        self.receipts.update({r.receipt_id: r for r in receipts})
        return len(receipts)

    async def write_user_index(self, entries):
        added = 0
        for key, ids in entries.items():
            held = self.index.setdefault(key, {})
            added += sum(1 for i, at in ids.items() if held.get(i) != at)
            held.update(ids)
        return added

    async def write_data_keys(self, keys):
        for owner, key in keys.items():
            if key is None:
                self.data_keys.pop(owner, None)
            else:
                self.data_keys.setdefault(owner, key)
        return len(keys)

    async def applied_offsets(self, names):
        return {n: self.markers.get(n) for n in names}

    async def set_applied_offsets(self, offsets):
        self.markers.update(offsets)


class Cache:
    def __init__(self) -> None:
        self.receipts = {}

    async def put_receipts(self, receipts, *, whole_lifetime=False):
        self.receipts.update({r.receipt_id: r for r in receipts})


def rebuilder(log: Log, store: Store | None = None, batch: int = 3) -> StoreRebuild:
    return StoreRebuild(log, store or Store(), Cache(), TOPICS, batch=batch)


def test_a_batch_keeps_each_payments_latest_version_and_its_transaction():
    log = Log()
    for payment in history(1):
        log.event(0, payment)
    records = [LogRecord(TOPICS.events, 0, i, v) for i, (_, v) in enumerate(log.topics[(TOPICS.events, 0)])]
    records.append(LogRecord(TOPICS.events, 0, 2, b"not json"))
    projection = Projection.of_records(records, TOPICS)
    assert projection.payments["pay_1"].status.value == "tokenized"
    assert projection.transactions == {"pi_1": TransactionRef("pay_1", "u1", "acct")}
    assert projection.user_index == {("payments", "acct", "u1"): {"pay_1": "2026-11-26T00:00:01.000Z"}}
    assert projection.unreadable == 1


def test_a_batch_writes_what_the_sinks_write_on_the_states_they_write_it_on():
    """The sinks index a payment when it starts, write its transaction id when it is tokenized and index
    every receipt; a batch holding only a later version of a payment adds neither again."""
    first, tokenized = history(2)
    receipted = tokenized.model_copy(update={"status": Status.RECEIPTED, "version": tokenized.version + 3})
    records = [LogRecord(TOPICS.events, 0, i, messages.encode(PaymentChanged.of(p)))
               for i, p in enumerate([first, tokenized, receipted])]
    records.append(LogRecord(TOPICS.receipts, 0, 0, messages.encode(receipt(2))))
    projection = Projection.of_records(records, TOPICS)
    assert projection.payments == {"pay_2": receipted}
    assert projection.transactions == {"pi_2": TransactionRef("pay_2", "u2", "acct")}
    assert projection.receipts == [receipt(2)]
    assert projection.user_index == {("payments", "acct", "u2"): {"pay_2": "2026-11-26T00:00:02.000Z"},
                                     ("receipts", "acct", "u2"): {"rcpt_2": "2026-11-26T00:00:12Z"}}

    later = Projection.of_records(records[2:3], TOPICS)
    assert (later.transactions, later.user_index) == ({}, {})


def test_the_sinks_fold_a_batch_of_typed_values_as_the_rebuild_folds_records():
    """The live sinks add decoded events and receipts to a Projection one by one: the same documents as
    `Projection.of_records` of the same records, the latest version of a payment winning in whatever order it came,
    and one user's several ids gathered under their one index."""
    first, tokenized = history(3)
    other = started(13).model_copy(update={"user_id": "u3"})
    receipted = tokenized.model_copy(update={"status": Status.RECEIPTED, "version": tokenized.version + 3})
    folded = Projection()
    for payment in [first, other, receipted, tokenized]:
        folded.add_payment(payment)
    folded.add_receipt(receipt(3))
    records = [LogRecord(TOPICS.events, 0, i, messages.encode(PaymentChanged.of(p)))
               for i, p in enumerate([first, other, receipted, tokenized])]
    assert folded == Projection.of_records(records + [LogRecord(TOPICS.receipts, 0, 0, messages.encode(receipt(3)))], TOPICS)
    assert folded.payments == {"pay_3": receipted, "pay_13": other}
    assert folded.user_index[("payments", "acct", "u3")] == {"pay_3": first.created_at, "pay_13": other.created_at}
    assert folded.index_entries == 3 and folded.unreadable == 0


async def test_rebuild_writes_every_payment_and_marks_the_ends():
    log = Log()
    for n in range(5):
        for payment in history(n):
            log.event(n % 2, payment)
    rebuild = rebuilder(log)
    done = await rebuild.rebuild()
    store = rebuild.store
    assert done.records == 10
    assert {p.payment_id: p.status.value for p in store.payments.values()} == {f"pay_{n}": "tokenized" for n in range(5)}
    assert set(store.transactions) == {f"pi_{n}" for n in range(5)}
    assert store.index == {("payments", "acct", f"u{n}"): {f"pay_{n}": f"2026-11-26T00:00:0{n}.000Z"}
                           for n in range(5)}
    assert done.index_entries == 5
    assert store.markers == {marker_name(TOPICS.events, 0): 6, marker_name(TOPICS.events, 1): 4}
    # A second replay of the same log changes nothing.
    again = await rebuild.rebuild()
    assert again.records == 10 and again.documents == 0 and again.index_entries == 0


async def test_a_replay_never_takes_a_payment_back():
    log = Log()
    old, new = history(7)
    log.event(0, old)
    store = Store()
    store.payments["pay_7"] = new  # the live sinks already wrote the newer state
    await rebuilder(log, store).rebuild()
    assert store.payments["pay_7"].version == new.version


async def test_the_watch_marks_what_was_applied_and_replays_what_a_wiped_store_lost():
    log = Log()
    for n in range(4):
        for payment in history(n):
            log.event(0, payment)
    store = Store()
    watch = StoreWatch("sinks", rebuilder(log, store))
    tp = (TOPICS.events, 0)
    for offset in range(8):  # the live sinks applied all eight events
        watch.note(*tp, offset)
    assert await watch.check({tp}) is None
    assert store.markers == {marker_name(*tp): 8}

    store.__init__()  # the cluster restarted empty
    replayed = await watch.check({tp})
    assert replayed.records == 8
    assert len(store.payments) == 4 and store.markers == {marker_name(*tp): 8}


async def test_a_wiped_store_gets_back_what_the_sinks_applied_since_the_last_round():
    """A partition whose first events were applied after the last round's marker (still at 0): a wipe
    loses them all the same, and the replay puts them back."""
    log = Log()
    store = Store()
    watch = StoreWatch("sinks", rebuilder(log, store))
    tp = (TOPICS.events, 0)
    assert await watch.check({tp}) is None
    assert store.markers == {marker_name(*tp): 0}
    for n in range(2):
        for payment in history(n):
            log.event(0, payment)
    for offset in range(4):  # applied before the next round
        watch.note(*tp, offset)
    store.__init__()  # the cluster restarted empty
    replayed = await watch.check({tp})
    assert replayed is not None and replayed.records == 4
    assert len(store.payments) == 2 and store.markers == {marker_name(*tp): 4}


async def test_the_watch_replays_only_the_gap_of_a_store_that_is_behind():
    log = Log()
    for n in range(4):
        for payment in history(n):
            log.event(0, payment)
    store = Store()
    watch = StoreWatch("sinks", rebuilder(log, store))
    tp = (TOPICS.events, 0)
    for offset in range(8):
        watch.note(*tp, offset)
    await watch.check({tp})
    store.markers[marker_name(*tp)] = 6  # an older copy of the store came back
    replayed = await watch.check({tp})
    assert replayed.records == 2


async def test_a_partition_given_up_in_a_rebalance_is_forgotten():
    log = Log()
    log.event(0, started(1))
    store = Store()
    watch = StoreWatch("sinks", rebuilder(log, store))
    watch.note(TOPICS.events, 0, 0)
    await watch.check({(TOPICS.events, 0)})
    assert await watch.check(set()) is None
    assert watch.applied == {} and watch.floor == {}


async def test_a_wiped_store_gets_users_data_keys_back_before_its_markers():
    log = Log()
    log.event(0, started(1))
    log.data_key("acct", "u1", b"1" * 32)
    log.data_key("acct", "u2", b"2" * 32)
    log.data_key("acct", "u2", None)  # u2 was forgotten
    store = Store()
    watch = StoreWatch("sinks", rebuilder(log, store))
    tp = (TOPICS.events, 0)
    watch.note(*tp, 0)
    await watch.check({tp})
    store.__init__()  # the cluster restarted empty: keys and markers gone
    replayed = await watch.check({tp})
    assert replayed.records == 3 + 1
    assert store.data_keys == {("acct", "u1"): b"1" * 32}
    assert store.markers == {marker_name(*tp): 1}


async def test_a_fresh_store_is_marked_as_holding_the_history_at_once():
    """Nothing to replay, yet the marker is written (at offset 0): its presence lets the ingress make
    new users' keys (paystream/data_keys.py)."""
    store = Store()
    watch = StoreWatch("sinks", rebuilder(Log(), store))
    tp = (TOPICS.events, 0)
    assert await watch.check({tp}) is None
    assert store.markers == {marker_name(*tp): 0}


async def test_the_rebuild_command_puts_back_data_keys_and_keeps_a_held_one():
    log = Log()
    log.data_key("acct", "u1", b"1" * 32)
    log.data_key("acct", "u3", b"3" * 32)
    store = Store()
    store.data_keys[("acct", "u3")] = b"3" * 32
    done = await rebuilder(log, store).rebuild()
    assert done.records == 2 and store.data_keys == {("acct", "u1"): b"1" * 32, ("acct", "u3"): b"3" * 32}
