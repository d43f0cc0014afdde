"""API keys: every key belongs to an account; paystream keeps only the key's SHA-256.

A key is 32 random bytes (`psk_…`), so a plain SHA-256 is enough to look it up
and nothing to brute-force. `create` shows the key once. (The dev stack's
development key, kept in plaintext in .env, is devstack/dev_key.py's.)
"""

from __future__ import annotations

import hashlib
import re
import secrets

from paystream.clock import utc_now
from paystream.domain.ids import ACCOUNT_PATTERN
from paystream.ports import ApiKeyRecord, ApiKeyStore


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def record_for(key: str, account: str, rate_limit: str | None = None) -> ApiKeyRecord:
    digest = key_hash(key)
    return ApiKeyRecord(key_id=f"key_{digest[:16]}", key_hash=digest, account=account, created_at=utc_now(),
                        prefix=key[:12], rate_limit=rate_limit)


async def create(store: ApiKeyStore, account: str, rate_limit: str | None = None) -> tuple[str, ApiKeyRecord]:
    """A new key for `account`: (the key, to show once; what is stored)."""
    if not re.fullmatch(ACCOUNT_PATTERN, account):
        raise ValueError("an account name is 1 to 64 letters, digits, '_' or '-'")
    if rate_limit is not None:
        from limits import parse

        parse(rate_limit)  # refuse a limit the ingress could not read
    key = f"psk_{secrets.token_urlsafe(32)}"
    record = record_for(key, account, rate_limit)
    await store.add(record)
    return key, record
