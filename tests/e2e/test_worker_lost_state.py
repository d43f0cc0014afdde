"""A worker that lost its local RocksDB state (a new disk) restores its table from the changelog in bulk
before Faust starts, and carries on its payments where they were."""

from __future__ import annotations

import asyncio
import json
import shutil
import time

import aiohttp

from tests.api_client import identity
from tests.conftest import paystream


def _restores_logged(settings) -> list[dict]:
    log = settings.state_dir / "worker" / "worker.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return [json.loads(line) for line in lines
            if line.startswith("{") and "payments table restored from its changelog" in line]


async def test_a_worker_without_its_local_table_restores_it_and_goes_on(api, pipeline, settings, sandbox):
    who = identity()
    started = await api.start(who, "21.00", "EUR")
    assert started.status == 201, started.body
    payment_id, transaction_id = started.body["payment_id"], started.body["transaction_id"]

    down = paystream("pipeline", "down", "worker")
    assert down.returncode == 0, down.stderr
    restores_before = len(_restores_logged(settings))
    shutil.rmtree(settings.pipeline_data_dir / settings.worker_id)
    up = paystream("pipeline", "up", "worker", timeout=300)
    assert up.returncode == 0, up.stdout + up.stderr

    restores = _restores_logged(settings)[restores_before:]
    assert len(restores) == 1, "the worker did not restore its table in bulk"
    assert restores[0]["records"] >= 2  # at least this payment's started and tokenized versions

    # The table holds the payment as it was (the worker's own page reads only its table).
    token = settings.internal_token.get_secret_value()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(f"http://{settings.ingress_host}:{settings.worker_web_port}/tables/payments/"
                            f"{payment_id}/", params={"account": "dev", "user_id": who["user_id"]}) as resp:
            assert resp.status == 200, await resp.text()
            held = await resp.json()
    assert (held["status"], held["transaction_id"]) == ("tokenized", transaction_id)

    # And it goes on from there: posted, receipted, charged once.
    posted = await api.post(who, transaction_id, await api.card(), "21.00", "EUR")
    assert posted.status in (200, 201, 202), posted.body
    deadline = time.monotonic() + 60
    status = await api.payment(who, payment_id)
    while status.body.get("status") != "receipted" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        status = await api.payment(who, payment_id)
    assert status.body["status"] == "receipted", status.body
    assert len(sandbox.succeeded_charges(payment_id)) == 1
