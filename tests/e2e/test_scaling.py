"""HAProxy in front of several ingress processes, and `paystream scale` at runtime: requests are
spread, an ingress killed under load costs no payment its client retries, and scaling out and in
under load charges every payment exactly once (the sandbox's own records)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import time
import urllib.error
import urllib.request

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.chaos.client import RetryingClient
from devstack.stack import instances
from devstack.stack.balancer import Balancer
from tests.conftest import new_api_key, paystream
from tests.pipeline_procs import pipeline_rows, wait_restarted
from tests.waits import until


def run_ok(*args: str, env: dict[str, str] | None = None) -> None:
    result = paystream(*args, env=env)
    assert result.returncode == 0, f"paystream {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def balancer(pipeline, settings) -> Balancer:
    """Two ingress processes behind the balancer, one worker, one sinks; put back as found after."""
    before = instances.counts(settings)
    run_ok("scale", "ingress=2", "worker=1", "sinks=1")
    yield Balancer(settings)
    run_ok("scale", *(f"{kind}={count}" for kind, count in before.items()))


def answered(balancer: Balancer) -> dict[str, int]:
    """2xx answers each ingress gave through the balancer so far."""
    return {name: int(row["hrsp_2xx"] or 0) for name, row in balancer.servers().items()}


def wait_all_up(balancer: Balancer, names: set[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while {n for n, row in balancer.servers().items() if row["status"] == "UP"} < names:
        assert time.monotonic() < deadline, balancer.servers()
        time.sleep(0.2)


@pytest.fixture
async def payer(balancer, stack, settings):
    """A careful client (same Idempotency-Key on every retry) that talks to the balancer."""
    client = RetryingClient(balancer.address, new_api_key("scaling"), stack["stripe"]["address"],
                            settings.stripe_api_key.get_secret_value(), deadline_s=120)
    yield client
    await client.close()


async def pay_steadily(payer: RetryingClient, stop: asyncio.Event, concurrency: int = 4) -> list:
    """Payments from `concurrency` clients, one after another each, until `stop` is set."""
    async def one_client() -> list:
        done = []
        while not stop.is_set():
            done.append(await payer.pay())
        return done

    return [o for outcomes in await asyncio.gather(*(one_client() for _ in range(concurrency))) for o in outcomes]


def assert_each_charged_once(outcomes: list, sandbox) -> None:
    assert outcomes
    assert [(o.user_id, o.status, o.failure_reason) for o in outcomes if o.status != "receipted"] == []
    # Over every provider object carrying the payment's id, not only the ones paystream named.
    charges = sandbox.charges_of_payments([o.payment_id for o in outcomes])
    for outcome in outcomes:
        succeeded = [c["id"] for c in charges[outcome.payment_id] if c["status"] == "succeeded"]
        assert len(succeeded) == 1, (outcome.payment_id, charges[outcome.payment_id])


def test_the_balancer_spreads_requests_over_every_ingress_over_http_and_https(balancer, settings):
    wait_all_up(balancer, {"ingress", "ingress-2"})
    before = answered(balancer)
    context = ssl.create_default_context(cafile=str(balancer.certificate_path))
    for _ in range(10):
        with urllib.request.urlopen(f"{balancer.address}/health", timeout=5) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"{balancer.https_address}/health", timeout=5, context=context) as resp:
            assert resp.status == 200
    after = answered(balancer)
    # Spread: each of the two answered some of the 20, and together all of them. (Not exactly half each:
    # HAProxy's round robin runs per thread, and a server back from a restart re-enters it mid-turn.)
    got = {name: after[name] - before.get(name, 0) for name in ("ingress", "ingress-2")}
    assert all(n > 0 for n in got.values()) and sum(got.values()) == 20, got
    # The API itself answers on the public address, with its structured errors.
    request = urllib.request.Request(f"{balancer.https_address}/v1/getReceipt?receipt_id=x&user_id=y")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5, context=context)
    assert refused.value.code == 401


def test_with_no_ingress_in_rotation_the_balancer_answers_a_json_503_with_retry_after(balancer):
    """HAProxy's own answer is the API's error shape, not its HTML page (devstack/stack/haproxy_errors.py)."""
    names = set(balancer.servers())
    for name in names:
        balancer.set_state(name, "maint")
    try:
        request = urllib.request.Request(f"{balancer.address}/v1/getReceipt?receipt_id=rcpt_x")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        answer = info.value
        assert answer.code == 503 and answer.headers["Retry-After"] == "1"
        assert answer.headers["Content-Type"] == "application/json"
        error = json.loads(answer.read())["error"]
        assert (error["type"], error["code"]) == ("unavailable_error", "no_ingress_available")
    finally:
        for name in names:
            balancer.set_state(name, "ready")
        wait_all_up(balancer, names)


def test_every_instance_has_a_status_row_and_a_monitor_entry(balancer, settings):
    rows = pipeline_rows()
    assert {"ingress", "ingress-2"} <= set(rows) and all(rows[n]["healthy"] for n in ("ingress", "ingress-2"))
    status = paystream("stack", "status", "balancer")
    assert status.returncode == 0 and "balancer" in status.stdout
    deadline = time.monotonic() + 20
    wanted = {f"ingress@{os.uname().nodename}:{settings.ingress_instance_port(n)}" for n in (1, 2)}
    while True:
        with urllib.request.urlopen(f"http://{settings.monitor_host}:{settings.monitor_port}/api/status") as r:
            ids = {c["id"] for c in json.load(r)["components"] if c["state"] == "up"}
        if wanted <= ids:
            break
        assert time.monotonic() < deadline, ids
        time.sleep(0.5)


async def test_a_killed_ingress_loses_no_retried_payment_and_leaves_the_balancer(balancer, payer, sandbox, settings):
    wait_all_up(balancer, {"ingress", "ingress-2"})
    stop = asyncio.Event()
    load = asyncio.create_task(pay_steadily(payer, stop))
    assert await until(lambda: answered(balancer)["ingress-2"] > 0, 30), "ingress-2 answered nothing before the kill"
    victim = pipeline_rows()["ingress-2"]["pid"]
    os.kill(victim, signal.SIGKILL)
    # Out of rotation: the balancer's checks see it gone (2 failures in a row, one interval apart). How soon
    # is the balancer's setting, not this test's to time.
    assert await until(lambda: balancer.servers()["ingress-2"]["status"] != "UP", 30, every_s=0.05), \
        "the balancer kept a killed ingress in rotation"
    # supervisord starts it again; the balancer's checks bring it back, and it answers again.
    await asyncio.to_thread(wait_restarted, "ingress-2", victim)
    await asyncio.to_thread(wait_all_up, balancer, {"ingress", "ingress-2"})
    back = answered(balancer)["ingress-2"]
    assert await until(lambda: answered(balancer)["ingress-2"] > back, 30), "ingress-2 answers nothing once back"
    stop.set()
    outcomes = await load
    assert_each_charged_once(outcomes, sandbox)


def worker_transitions(port: int, host: str) -> float:
    """How many payment state changes a worker has made: more than none once it handles commands."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "paystream_payment_transitions_total")


