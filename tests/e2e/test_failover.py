"""Replica promotion: a node of the local cluster failed over under load. Its ports close, the
bucket's map no longer names it, writes and replica reads go on, and no payment is lost."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request

import pytest
from couchbase.exceptions import CouchbaseException

from devstack.chaos.client import RetryingClient
from tests.conftest import paystream


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
    await asyncio.sleep(3)
    failed = await asyncio.to_thread(paystream, "stack", "failover", "couchbase")
    assert failed.returncode == 0, failed.stderr
    gone = next(n for n in nodes() if n["state"] == "failed_over")
    failed_over_at = time.monotonic()
    survivor = next(n for n in nodes() if n["state"] == "active")

    # Its listeners are closed and the bucket's map is over the others only: every vbucket still
    # has an active copy (a promoted replica), none on the failed node.
    assert refuses(gone["kv_port"]) and refuses(gone["mgmt_port"])
    vbmap = bucket_map(settings, survivor["mgmt_port"])
    assert f"127.0.0.1:{gone['kv_port']}" not in vbmap["serverList"]
    assert len(vbmap["serverList"]) == settings.couchbase_nodes - 1
    assert all(chain[0] >= 0 for chain in vbmap["vBucketMap"])

    reads_before = replica_reads["ok"]
    await asyncio.sleep(8)  # payments and replica reads with the node out
    reads_while_out = replica_reads["ok"] - reads_before
    made_while_out = [t for t in outcomes if t.done() and t.result().status == "receipted"]

    recovered = await asyncio.to_thread(paystream, "stack", "recover", "couchbase")
    assert recovered.returncode == 0, recovered.stderr
    assert all(n["state"] == "active" for n in nodes())
    await asyncio.sleep(3)
    stop.set()
    await asyncio.gather(*tasks)
    results = await asyncio.gather(*outcomes)

    assert time.monotonic() - failed_over_at > 8
    assert made_while_out, "no payment completed while the node was out"
    assert reads_while_out > 0, replica_reads
    lost = [r for r in results if r.status != "receipted"]
    assert lost == [], lost[:3]
    for outcome in results:
        assert all(await client.readable(outcome)), outcome
        # By id: listing the sandbox's every charge would take seconds per call once it holds thousands.
        intent = sandbox.call("GET", f"/v1/payment_intents/{outcome.transaction_id}")
        assert [c["status"] for c in intent["charges"]["data"]] == ["succeeded"], outcome
