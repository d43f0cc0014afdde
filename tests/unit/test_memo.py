"""The ingress's short memory of API keys and data keys: found records are kept for the TTL, unknown
keys are always asked again, a forgotten user's key is dropped at once, and ttl 0 keeps nothing;
while the store cannot answer, a key seen before still authenticates and still seals, but nothing
is opened with a key the store was not asked for."""

from __future__ import annotations

import asyncio

import pytest

from connectors.memo import RememberedApiKeys, RememberedDataKeys
from paystream.domain.errors import Unavailable
from paystream.ports import ApiKeyRecord

RECORD = ApiKeyRecord("key_1", "h1", "acct-1", "2026-01-01T00:00:00Z", "psk_abc")


class CountingKeys:
    def __init__(self) -> None:
        self.asked = 0
        self.records = {"h1": RECORD}
        self.data = {("acct-1", "u1"): b"k" * 32}
        self.down = False

    def _answer(self):
        self.asked += 1
        if self.down:
            raise Unavailable("store_unavailable", "down")

    async def find(self, key_hash):
        self._answer()
        return self.records.get(key_hash)

    async def get(self, account, user_id):
        self._answer()
        return self.data.get((account, user_id))

    async def get_or_create(self, account, user_id):
        self._answer()
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


def test_with_the_store_down_a_known_api_key_still_authenticates_an_unknown_one_is_unavailable():
    store = CountingKeys()
    keys = RememberedApiKeys(store, ttl_s=0)
    assert run(keys.find("h1")) == RECORD
    store.down = True
    assert run(keys.find("h1")) == RECORD
    with pytest.raises(Unavailable):
        run(keys.find("h2"))
    # A key found revoked is not kept for the next outage.
    store.down, store.records = False, {}
    assert run(keys.find("h1")) is None
    store.down = True
    with pytest.raises(Unavailable):
        run(keys.find("h1"))


def test_with_the_store_down_a_known_data_key_still_seals_but_opens_nothing():
    store = CountingKeys()
    keys = RememberedDataKeys(store, ttl_s=0)
    assert run(keys.get_or_create("acct-1", "u1")) == b"k" * 32
    store.down = True
    assert run(keys.get_or_create("acct-1", "u1")) == b"k" * 32
    with pytest.raises(Unavailable):
        run(keys.get("acct-1", "u1"))
    with pytest.raises(Unavailable):
        run(keys.get_or_create("acct-1", "u2"))
