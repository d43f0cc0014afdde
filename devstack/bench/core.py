"""What every benchmark shares: open-loop load, percentiles, memory sampling, results.

Load is open loop: request i is due at start + i / rate whatever happened to
the ones before it, and its latency is measured from when it was due. A slow
system therefore shows as latency, not as a lower offered rate (no
coordinated omission).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

#: A step is sustainable when p99 is under its target and errors under 0.1 %.
MAX_ERROR_RATE = 0.001


def percentile(sorted_values: list[float], p: float) -> float | None:
    if not sorted_values:
        return None
    rank = p / 100 * (len(sorted_values) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


@dataclass
class Step:
    """One offered rate held for a while: what was asked, what happened."""

    suite: str
    target: str
    offered_rps: float
    seconds: float
    sent: int
    ok: int
    errors: int
    achieved_rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    extra: dict = field(default_factory=dict)

    @property
    def error_rate(self) -> float:
        return self.errors / self.sent if self.sent else 1.0

    def sustainable(self, p99_target_ms: float) -> bool:
        return self.sent > 0 and self.error_rate < MAX_ERROR_RATE and (self.p99_ms or math.inf) <= p99_target_ms

    @classmethod
    def from_latencies(cls, suite: str, target: str, offered: float, seconds: float,
                       latencies_s: list[float], errors: int, **extra) -> Step:
        ordered = sorted(x * 1000 for x in latencies_s)
        sent = len(latencies_s) + errors

        def pct(p):
            v = percentile(ordered, p)
            return None if v is None else round(v, 2)

        return cls(suite, target, offered, round(seconds, 2), sent, len(latencies_s), errors,
                   round(len(latencies_s) / seconds, 1) if seconds else 0.0,
                   pct(50), pct(90), pct(99), pct(99.9), round(ordered[-1], 2) if ordered else None, extra)


async def open_loop(rate: float, seconds: float, request: Callable[[int], Awaitable[None]],
                    max_outstanding: int = 20_000) -> tuple[list[float], int, float]:
    """Fire `request(i)` at `rate` per second for `seconds`; (latencies from due time, errors, elapsed)."""
    latencies: list[float] = []
    errors = 0
    total = int(rate * seconds)
    began = time.perf_counter()
    pending: set[asyncio.Task] = set()

    async def one(i: int, due: float) -> None:
        nonlocal errors
        try:
            await request(i)
            latencies.append(time.perf_counter() - due)
        except Exception:
            errors += 1

    for i in range(total):
        due = began + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(pending) >= max_outstanding:
            errors += 1  # the generator's own limit: count it, never wait (that would close the loop)
            continue
        task = asyncio.create_task(one(i, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    if pending:
        # Past saturation the queue can be long: give it a bounded while, then count the rest as errors.
        _, late = await asyncio.wait(pending, timeout=max(5.0, 2 * seconds))
        errors += len(late)
        for task in late:
            task.cancel()
    return latencies, errors, time.perf_counter() - began


class PeakRss:
    """Samples the resident memory of named processes in a background thread."""

    def __init__(self, pids: dict[str, int], every_s: float = 0.5) -> None:
        self.pids = pids
        self.every = every_s
        self.peak: dict[str, int] = {name: 0 for name in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                try:
                    self.peak[name] = max(self.peak[name], psutil.Process(pid).memory_info().rss)
                except psutil.Error:
                    pass
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def mib(self) -> dict[str, float]:
        return {name: round(value / 2**20, 1) for name, value in self.peak.items()}


def git_commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "nogit"


def results_dir(root: Path, base: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    path = base / f"{stamp}-{git_commit(root)}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_json(path: Path, data) -> None:
    def default(o):
        return asdict(o) if hasattr(o, "__dataclass_fields__") else str(o)

    path.write_text(json.dumps(data, indent=2, default=default))


def put_section(path: Path, begin: str, end: str, section: str) -> Path:
    """Write `section` (from its `begin` marker to its `end` marker) into the file, in place of its last copy."""
    text = path.read_text() if path.exists() else "# paystream benchmarks\n"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    return path


def find_section(text: str, begin: str, end: str) -> str:
    """A section another command owns, to be kept by a report that replaces the file ("" if absent)."""
    found = re.search(re.escape(begin) + ".*?" + re.escape(end), text, re.S)
    return "\n\n" + found.group(0) + "\n" if found else ""


def counting_failures(request: Callable[[int], Awaitable[None]], kinds: dict[str, int]) -> Callable[[int], Awaitable[None]]:
    """`request`, with each failure counted by its kind in `kinds` (a RuntimeError's message up to its
    colon, such as "start 503"; else the exception's name) before it goes on to count as an error."""
    async def counted(i: int) -> None:
        try:
            await request(i)
        except Exception as exc:
            kind = str(exc).split(":", 1)[0] if isinstance(exc, RuntimeError) else type(exc).__name__
            kinds[kind] = kinds.get(kind, 0) + 1
            raise

    return counted
