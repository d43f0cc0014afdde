"""The one timestamp format paystream writes: ISO 8601 in UTC with a Z."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now(timespec: str = "milliseconds") -> str:
    """'2026-11-25T21:48:46.317Z'."""
    return datetime.now(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
