"""A short in-process memory in front of two lookups every request makes: the API key's record and
the user's data key. One ingress answers thousands of reads a second; without it each would cost
two more round trips. The price is a bound: a revoked key, or a forgotten user's key, may still be
used by an ingress for up to `ttl_s` (PAYSTREAM_KEY_CACHE_S, 1 s by default; 0 turns this off).

cachetools' TTLCache keeps the entries; only found records are kept, so an unknown key is asked
of the store every time. While the key store cannot answer (Redis down), a key this ingress has
seen before is still accepted as it was last found (a revocation made meanwhile waits for Redis);
an unknown one gets 503, not 401.
"""

from __future__ import annotations

from cachetools import LRUCache, TTLCache

from paystream.domain.errors import Unavailable
from paystream.ports import ApiKeyRecord, ApiKeyStore, PersonalDataKeys

_MAX_ENTRIES = 100_000


class RememberedApiKeys:
    def __init__(self, store: ApiKeyStore, ttl_s: float) -> None:
        self.store = store
        self.cache: TTLCache | None = TTLCache(_MAX_ENTRIES, ttl_s) if ttl_s > 0 else None
        self.last_known: LRUCache = LRUCache(_MAX_ENTRIES)  # for while the store cannot answer

    async def find(self, key_hash: str) -> ApiKeyRecord | None:
        if self.cache is not None and (found := self.cache.get(key_hash)) is not None:
            return found
        try:
            found = await self.store.find(key_hash)
        except Unavailable:
            if (known := self.last_known.get(key_hash)) is not None:
                return known
            raise
        if found is not None and self.cache is not None:
            self.cache[key_hash] = found
        if found is not None:
            self.last_known[key_hash] = found
        else:
            self.last_known.pop(key_hash, None)
        return found

    async def close(self) -> None:
        await self.store.close()


class RememberedDataKeys:
    """Data keys for sealing and opening. While the store cannot answer (Couchbase down), a key this
    ingress has used before still seals new data (what it seals then stays unreadable if the user
    was forgotten meanwhile: nothing leaks); opening never uses such a key (503 instead)."""

    def __init__(self, keys: PersonalDataKeys, ttl_s: float) -> None:
        self.keys = keys
        self.cache: TTLCache | None = TTLCache(_MAX_ENTRIES, ttl_s) if ttl_s > 0 else None
        self.sealing: LRUCache = LRUCache(_MAX_ENTRIES)  # for while the store cannot answer

    async def get(self, account: str, user_id: str) -> bytes | None:
        if self.cache is not None and (found := self.cache.get((account, user_id))) is not None:
            return found
        found = await self.keys.get(account, user_id)
        if found is not None and self.cache is not None:
            self.cache[(account, user_id)] = found
        return found

    async def get_or_create(self, account: str, user_id: str) -> bytes:
        try:
            found = await self.get(account, user_id)
            key = found if found is not None else await self.keys.get_or_create(account, user_id)
        except Unavailable:
            if (known := self.sealing.get((account, user_id))) is not None:
                return known
            raise
        self.sealing[(account, user_id)] = key
        return key

    async def forget(self, account: str, user_id: str) -> bool:
        if self.cache is not None:
            self.cache.pop((account, user_id), None)
        self.sealing.pop((account, user_id), None)
        return await self.keys.forget(account, user_id)
