"""The pipeline's processes as `paystream pipeline status` reports them, and waiting on them."""

from __future__ import annotations

import json
import time
from pathlib import Path

from tests.conftest import paystream


def pipeline_rows() -> dict[str, dict]:
    return {r["service"]: r for r in json.loads(paystream("pipeline", "status", "--json").stdout)}


def pid_of(name: str) -> int | None:
    return pipeline_rows()[name]["pid"]


def worker_pid() -> int:
    return pid_of("worker")


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still running")


def wait_restarted(name: str, old_pid: int, timeout: float = 90.0) -> dict:
    """Poll (never start) until `name` runs again under a new pid and answers its probe."""
    deadline = time.monotonic() + timeout
    row = {}
    while time.monotonic() < deadline:
        row = pipeline_rows()[name]
        if row["pid"] and row["pid"] != old_pid and row["healthy"]:
            return row
        time.sleep(0.25)
    raise AssertionError(f"{name} was not back within {timeout:.0f} s: {row}")
