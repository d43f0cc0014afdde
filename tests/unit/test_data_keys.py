"""Users' data keys kept where a lost store cannot take them along (paystream/data_keys.py): a key
is on the data-keys topic before anything is sealed with it, the store's key is the one journaled
when two makers race, a key whose maker died before journaling it is journaled by its next user, no
new key is made on a store that lost its history, and forgetting writes the tombstone first."""

from __future__ import annotations

import asyncio

import pytest

from connectors.memo import RememberedDataKeys
from paystream.data_keys import JournaledDataKeys
from paystream.domain.errors import Unavailable
from paystream.ports import StoredDataKey


class Store:
    def __init__(self, holds_history: bool = True) -> None:
        self.keys: dict[tuple[str, str], StoredDataKey] = {}
        self.history = holds_history
        self.calls: list[str] = []

    async def data_key(self, account, user_id):
        return self.keys.get((account, user_id))

    async def insert_data_key(self, account, user_id, key):
        self.calls.append("insert")
        return self.keys.setdefault((account, user_id), StoredDataKey(key, journaled=False))

    async def mark_journaled(self, account, user_id):
        self.calls.append("mark")
        self.keys[(account, user_id)] = StoredDataKey(self.keys[(account, user_id)].key, journaled=True)

    async def remove_data_key(self, account, user_id):
        self.calls.append("remove")
        return self.keys.pop((account, user_id), None) is not None

    async def holds_history(self):
        return self.history


class Journal:
    def __init__(self, store: Store, down: bool = False) -> None:
        self.store = store
        self.records: list[tuple[str, str, bytes | None]] = []
        self.down = down

    async def record(self, account, user_id, key):
        if self.down:
            raise Unavailable("kafka_unavailable", "down")
        self.store.calls.append("journal")
        self.records.append((account, user_id, key))


def keys(store: Store, journal_down: bool = False) -> tuple[JournaledDataKeys, Journal]:
    journal = Journal(store, journal_down)
    return JournaledDataKeys(store, journal), journal


def test_a_new_key_is_on_the_topic_before_it_is_handed_out():
    store = Store()
    data_keys, journal = keys(store)
    key = asyncio.run(data_keys.get_or_create("a", "u1"))
    assert journal.records == [("a", "u1", key)] and len(key) == 32
    assert store.calls == ["insert", "journal", "mark"]
    assert asyncio.run(data_keys.get_or_create("a", "u1")) == key
    assert len(journal.records) == 1  # journaled once


def test_when_two_makers_race_the_stored_key_is_the_journaled_one():
    store = Store()
    store.keys[("a", "u1")] = StoredDataKey(b"w" * 32, journaled=False)  # the other ingress won the insert
    data_keys, journal = keys(store)
    assert asyncio.run(data_keys.get_or_create("a", "u1")) == b"w" * 32
    assert journal.records == [("a", "u1", b"w" * 32)]


def test_a_key_never_journaled_is_not_handed_out_while_the_topic_is_unreachable():
    store = Store()
    data_keys, _ = keys(store, journal_down=True)
    with pytest.raises(Unavailable):
        asyncio.run(data_keys.get_or_create("a", "u1"))
    assert store.keys[("a", "u1")].journaled is False
    # Once the topic is back, the same stored key is journaled and handed out.
    data_keys, journal = keys(store)
    key = asyncio.run(data_keys.get_or_create("a", "u1"))
    assert journal.records == [("a", "u1", key)] and store.keys[("a", "u1")] == StoredDataKey(key, True)


def test_no_new_key_on_a_store_that_lost_its_history():
    store = Store(holds_history=False)
    data_keys, journal = keys(store)
    with pytest.raises(Unavailable) as refused:
        asyncio.run(data_keys.get_or_create("a", "u1"))
    assert refused.value.code == "store_rebuilding"
    assert store.keys == {} and journal.records == []


def test_forgetting_writes_the_tombstone_before_removing_the_key():
    store = Store()
    data_keys, journal = keys(store)
    asyncio.run(data_keys.get_or_create("a", "u1"))
    store.calls.clear()
    assert asyncio.run(data_keys.forget("a", "u1")) is True
    assert store.calls == ["journal", "remove"] and journal.records[-1] == ("a", "u1", None)
    assert asyncio.run(data_keys.get("a", "u1")) is None


def test_a_key_never_journaled_is_nobodys_until_it_is():
    """Its first request failed between storing and journaling it: nothing was sealed with it, so it is
    not handed out for opening, and whoever seals next (through the ingress's memory too) journals it."""
    store = Store()
    store.keys[("a", "u1")] = StoredDataKey(b"s" * 32, journaled=False)
    data_keys, journal = keys(store)
    assert asyncio.run(data_keys.get("a", "u1")) is None
    remembered = RememberedDataKeys(data_keys, ttl_s=60)
    assert asyncio.run(remembered.get_or_create("a", "u1")) == b"s" * 32
    assert journal.records == [("a", "u1", b"s" * 32)]
    assert asyncio.run(remembered.get("a", "u1")) == b"s" * 32