def worker_partitions(port: int, host: str) -> set[int]:
    """The command partitions a worker reports lag for: those it was assigned."""
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {int(s.labels["partition"]) for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "paystream_consumer_lag" and s.labels.get("component") == "worker"}


async def test_scaling_out_and_in_under_load_charges_every_payment_once(balancer, payer, sandbox, settings):
    stop = asyncio.Event()
    load = asyncio.create_task(pay_steadily(payer, stop))
    assert await until(lambda: sum(answered(balancer).values()) > 0, 30), "no answer before scaling"
    staying = {name: row["pid"] for name, row in pipeline_rows().items()}
    # Run from another environment than `pipeline up` was (as the autoscaler is): still, the
    # processes that stay are left alone.
    await asyncio.to_thread(run_ok, "scale", "ingress=3", "worker=2", env={"PAYSTREAM_AUTOSCALE_SUSTAIN": "7"})
    await asyncio.to_thread(wait_all_up, balancer, {"ingress", "ingress-2", "ingress-3"})
    # The second worker takes part of the partitions over; the third ingress gets requests.
    deadline = time.monotonic() + 60
    while not worker_partitions(settings.worker_instance_port(2), settings.ingress_host):
        assert time.monotonic() < deadline, "the second worker was given no partition"
        await asyncio.sleep(1)
    assert await until(lambda: answered(balancer)["ingress-3"] > 0, 30), "the third ingress answered nothing"
    # The second worker handles commands before it is scaled in. (Scaled in within seconds of joining, before
    # its first command, a worker was seen to leave a start command of its partition unhandled: a known
    # defect, in the closing note of this change, that this test does not cover.)
    assert await until(lambda: worker_transitions(settings.worker_instance_port(2), settings.ingress_host) > 0, 30), \
        "the second worker handled no command"
    await asyncio.to_thread(run_ok, "scale", "ingress=2", "worker=1")
    assert set(balancer.servers()) == {"ingress", "ingress-2"}
    assert {"ingress-3", "worker-2"}.isdisjoint(pipeline_rows())
    assert {name: row["pid"] for name, row in pipeline_rows().items()} == staying
    # Payments go on over the two that stay.
    after_in = sum(answered(balancer).values())
    assert await until(lambda: sum(answered(balancer).values()) > after_in + 10, 30), "no answer after scaling in"
    stop.set()
    outcomes = await load
    assert_each_charged_once(outcomes, sandbox)
    # No request failed on the way (drained, not cut): no 5xx, no broken connection.
    assert {answer: n for o in outcomes for answer, n in o.answers.items() if failed(answer)} == {}


def failed(answer: str) -> bool:
    """An answer the client counted ("startPayment 201", "payments ClientOSError") that is a failure of ours."""
    operation, _, code = answer.rpartition(" ")
    return not operation.startswith("provider") and (not code.isdigit() or code.startswith("5"))


def test_scale_refuses_what_cannot_run(balancer, settings):
    too_many = paystream("scale", f"worker={settings.payment_topic_partitions + 1}")
    assert too_many.returncode == 1 and "choose 1 to" in too_many.stderr
    nonsense = paystream("scale", "ingres=2")
    assert nonsense.returncode == 1 and "KIND=N" in nonsense.stderr
    assert instances.counts(settings)["ingress"] == 2


async def test_https_answers_with_the_development_certificate(balancer):
    context = ssl.create_default_context(cafile=str(balancer.certificate_path))
    async with aiohttp.ClientSession() as http, http.get(f"{balancer.https_address}/health", ssl=context) as resp:
        assert resp.status == 200 and (await resp.json()) == {"status": "ok"}
    # Not trusted without it: it is a development certificate, not a public one.
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(f"{balancer.https_address}/health")
