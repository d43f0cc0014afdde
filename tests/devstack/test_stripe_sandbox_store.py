"""The Stripe sandbox's store, as `stack up` runs it: listings read the index by kind and still show
every object of that kind (a charge's refunds only its own), and the periodic save (written by a
forked child) keeps what the sandbox served even when the process is killed before its last save."""

from __future__ import annotations

import os
import pickle
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from devstack.bench.sandbox_growth import KEY, free_port, pay, start, stop


@pytest.fixture
def sandbox(tmp_path: Path):
    port = free_port()
    running = {"process": start(tmp_path, port)}
    yield tmp_path, port, running
    if running["process"].poll() is None:
        stop(running["process"])


def saved_as_succeeded(state: Path, intents: list[str]) -> bool:
    try:
        store = pickle.loads(state.read_bytes())
    except (FileNotFoundError, EOFError, pickle.UnpicklingError):
        return False
    return all(getattr(store.get(f"payment_intent:{i}"), "status", None) == "succeeded" for i in intents)


async def get(http: aiohttp.ClientSession, path: str) -> dict:
    async with http.get(path) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_listings_show_every_object_of_their_kind_and_a_charge_only_its_refunds(sandbox):
    _, port, _ = sandbox
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"}) as http:
        made = [await pay(http, n) for n in range(5)]
        async with http.post("/v1/refunds", data={"payment_intent": made[0], "amount": "50"}) as response:
            assert response.status == 200, await response.text()
        intents = await get(http, "/v1/payment_intents?limit=100")
        assert intents["total_count"] == 5
        assert {intent["id"] for intent in intents["data"]} == set(made)
        charges = {charge["payment_intent"]: charge for charge in (await get(http, "/v1/charges?limit=100"))["data"]}
        assert charges[made[0]]["refunds"]["total_count"] == 1
        assert charges[made[0]]["amount_refunded"] == 50
        assert all(charges[intent]["refunds"]["total_count"] == 0 for intent in made[1:])
        assert (await get(http, "/v1/payment_intents?limit=2"))["has_more"] is True


async def test_the_background_save_keeps_payments_when_the_process_is_killed(sandbox):
    folder, port, running = sandbox
    state = folder / "localstripe.pickle"
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"}) as http:
        made = [await pay(http, n) for n in range(3)]
    deadline = time.monotonic() + 15
    while not saved_as_succeeded(state, made):  # the save after the last payment, within a second or two
        assert time.monotonic() < deadline, "the sandbox did not save its payments"
        time.sleep(0.1)
    os.kill(running["process"].pid, signal.SIGKILL)  # no last save: only the background one counts
    running["process"].wait(timeout=10)

    running["process"] = start(folder, port)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"}) as http:
        kept = await get(http, "/v1/payment_intents?limit=100")
        assert {intent["id"] for intent in kept["data"]} == set(made)
        assert (await get(http, f"/v1/payment_intents/{made[-1]}"))["status"] == "succeeded"
