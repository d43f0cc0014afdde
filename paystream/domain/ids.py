"""Ids derived rather than drawn at random, so a repeated request or a replayed step
can only ever name the same payment, command or receipt."""

from __future__ import annotations

import hashlib
import uuid


def derived_id(prefix: str, scoped_key: str | None) -> str:
    """The same (client-scoped) idempotency key always names the same object; no key, a fresh one."""
    if scoped_key is None:
        return f"{prefix}_{uuid.uuid4().hex[:24]}"
    return f"{prefix}_{hashlib.sha256(scoped_key.encode()).hexdigest()[:24]}"


def receipt_id_for(payment_id: str) -> str:
    return "rcpt_" + hashlib.sha256(f"receipt:{payment_id}".encode()).hexdigest()[:24]
