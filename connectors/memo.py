"""A short in-process memory in front of two lookups every request makes: the API key's record and
the user's data key. One ingress answers thousands of reads a second; without it each would cost
two more round trips. The price is a bound: a revoked key, or a forgotten user's key, may still be
used by an ingress for up to `ttl_s` (PAYSTREAM_KEY_CACHE_S, 1 s by default; 0 turns this off).

cachetools' TTLCache keeps the entries; only found records are kept, so an unknown key is asked
of the store every time.
"""

from __future__ import annotations

from cachetools import TTLCache

from paystream.ports import ApiKeyRecord, ApiKeyStore, PersonalDataKeys

_MAX_ENTRIES = 100_000


class RememberedApiKeys:
    def __init__(self, store: ApiKeyStore, ttl_s: float) -> None:
        self.store = store
        self.cache: TTLCache | None = TTLCache(_MAX_ENTRIES, ttl_s) if ttl_s > 0 else None

    async def find(self, key_hash: str) -> ApiKeyRecord | None:
        if self.cache is not None and (found := self.cache.get(key_hash)) is not None:
            return found
        found = await self.store.find(key_hash)
        if found is not None and self.cache is not None:
            self.cache[key_hash] = found
        return found

    async def close(self) -> None:
        await self.store.close()


class RememberedDataKeys:
    def __init__(self, keys: PersonalDataKeys, ttl_s: float) -> None:
        self.keys = keys
        self.cache: TTLCache | None = TTLCache(_MAX_ENTRIES, ttl_s) if ttl_s > 0 else None

    async def get(self, account: str, user_id: str) -> bytes | None:
        if self.cache is not None and (found := self.cache.get((account, user_id))) is not None:
            return found
        found = await self.keys.get(account, user_id)
        if found is not None and self.cache is not None:
            self.cache[(account, user_id)] = found
        return found

    async def get_or_create(self, account: str, user_id: str) -> bytes:
        found = await self.get(account, user_id)
        return found if found is not None else await self.keys.get_or_create(account, user_id)

    async def forget(self, account: str, user_id: str) -> bool:
        if self.cache is not None:
            self.cache.pop((account, user_id), None)
        return await self.keys.forget(account, user_id)
