"""Fixtures for tests that run against the real local stack.

Services are found through `paystream stack status --json`, never by guessing
ports. The session starts the stack when it is not up (idempotent).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from paystream.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PAYSTREAM = [sys.executable, "-m", "paystream.cli"]


def paystream(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the `paystream` CLI as a user would, from the repo root."""
    return subprocess.run(
        [*PAYSTREAM, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="session")
def stack() -> dict[str, dict]:
    up = paystream("stack", "up")
    assert up.returncode == 0, f"stack up failed:\n{up.stdout}\n{up.stderr}"
    status = paystream("stack", "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    return {row["service"]: row for row in json.loads(status.stdout)}


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()
