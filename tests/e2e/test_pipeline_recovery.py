"""A worker killed with SIGKILL mid-payment loses nothing and charges nothing twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from pathlib import Path

from tests.api_client import identity
from tests.conftest import paystream


def worker_pid() -> int:
    rows = json.loads(paystream("pipeline", "status", "--json").stdout)
    return next(r["pid"] for r in rows if r["service"] == "worker")


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
    raise AssertionError(f"worker {pid} still running")


async def test_worker_killed_after_start_and_before_post(api, pipeline, sandbox):
    who = identity()
    started = await api.start(who, "15.00", "EUR")
    assert started.status == 201, started.body
    payment_id = started.body["payment_id"]

    pid = worker_pid()
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)

    # With no worker the command waits in Kafka, and the client is told where to look.
    key = uuid.uuid4().hex
    method = await api.card()
    pending = await api.post(who, started.body["transaction_id"], method, "15.00", "EUR", idempotency_key=key)
    assert pending.status == 202, pending.body
    assert pending.headers["Location"] == f"/v1/payments/{payment_id}?user_id={who['user_id']}"
    assert pending.headers["Retry-After"] == "1"

    restarted = await asyncio.to_thread(paystream, "pipeline", "up", "worker")
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert worker_pid() != pid

    # The Location works as given.
    deadline = time.monotonic() + 60
    status = await api.call("GET", pending.headers["Location"])
    while status.body.get("status") != "receipted" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        status = await api.call("GET", pending.headers["Location"])
    assert status.body["status"] == "receipted", status.body

    # The client repeats its request with the same key and gets the receipt.
    again = await api.post(who, started.body["transaction_id"], method, "15.00", "EUR", idempotency_key=key)
    assert again.status == 201, again.body
    assert again.body["receipt_id"] == status.body["receipt_id"]

    charges = sandbox.charges_for(started.body["transaction_id"])
    assert [(c["amount"], c["status"]) for c in charges] == [(1500, "succeeded")]
