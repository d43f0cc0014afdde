"""Analysts' answers from real processes: exact windows and totals for known payments, the same answer from
one worker and analytics process and from two of each, a late event in its own window, and exports that read
back.

The processes here are this module's own (tests/analytics_cluster.py): their own topics and app ids, so the
figures are exactly the payments made below. The tests run in order and share the cluster.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime

import aiohttp
import duckdb
import pytest
from kafka import KafkaProducer

from connectors.kafka_commands import KafkaCommandBus
from paystream import messages
from paystream.domain.events import PaymentChanged
from paystream.domain.model import Payment
from paystream.domain.money import Money
from tables.analytics.counts import COUNTED_STATES
from tests.analytics_cluster import AnalyticsCluster, post_command, start_command
from tests.api_client import DECLINING_CARD, ApiClient
from tests.conftest import paystream
from tests.kafka_probe import read_since

pytestmark = pytest.mark.timeout(900)

# (user, amount, currency, payment type, card): what each payment is; None as card: started, never posted.
FIRST = [("ana", "12.34", "EUR", "credit", "good"), ("ana", "500", "JPY", "credit", "good"),
         ("ben", "0.66", "EUR", "debit", "good"), ("ben", "7.00", "EUR", "credit", "declining"),
         ("cai", "1.00", "EUR", "debit", None), ("cai", "99.99", "USD", "credit", "good")]
SECOND = [("ana", "3.00", "EUR", "credit", "good"), ("dee", "1200", "JPY", "debit", "good"),
          ("dee", "5.50", "USD", "credit", "declining"), ("ben", "0.34", "EUR", "debit", "good")]


def epoch(at: str) -> int:
    return int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp())


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


class Harness:
    def __init__(self, cluster: AnalyticsCluster, settings, stack) -> None:
        self.cluster = cluster
        self.settings = settings
        self.token = settings.internal_token.get_secret_value()
        self.stripe = (stack["stripe"]["address"], settings.stripe_api_key.get_secret_value())
        self.users = {name: f"{name}-{cluster.prefix[-8:]}" for name in ("ana", "ben", "cai", "dee", "eve")}
        self.start = int(time.time()) // 60 * 60
        self.made: list[tuple] = []

    @property
    def range(self) -> dict[str, str]:
        """An hour either side of the start: every payment and the late event, the same range for every ask."""
        return {"from": iso(self.start - 3600), "to": iso(self.start + 3600)}

    async def pay(self, plan: list[tuple]) -> None:
        bus = KafkaCommandBus(self.settings.kafka_bootstrap, self.cluster.topics.commands,
                              self.cluster.topics.replies)
        await bus.start()
        cards = ApiClient("", "", *self.stripe)  # only its card(): what the provider's web client does
        try:
            for user, amount, currency, payment_type, card in plan:
                start = start_command(self.users[user], amount, currency, payment_type)
                started = await bus.send(start, start.command_id, 60)
                assert started is not None and started.ok, started
                if card is not None:
                    method = await cards.card(DECLINING_CARD if card == "declining" else "4242424242424242")
                    posted = await bus.send(post_command(start, started, method), start.command_id + "-post", 60)
                    assert posted is not None and posted.ok == (card == "good"), posted
                self.made.append((user, amount, currency, payment_type, card))
        finally:
            await cards.close()
            await bus.stop()

    def events(self) -> list[dict]:
        """Every event on the cluster's events topic: the source of truth the tables are kept from."""
        since = dict.fromkeys(range(self.settings.payment_topic_partitions), 0)
        return read_since(self.settings.kafka_bootstrap, self.cluster.topics.events, since, until=10)

    def expected_status(self) -> dict:
        """(minute, status, currency, payment type) -> (count, minor units), counted straight from the events."""
        out: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        for event in self.events():
            payment = event["payment"]
            if payment["status"] not in COUNTED_STATES:  # the steps in between are not counted
                continue
            amount = payment.get("amount") or {}
            key = (iso(epoch(event["at"]) // 60 * 60), payment["status"], amount.get("currency"),
                   payment["payment_type"])
            out[key][0] += 1
            out[key][1] += amount.get("amount_minor", 0)
        return {key: tuple(value) for key, value in out.items()}

    async def get(self, url: str, path: str, **params: str) -> tuple[int, dict | str, Mapping[str, str]]:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}{path}", params=params,
                                   headers={"Authorization": f"Bearer {self.token}"}) as response:
                body = await response.text()
                kind = response.headers.get("Content-Type", "")
                return response.status, json.loads(body) if "json" in kind else body, response.headers.copy()

    async def answers(self, url: str, worker: str) -> dict:
        """Every query this module checks, from one analytics process and one worker (all must answer 200)."""
        out = {}
        for name, path, params in (
            ("status", "/analytics/windows/", {"view": "status", "by": "currency,payment_type", **self.range}),
            ("conversion", "/analytics/windows/", {"view": "conversion", "bucket": "1h", **self.range}),
            ("declines", "/analytics/windows/", {"view": "declines", **self.range}),
            ("rolling", "/analytics/windows/", {"rolling": "true", "status": "receipted", **self.range}),
            ("hourly csv", "/analytics/windows/", {"bucket": "1h", "format": "csv", **self.range}),
            ("summary", "/tables/payments/summary/", {}),
            *((f"user {name}", f"/analytics/users/acct_test:{user}/", {}) for name, user in self.users.items()),
        ):
            status, body, headers = await self.get(worker if path.startswith("/tables/") else url, path, **params)
            assert status == 200, (name, status, body)
            out[name] = body
            if path in ("/analytics/windows/", "/tables/payments/summary/"):  # how many processes gathered it
                out.setdefault("workers", set()).add(headers.get("X-Paystream-Workers"))
        return out

    async def eventually(self, check, timeout: float = 90) -> dict:
        """Ask until `check(answers)` holds on every worker (the tables follow the events within moments)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                # Every analytics process, each with a worker (the payments summary is the workers').
                workers = self.cluster.workers
                got = [await self.answers(a.url, workers[n % len(workers)].url)
                       for n, a in enumerate(self.cluster.analytics)]
                problem = next((p for p in map(check, got) if p), None)
            except (AssertionError, aiohttp.ClientError) as exc:
                problem = str(exc)[:2000]
            if problem is None:
                return got[0]
            if time.monotonic() > deadline:
                raise AssertionError(problem)
            await asyncio.sleep(1)

    def check_exact(self, answers: dict) -> str | None:
        """None when the answers are exactly the payments made; else what differs."""
        got = {(r["bucket_start"], r["status"], r["currency"], r["payment_type"]): (r["count"], r["volume_minor"] or 0)
               for r in answers["status"]["rows"]}
        if got != self.expected_status():
            return f"status windows: {got} != {self.expected_status()}"
        taken: dict[str, int] = defaultdict(int)
        for _, amount, currency, _, card in self.made:
            if card == "good":
                taken[currency] += Money.parse(amount, currency).minor
        volume = defaultdict(int)
        for currency, minor in ((r["currency"], r["volume_minor"]) for r in answers["status"]["rows"]
                                if r["status"] == "receipted"):
            volume[currency] += minor
        if dict(volume) != dict(taken):
            return f"receipted volume {dict(volume)} != the amounts paid {dict(taken)}"
        conversion = answers["conversion"]["rows"]
        started = sum(r["started"] for r in conversion)
        counts = (started, sum(r["receipted"] for r in conversion), sum(r["declined"] for r in conversion),
                  sum(r["latency_count"] for r in conversion))
        paid = sum(1 for *_, card in self.made if card == "good")
        declined = sum(1 for *_, card in self.made if card == "declining")
        if counts != (len(self.made), paid, declined, paid):
            return f"conversion counts {counts} != {(len(self.made), paid, declined, paid)}"
        if sum(r["count"] for r in answers["declines"]["rows"]) != declined:
            return f"declines {answers['declines']['rows']}"
        for name, user in self.users.items():
            rows = {r["currency"]: r for r in answers[f"user {name}"]["rows"]}
            mine = [m for m in self.made if m[0] == name]
            for currency in {m[2] for m in mine}:
                want = {"started": sum(1 for m in mine if m[2] == currency),
                        "receipted": sum(1 for m in mine if m[2] == currency and m[4] == "good"),
                        "declined": sum(1 for m in mine if m[2] == currency and m[4] == "declining"),
                        "volume_minor": sum(Money.parse(m[1], m[2]).minor for m in mine
                                            if m[2] == currency and m[4] == "good")}
                if {k: rows.get(currency, {}).get(k) for k in want} != want:
                    return f"user {name} {currency}: {rows.get(currency)} != {want}"
        return None


@pytest.fixture(scope="module")
def harness(stack, settings, tmp_path_factory):
    cluster = AnalyticsCluster(settings, tmp_path_factory.mktemp("analytics"))
    try:
        cluster.add("worker").wait_ready()
        cluster.add("analytics").wait_ready()
        yield Harness(cluster, settings, stack)
    finally:
        cluster.close()


async def test_known_payments_give_exact_windows_and_totals_on_one_worker(harness):
    await harness.pay(FIRST)
    answers = await harness.eventually(harness.check_exact)
    assert answers["workers"] == {"1"}
    harness.one_worker = answers


async def test_second_processes_answer_identically_and_all_stay_exact(harness):
    joined = [harness.cluster.add("worker"), harness.cluster.add("analytics")]
    for process in joined:
        process.wait_ready()

    def same_as_one_worker(answers):
        if answers["workers"] != {"2"}:
            return f"answered by {answers['workers']} workers, not 2"
        differs = [k for k in answers if k != "workers" and answers[k] != harness.one_worker[k]]
        return f"{differs} differ from the answer of one worker" if differs else None

    await harness.eventually(same_as_one_worker)
    await harness.pay(SECOND)
    answers = await harness.eventually(lambda a: harness.check_exact(a) or (None if a["workers"] == {"2"} else
                                                                            "not two workers"))
    assert answers["summary"]["payments"] == len(FIRST) + len(SECOND)


async def test_a_late_event_lands_in_its_own_window(harness):
    when = (int(time.time()) // 60 - 20) * 60 + 17  # twenty minutes ago, long after that minute closed
    at = iso(when)[:-1] + ".000Z"
    start = start_command(harness.users["eve"], "3.21", "EUR")
    late = PaymentChanged.of(Payment.start(start, at))
    producer = KafkaProducer(bootstrap_servers=harness.settings.kafka_bootstrap, acks="all")
    producer.send(harness.cluster.topics.events, key=start.payment_id.encode(), value=messages.encode(late))
    producer.flush()
    producer.close()
    harness.made.append(("eve", "3.21", "EUR", "credit", None))

    answers = await harness.eventually(harness.check_exact)
    minute = [r for r in answers["status"]["rows"] if r["bucket_start"] == iso(when // 60 * 60)]
    assert [(r["status"], r["currency"], r["count"], r["volume"]) for r in minute] == [("started", "EUR", 1, "3.21")]


async def test_exports_read_back_the_same_figures_from_either_worker(harness, tmp_path):
    answers = await harness.answers(harness.cluster.analytics[0].url, harness.cluster.workers[0].url)
    received: dict[tuple, int] = defaultdict(int)  # rows are per payment type too: added up per currency
    for r in answers["status"]["rows"]:
        if r["status"] == "receipted":
            received[(r["bucket_start"], r["currency"])] += r["volume_minor"]
    exported = {}
    for n, (worker, analytics) in enumerate(zip(harness.cluster.workers, harness.cluster.analytics, strict=True)):
        env = {"PAYSTREAM_WORKER_URL": worker.url, "PAYSTREAM_ANALYTICS_URL": analytics.url}
        for table, fmt in (("windows-minute", "parquet"), ("payments", "csv"), ("users", "parquet")):
            out = tmp_path / f"{n}-{table}.{fmt}"
            result = await asyncio.to_thread(paystream, "tables", "export", table, "--format", fmt, "--out", str(out),
                                             env=env)
            assert result.returncode == 0, result.stdout + result.stderr
            manifest = json.loads((tmp_path / f"{out.name}.manifest.json").read_text())
            assert sorted(manifest["offsets"]) == [str(p) for p in range(harness.settings.payment_topic_partitions)]
            exported[(n, table)] = out

        windows = exported[(n, "windows-minute")]
        from_file = dict(duckdb.sql(
            f"SELECT strftime(window_start AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') || '|' || currency, "
            f"sum(amount_minor)::BIGINT FROM '{windows}' WHERE measure = 'status' AND label = 'receipted' "
            f"GROUP BY ALL").fetchall())
        assert from_file == {f"{bucket}|{currency}": minor for (bucket, currency), minor in received.items()}
        payments = duckdb.sql(f"SELECT count(*), count(*) FILTER (status = 'receipted') FROM "
                              f"read_csv('{exported[(n, 'payments')]}', header = true)").fetchall()
        paid = sum(1 for *_, card in harness.made if card == "good")
        assert payments == [(len(FIRST) + len(SECOND), paid)]

    for table in ("windows-minute", "users"):
        one, two = (duckdb.sql(f"SELECT * FROM '{exported[(n, table)]}' ORDER BY ALL").fetchall()
                    for n in (0, 1))
        assert one == two and one


async def test_the_cli_prints_the_same_answer(harness):
    analytics = harness.cluster.analytics[1]
    status, body, _ = await harness.get(analytics.url, "/analytics/windows/", view="conversion", format="csv",
                                        **harness.range)
    assert status == 200
    cli = await asyncio.to_thread(paystream, "query", "conversion", "--from", harness.range["from"], "--to",
                                  harness.range["to"], "--csv", "--url", analytics.url)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout == body
    table = await asyncio.to_thread(paystream, "query", "user", harness.users["ana"], "--account", "acct_test",
                                    env={"PAYSTREAM_ANALYTICS_URL": analytics.url})
    assert table.returncode == 0 and "12.34" not in table.stdout and "15.34" in table.stdout, table.stdout
    bad = await asyncio.to_thread(paystream, "query", "status", "--bucket", "90s",
                                  env={"PAYSTREAM_ANALYTICS_URL": analytics.url})
    assert bad.returncode == 1 and "invalid_duration [bucket]" in bad.stderr


async def test_every_page_needs_the_internal_token(harness):
    analytics, worker = harness.cluster.analytics[0].url, harness.cluster.workers[0].url
    async with aiohttp.ClientSession() as session:
        for url in (analytics + "/analytics/windows/", analytics + "/analytics/windows/local/",
                    analytics + "/analytics/users/x/", analytics + "/analytics/export/users/local/",
                    worker + "/tables/payments/summary/", worker + "/analytics/export/payments/"):
            async with session.get(url, headers={"Authorization": "Bearer wrong"}) as response:
                assert response.status == 401, url
