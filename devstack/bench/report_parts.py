"""The pieces every section of the benchmark report shares: the machine it ran on, number formats, steps
grouped by target, and the latency/throughput plot."""

from __future__ import annotations

import platform
from pathlib import Path

import psutil

from devstack.bench.core import Step


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def fmt_ms(v) -> str:
    return "–" if v is None else f"{v:,.1f}"


def fmt_rate(v) -> str:
    return "–" if v is None else f"{v:,.0f}"


def by_target(steps: list[Step]) -> dict[str, list[Step]]:
    out: dict[str, list[Step]] = {}
    for step in steps:
        out.setdefault(step.target, []).append(step)
    return out


def plot(path: Path, title: str, groups: dict[str, list[Step]], percentiles=("p50_ms", "p99_ms")) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, steps in groups.items():
        x = [s.offered_rps for s in steps]
        for p, style in zip(percentiles, ("-o", "--s")):
            y = [getattr(s, p) for s in steps]
            lat.plot(x, [v if v is not None else float("nan") for v in y], style, label=f"{name} {p[:-3]}")
        thr.plot(x, [s.achieved_rps for s in steps], "-o", label=name)
    top = max((s.offered_rps for steps in groups.values() for s in steps), default=1)
    thr.plot([0, top], [0, top], ":", color="grey", label="offered")
    for ax, ylabel in ((lat, "latency (ms)"), (thr, "achieved per second")):
        ax.set_xscale("log")
        ax.set_xlabel("offered per second")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    lat.set_yscale("log")
    for axis in (lat.xaxis, lat.yaxis, thr.xaxis):
        axis.set_major_formatter(ScalarFormatter())
    lat.set_title(f"{title}: latency over offered load")
    thr.set_title(f"{title}: throughput over offered load")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt_errors(step: Step) -> str:
    """A step's errors, with their kinds when it counted them (`extra["failures"]`; the rest unfinished)."""
    kinds = dict(step.extra.get("failures") or {})
    if kinds and sum(kinds.values()) < step.errors:  # the rest: still unanswered when the step's wait ended
        kinds["unfinished"] = step.errors - sum(kinds.values())
    return f"{step.errors}" + (" (" + ", ".join(f"{k} ×{v}" for k, v in sorted(kinds.items())) + ")" if kinds else "")
