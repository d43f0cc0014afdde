"""Heartbeats, /health, alerts, metrics, correlated logs and the status page, on real processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api_client import pay
from tests.conftest import ROOT
from tests.kafka_probe import end_offsets, read_since
from tests.pipeline_procs import wait_gone, wait_restarted, worker_pid
from tests.waits import all_up, wait_for


@pytest.fixture
async def monitor(pipeline):
    base = pipeline["monitor"]["address"]
    async with aiohttp.ClientSession() as http:
        async def get(path: str) -> tuple[int, dict | str]:
            async with http.get(base + path) as resp:
                body = await resp.json() if resp.content_type == "application/json" else await resp.text()
                return resp.status, body

        yield get


def metric_values(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def scrape(url: str) -> dict:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        return metric_values(await resp.text())


async def test_health_reports_every_component_and_service_up(monitor, settings):
    body = await wait_for(lambda: all_up(monitor), timeout=20)
    assert body is not None, "not every component reported up"
    assert body["overall"] == "up"
    services = {s["name"]: s for s in body["services"]}
    assert {"kafka", "redis", "provider"} <= set(services)
    assert len([n for n in services if n.startswith("couchbase node")]) == settings.couchbase_nodes
    assert all(s["state"] == "up" for s in services.values())
    worker = next(c for c in body["components"] if c["kind"] == "worker")
    assert worker["pid"] == worker_pid()
    assert worker["rss_bytes"] > 0 and worker["uptime_s"] > 0 and worker["consumer_lag"] is not None


def monitor_changes(settings) -> list[dict]:
    log = (ROOT / settings.state_dir / "monitor" / "monitor.log").read_text().splitlines()
    return [json.loads(line) for line in log if '"state changed"' in line]


async def test_silent_worker_is_reported_down_then_up_again(monitor, stack, settings):
    """A process that stops beating (frozen with SIGSTOP: alive, so nothing restarts it) is down
    within three intervals, and up when its beats resume."""
    assert await wait_for(lambda: all_up(monitor), timeout=20)
    alerts_before = end_offsets(stack["kafka"]["address"], settings.topics.alerts)
    pid = worker_pid()

    os.kill(pid, signal.SIGSTOP)
    try:
        async def worker_down():
            status, body = await monitor("/health")
            states = {c["kind"]: c["state"] for c in body["components"]}
            return status == 503 and states.get("worker") == "down"

        # Down once three intervals pass without a beat (how soon exactly is not this test's to time).
        assert await wait_for(worker_down, timeout=3 * settings.heartbeat_interval_s + 15, every=0.1)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert await wait_for(lambda: all_up(monitor), timeout=30)
    assert worker_pid() == pid

    alerts = [a for a in read_since(stack["kafka"]["address"], settings.topics.alerts, alerts_before)
              if a["kind"] == "worker"]
    assert [a["state"] for a in alerts][:2] == ["down", "up"], alerts
    subject = alerts[0]["subject"]
    changes = monitor_changes(settings)
    assert any(c["subject"] == subject and c["state"] == "down" for c in changes)
    assert any(c["subject"] == subject and c["state"] == "up" for c in changes)


async def test_killed_worker_is_back_without_a_command_and_its_restart_reported(monitor, stack, settings):
    assert await wait_for(lambda: all_up(monitor), timeout=20)
    alerts_before = end_offsets(stack["kafka"]["address"], settings.topics.alerts)
    pid = worker_pid()

    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    row = await asyncio.to_thread(wait_restarted, "worker", pid)

    async def restart_reported():
        alerts = [a for a in read_since(stack["kafka"]["address"], settings.topics.alerts, alerts_before, until=1)
                  if a["kind"] == "worker" and a["state"] in ("restarted", "crash_loop")]
        return alerts or None

    (alert, *_) = await wait_for(restart_reported, timeout=30, every=0.5)
    assert f"pid {pid} after" in alert["reason"] and f"-> pid {row['pid']}" in alert["reason"], alert
    assert any(c["subject"] == alert["subject"] and c["state"] == alert["state"] for c in monitor_changes(settings))
    assert await wait_for(lambda: all_up(monitor), timeout=30)


async def test_metrics_parse_and_count_payments(api, pipeline, settings):
    urls = {name: f"{pipeline[name]['address']}/metrics" for name in ("ingress", "worker", "sinks", "monitor")}
    before = {name: await scrape(url) for name, url in urls.items()}
    n = 5
    await pay(api, n)
    after: dict = {}

    def delta(component: str, name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[component].get(key, 0) - before[component].get(key, 0)

    async def caught_up() -> bool:
        # The sinks write after the client has its answer, and the monitor counts beats as they come.
        after.update({name: await scrape(url) for name, url in urls.items()})
        return delta("sinks", "paystream_couchbase_write_duration_seconds_count", document="receipt") >= n and \
            delta("monitor", "paystream_heartbeats_received_total", kind="worker") > 0

    assert await wait_for(caught_up, timeout=30, every=0.5)

    assert delta("ingress", "paystream_http_requests_total", endpoint="startPayment", status="201") == n
    assert delta("ingress", "paystream_http_requests_total", endpoint="postPayment", status="201") == n
    assert delta("ingress", "paystream_http_request_duration_seconds_count", endpoint="postPayment") == n
    assert delta("worker", "paystream_payment_transitions_total", to="receipted") == n
    assert delta("worker", "paystream_payment_transitions_total", to="started") == n
    assert delta("worker", "paystream_provider_request_duration_seconds_count", operation="confirm") == n
    assert delta("sinks", "paystream_couchbase_write_duration_seconds_count", document="receipt") == n
    assert delta("monitor", "paystream_heartbeats_received_total", kind="worker") > 0
    assert any(name == "paystream_consumer_lag" for name, _ in after["worker"])


async def test_one_payment_id_finds_its_lines_in_every_log(api, settings):
    (receipt,) = await pay(api, 1)
    payment_id = receipt["payment_id"]

    def log_of(component: str) -> list[str]:
        return (ROOT / settings.state_dir / component / f"{component}.log").read_text().splitlines()

    def lines_of(component: str) -> list[dict]:
        return [json.loads(line) for line in log_of(component) if payment_id in line]

    async def every_log_names_it() -> bool:  # the sinks write (and log) after the client has its answer
        return all(lines_of(component) for component in ("ingress", "worker", "sinks"))

    await wait_for(every_log_names_it, timeout=30)
    for component in ("ingress", "worker", "sinks"):
        mine = lines_of(component)
        assert mine, f"no {component} log line names {payment_id}"
        assert all(entry["payment_id"] == payment_id for entry in mine if "payment_id" in entry)
        assert all(entry["component"] == component for entry in mine)
        text = "\n".join(log_of(component))
        assert "jane.doe@example.com" not in text, f"{component} log shows an e-mail address"


async def test_windowed_charts_follow_the_payments(api, monitor):
    since = datetime.now(UTC).replace(second=0, microsecond=0).isoformat().replace("+00:00", "Z")

    def receipted(body: dict) -> tuple[int, Decimal]:
        """Receipts and EUR taken in the minutes from `since` on, as the status page charts them."""
        charts = body["analytics"]
        recent = [i for i, t in enumerate(charts.get("t", [])) if t >= since]
        count = sum(charts.get("by_status", {}).get("receipted", [0] * len(charts.get("t", [])))[i] for i in recent)
        eur = charts.get("volume", {}).get("EUR")
        return count, sum((Decimal(eur[i]) for i in recent), Decimal(0)) if eur else Decimal(0)

    _, before = await monitor("/api/status")
    await pay(api, 2)

    async def charted():
        _, body = await monitor("/api/status")
        count, minor = receipted(body)
        # Other payments may land in the same hour; these two at least must show, with their 4.20 EUR each.
        return body if count >= receipted(before)[0] + 2 and minor >= receipted(before)[1] + Decimal("8.40") else None

    body = await wait_for(charted, timeout=60, every=1)
    assert body, f"the monitor's windowed charts did not follow: {body}"
    assert body["analytics"]["error"] is None
    minutes = len(body["analytics"]["t"])  # the last hour, the current minute included
    assert minutes >= 60 and all(len(v) == minutes for v in body["analytics"]["by_status"].values())


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1800", "--virtual-time-budget=8000"]


async def chromium(url: str, *action: str) -> subprocess.CompletedProcess:
    """Debian's chromium, headless, with a profile of its own: `--dump-dom` or `--screenshot=<file>`."""
    assert shutil.which("chromium"), "Debian's chromium is missing: `make test` installs it (make browser)"
    with tempfile.TemporaryDirectory() as profile:
        return await asyncio.to_thread(subprocess.run, ["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                                        *action, url], capture_output=True, encoding="utf-8",
                                      errors="replace", timeout=120)


def chart_card(html: str, chart: str) -> str:
    """The markup of one chart card of the dumped page, from its opening tag to its canvas."""
    found = re.search(rf'<div [^>]*id="{chart}"[^>]*>.*?</canvas>', html, re.S)
    assert found, f"no {chart} on the page"
    return found.group(0)


def chart_points(html: str, chart: str) -> int:
    return int(re.search(r'data-points="(\d+)"', chart_card(html, chart)).group(1))


def chart_legend(html: str, chart: str) -> dict[str, str]:
    """Each line's name and the last value its legend shows."""
    return dict(re.findall(r'data-line="([^"]+)".*?class="legend-value">([^<]*)<', chart_card(html, chart), re.S))


def component_row(html: str, component_id: str) -> str:
    found = re.search(rf'<tr [^>]*data-component-id="{re.escape(component_id)}"[^>]*>.*?</tr>', html, re.S)
    assert found, f"no row for {component_id}"
    return found.group(0)


async def test_status_page_in_headless_chromium(api, pipeline, monitor, settings):
    from devstack.stack import instances

    # What the dev stack was told to run (`paystream scale` keeps it), and one analytics process.
    expected = {**instances.counts(settings), "analytics": 1}

    async def payments_charted():
        await pay(api, 2)
        await asyncio.sleep(1)
        _, body = await monitor("/api/status")
        series = body["series"]
        counted = {kind: values[-1] for kind, values in series["instances"].items() if values}
        return body if (any(series["payments_per_s"]) and any(series["requests_per_s"])
                        and counted == expected) else None

    body = await wait_for(payments_charted, timeout=40, every=0)
    assert body, f"payments, requests or {expected} instances not in the monitor's series"
    up = {kind: sum(1 for c in body["components"] if c["kind"] == kind and c["state"] == "up") for kind in expected}
    assert up == expected, body["components"]

    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    shot = out / "status-page.png"
    shot.unlink(missing_ok=True)
    url = pipeline["monitor"]["address"] + "/"
    dom = await chromium(url, "--dump-dom")
    await chromium(url, f"--screenshot={shot}")
    html = dom.stdout
    assert 'data-loaded="true"' in html, dom.stderr[-2000:]
    for component in body["components"]:
        row = component_row(html, component["id"])
        assert f'data-overloaded="{str(component["state"] == "up" and component["overloaded"]).lower()}"' in row
    for chart in ("chart-payments", "chart-requests", "chart-instances", "chart-status-minute", "chart-volume-minute"):
        assert chart_points(html, chart) > 0, chart
    # The page draws the counts the monitor's JSON has (nothing was scaled meanwhile).
    assert chart_legend(html, "chart-instances") == {kind: str(n) for kind, n in expected.items()}
    assert shot.exists() and shot.stat().st_size > 10_000


async def test_status_page_shows_an_overloaded_component_and_instance_counts():
    """A render test, not an integration one: the page's own files, in headless Chromium, fed a known
    /api/status by a server of the test's own. A real overload takes a 10 s episode of a saturated
    process (the verdict itself is unit-tested in tests/unit/test_monitor_overload.py); this checks
    what the page makes of the verdict and of the series."""
    from aiohttp import web

    from monitor.app import STATIC

    now = time.time()
    t = [datetime.fromtimestamp(now - 4 + 2 * i, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
         for i in range(3)]
    reason = "5xx 31.0% of answers, p99 0.012 s, saturation 4% over 30 s"

    def component(cid: str, kind: str, state: str, overloaded: bool) -> dict:
        return {"id": cid, "kind": kind, "state": state, "host": "127.0.0.1", "pid": 1, "last_beat": t[-1],
                "seconds_since_beat": 0.5, "uptime_s": 60.0, "rss_bytes": 1 << 26, "cpu_percent": 50.0,
                "open_connections": 3, "in_flight": 1, "consumer_lag": None, "verdict": "healthy",
                "overloaded": overloaded, "overload_reason": reason if overloaded else None}

    status = {
        "overall": "down", "generated_at": t[-1], "heartbeat_interval_s": 2.0,
        "components": [component("ingress@127.0.0.1:8081", "ingress", "up", True),
                       component("ingress@127.0.0.1:8082", "ingress", "up", False),
                       # Down outranks overloaded: a process that does not beat is not merely slow.
                       component("sinks@127.0.0.1:6067", "sinks", "down", True),
                       component("worker@127.0.0.1:6066", "worker", "up", False)],
        "services": [{"name": "kafka", "state": "up", "detail": "ok"}],
        "reconciliation": None,
        "series": {"t": t, "payments_per_s": [0.0, 1.5, 2.0], "requests_per_s": [0.0, 120.0, 240.5],
                   "latency_ms": {"p50": [1.0, 2.0, 3.0], "p90": [2.0, 3.0, 4.0], "p99": [3.0, 4.0, 5.0]},
                   "consumer_lag": [0, 1, 0], "cache_hit_ratio": [None, 0.9, 1.0],
                   "instances": {"ingress": [1, 2, 2], "worker": [1, 1, 1], "sinks": [1, 1, 0],
                                 "analytics": [1, 0, 1]}},
        "analytics": {"t": [], "by_status": {}, "volume": {}, "error": None},
    }

    async def api_status(request: web.Request) -> web.Response:
        return web.json_response(status)

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/api/status", api_status)
    app.router.add_static("/static/", STATIC)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        dom = await chromium(f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/", "--dump-dom")
    finally:
        await runner.cleanup()
    html = dom.stdout
    assert 'data-loaded="true"' in html, dom.stderr[-2000:]

    overloaded = component_row(html, "ingress@127.0.0.1:8081")
    assert 'data-overloaded="true"' in overloaded and "state-overloaded" in overloaded
    assert re.search(rf'class="badge badge-overloaded" title="{re.escape(reason)}">OVERLOADED<', overloaded)
    assert ">UP<" in component_row(html, "ingress@127.0.0.1:8082")
    down = component_row(html, "sinks@127.0.0.1:6067")
    assert 'data-overloaded="false"' in down and ">DOWN<" in down and "OVERLOADED" not in down
    summary = re.search(r'id="overall-summary"[^>]*>([^<]*)<', html).group(1)
    assert summary == "3/4 components up \u00b7 1/1 services up \u00b7 1 overloaded", summary

    # Four step lines of three samples each, the last counts in the legend; the rate as the headline.
    assert chart_points(html, "chart-instances") == 12
    assert chart_legend(html, "chart-instances") == {"ingress": "2", "worker": "1", "sinks": "0", "analytics": "1"}
    assert chart_points(html, "chart-requests") == 3
    assert re.search(r'class="chart-value">240.5 /s<', chart_card(html, "chart-requests"))


async def test_the_monitor_scrapes_only_the_components_it_knows(monitor, stack, settings):
    """Anyone who can write to Kafka can send a heartbeat; the URL it names is never fetched."""
    from aiohttp import web
    from kafka import KafkaProducer

    from paystream import messages
    from paystream.messages import Heartbeat

    hits: list[str] = []

    async def bait(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="paystream_payment_transitions_total{to=\"receipted\"} 1\n")

    app = web.Application()
    app.router.add_get("/metrics", bait)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # any free port: not one paystream's settings name
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    producer = KafkaProducer(bootstrap_servers=stack["kafka"]["address"], acks="all")
    component = f"worker@intruder:{port}"
    try:
        for n in range(int(4 * settings.heartbeat_interval_s / 0.5)):
            beat = Heartbeat(component_id=component, kind="worker", host="intruder", pid=1, at="2026-11-26T00:00:00Z",
                             uptime_s=n, rss_bytes=1, cpu_percent=0.0, open_connections=0,
                             metrics_url=f"http://127.0.0.1:{port}/metrics")
            producer.send(settings.topics.heartbeats, key=component.encode(), value=messages.encode(beat))
            producer.flush()
            await asyncio.sleep(0.5)
        _, status = await monitor("/api/status")
        assert component in {c["id"] for c in status["components"]}  # its beats were read...
        assert hits == []  # ...and its URL never fetched
    finally:
        stopping = beat.model_copy(update={"state": "stopping"})
        producer.send(settings.topics.heartbeats, key=component.encode(), value=messages.encode(stopping))
        producer.flush()
        producer.close()
        await runner.cleanup()
