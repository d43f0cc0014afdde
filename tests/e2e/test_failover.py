"""Replica promotion: a node of the local cluster failed over under load. Its ports close, the
bucket's map no longer names it, writes and replica reads go on, and no payment is lost."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request

import pytest
from couchbase.exceptions import CouchbaseException

from devstack.chaos.client import RetryingClient
from tests.conftest import paystream
from tests.waits import until


def nodes() -> list[dict]:
    result = paystream("stack", "status", "couchbase", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    from devstack.settings import DevSettings
    from devstack.stack.couchbase_cluster import CouchbaseCluster

    return CouchbaseCluster(DevSettings()).nodes()


def bucket_map(settings, mgmt_port: int) -> dict:
    import base64

    token = base64.b64encode(f"{settings.couchbase_username}:{settings.couchbase_password.get_secret_value()}"
                             .encode()).decode()
    request = urllib.request.Request(f"http://127.0.0.1:{mgmt_port}/pools/default/buckets/{settings.couchbase_bucket}",
                                     headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)["vBucketServerMap"]


def refuses(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
async def client(pipeline, api_key, settings):
    retrying = RetryingClient(pipeline["ingress"]["address"], api_key, settings.stripe_api_base,
                              settings.stripe_api_key.get_secret_value(), deadline_s=90)
    yield retrying
    await retrying.close()


async def test_a_failed_over_node_loses_no_payment_and_reads_go_on(client, couchbase_collection, settings, sandbox):
    before = [n for n in nodes() if n["state"] == "active"]
    assert len(before) == settings.couchbase_nodes
    stop = asyncio.Event()
    outcomes, replica_reads = [], {"ok": 0, "failed": 0}

    async def load():
        while not stop.is_set():
            outcomes.append(asyncio.create_task(client.pay()))
            await asyncio.sleep(0.25)

    async def read_replicas():
        # The design's read databases: receipts read from any copy while the node is out.
        while not stop.is_set():
            done = [t.result() for t in outcomes if t.done() and t.result().receipt_id]
            for outcome in done[-10:]:
                try:
                    await asyncio.to_thread(couchbase_collection.get_any_replica, f"receipt::{outcome.receipt_id}")
                    replica_reads["ok"] += 1
                except CouchbaseException:
                    replica_reads["failed"] += 1
            await asyncio.sleep(0.5)

    tasks = [asyncio.create_task(load()), asyncio.create_task(read_replicas())]
    assert await until(lambda: receipted(outcomes), 60), "no payment completed before the failover"
    failed = await asyncio.to_thread(paystream, "stack", "failover", "couchbase")
    assert failed.returncode == 0, failed.stderr
    gone = next(n for n in nodes() if n["state"] == "failed_over")
    survivor = next(n for n in nodes() if n["state"] == "active")

    # Its listeners are closed and the bucket's map is over the others only: every vbucket still
    # has an active copy (a promoted replica), none on the failed node.
    assert refuses(gone["kv_port"]) and refuses(gone["mgmt_port"])
    vbmap = bucket_map(settings, survivor["mgmt_port"])
    assert f"127.0.0.1:{gone['kv_port']}" not in vbmap["serverList"]
    assert len(vbmap["serverList"]) == settings.couchbase_nodes - 1
    assert all(chain[0] >= 0 for chain in vbmap["vBucketMap"])

    # Payments begun after the failover complete, and replica reads go on, while the node is out.
    begun_after, reads_before = len(outcomes), replica_reads["ok"]
    assert await until(lambda: len(receipted(outcomes[begun_after:])) >= 5 and replica_reads["ok"] > reads_before,
                       90), ("no payment begun with the node out completed, or no replica read", replica_reads)
    assert [n["state"] for n in nodes() if n["id"] == gone["id"]] == ["failed_over"]

    recovered = await asyncio.to_thread(paystream, "stack", "recover", "couchbase")
    assert recovered.returncode == 0, recovered.stderr
    assert all(n["state"] == "active" for n in nodes())
    begun_back = len(outcomes)
    assert await until(lambda: receipted(outcomes[begun_back:]), 60), "no payment completed after the recovery"
    stop.set()
    await asyncio.gather(*tasks)
    results = await asyncio.gather(*outcomes)

    lost = [r for r in results if r.status != "receipted"]
    assert lost == [], lost[:3]
    # Charged once each: succeeded charges over every provider object carrying the payment's id.
    charges = sandbox.charges_of_payments([r.payment_id for r in results])
    for outcome in results:
        assert all(await client.readable(outcome)), outcome
        succeeded = [c for c in charges[outcome.payment_id] if c["status"] == "succeeded"]
        assert len(succeeded) == 1, (outcome.payment_id, charges[outcome.payment_id])


def receipted(tasks: list) -> list:
    return [t for t in tasks if t.done() and t.result().status == "receipted"]

