"""The development API key: created once, kept in the git-ignored .env file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from paystream.settings import Settings


def ensure_dev_key(settings: Settings, env_file: Path = Path(".env")) -> tuple[str, bool]:
    """(a key clients can use, whether it was just created)."""
    if settings.api_key_set:
        return sorted(settings.api_key_set)[0], False
    key = f"psk_dev_{secrets.token_urlsafe(24)}"
    existing = env_file.read_text() if env_file.exists() else ""
    separator = "" if not existing or existing.endswith("\n") else "\n"
    env_file.write_text(f"{existing}{separator}PAYSTREAM_API_KEYS={key}\n")
    os.chmod(env_file, 0o600)
    return key, True
