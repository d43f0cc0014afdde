"""A worker hung or killed with SIGKILL mid-payment is back without a command, loses nothing and
charges nothing twice."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request
import uuid

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.api_client import identity
from tests.kafka_probe import uncommitted
from tests.pipeline_procs import wait_gone, wait_restarted, worker_pid


async def test_worker_killed_after_start_and_before_post(api, pipeline, sandbox):
    who = identity()
    started = await api.start(who, "15.00", "EUR")
    assert started.status == 201, started.body
    payment_id = started.body["payment_id"]

    # The worker hangs (SIGSTOP: supervisord sees nothing to restart). The command waits in Kafka,
    # and the client is told where to look.
    pid = worker_pid()
    os.kill(pid, signal.SIGSTOP)
    key = uuid.uuid4().hex
    method = await api.card()
    newcomer = identity()
    pending, new = await asyncio.gather(
        api.post(who, started.body["transaction_id"], method, "15.00", "EUR", idempotency_key=key),
        api.start(newcomer, "3.00", "EUR"))
    assert pending.status == 202, pending.body
    assert pending.headers["Location"] == f"/v1/payments/{payment_id}?user_id={who['user_id']}"
    assert pending.headers["Retry-After"] == "1"
    # A new payment the pipeline has not seen yet reads as what its client was told, never 404.
    assert new.status == 202, new.body
    told = await api.payment(newcomer, new.body["payment_id"])
    assert (told.status, told.body["status"], told.body["amount"]) == (200, "processing", "3.00"), told.body
    assert (await api.payment(identity(), new.body["payment_id"])).status == 404

    # Killed, the worker is started again by supervisord: no command.
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    await asyncio.to_thread(wait_restarted, "worker", pid)
    deadline = time.monotonic() + 60
    while (await api.payment(newcomer, new.body["payment_id"])).body.get("status") != "tokenized":
        assert time.monotonic() < deadline, "the new payment never reached the worker"
        await asyncio.sleep(0.2)

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

    charges = sandbox.succeeded_charges(started.body["payment_id"])
    assert [c["amount"] for c in charges] == [1500]


# --- recovery by id, whatever the provider's history -------------------------------------------------
PROVIDER_HISTORY = 3_000


async def ensure_provider_history(sandbox, at_least: int) -> int:
    """Top the sandbox up to `at_least` payment intents (kept across runs: made once per stack)."""
    missing = at_least - sandbox.intent_count()
    if missing > 0:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {sandbox.key}"}) as http:
            async def make(n: int) -> None:
                async with http.post(f"{sandbox.base}/v1/payment_intents", data={
                        "amount": str(100 + n % 900), "currency": "eur",
                        "metadata[payment_id]": f"pay_history_{uuid.uuid4().hex[:16]}"}) as resp:
                    assert resp.status == 200, await resp.text()

            for first in range(0, missing, 50):
                await asyncio.gather(*(make(n) for n in range(first, min(first + 50, missing))))
    return sandbox.intent_count()


def provider_calls(worker_address: str) -> dict[str, int]:
    """Provider calls the (restarted) worker made, by operation, from its own metrics."""
    with urllib.request.urlopen(f"{worker_address}/metrics", timeout=5) as response:
        text = response.read().decode()
    calls = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "paystream_provider_request_duration_seconds_count" and sample.value:
                calls[sample.labels["operation"]] = int(sample.value)
    return calls


async def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_a_worker_killed_mid_charge_recovers_by_id_whatever_the_providers_history(api, pipeline, sandbox,
                                                                                       settings):
    """The sandbox holds thousands of intents. The worker dies after the provider charged but before
    it heard so; the restarted worker settles the payment with one look-up by the recorded id."""
    assert await ensure_provider_history(sandbox, PROVIDER_HISTORY) >= PROVIDER_HISTORY
    who = identity()
    started = await api.start(who, "21.00", "EUR")
    assert started.status == 201, started.body
    intent_id, payment_id = started.body["transaction_id"], started.body["payment_id"]
    method, key = await api.card(), uuid.uuid4().hex
    # Every command before this payment's post committed (Faust commits every few seconds): the restarted
    # worker then replays only the post, and what it asks the provider is this payment's alone.
    await wait_for(lambda: uncommitted(settings.kafka_bootstrap, settings.worker_id, settings.topics.commands) == 0,
                   30, "the worker's commits")

    # The confirm takes effect at the sandbox, but its answer is held: the worker is mid-charge.
    sandbox.hold_answers("/confirm", hold_s=60)
    posting = asyncio.create_task(api.post(who, intent_id, method, "21.00", "EUR", idempotency_key=key))
    try:
        await wait_for(lambda: sandbox.intent(intent_id)["status"] == "succeeded", 30, "the charge at the sandbox")
        pid = worker_pid()
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
    finally:
        sandbox.clear_faults()

    await asyncio.to_thread(wait_restarted, "worker", pid)  # supervisord's doing: no command
    first_answer = await posting
    assert first_answer.status in (201, 202), first_answer.body

    status = await api.payment(who, payment_id)
    deadline = time.monotonic() + 60
    while status.body.get("status") != "receipted" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        status = await api.payment(who, payment_id)
    assert status.body["status"] == "receipted", status.body

    # One charge, and the restarted worker settled it with one look-up by the recorded id: no
    # listing, so the cost does not grow with the history. (A start replayed after the restart,
    # if its offset was not committed before the kill, asks for its session's secret, by id too.)
    assert [(c["amount"], c["on"]) for c in sandbox.succeeded_charges(payment_id)] == [(2100, intent_id)]
    calls = provider_calls(pipeline["worker"]["address"])
    assert calls.get("retrieve_intent") == 1 and set(calls) <= {"retrieve_intent", "session_secret"}, calls
    assert calls.get("session_secret", 0) <= 1, calls
    again = await api.post(who, intent_id, method, "21.00", "EUR", idempotency_key=key)
    assert again.status == 201 and again.body["receipt_id"] == status.body["receipt_id"]
