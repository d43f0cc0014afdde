"""Reconciliation with the provider on the real stack: a clean run reports zeros; differences made on
purpose (a charge straight at the sandbox, a receipt written without a charge, a charge of another
amount) are each reported in their class, by `paystream reconcile` and by the monitor (metrics, an
alert on the alerts topic, the status page). Each difference is made consistent again afterwards."""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta

import aiohttp
from aiokafka import AIOKafkaProducer

from devstack.dev_key import DEV_ACCOUNT
from paystream import messages
from paystream.domain.ids import receipt_id_for
from paystream.domain.records import Receipt
from tests.api_client import identity
from tests.conftest import paystream
from tests.kafka_probe import end_offsets, read_since

ZEROS = {"charged_not_receipted": 0, "receipted_not_charged": 0, "amount_mismatch": 0, "charged_twice": 0,
         "refund_mismatch": 0, "refund_pending": 0, "refunded_amount_mismatch": 0}


def moment() -> str:
    return (datetime.now(UTC) - timedelta(seconds=1)).isoformat()


def reconcile(since: str) -> tuple[int, dict]:
    """`paystream reconcile` as an operator runs it, judging every payment however recent."""
    result = paystream("reconcile", "--since", since, "--settle", "0", "--json")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout)


def mine(report: dict, payment_id: str) -> list[str]:
    return sorted(d["kind"] for d in report["differences"] if d["payment_id"] == payment_id)


async def charge_at_the_sandbox(api, sandbox, intent_id: str, amount_minor: int | None = None) -> str:
    """What someone with the provider's dashboard could do: charge a paystream intent behind its back."""
    if amount_minor is not None:
        sandbox.call("POST", f"/v1/payment_intents/{intent_id}", amount=amount_minor)
    confirmed = sandbox.attach_and_confirm(intent_id, await api.card())
    assert confirmed["status"] == "succeeded", confirmed
    return confirmed["latest_charge"]["id"]


def refund(sandbox, charge_id: str) -> None:
    sandbox.call("POST", "/v1/refunds", charge=charge_id)


async def test_a_clean_run_reports_zeros(api):
    since = moment()
    for _ in range(3):
        who = identity()
        started = await api.start(who)
        posted = await api.post(who, started.body["transaction_id"], await api.card())
        assert posted.status == 201, posted.body
    status, report = reconcile(since)
    assert (status, report["counts"], report["differences"]) == (0, ZEROS, [])
    assert report["payments"] >= 3 and report["receipts"] >= 3 and report["provider_look_ups"] >= 3


async def test_a_charge_made_straight_at_the_sandbox_is_charged_not_receipted(api, sandbox):
    since, who = moment(), identity()
    started = await api.start(who)
    charge = await charge_at_the_sandbox(api, sandbox, started.body["transaction_id"])
    try:
        status, report = reconcile(since)
        assert status == 1
        assert mine(report, started.body["payment_id"]) == ["charged_not_receipted"]
        assert report["counts"] == {**ZEROS, "charged_not_receipted": 1}
    finally:
        refund(sandbox, charge)
    # Refunded: the provider no longer holds money paystream has no receipt for.
    assert mine(reconcile(since)[1], started.body["payment_id"]) == []


async def test_a_charge_of_another_amount_is_reported_in_its_class(api, sandbox):
    since, who = moment(), identity()
    started = await api.start(who, "12.34", "EUR")
    charge = await charge_at_the_sandbox(api, sandbox, started.body["transaction_id"], amount_minor=5000)
    try:
        status, report = reconcile(since)
        assert status == 1
        assert mine(report, started.body["payment_id"]) == ["amount_mismatch", "charged_not_receipted"]
    finally:
        refund(sandbox, charge)


async def test_a_receipt_written_without_a_charge_is_receipted_not_charged(api, sandbox, stack, settings):
    since, who = moment(), identity()
    started = await api.start(who, "12.34", "EUR")
    body = started.body
    receipt = Receipt(receipt_id=receipt_id_for(body["payment_id"]), payment_id=body["payment_id"],
                      transaction_id=body["transaction_id"], account=DEV_ACCOUNT, user_id=who["user_id"],
                      email_id=None,
                      payment_type="credit", amount="12.34", amount_minor=1234, currency="EUR",
                      created_at=body["created_at"], paid_at=body["updated_at"], issued_at=body["updated_at"])
    producer = AIOKafkaProducer(bootstrap_servers=stack["kafka"]["address"], acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(settings.topics.receipts, key=receipt.receipt_id.encode(),
                                     value=messages.encode(receipt))
    finally:
        await producer.stop()
    status, report = reconcile(since)
    assert status == 1
    assert mine(report, body["payment_id"]) == ["receipted_not_charged"]
    # Made consistent: the receipt's charge taken after all (same amount), so the stack stays clean.
    await charge_at_the_sandbox(api, sandbox, body["transaction_id"])
    status, report = reconcile(since)
    assert mine(report, body["payment_id"]) == []


async def test_the_monitor_counts_alerts_and_shows_differences(api, sandbox, pipeline, stack, settings):
    who = identity()
    started = await api.start(who)
    alerts_before = end_offsets(stack["kafka"]["address"], settings.topics.alerts)
    charge = await charge_at_the_sandbox(api, sandbox, started.body["transaction_id"])
    monitor = pipeline["monitor"]["address"]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{monitor}/api/reconciliation", params={"settle_s": "0"}) as resp:
                assert resp.status == 200, await resp.text()
                report = await resp.json()
            assert mine(report, started.body["payment_id"]) == ["charged_not_receipted"]
            async with http.get(f"{monitor}/metrics") as resp:
                metrics = await resp.text()
            async with http.get(f"{monitor}/api/status") as resp:
                status = await resp.json()
        counted = report["counts"]["charged_not_receipted"]
        assert f'paystream_reconciliation_differences{{kind="charged_not_receipted"}} {float(counted)}' in metrics
        assert status["reconciliation"]["state"] == "differences"

        alerts = await asyncio.to_thread(read_since, stack["kafka"]["address"], settings.topics.alerts,
                                         alerts_before, 15, None)
        mine_alerts = [a for a in alerts if a["subject"] == "reconciliation" and a["state"] == "differences"]
        assert mine_alerts and f"charged_not_receipted={counted}" in mine_alerts[-1]["reason"]

        html = await asyncio.to_thread(page_dom, monitor)
        assert f'data-kind="charged_not_receipted" data-count="{counted}"' in html
    finally:
        refund(sandbox, charge)


def page_dom(monitor: str) -> str:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--virtual-time-budget=5000", "--dump-dom"]
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(["chromium", *flags, f"--user-data-dir={profile}", monitor + "/"],
                              capture_output=True, text=True, timeout=120).stdout
