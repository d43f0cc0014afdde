"""Each user's data key, kept where a lost store cannot take it along.

A data key is the one thing in the store that is not derived from the topics:
lose it and every e-mail sealed with it is unreadable, as if the user had been
forgotten. So every key is also written to the compacted data-keys topic before
anything is sealed with it, and a store that comes back empty gets its keys back
from there (paystream/rebuild.py) like every other document.

- The store decides which key a user has: the first insert wins when two
  ingress processes race, and only that key is ever written to the topic, so
  the topic's latest record for a user is always the store's key.
- A key is marked journaled in the store once the topic has it. One that is
  not (its maker died between the two writes) is journaled by whoever uses it
  next, before sealing anything with it.
- A user without a key gets a new one only when the store holds its history
  (its markers are there). On a store that came back empty and is not rebuilt
  yet, a missing key may be a lost one: making a new one would orphan
  everything sealed with the old, so the answer is `Unavailable` (503, retry)
  for the few seconds until the sinks have put the keys back.
- Forgetting writes the tombstone first, then deletes the stored key: a
  rebuild can never bring a forgotten user's key back.

Only ports here; no I/O of its own.
"""

from __future__ import annotations

from paystream.domain.errors import Unavailable
from paystream.domain.sealing import new_data_key
from paystream.ports import DataKeyJournal, DataKeyStore


class JournaledDataKeys:
    """The PersonalDataKeys port: the store for lookups, the data-keys topic for durability."""

    def __init__(self, store: DataKeyStore, journal: DataKeyJournal) -> None:
        self.store = store
        self.journal = journal

    async def get(self, account: str, user_id: str) -> bytes | None:
        """The user's key once it is on the topic. One that is not has sealed nothing (it is handed
        out only once journaled), so it is not theirs yet: the next `get_or_create` journals it."""
        stored = await self.store.data_key(account, user_id)
        return stored.key if stored and stored.journaled else None

    async def get_or_create(self, account: str, user_id: str) -> bytes:
        stored = await self.store.data_key(account, user_id)
        if stored is None:
            if not await self.store.holds_history():
                raise Unavailable("store_rebuilding", "the document store is being rebuilt from the log; "
                                  "retry shortly")
            stored = await self.store.insert_data_key(account, user_id, new_data_key())
        if not stored.journaled:
            await self.journal.record(account, user_id, stored.key)
            await self.store.mark_journaled(account, user_id)
        return stored.key

    async def forget(self, account: str, user_id: str) -> bool:
        await self.journal.record(account, user_id, None)
        return await self.store.remove_data_key(account, user_id)
