"""Runs benchmark suites on a throwaway stack and writes the report."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from devstack.bench import (
    balancing,
    bulkheads,
    mixed,
    overload,
    payments,
    paypal_payments,
    rebuild,
    receipts,
    refunds,
    report,
    scale,
    sinks,
    standin_payments,
)
from devstack.bench import tuning as bench_tuning
from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import PeakRss, find_section, git_commit, results_dir, save_json
from devstack.bench.profiling import Profiler
from devstack.settings import get_dev_settings

# The stand-in's suites last: they switch the stack's provider over.
SUITES = ("receipts", "payments", "refunds", "paypal", "mixed", "scale", "balancer", "standin", "bulkheads")
STANDIN_SUITES = {"standin", "bulkheads"}
FULL = {"receipts": [250, 500, 1000, 2000, 4000, 8000], "payments": [25, 50, 100, 200, 400, 800],
        "standin": [50, 100, 200, 300, 400], "mixed": [0.25, 0.5, 1, 2, 4], "scale": [10_000, 100_000, 1_000_000],
        "balancer": [500, 1000], "bulkheads": bulkheads.PAYMENTS_RPS, "refunds": refunds.RATES,
        "paypal": paypal_payments.RATES, "seconds": 10.0}
QUICK = {"receipts": [250, 1000], "payments": [10, 25], "standin": [10, 25], "mixed": [0.25],
         "scale": [2_000], "balancer": [250], "bulkheads": [10], "refunds": [10], "paypal": [10], "seconds": 2.0}


#: The reading of the targets against the figures, written by hand after a run (kept like the sections
#: other commands own, and to be read again when the figures change).
TARGETS_BEGIN, TARGETS_END = "<!-- targets -->", "<!-- /targets -->"


def kept_sections(old: str) -> str:
    """The sections other commands own (the rebuild's, the sinks', the overload suite's) and the targets'
    reading, for a report that replaces BENCHMARKS.md."""
    return (find_section(old, rebuild.BEGIN, rebuild.END) + find_section(old, sinks.BEGIN, sinks.END)
            + find_section(old, overload.BEGIN, overload.END) + find_section(old, TARGETS_BEGIN, TARGETS_END))


def run(suites: list[str], quick: bool, keep: bool, out_base: Path, command: str, say=print) -> Path:
    root = Path.cwd()
    plan = QUICK if quick else FULL
    seconds = plan["seconds"]
    out = results_dir(root, out_base)
    results: dict = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                     "mode": "quick" if quick else "full", "seconds": seconds, "memory": {}}
    profiler = Profiler({}, out)
    # Full runs take a fresh stack per suite: past saturation a suite leaves queues, a crowded
    # sandbox and busy processes behind that would weigh on the next suite. Quick runs stay
    # below saturation and share one stack, to stay short.
    groups = [suites] if quick else [[suite] for suite in suites]
    for group in groups:
        # The stand-in suites' pipeline charges the stand-in (a quick run switches its shared stack over).
        provider = "standin" if set(group) <= STANDIN_SUITES else "sandbox"
        base = get_dev_settings()
        with BenchStack(root, base, keep=keep and group is groups[-1], say=say, provider=provider,
                        warm_up_s=0.0 if quick else bench_tuning.WARM_UP_S) as stack:
            for suite in group:
                profiler.pids = stack.pids(everything=True)
                say(f"{suite} ...")
                with PeakRss(stack.pids()) as rss:
                    if suite == "receipts":
                        results[suite] = receipts.run(stack, plan[suite], seconds, say, profiler)
                        _keep_profile(profiler, suite, results[suite], "paystream getReceipt")
                    elif suite == "payments":
                        results[suite] = payments.run(stack, plan[suite], seconds, say, profiler)
                        _keep_profile(profiler, suite, results[suite], "paystream post")
                    elif suite == "refunds":
                        results[suite] = refunds.run(stack, plan[suite], seconds, say)
                    elif suite == "paypal":
                        results[suite] = paypal_payments.run(stack, plan[suite], seconds, say)
                    elif suite == "mixed":
                        results[suite] = mixed.run(stack, plan[suite], seconds, say, profiler)
                        step = results[suite]["steps"][-1].extra["multiple"] if results[suite]["steps"] else 1
                        profiler.keep(suite, f"mixed@{step:g}")
                    elif suite == "standin":
                        stack.use_standin()
                        profiler.pids = stack.pids(everything=True)
                        results[suite] = standin_payments.run(stack, plan[suite], seconds, say, profiler)
                        step = results[suite]["first_missed"] or plan[suite][-1]
                        profiler.keep(suite, f"standin@{step}")
                    elif suite == "balancer":
                        results[suite] = balancing.run(stack, plan[suite], seconds, say)
                    elif suite == "bulkheads":
                        results[suite] = bulkheads.run(stack, plan[suite], seconds, say)
                    else:
                        results[suite] = scale.run(stack, plan[suite], seconds, say)
                results["memory"][suite] = rss.mib()
                # Kept as each suite ends: a later suite that fails does not take the earlier figures with it.
                save_json(out / "results.json", results)
                stack.refresh()
    results["profiles"] = profiler.findings
    save_json(out / "results.json", results)
    path = report.write(out, results, command, git_commit(root))
    say(f"report: {path}")
    return path


def _keep_profile(profiler: Profiler, suite: str, result: dict, target: str) -> None:
    """The profile that explains a missed target: the first step past it, else the highest step."""
    ours = [s for s in result["steps"] if s.target == target]
    if ours:
        chosen = next((s for s in ours if not s.sustainable(result["p99_target_ms"])), ours[-1])
        profiler.keep(suite, f"{suite}@{int(chosen.offered_rps)}")


#: Where the charts BENCHMARKS.md shows are kept, in git; a run's own folder (bench/results/...) is not.
CHARTS = Path("bench/charts")
#: A Markdown link or image to a file of ours (not a web address).
LOCAL_LINK = re.compile(r"\]\((?!https?://)([^)]+)\)")


def publish(report_path: Path, root: Path) -> Path:
    """BENCHMARKS.md at the top of the repo: the report, each file it links to (its charts and profiles)
    copied into bench/charts/ and linked there; charts no section links to any more are removed."""
    charts = root / CHARTS
    charts.mkdir(parents=True, exist_ok=True)

    def kept(link: re.Match) -> str:
        source = report_path.parent / link.group(1)
        shutil.copyfile(source, charts / source.name)
        return f"]({CHARTS.as_posix()}/{source.name})"

    text = LOCAL_LINK.sub(kept, report_path.read_text())
    target = root / "BENCHMARKS.md"
    if target.exists():
        text = text.rstrip() + "\n" + kept_sections(target.read_text())
    target.write_text(text)
    shown = {Path(link).name for link in LOCAL_LINK.findall(text) if link.startswith(f"{CHARTS.as_posix()}/")}
    for chart in charts.iterdir():
        if chart.name not in shown:
            chart.unlink()
    return target
