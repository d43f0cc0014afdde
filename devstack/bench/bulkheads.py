"""Bulkheads (issue 26, docs/admission.md): getReceipt at 1,000/s beside payments at 10, 20, 30 and 50/s,
through the balancer, with the provider stand-in at 300-800 ms a call and at 2 s; each step beside the
same reads alone, measured just before it (the floor of that moment on a shared machine).

Per step: reads served a second and their share answered 200, p50/p99 of the 200s; payments complete,
payment calls refused (503 + Retry-After, and how long a refusal took at p99), timeouts; what the
balancer's two backends queued at most and refused; and CPU by process (% of one core), with the
machine's idle share. `paystream bench bulkheads [--quick]` runs it in `bench all`;
`python -m devstack.bench.bulkheads [--quick] [--seconds S]` runs it alone and writes its section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import psutil

from devstack.bench import tools
from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import git_commit, put_section, results_dir, save_json
from devstack.bench.overload import lost, pay, read_attack
from devstack.bench.receipts import make_receipts, receipt_targets
from devstack.settings import get_dev_settings
from devstack.stack.balancer import BACKENDS, Balancer

READS_RPS = 1000
PAYMENTS_RPS = [10, 20, 30, 50]
LATENCIES_MS = ["300-800", "2000"]


def _cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    found = {}
    for name, pid in pids.items():
        try:
            t = psutil.Process(pid).cpu_times()
            found[name] = t.user + t.system
        except psutil.Error:
            pass
    me = psutil.Process().cpu_times()  # the load generators: this process and the vegeta it waited for
    found["load generator"] = me.user + me.system + me.children_user + me.children_system
    return found


def _group(name: str) -> str:
    """ingress-2 counts with ingress: CPU by kind of process."""
    return name.split("-")[0] if name.startswith(("ingress-", "worker-", "sinks-")) else name


def _backend_counts(balancer: Balancer) -> dict[str, dict[str, int]]:
    return {name: {"5xx": int(row.get("hrsp_5xx") or 0), "qmax": int(row.get("qmax") or 0),
                   "smax": int(row.get("smax") or 0)} for name, row in balancer.backends().items()}


def step(stack: BenchStack, label: str, latency: str, payments: int, seconds: float, vegeta: Path,
         targets: list[dict], say=print) -> dict:
    settings = stack.settings()
    balancer = Balancer(settings)
    balancer.runtime("clear counters")  # the backends' max queue and sessions, from this step on
    before_5xx = _backend_counts(balancer)
    pids = stack.pids(everything=True)
    cpu_before, machine_before = _cpu_seconds(pids), psutil.cpu_times()
    result: dict = {"step": label, "latency_ms": latency, "payments_rps": payments, "seconds": seconds}
    reader = threading.Thread(target=lambda: result.__setitem__("reads", read_attack(vegeta, targets, READS_RPS,
                                                                                     seconds)))
    reader.start()
    receipts: list[dict] = []
    if payments:
        paid = asyncio.run(pay(settings, payments, seconds))
        receipts = paid.pop("receipts")
        result["payments"] = paid
    reader.join()
    cpu_after, machine_after = _cpu_seconds(pids), psutil.cpu_times()
    elapsed = max(seconds, 1e-9)
    cpu: dict[str, float] = {}
    for name, used in cpu_after.items():
        if name in cpu_before:
            cpu[_group(name)] = cpu.get(_group(name), 0.0) + (used - cpu_before[name]) / elapsed * 100
    result["cpu_percent"] = {k: round(v, 1) for k, v in sorted(cpu.items(), key=lambda kv: -kv[1])}
    total = sum(machine_after) - sum(machine_before)
    idle = (machine_after.idle - machine_before.idle) + (machine_after.iowait - machine_before.iowait)
    result["machine_idle"] = round(idle / total, 3) if total else None
    result["load_average"] = round(os.getloadavg()[0], 1)
    after = _backend_counts(balancer)
    result["balancer"] = {name: {"refused": after[name]["5xx"] - before_5xx.get(name, {}).get("5xx", 0),
                                 "queued_max": after[name]["qmax"], "at_ingress_max": after[name]["smax"]}
                          for name in BACKENDS if name in after}
    if payments:
        stack.wait_drained()
        result["payments"]["lost"] = asyncio.run(lost(settings, receipts))
    say(f"  {label}: reads {result['reads']['goodput_rps']}/s ({result['reads']['codes']}), p99 "
        f"{result['reads']['p99_ms']} ms; payments {result.get('payments', {}).get('complete', '–')} complete "
        f"({result.get('payments', {}).get('codes', {})}); balancer {result['balancer']}; "
        f"idle {result['machine_idle']}; cpu {result['cpu_percent']}")
    return result


def run(stack: BenchStack, rates: list[int], seconds: float, say=print,
        latencies: list[str] | None = None) -> dict:
    settings = stack.settings()
    vegeta = tools.vegeta(settings)
    stack.use_standin()
    stored = asyncio.run(make_receipts(settings, settings.dev_api_key.get_secret_value(), 50))
    targets = receipt_targets(settings, stored)
    read_attack(vegeta, targets, READS_RPS, 2)  # warm-up, not reported
    steps = []
    for latency in latencies or LATENCIES_MS:
        stack.set_standin_latency(latency)
        for rate in rates:
            steps.append(step(stack, f"reads alone before {rate}/s", latency, 0, seconds, vegeta, targets, say))
            steps.append(step(stack, f"reads + {rate} payments/s", latency, rate, seconds, vegeta, targets, say))
            stack.wait_drained()
    return {"reads_rps": READS_RPS, "rates": rates, "seconds": seconds, "steps": steps,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 s a step (the full run: 60 s)")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rates", default=",".join(map(str, PAYMENTS_RPS)))
    parser.add_argument("--latencies", default=",".join(LATENCIES_MS))
    args = parser.parse_args()
    seconds = args.seconds or (10.0 if args.quick else 60.0)
    rates = [int(r) for r in args.rates.split(",")]
    latencies = args.latencies.split(",")
    root = Path.cwd()
    command = (f"python -m devstack.bench.bulkheads --seconds {seconds:g}"
               + ("" if rates == PAYMENTS_RPS else f" --rates {args.rates}")
               + ("" if latencies == LATENCIES_MS else f" --latencies {args.latencies}"))
    with BenchStack(root, get_dev_settings(), say=print, provider="standin") as stack:
        result = run(stack, rates, seconds, latencies=latencies)
    out = results_dir(root, root / "bench" / "results")
    save_json(out / "bulkheads.json", result)
    print(f"results: {out / 'bulkheads.json'}; published {publish(root, result, command)}")


def publish(root: Path, result: dict, command: str) -> Path:
    """This suite's section of BENCHMARKS.md, in place of its last copy."""
    from devstack.bench.report_bulkheads import BEGIN, END, section

    return put_section(root / "BENCHMARKS.md", BEGIN, END, section(result, command, git_commit(root)))


if __name__ == "__main__":
    main()
