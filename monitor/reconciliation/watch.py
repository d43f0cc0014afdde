"""The monitor's reconciliation: `monitor.reconciliation.differences` run every interval over what changed since
the run before, its counts exported as metrics, and an alert on the alerts topic whenever the
differences appear, change or clear."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from prometheus_client import Counter, Gauge

from monitor.reconciliation.differences import KINDS, Reconciler, Report
from monitor.reconciliation.history import KafkaHistory
from monitor.state import Change
from paystream import bootstrap
from paystream.observability.logs import get_logger
from paystream.settings import Settings

log = get_logger("paystream.monitor")

DIFFERENCES = Gauge("paystream_reconciliation_differences",
                    "Open differences between paystream and the provider's records, by class.", ["kind"])
JUDGED = Gauge("paystream_reconciliation_payments_judged", "Payments the last reconciliation run judged.")
LAST_RUN = Gauge("paystream_reconciliation_last_run_timestamp_seconds", "When the last reconciliation run ended.")
RUNS = Counter("paystream_reconciliation_runs", "Reconciliation runs, by result.", ["result"])
SAMPLE = 20  # differences shown on the status page


class ReconciliationWatch:
    def __init__(self, settings: Settings, announce: Callable[[Change], Awaitable[None]]) -> None:
        self.settings = settings
        self.announce = announce
        self.provider = bootstrap.providers(settings)
        self.reconciler = Reconciler(KafkaHistory.of(settings), self.provider,
                                     settings.reconcile_settle_s, settings.reconcile_lookback_s)
        self.last: Report | None = None
        self.error: str | None = None
        self._lock = asyncio.Lock()
        for kind in KINDS:
            DIFFERENCES.labels(kind).set(0)

    async def close(self) -> None:
        await self.provider.close()

    async def run(self, settle_s: float | None = None) -> Report:
        """One run now (after the one under way, if any)."""
        async with self._lock:
            try:
                report = await self.reconciler.run(datetime.now(UTC), settle_s)
            except Exception as exc:
                RUNS.labels("error").inc()
                self.error = f"{type(exc).__name__}: {exc}"[:300]
                raise
            RUNS.labels("ok").inc()
            self.error = None
            previous, self.last = self.last, report
            for kind, count in report.counts.items():
                DIFFERENCES.labels(kind).set(count)
            JUDGED.set(report.payments)
            LAST_RUN.set(datetime.now(UTC).timestamp())
            await self._alert(previous, report)
            return report

    async def forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reconcile_interval_s)
            try:
                await self.run()
            except Exception as exc:  # the provider or Kafka down: said on the status page, tried again
                log.warning("reconciliation run failed", error=repr(exc))

    async def _alert(self, previous: Report | None, report: Report) -> None:
        before = _state(previous)
        if before == _state(report) and (previous is None or previous.counts == report.counts):
            return
        if before is None and not report.differences:
            return  # a first clean run is no news
        await self.announce(Change("reconciliation", "reconciliation", before, _state(report),
                                   ", ".join(f"{k}={v}" for k, v in report.counts.items())))

    def status(self) -> dict:
        last = self.last.as_dict() if self.last else None
        if last is not None:
            last["differences"] = last["differences"][:SAMPLE]
        return {"interval_s": self.settings.reconcile_interval_s, "settle_s": self.settings.reconcile_settle_s,
                "state": _state(self.last), "last": last, "error": self.error}


def _state(report: Report | None) -> str | None:
    if report is None:
        return None
    return "differences" if report.differences else "clean"
