"""How fast the sinks store a backlog, before and after batching: `python -m devstack.bench.sinks [--payments N]`.

On a throwaway stack (Kafka, the Couchbase cluster and Redis on the benchmark
ports, no pipeline), for each sinks variant in turn (`--baseline`'s sinks, by
default main's, exported with `git archive`, then this checkout's) it writes N
complete payments to topics of the variant's own (five events each, the
payments of one round of 1,000 interleaved, and one receipt each: the records
of devstack/bench/rebuild.py), starts that variant's `paystream sinks` on them
and times from the first document it stores until the store holds the last
record of every partition (a payment at its last version; a receipt in its
user's index, written after the receipt and its cache entry). Partitions are
stored in order, so the last record stored means all of them were. Reported:
events/s and receipts/s stored, and the sinks' CPU seconds. The figures go
into BENCHMARKS.md, in a section of its own that `paystream bench all` keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

from devstack import envfile
from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import git_commit, put_section
from devstack.bench.rebuild import fill, lifecycle
from devstack.bench.report import machine
from devstack.settings import DevSettings, get_dev_settings
from paystream import bootstrap
from paystream.domain.model import Payment
from paystream.domain.records import Receipt

BEGIN, END = "<!-- sink-batches -->", "<!-- /sink-batches -->"
#: Longest a variant may take to store its backlog before the run gives up on it.
TIMEOUT_S = 150.0


def export(root: Path, ref: str, into: Path) -> Path:
    """The tree of `ref` (its committed files only), unpacked into `into`."""
    archive = subprocess.run(["git", "archive", ref], cwd=root, capture_output=True, check=True).stdout
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Variant:
    def __init__(self, name: str, role: str, source: Path, settings: DevSettings, state: Path) -> None:
        #: What the report calls it (the baseline's git ref, or "batches"); `role` names its topics and folder.
        self.name = name
        self.source = source
        self.state = state / role
        self.settings = settings.model_copy(update={"topic_prefix": f"sinksbench-{role}",
                                                    "sinks_id": f"sinksbench-{role}"})
        self.process: subprocess.Popen | None = None

    def start(self, stack_env_file: Path) -> None:
        """`paystream sinks` of this variant's source, on its topics (from an empty folder, so no .env
        but the stack's is read and the source's own modules are imported)."""
        (self.state / "cwd").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **envfile.managed(stack_env_file), "PYTHONPATH": str(self.source),
               "PAYSTREAM_TOPIC_PREFIX": self.settings.topic_prefix, "PAYSTREAM_SINKS_ID": self.settings.sinks_id,
               "PAYSTREAM_DATA_DIR": str(self.state / "data")}
        with open(self.state / "sinks.log", "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "paystream.cli", "sinks"], cwd=self.state / "cwd",
                                            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


async def stored(variant: Variant, payments: int, last: dict[tuple[str, int], Payment | Receipt],
                 first: Payment) -> dict:
    """Time the variant's sinks from their first stored document to the last record of each partition."""
    store = await bootstrap.document_store(variant.settings)
    try:
        started = time.monotonic()
        while await store.get_payment(first.payment_id) is None:
            if variant.process.poll() is not None or time.monotonic() - started > TIMEOUT_S:
                raise RuntimeError(f"the {variant.name} sinks stored nothing; see {variant.state / 'sinks.log'}")
            await asyncio.sleep(0.02)
        t0, cpu0 = time.monotonic(), cpu_seconds(variant.process.pid)
        done: dict[str, float] = {}
        pending = dict(last)
        while pending:
            for (topic, partition), value in list(pending.items()):
                if isinstance(value, Payment):
                    held = await store.get_payment(value.payment_id)
                    landed = held is not None and held.version == value.version
                else:
                    landed = value.receipt_id in await store.user_index("receipts", value.account, value.user_id)
                if landed:
                    del pending[(topic, partition)]
                    kind = "events" if isinstance(value, Payment) else "receipts"
                    if not any(k[0] == topic for k in pending):
                        done[kind] = time.monotonic() - t0
            if time.monotonic() - t0 > TIMEOUT_S:
                raise RuntimeError(f"the {variant.name} sinks did not finish within {TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.1)
        cpu = cpu_seconds(variant.process.pid) - cpu0
    finally:
        await store.close()
    events, receipts = payments * 5, payments
    return {"variant": variant.name, "events": events, "receipts": receipts,
            "events_s": round(done["events"], 2), "receipts_s": round(done["receipts"], 2),
            "events_per_s": round(events / done["events"]), "receipts_per_s": round(receipts / done["receipts"]),
            "cpu_s": round(cpu, 1)}


def run_variant(variant: Variant, payments: int, stack_env_file: Path, tag: str) -> dict:
    bootstrap.ensure_topics(variant.settings)
    started = time.monotonic()
    sent, last = asyncio.run(fill(variant.settings, payments, tag=tag))
    print(f"{variant.name}: wrote {sent:,} records in {time.monotonic() - started:.1f} s; starting its sinks ...")
    variant.start(stack_env_file)
    try:
        result = asyncio.run(stored(variant, payments, last, lifecycle(0, tag)[0]))
    finally:
        variant.stop()
    print(result)
    return result


def publish(root: Path, payments: int, baseline: str, results: list[dict], command: str) -> Path:
    before, after = results
    rows = [f"| {r['variant']} | {r['events']:,} | {r['events_s']} | **{r['events_per_s']:,}** | {r['receipts']:,} | "
            f"{r['receipts_s']} | **{r['receipts_per_s']:,}** | {r['cpu_s']} |" for r in results]
    section = "\n".join([
        BEGIN,
        "## Sinks: a backlog stored, one event at a time and in batches",
        "",
        f"- command: `{command}` (its own throwaway stack: Kafka, the local Couchbase cluster, Redis; no pipeline)",
        f"- commit: `{git_commit(root)}` against `{baseline}`'s sinks in the same run, "
        f"run at {datetime.now(UTC).isoformat(timespec='seconds')}",
        f"- machine: {machine()}",
        f"- {payments:,} payments (five events and a receipt each) on topics of each variant's own, then its "
        "`paystream sinks` started: seconds from its first stored document until every partition's last record "
        "is stored (payments at their last version, receipts in their users' indexes); CPU seconds of the sinks "
        "process over the same time",
        "",
        "| sinks | events | seconds | events/s | receipts | seconds | receipts/s | CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Batches store events {after['events_per_s'] / before['events_per_s']:.1f}× and receipts "
        f"{after['receipts_per_s'] / before['receipts_per_s']:.1f}× as fast as one at a time "
        f"(`PAYSTREAM_SINKS_BATCH_MAX` / `_WITHIN_MS` at their defaults). What holds the batches now (py-spy "
        "of the sinks during such a run): the event loop's thread, busy about 70 % of the time with Faust's "
        "handling of each message, decoding (pydantic) and the users' index writes, one sub-document write "
        "per user here since each payment has a user of its own; the multi-operations' own threads far less.",
        END,
    ])
    return put_section(root / "BENCHMARKS.md", BEGIN, END, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=5000)
    parser.add_argument("--baseline", default="main", help="the git ref whose sinks are measured first")
    args = parser.parse_args()
    root = Path.cwd()
    command = f"python -m devstack.bench.sinks --payments {args.payments} --baseline {args.baseline}"
    with BenchStack(root, get_dev_settings(), pipeline=False, say=print) as stack:
        env_file = Path(stack.env["PAYSTREAM_ENV_FILE"])
        settings = DevSettings(_env_file=env_file)
        state = Path(stack.env["PAYSTREAM_STATE_DIR"]) / "sinks-bench"
        baseline = export(root, args.baseline, state / "baseline-source")
        results = [run_variant(Variant(name, role, source, settings, state), args.payments, env_file, tag)
                   for name, role, source, tag in ((args.baseline, "baseline", baseline, "sbb"),
                                                   ("batches", "batches", root, "sba"))]
    print(f"published {publish(root, args.payments, args.baseline, results, command)}")


if __name__ == "__main__":
    main()
