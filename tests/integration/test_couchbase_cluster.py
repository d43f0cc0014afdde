"""The Couchbase cluster through the official SDK: one active copy and two replicas."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.options import ClusterOptions

from devstack.stack.couchbase_cluster import CouchbaseCluster


@pytest.fixture(scope="module")
def bucket(stack, settings):
    cluster = Cluster(
        stack["couchbase"]["address"],
        ClusterOptions(PasswordAuthenticator(
            settings.couchbase_username, settings.couchbase_password.get_secret_value())),
    )
    cluster.wait_until_ready(timedelta(seconds=15))
    yield cluster, cluster.bucket(settings.couchbase_bucket)
    cluster.close()


def test_cluster_reports_three_nodes_and_two_replicas(bucket, settings):
    cluster, _ = bucket
    assert CouchbaseCluster(settings).topology() == {"nodes": 3, "replicas": 2}
    assert cluster.buckets().get_bucket(settings.couchbase_bucket).num_replicas == 2


def test_write_on_active_then_read_from_a_replica(bucket):
    _, b = bucket
    collection = b.default_collection()
    key = f"test::{uuid.uuid4()}"
    doc = {"user_id": "u1", "amount": "12.34", "currency": "EUR"}
    collection.upsert(key, doc)

    # Replicas are eventually consistent: the copy lands a few ms after the write.
    deadline = time.monotonic() + 5
    while True:
        try:
            replica = collection.get_any_replica(key)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert replica.content_as[dict] == doc

    # Every copy lands (polled: the replicas are eventually consistent).
    deadline = time.monotonic() + 5
    while len(copies := [c for c in collection.get_all_replicas(key) if c.content_as[dict] == doc]) < 3:
        assert time.monotonic() < deadline, copies
        time.sleep(0.05)
    assert len(copies) == 3
    assert sorted(c.is_replica for c in copies) == [False, True, True]
    assert all(c.content_as[dict] == doc for c in copies)
