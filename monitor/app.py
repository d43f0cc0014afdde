"""The monitor service: consumes heartbeats, probes the outside systems, scrapes
the components' metrics, publishes state changes on the alerts topic, and
serves /health, /metrics, /api/status and the status page."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import Counter, Gauge

from monitor import overload
from monitor.probes import ProbeResult, Probes
from monitor.reconciliation.watch import ReconciliationWatch
from monitor.sampler import Sampler, flatten
from monitor.state import SCALED_KINDS, Change, Components, Series, counter_delta
from paystream import bootstrap, messages, tuning
from paystream.clock import utc_now
from paystream.messages import Alert
from paystream.observability import metrics
from paystream.observability.heartbeat import HeartbeatSource, publish_forever
from paystream.observability.logs import get_logger
from paystream.settings import Settings
from tables.analytics import charts as analytics

log = get_logger("paystream.monitor")
STATIC = Path(__file__).parent / "static"

COMPONENT_UP = Gauge("paystream_component_up", "1 while a component's heartbeats arrive.", ["component", "kind"])
SERVICE_UP = Gauge("paystream_service_up", "1 while the monitor's probe of a service succeeds.", ["service"])
RESTARTS = Counter("paystream_component_restarts", "Restarts seen in a component's heartbeats (new pid or uptime).",
                   ["component", "kind"])
BEATS = Counter("paystream_heartbeats_received", "Heartbeats received.", ["kind"])
OVERLOADED = Gauge("paystream_component_overloaded", "1 while the monitor judges a component overloaded "
                   "(monitor/overload.py).", ["component"])


class Monitor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.components = Components(settings.heartbeat_interval_s, settings.missed_beats_down,
                                     settings.crash_loop_restarts, settings.crash_loop_window_s)
        self.series = Series()
        self.sampler = Sampler()
        self.overload = overload.OverloadRule()
        #: monotonic time of each component's last metrics page that answered
        self.answered_at: dict[str, float] = {}
        self.dead_letters_seen: dict[str, float] = {}
        self.services: dict[str, tuple[bool, str]] = {}
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.tasks: list[asyncio.Task] = []
        self.http: aiohttp.ClientSession | None = None
        self.probes: Probes | None = None
        self.reconciliation: ReconciliationWatch | None = None
        #: The windowed charts, as last read from a worker (or why they could not be).
        self.analytics: dict = {"error": "not read yet"}

    # --- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        await asyncio.to_thread(bootstrap.ensure_topics, self.settings)
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        self.probes = Probes(self.settings, self.http)
        # aiokafka clients belong to the running loop: made here, not in __init__.
        self.producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap, acks="all")
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, group_id=None,
                                         enable_auto_commit=False, auto_offset_reset="latest")
        await self.producer.start()
        await self.consumer.start()
        topic = self.settings.topics.heartbeats
        partitions = await self.producer.partitions_for(topic)
        self.consumer.assign([TopicPartition(topic, p) for p in partitions])
        await self.consumer.seek_to_end()
        source = HeartbeatSource("monitor", self.settings.monitor_port,
                                 f"http://{self.settings.monitor_host}:{self.settings.monitor_port}/metrics")
        self.reconciliation = ReconciliationWatch(self.settings, self._announce)
        self.tasks = [
            asyncio.create_task(self._consume_beats(), name="beats"),
            asyncio.create_task(self._sample_forever(), name="sampler"),
            asyncio.create_task(self._expire_forever(), name="expiry"),
            asyncio.create_task(self._analytics_forever(), name="analytics"),
            asyncio.create_task(publish_forever(source, self._send_beat, self.settings.heartbeat_interval_s)),
        ]
        if self.settings.reconcile_interval_s > 0:
            self.tasks.append(asyncio.create_task(self.reconciliation.forever(), name="reconciliation"))

    async def stop(self) -> None:
        for task in reversed(self.tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.consumer.stop()
        await self.producer.stop()
        await self.probes.close()
        await self.reconciliation.close()
        await self.http.close()

    async def _send_beat(self, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(self.settings.topics.heartbeats, key=key, value=value)

    # --- heartbeats ----------------------------------------------------------------
    async def _consume_beats(self) -> None:
        async for message in self.consumer:
            try:
                beat = messages.decode("heartbeats", message.value)
            except messages.UnreadableMessage as exc:
                # A beat is a signal, not data: a bad one is logged, and the next one counts.
                log.warning("unreadable heartbeat", offset=message.offset, error=exc.error)
                continue
            change = self.components.beat(beat, time.monotonic())
            BEATS.labels(beat.kind).inc()
            if change is not None:
                if change.state in ("restarted", "crash_loop"):
                    RESTARTS.labels(change.subject, change.kind).inc()
                if change.state == "stopped":
                    with contextlib.suppress(KeyError):
                        COMPONENT_UP.remove(change.subject, change.kind)
                await self._announce(change)

    # --- sampling ------------------------------------------------------------------
    async def _sample_forever(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            now = time.monotonic()
            try:
                await self._sample(now - last)
            except Exception as exc:  # a bad sample must not stop the monitor
                log.exception("sample failed", error=repr(exc))
            last = now

    async def _expire_forever(self) -> None:
        # Checked four times an interval, so "down" is said within a quarter
        # interval of the third missed beat, not a whole sample later.
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s / 4)
            now = time.monotonic()
            answering = frozenset(cid for cid, at in self.answered_at.items()
                                  if now - at <= self.components.timeout)
            for change in self.components.expire(now, answering):
                COMPONENT_UP.labels(change.subject, change.kind).set(0)
                await self._announce(change)

    async def _sample(self, dt: float) -> None:
        results = await self.probes.run_all()
        # A service no longer reported (a node failed over, out of the cluster's list) is down.
        reported = {r.name for r in results}
        results += [ProbeResult(name, False, "no longer in the cluster's node list (failed over or removed)")
                    for name in self.services if name not in reported and name.startswith("couchbase node")]
        for gone in set(self.services) - {r.name for r in results}:
            # A check that no longer applies (the whole cluster unknown, once its nodes answer again).
            ok, _ = self.services.pop(gone)
            with contextlib.suppress(KeyError):
                SERVICE_UP.remove(gone)
            if not ok:
                await self._announce(Change(gone, "service", "down", "up", "answers again"))
        for result in results:
            previous = self.services.get(result.name)
            self.services[result.name] = (result.ok, result.detail)
            SERVICE_UP.labels(result.name).set(1 if result.ok else 0)
            if previous is None or previous[0] != result.ok:
                await self._announce(Change(result.name, "service", None if previous is None else
                                            ("up" if previous[0] else "down"), "up" if result.ok else "down",
                                            result.detail))
        up = [c for c in self.components.by_id.values() if c.state == "up"]
        for component in self.components.by_id.values():
            COMPONENT_UP.labels(component.component_id, component.kind).set(1 if component.state == "up" else 0)
        scrapes = await self._scrape(up)
        await self._judge_load(scrapes)
        rates = self.sampler.sample(scrapes, dt)
        self.series.add(utc_now("seconds"), **dataclasses.asdict(rates),
                        consumer_lag=sum(c.last_beat.consumer_lag or 0 for c in up),
                        instances=self.components.live(SCALED_KINDS))

    async def _judge_load(self, scrapes: dict) -> None:
        """Overload (monitor/overload.py) and newly dead-lettered messages, from what was just scraped."""
        now = time.monotonic()
        kinds = {c.component_id: c.kind for c in self.components.by_id.values()}
        letters = 0.0
        for component_id, flat in scrapes.items():
            self.answered_at[component_id] = now
            change = self.overload.observe(component_id, kinds.get(component_id, ""), overload.reading(now, flat))
            if change is not None:
                OVERLOADED.labels(component_id).set(1 if change.state == "overloaded" else 0)
                await self._announce(change)
            total = sum(v for (name, _), v in flat.items() if name == "paystream_dead_letters_total")
            if component_id in self.dead_letters_seen:
                letters += counter_delta(total, self.dead_letters_seen[component_id])
            self.dead_letters_seen[component_id] = total
        if letters:
            await self._announce(Change("dead-letters", "dead_letters", None, "set_aside",
                                        f"{letters:.0f} message(s) set aside on the dead-letter topic "
                                        "(paystream dlq list)"))

    async def _scrape(self, components) -> dict:
        known = known_metrics_urls(self.settings)

        async def one(component):
            url = component.last_beat.metrics_url
            # A heartbeat is anyone's to send on Kafka: only the addresses paystream's own settings
            # name are scraped, never whatever URL a beat carries.
            if url not in known or component.kind == "monitor":
                return None
            try:
                async with self.http.get(url) as resp:
                    return component.component_id, flatten(await resp.text())
            except Exception:
                return None

        return dict(r for r in await asyncio.gather(*(one(c) for c in components)) if r)

    # --- windowed charts ---------------------------------------------------------------
    def _analytics_urls(self) -> list[str]:
        """Analytics processes that beat, by the address of their pages (any one gathers from all); then the
        setting."""
        urls = [c.last_beat.metrics_url.removesuffix("/metrics") for c in self.components.by_id.values()
                if c.kind == "analytics" and c.state == "up" and c.last_beat.metrics_url]
        return [*sorted(urls), self.settings.analytics_base_url]

    async def _analytics_forever(self) -> None:
        token = self.settings.internal_token.get_secret_value()
        while True:
            self.analytics = await self._read_analytics(token)
            await asyncio.sleep(self.settings.analytics_refresh_s)

    async def _read_analytics(self, token: str) -> dict:
        error = "no analytics process answered"
        for url in self._analytics_urls():
            try:
                async with self.http.get(f"{url}/analytics/windows/", params=analytics.QUERY,
                                         headers={"Authorization": f"Bearer {token}"},
                                         timeout=aiohttp.ClientTimeout(total=10)) as resp:
                    body = await resp.json(content_type=None)
                if resp.status == 200:
                    query = body["query"]
                    return {**analytics.minute_series(body["rows"], query["from"], query["to"]), "error": None}
                error = f"{url}: {resp.status} {body.get('error', {}).get('message', '')}"
            except Exception as exc:  # an analytics process away must not stop the monitor
                error = f"{url}: {exc!r}"
        log.warning("windowed charts not read", error=error)
        return {**self.analytics, "error": error}

    async def _announce(self, change: Change) -> None:
        alert = Alert(at=utc_now("seconds"), subject=change.subject, kind=change.kind,
                      previous=change.previous, state=change.state, reason=change.reason)
        level = (log.warning if change.state in ("down", "restarted", "crash_loop", "overloaded", "set_aside")
                 else log.info)
        level("state changed", **alert.model_dump(exclude={"schema_version"}))
        try:
            await self.producer.send_and_wait(self.settings.topics.alerts, key=change.subject.encode(),
                                              value=messages.encode(alert))
        except Exception as exc:
            log.error("alert not published", error=repr(exc), subject=change.subject)

    # --- views ---------------------------------------------------------------------
    def status(self) -> dict:
        now = time.monotonic()
        components = []
        for c in sorted(self.components.by_id.values(), key=lambda c: (c.kind, c.component_id)):
            beat = c.last_beat
            components.append({
                "id": c.component_id, "kind": c.kind, "state": c.state, "host": beat.host,
                "pid": beat.pid, "last_beat": beat.at,
                "seconds_since_beat": round(now - c.last_seen, 1), "uptime_s": beat.uptime_s,
                "rss_bytes": beat.rss_bytes, "cpu_percent": beat.cpu_percent,
                "open_connections": beat.open_connections, "in_flight": beat.in_flight,
                "consumer_lag": beat.consumer_lag, "verdict": beat.verdict,
                "overloaded": self.overload.is_overloaded(c.component_id),
                "overload_reason": self.overload.describe(c.component_id),
            })
        services = [{"name": name, "state": "up" if ok else "down", "detail": detail}
                    for name, (ok, detail) in sorted(self.services.items())]
        healthy = all(c["state"] == "up" for c in components) and all(s["state"] == "up" for s in services)
        return {"overall": "up" if healthy else "down", "generated_at": utc_now("seconds"),
                "heartbeat_interval_s": self.settings.heartbeat_interval_s,
                "components": components, "services": services,
                # Reads and payment calls, admitted apart by every ingress (docs/admission.md).
                "admission": self.sampler.admission,
                "reconciliation": self.reconciliation.status() if self.reconciliation else None}


def known_metrics_urls(settings: Settings) -> frozenset[str]:
    """The /metrics pages the settings name (`PAYSTREAM_MONITOR_SCRAPE_URLS`, by default the ingress,
    worker and sinks ports')."""
    return frozenset(settings.monitor_scrape_url_list)


MONITOR = web.AppKey("monitor", Monitor)


async def health(request: web.Request) -> web.Response:
    status = request.app[MONITOR].status()
    return web.json_response(status, status=200 if status["overall"] == "up" else 503)


async def api_status(request: web.Request) -> web.Response:
    monitor = request.app[MONITOR]
    return web.json_response({**monitor.status(), "series": monitor.series.as_dict(),
                              "analytics": monitor.analytics})


async def reconcile_now(request: web.Request) -> web.Response:
    """Run a reconciliation now; `?settle_s=` judges payments changed more recently than the setting."""
    settle = request.query.get("settle_s")
    try:
        settle_s = None if settle is None else float(settle)
    except ValueError:
        return web.json_response({"error": {"type": "invalid_request_error", "code": "invalid_value",
                                            "message": "settle_s must be a number", "field": "settle_s"}}, status=422)
    try:
        report = await request.app[MONITOR].reconciliation.run(settle_s)
    except Exception as exc:
        return web.json_response({"error": {"type": "unavailable_error", "code": "reconciliation_failed",
                                            "message": f"{type(exc).__name__}: {exc}"[:300], "field": None}},
                                 status=503, headers={"Retry-After": "5"})
    return web.json_response(report.as_dict())


async def metrics_page(request: web.Request) -> web.Response:
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


def create_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[MONITOR] = Monitor(settings)
    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/api/status", api_status)
    app.router.add_post("/api/reconciliation", reconcile_now)
    app.router.add_static("/static/", STATIC)

    async def lifecycle(app: web.Application):
        await app[MONITOR].start()
        yield
        await app[MONITOR].stop()

    app.cleanup_ctx.append(lifecycle)
    return app


def run(settings: Settings) -> None:
    web.run_app(create_app(settings), host=settings.monitor_host, port=settings.monitor_port,
                access_log=None, print=None, backlog=tuning.LISTEN_BACKLOG)
