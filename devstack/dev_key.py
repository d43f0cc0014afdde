"""The development API key: one key of account `dev`, made once and kept in the git-ignored .env.

It is the one key also kept in plaintext (so that `make run` and `paystream dev where` can print it);
every other key is made with `paystream apikey create` and stored only as a hash. It belongs to the
dev stack, not to the product: a production install has no such key.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from devstack.settings import DevSettings
from paystream import bootstrap
from paystream.apikeys import key_hash, record_for
from paystream.ports import ApiKeyStore

DEV_ACCOUNT = "dev"


async def ensure_dev_key(settings: DevSettings, store: ApiKeyStore,
                         env_file: Path | None = None) -> tuple[str, bool]:
    """(the development key, whether it was just made): kept in .env, registered (hashed) in the store."""
    env_file = env_file or settings.env_file
    key = settings.dev_api_key.get_secret_value()
    created = not key
    if created:
        key = f"psk_dev_{secrets.token_urlsafe(32)}"
        existing = env_file.read_text() if env_file.exists() else ""
        separator = "" if not existing or existing.endswith("\n") else "\n"
        env_file.write_text(f"{existing}{separator}PAYSTREAM_DEV_API_KEY={key}\n")
        os.chmod(env_file, 0o600)
    if await store.find(key_hash(key)) is None:  # a fresh Redis: register it again
        await store.add(record_for(key, DEV_ACCOUNT))
    return key, created


async def dev_key(settings: DevSettings) -> tuple[str, bool]:
    """The development key, made or registered again where needed, against the settings' key store."""
    store = bootstrap.api_key_store(settings)
    try:
        return await ensure_dev_key(settings, store)
    finally:
        await store.close()


def dev_key_now(settings: DevSettings) -> tuple[str, bool]:
    return asyncio.run(dev_key(settings))
