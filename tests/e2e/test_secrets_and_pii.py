"""Secrets and personal data: the provider's client secret reaches its client and nothing else (no topic,
no store); a user's e-mail is kept only sealed with their own key, and `paystream forget-user` deletes
that key, so every copy, including those on topics kept forever, can never be read again."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid

import pytest
import redis
from couchbase.exceptions import DocumentNotFoundException, DocumentUnretrievableException

from paystream.domain.sealing import unseal_personal
from tests.api_client import identity
from tests.conftest import paystream
from tests.kafka_probe import end_offsets, read_raw_since
from tests.waits import wait_listed


def every_topic(settings) -> list[str]:
    t = settings.topics
    return [t.commands, t.replies, t.events, t.receipts, t.dead_letters, f"{settings.worker_id}-payments-changelog"]


def redis_values(client: redis.Redis) -> list[bytes]:
    values = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            values.append(client.get(key) or b"")
        elif kind == b"hash":
            values += [k + b"=" + v for k, v in client.hgetall(key).items()]
    return values


@pytest.fixture
async def paid(api, stack, settings, couchbase_collection):
    """A user with a unique e-mail who paid once; the offsets of every topic before they did."""
    bootstrap = stack["kafka"]["address"]
    since = {topic: end_offsets(bootstrap, topic) for topic in every_topic(settings)}
    who = identity() | {"email_id": f"jane.{uuid.uuid4().hex[:10]}@example.com"}
    key = uuid.uuid4().hex
    started = await api.start(who, "6.66", "EUR")
    assert started.status == 201 and started.body["client_secret"], started.body
    method = await api.card()
    posted = await api.post(who, started.body["transaction_id"], method, "6.66", "EUR", idempotency_key=key)
    assert posted.status == 201 and posted.body["email_id"] == who["email_id"]
    await wait_listed(api, "/v1/receipts", who, 1)
    # The sinks' last writes: every document the checks read is there (polled).
    deadline = time.monotonic() + 30
    while True:
        try:
            documents(couchbase_collection, posted.body)
            break
        except DocumentNotFoundException:
            assert time.monotonic() < deadline, "the sinks did not write every document"
            await asyncio.sleep(0.2)
    return {"who": who, "since": since, "secret": started.body["client_secret"], "receipt": posted.body,
            "post_key": key, "method": method, "transaction_id": started.body["transaction_id"]}


def documents(collection, receipt: dict) -> list[bytes]:
    keys = [f"payment::{receipt['payment_id']}", f"receipt::{receipt['receipt_id']}",
            f"txn::{receipt['transaction_id']}", f"idx::payments::{receipt['account']}::{receipt['user_id']}",
            f"idx::receipts::{receipt['account']}::{receipt['user_id']}"]
    return [str(collection.get(k).content_as[dict]).encode() for k in keys]


def test_no_client_secret_and_no_plain_email_in_any_topic_or_store(paid, stack, settings, couchbase_collection):
    secret, email = paid["secret"].encode(), paid["who"]["email_id"].encode()
    bootstrap = stack["kafka"]["address"]
    for topic, since in paid["since"].items():
        for raw in read_raw_since(bootstrap, topic, since, until=10):
            assert secret not in (raw or b""), topic
            assert email not in (raw or b""), topic
    for doc in documents(couchbase_collection, paid["receipt"]):
        assert secret not in doc and email not in doc
    for value in redis_values(redis.Redis.from_url(stack["redis"]["address"])):
        assert secret not in value and email not in value


async def test_forget_user_makes_every_copy_of_the_email_unreadable(paid, api, stack, settings, couchbase_collection):
    who, receipt = paid["who"], paid["receipt"]
    key_doc = f"pii-key::{receipt['account']}::{who['user_id']}"
    data_key = base64.b64decode(couchbase_collection.get(key_doc).content_as[dict]["key"])
    # What the receipts topic keeps forever is this user's e-mail, sealed with this user's key.
    on_topic = [r for r in read_raw_since(stack["kafka"]["address"], settings.topics.receipts,
                                          paid["since"][settings.topics.receipts]) if receipt["receipt_id"].encode() in r]
    assert on_topic
    sealed = json.loads(on_topic[0])["email_id"]
    assert unseal_personal(data_key, sealed, receipt["account"], who["user_id"]) == who["email_id"]

    forgot = paystream("forget-user", "--account", receipt["account"], "--user", who["user_id"])
    assert forgot.returncode == 0, forgot.stderr
    assert "forgot" in forgot.stdout

    # The key is gone from every copy of the cluster, so nothing can open the sealed e-mail any more.
    deadline = time.monotonic() + 10
    while True:
        try:
            couchbase_collection.get_any_replica(key_doc)
        except (DocumentNotFoundException, DocumentUnretrievableException):
            break
        assert time.monotonic() < deadline, "a replica still holds the key"
        time.sleep(0.2)
    # Every read answers without the e-mail, the rest of the receipt intact (once the ingress's memory of
    # the key, PAYSTREAM_KEY_CACHE_S, has lapsed: asked until then).
    deadline = time.monotonic() + settings.key_cache_s + 15
    while (after := await api.receipt(who, receipt["receipt_id"])).body.get("email_id") is not None:
        assert time.monotonic() < deadline, "the e-mail is still opened"
        await asyncio.sleep(0.2)
    assert after.status == 200 and after.body == receipt | {"email_id": None}
    listed = await api.call("GET", "/v1/receipts", params={"user_id": who["user_id"]})
    assert listed.body["data"] == [receipt | {"email_id": None}]
    replayed = await api.post(who, paid["transaction_id"], paid["method"], "6.66", "EUR",
                              idempotency_key=paid["post_key"])
    assert replayed.status == 201 and replayed.body["email_id"] is None
    # Twice is harmless.
    assert "nothing to forget" in paystream("forget-user", "--account", receipt["account"],
                                            "--user", who["user_id"]).stdout
    # The key's record on the data-keys topic (what a lost store gets keys back from) ends in a tombstone:
    # rebuilding the store never brings a forgotten user's key back.
    rebuilt = paystream("store", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    with pytest.raises(DocumentNotFoundException):
        couchbase_collection.get(key_doc)
    assert (await api.receipt(who, receipt["receipt_id"])).body["email_id"] is None
