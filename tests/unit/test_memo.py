"""The ingress's short memory of API keys and data keys: found records are kept for the TTL, unknown
keys are always asked again, a forgotten user's key is dropped at once, and ttl 0 keeps nothing."""

from __future__ import annotations

import asyncio

from connectors.memo import RememberedApiKeys, RememberedDataKeys
from paystream.ports import ApiKeyRecord

RECORD = ApiKeyRecord("key_1", "h1", "acct-1", "2026-01-01T00:00:00Z", "psk_abc")


class CountingKeys:
    def __init__(self) -> None:
        self.asked = 0
        self.records = {"h1": RECORD}
        self.data = {("acct-1", "u1"): b"k" * 32}

    async def find(self, key_hash):
        self.asked += 1
        return self.records.get(key_hash)

    async def get(self, account, user_id):
        self.asked += 1
        return self.data.get((account, user_id))

    async def get_or_create(self, account, user_id):
        return self.data.setdefault((account, user_id), b"n" * 32)

    async def forget(self, account, user_id):
        return self.data.pop((account, user_id), None) is not None


def run(coro):
    return asyncio.run(coro)


def test_found_records_are_remembered_unknown_ones_are_asked_again():
    store = CountingKeys()
    keys = RememberedApiKeys(store, ttl_s=60)
    assert run(keys.find("h1")) == run(keys.find("h1")) == RECORD
    assert run(keys.find("nope")) is None and run(keys.find("nope")) is None
    assert store.asked == 3


def test_ttl_zero_remembers_nothing():
    store = CountingKeys()
    keys = RememberedApiKeys(store, ttl_s=0)
    run(keys.find("h1"))
    run(keys.find("h1"))
    assert store.asked == 2


def test_forgetting_a_user_drops_their_key_from_memory_at_once():
    store = CountingKeys()
    keys = RememberedDataKeys(store, ttl_s=60)
    assert run(keys.get("acct-1", "u1")) == b"k" * 32
    assert run(keys.forget("acct-1", "u1")) is True
    assert run(keys.get("acct-1", "u1")) is None
    assert run(keys.get_or_create("acct-1", "u1")) == b"n" * 32
