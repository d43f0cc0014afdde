"""A worker killed with SIGKILL mid-payment is back without a command, loses nothing and charges
nothing twice."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

from tests.api_client import identity
from tests.pipeline_procs import wait_gone, wait_restarted, worker_pid


async def test_worker_killed_after_start_and_before_post(api, pipeline, sandbox):
    who = identity()
    started = await api.start(who, "15.00", "EUR")
    assert started.status == 201, started.body
    payment_id = started.body["payment_id"]

    pid = worker_pid()
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)

    # While the worker is down the command waits in Kafka; supervisord starts the worker again
    # (no command), which answers within the reply timeout or the client is told where to look.
    key = uuid.uuid4().hex
    method = await api.card()
    pending = await api.post(who, started.body["transaction_id"], method, "15.00", "EUR", idempotency_key=key)
    assert pending.status in (201, 202), pending.body
    if pending.status == 202:
        assert pending.headers["Location"] == f"/payments/{payment_id}"
    await asyncio.to_thread(wait_restarted, "worker", pid)

    deadline = time.monotonic() + 60
    status = await api.payment(who, payment_id)
    while status.body.get("status") != "receipted" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        status = await api.payment(who, payment_id)
    assert status.body["status"] == "receipted", status.body

    # The client repeats its request with the same key and gets the receipt.
    again = await api.post(who, started.body["transaction_id"], method, "15.00", "EUR", idempotency_key=key)
    assert again.status == 201, again.body
    assert again.body["receipt_id"] == status.body["receipt_id"]

    charges = sandbox.charges_for(started.body["transaction_id"])
    assert [(c["amount"], c["status"]) for c in charges] == [(1500, "succeeded")]
