"""Graceful degradation against the real services: a lagging or stopped store, Redis restarted or down,
Kafka down, Couchbase not answering. Never a 500; outages are structured 503s with Retry-After."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

from devstack.dev_key import DEV_ACCOUNT
from tests.api_client import DECLINING_CARD, identity
from tests.conftest import ROOT, new_api_key, paystream
from tests.kafka_probe import end_offsets


@pytest.fixture
def no_500s(pipeline, settings):
    """Fails the test if the ingress answered any 500 while it ran (from its request log, which
    outlives an ingress restart; every answer of 400 or more is logged)."""
    log = ROOT / settings.state_dir / "ingress" / "ingress.log"
    start = log.stat().st_size
    yield
    with open(log, "rb") as lines:
        lines.seek(start)
        answers = [json.loads(line) for line in lines if b'"request answered"' in line]
    assert [a for a in answers if a.get("status", 0) >= 500 and a["status"] != 503] == []


def run_ok(*args: str) -> None:
    result = paystream(*args)
    assert result.returncode == 0, f"paystream {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


async def pay(api, who: dict, amount: str = "12.34", *, start_key: str | None = None,
              post_key: str | None = None) -> tuple[dict, dict]:
    """A complete payment: (startPayment's body, postPayment's receipt)."""
    started = await api.start(who, amount, "EUR", idempotency_key=start_key)
    assert started.status == 201, started.body
    posted = await api.post(who, started.body["transaction_id"], await api.card(), amount, "EUR",
                            idempotency_key=post_key)
    assert posted.status == 201, posted.body
    return started.body, posted.body


def assert_unavailable(response) -> None:
    assert response.status == 503, (response.status, response.body)
    assert response.body["error"]["type"] == "unavailable_error" and response.body["error"]["code"]
    assert int(response.headers["Retry-After"]) >= 1


# --- read-your-writes -----------------------------------------------------------------------------------
async def test_a_status_is_never_older_than_what_its_client_was_told(api, pipeline, no_500s):
    """With the sinks stopped, the store follows nothing: every status read right after an answer must
    still say what that answer said (never 404, never an older state)."""
    run_ok("pipeline", "down", "sinks")
    try:
        stale = []
        for _ in range(10):
            who = identity()
            started = await api.start(who)
            assert started.status == 201, started.body
            told = await api.payment(who, started.body["payment_id"])
            stale += [] if (told.status, told.body.get("status")) == (200, "tokenized") else [told.body]
            posted = await api.post(who, started.body["transaction_id"], await api.card())
            assert posted.status == 201, posted.body
            told = await api.payment(who, started.body["payment_id"])
            stale += [] if (told.status, told.body.get("status"), told.body.get("receipt_id")) == \
                (200, "receipted", posted.body["receipt_id"]) else [told.body]
        who = identity()
        started = await api.start(who)
        declined = await api.post(who, started.body["transaction_id"], await api.card(DECLINING_CARD))
        assert declined.status == 402, declined.body
        told = await api.payment(who, started.body["payment_id"])
        assert (told.status, told.body["status"]) == (200, "declined"), told.body
        assert stale == []
        # Another user still learns nothing.
        assert (await api.payment(identity(), started.body["payment_id"])).status == 404
    finally:
        run_ok("pipeline", "up", "sinks")


async def test_status_reads_right_after_each_answer_under_load(api, no_500s):
    """30 payments at once, each status read the moment its answer arrives: none older than told."""
    api = api.with_key(new_api_key(f"acct-ryw-{uuid.uuid4().hex[:6]}", "1000/second"))  # a burst of 150

    async def one() -> list:
        who = identity()
        started = await api.start(who)
        first = await api.payment(who, started.body["payment_id"])
        posted = await api.post(who, started.body["transaction_id"], await api.card())
        second = await api.payment(who, started.body["payment_id"])
        return [(started.status, first.status, first.body.get("status"), posted.status, second.status,
                 second.body.get("status"))]

    rows = sum(await asyncio.gather(*(one() for _ in range(30))), [])
    assert rows == [(201, 200, "tokenized", 201, 200, "receipted")] * 30


# --- Redis --------------------------------------------------------------------------------------------
async def test_redis_restarted_then_down_payments_and_reads_go_on(api, pipeline, sandbox, no_500s):
    earlier_who = identity()
    _, earlier = await pay(api, earlier_who)

    # A restart closes every pooled connection: each is retried once on a fresh one.
    run_ok("stack", "down", "redis")
    run_ok("stack", "up", "redis")
    for _ in range(3):
        assert (await api.receipt(earlier_who, earlier["receipt_id"])).status == 200
        await pay(api, identity())

    run_ok("stack", "down", "redis")
    try:
        # Reads fall back to the Couchbase replicas.
        read = await api.receipt(earlier_who, earlier["receipt_id"])
        assert (read.status, read.headers["X-Cache"], read.body["receipt_id"]) == (200, "miss", earlier["receipt_id"])
        assert (await api.payment(earlier_who, earlier["payment_id"])).body["status"] == "receipted"

        # Writes go on, and a repeated key is still the same payment, charged once.
        who, start_key, post_key = identity(), uuid.uuid4().hex, uuid.uuid4().hex
        first = await api.start(who, idempotency_key=start_key)
        again = await api.start(who, idempotency_key=start_key)
        assert first.status == again.status == 201, (first.body, again.body)
        assert again.body["payment_id"] == first.body["payment_id"]
        method = await api.card()
        deadline = time.monotonic() + 20
        while True:
            # Without the cache, the transaction index is the sinks' copy in Couchbase: until they
            # have written it the answer is 503 (unknown yet), never 404 or 500.
            posted = await api.post(who, first.body["transaction_id"], method, idempotency_key=post_key)
            if posted.status != 503 or time.monotonic() > deadline:
                break
            assert_unavailable(posted)
            await asyncio.sleep(float(posted.headers["Retry-After"]) / 4)
        assert posted.status == 201, posted.body
        repeated = await api.post(who, first.body["transaction_id"], method, idempotency_key=post_key)
        assert (repeated.status, repeated.body["receipt_id"]) == (201, posted.body["receipt_id"])
        assert len(sandbox.succeeded_charges(first.body["payment_id"])) == 1
        assert (await api.payment(who, first.body["payment_id"])).body["status"] == "receipted"
    finally:
        run_ok("stack", "up", "redis")
    assert (await api.receipt(earlier_who, earlier["receipt_id"])).status == 200


# --- Kafka --------------------------------------------------------------------------------------------
async def test_kafka_down_is_a_503_at_once_that_writes_nothing(api, pipeline, stack, settings, no_500s):
    bootstrap, commands = stack["kafka"]["address"], settings.topics.commands
    before = end_offsets(bootstrap, commands)
    who, key = identity(), uuid.uuid4().hex
    run_ok("stack", "down", "kafka")
    try:
        refused = await api.start(who, idempotency_key=key)
        # Refused at once, before any wait for an outcome: such a wait would end in a 202 (accepted, poll
        # its Location), never in this 503 that names Kafka. (How fast is the benchmarks' business.)
        assert_unavailable(refused)
        assert refused.body["error"]["code"] == "kafka_unavailable" and "Location" not in refused.headers
    finally:
        run_ok("stack", "up", "kafka")
        run_ok("pipeline", "up")
    assert end_offsets(bootstrap, commands) == before

    deadline = time.monotonic() + 60
    retried = await api.start(who, idempotency_key=key)
    while retried.status != 201 and time.monotonic() < deadline:
        await asyncio.sleep(1)
        retried = await api.start(who, idempotency_key=key)
    assert retried.status == 201, retried.body


# --- Couchbase ----------------------------------------------------------------------------------------
def couchbase_pid() -> int:
    rows = json.loads(paystream("stack", "status", "--json").stdout)
    return next(r["pid"] for r in rows if r["service"] == "couchbase")


async def test_couchbase_not_answering_payments_go_on_and_status_comes_from_the_workers_table(
        api, pipeline, couchbase_collection, no_500s):
    who = identity()
    earlier, _ = await pay(api, who)  # this ingress now knows the user's data key
    pid = couchbase_pid()
    os.kill(pid, signal.SIGSTOP)  # every node stops answering; nothing is lost
    try:
        # The user's payments go on: the worker's table holds their state.
        started, receipt = await pay(api, who)
        status = await api.payment(who, started["payment_id"])
        assert (status.status, status.body["status"], status.body["receipt_id"]) == \
            (200, "receipted", receipt["receipt_id"])
        assert (await api.payment(who, earlier["payment_id"])).body["status"] == "receipted"
        assert (await api.payment(identity(), started["payment_id"])).status == 404
        # What needs the store itself is a 503 to retry, never a 500: a new user's data key (kept in
        # Couchbase) and opening a receipt's e-mail once the ingress's memory of the key has lapsed.
        assert_unavailable(await api.start(identity()))
        read = await api.receipt(who, receipt["receipt_id"])
        if read.status != 200:
            assert_unavailable(read)

        # An API (re)started while the store is away starts without it: status reads are answered.
        run_ok("pipeline", "down", "ingress")
        run_ok("pipeline", "up", "ingress")
        assert (await api.payment(who, started["payment_id"])).body["status"] == "receipted"
        assert_unavailable(await api.start(who))
    finally:
        os.kill(pid, signal.SIGCONT)

    # The sinks catch up once the store answers again.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            stored = couchbase_collection.get(f"payment::{started['payment_id']}").content_as[dict]
            if stored["status"] == "receipted":
                break
        except Exception:  # not there yet
            pass
        await asyncio.sleep(0.5)
    else:
        raise AssertionError("the sinks never caught up")


# --- two workers ------------------------------------------------------------------------------------------
def ready(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"{address}/ready/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def table_read(address: str, token: str, payment_id: str, user_id: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"{address}/tables/payments/{payment_id}/?account={DEV_ACCOUNT}&user_id={user_id}",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


async def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)


async def test_with_two_workers_any_worker_answers_for_every_payment(api, pipeline, settings, tmp_path, no_500s):
    """The table is split between the workers: a status read asked of either is forwarded to the one
    that holds the payment, and finds it."""
    second = f"http://{settings.ingress_host}:{settings.worker_web_port + 40}"
    env = {**os.environ, "PAYSTREAM_WORKER_WEB_PORT": str(settings.worker_web_port + 40),
           "PAYSTREAM_DATA_DIR": str(tmp_path)}
    with open(tmp_path / "worker.log", "wb") as log:
        worker = subprocess.Popen([sys.executable, "-m", "paystream.cli", "worker"], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    first = pipeline["worker"]["address"]
    token = settings.internal_token.get_secret_value()
    try:
        await wait_until(lambda: ready(second) and ready(first), 120, "two ready workers")
        payments = []
        for _ in range(12):
            who = identity()
            started, receipt = await pay(api, who)
            payments.append((who, started["payment_id"], receipt["receipt_id"]))
        for who, payment_id, receipt_id in payments:
            for address in (first, second):
                status, body = await asyncio.to_thread(table_read, address, token, payment_id, who["user_id"])
                assert (status, body.get("status"), body.get("receipt_id")) == (200, "receipted", receipt_id), body
            assert (await api.payment(who, payment_id)).body["status"] == "receipted"
        # Never another user's, whichever worker is asked.
        assert (await asyncio.to_thread(table_read, second, token, payments[0][1], "someone-else"))[0] == 404
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        await asyncio.to_thread(worker.wait, 60)
    await wait_until(lambda: ready(first), 120, "the pipeline's worker alone again")
