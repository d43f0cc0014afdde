"""Ids: derived rather than drawn at random where a repeat must name the same object,
and checked against one strict charset so that keys built from them never collide.

Every id a client gives us (user, transaction, payment method, account) and every
id we make matches `ID_PATTERN`: letters, digits, `_` and `-`. Store keys join
ids with `:` (Redis) or `::` (Couchbase), which no id can contain, so two different
objects can never share one key.
"""

from __future__ import annotations

import hashlib
import re
import uuid

ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
ACCOUNT_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_ID = re.compile(ID_PATTERN)


def derived_id(prefix: str, scoped_key: str | None) -> str:
    """The same (account-scoped) idempotency key always names the same object; no key, a fresh one."""
    if scoped_key is None:
        return f"{prefix}_{uuid.uuid4().hex[:24]}"
    return f"{prefix}_{hashlib.sha256(scoped_key.encode()).hexdigest()[:24]}"


def receipt_id_for(payment_id: str) -> str:
    return "rcpt_" + hashlib.sha256(f"receipt:{payment_id}".encode()).hexdigest()[:24]


def store_key(*parts: str, separator: str = ":") -> str:
    """`part:part:…`, refusing any part outside the id charset (so no part can hold a separator)."""
    for part in parts:
        if not isinstance(part, str) or not _ID.fullmatch(part):
            raise ValueError(f"not a valid id for a store key: {part!r}")
    return separator.join(parts)
