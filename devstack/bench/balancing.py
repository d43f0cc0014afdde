"""Scale-out: getReceipt with 1 and 2 ingress processes, through HAProxy and direct; payments with 1
and 2 workers through HAProxy; HAProxy's added latency and CPU per request; requests served per
ingress CPU-second (the efficiency of a second process on a machine whose CPU is the ceiling); and
how long the autoscaler takes to add an ingress after a load step.

Each step's CPU is read from /proc (utime + stime of the processes) around the step.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psutil

from devstack import envfile
from devstack.bench import load, receipts, tools
from devstack.bench.bench_stack import BenchStack
from devstack.bench.core import Step
from devstack.stack import instances
from devstack.stack.balancer import Balancer

P99_TARGET_MS = receipts.P99_TARGET_MS
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def _scale(stack: BenchStack, **counts: int) -> None:
    stack.cli("scale", *(f"{kind}={n}" for kind, n in counts.items()))
    stack.refresh()
    settings = stack.settings()
    wanted = set(instances.ingress_ports(settings))
    deadline = time.monotonic() + 60
    while {n for n, row in Balancer(settings).servers().items() if row["status"] == "UP"} != wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"HAProxy does not have {sorted(wanted)} up")
        time.sleep(0.2)


def _ingress_pids(stack: BenchStack) -> list[int]:
    return [row["pid"] for name, row in stack.status.items() if name.split("-")[0] == "ingress" and row["pid"]]


def _reuse_port(stack: BenchStack, vegeta: Path, targets, rates: list[int], seconds: float, say) -> list[Step]:
    """Two ingress processes sharing one port (SO_REUSEPORT), no balancer; the stack's own ingress
    scaled down to one, idle."""
    settings = stack.settings()
    _scale(stack, ingress=1, worker=1)
    port = settings.ingress_instance_port(settings.ingress_max_instances + 1)
    # What the bench stack learned (its cluster's address) given outright, as to its pipeline.
    env = {**os.environ, **stack.env, **envfile.managed(settings.env_file), "PAYSTREAM_INGRESS_PORT": str(port),
           "PAYSTREAM_INGRESS_REUSE_PORT": "true"}
    procs = []
    try:
        for _ in range(2):
            procs.append(subprocess.Popen([sys.executable, "-m", "paystream.cli", "ingress"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 120
        while not all(_listening(p.pid, port) for p in procs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"the SO_REUSEPORT ingress processes did not both listen on {port}")
            time.sleep(0.5)
        route = targets([port])
        tools.vegeta_step(vegeta, "warmup", "", route, rates[0], 1)
        steps = []
        for rate in rates:
            before = cpu_seconds([p.pid for p in procs])
            step = tools.vegeta_step(vegeta, "balancer", "getReceipt SO_REUSEPORT, 2 ingress", route, rate, seconds)
            used = cpu_seconds([p.pid for p in procs]) - before
            step.extra.update(ingress_cpu_s=round(used, 2), per_ingress_cpu_s=round(step.ok / used, 1) if used else None)
            steps.append(step)
            say(f"  {step.target} at {rate}/s: p50 {step.p50_ms} ms, p99 {step.p99_ms} ms")
        return steps
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)


def _listening(pid: int, port: int) -> bool:
    return any(c.status == "LISTEN" and c.laddr.port == port for c in psutil.Process(pid).net_connections())


def _measured(vegeta: Path, stack: BenchStack, target: str, targets: list[dict], rate: int, seconds: float) -> Step:
    ingress, haproxy = _ingress_pids(stack), [stack.status["balancer"]["pid"]]
    before = cpu_seconds(ingress), cpu_seconds(haproxy)
    step = tools.vegeta_step(vegeta, "balancer", target, targets, rate, seconds)
    ingress_cpu, haproxy_cpu = cpu_seconds(ingress) - before[0], cpu_seconds(haproxy) - before[1]
    step.extra.update(ingress_cpu_s=round(ingress_cpu, 2), haproxy_cpu_s=round(haproxy_cpu, 2),
                      per_ingress_cpu_s=round(step.ok / ingress_cpu, 1) if ingress_cpu else None,
                      haproxy_us_per_request=round(haproxy_cpu / step.ok * 1e6, 1) if step.ok and "HAProxy" in target
                      else None)
    return step


def run(stack: BenchStack, rates: list[int], seconds: float, say=print) -> dict:
    settings = stack.settings()
    vegeta = tools.vegeta(settings)
    key = settings.dev_api_key.get_secret_value()
    made = asyncio.run(receipts.make_receipts(settings, key, 50))
    auth = {"Authorization": [f"Bearer {key}"]}

    def targets(ports: list[int]) -> list[dict]:
        return [{"method": "GET", "header": auth, "url": f"http://{settings.ingress_host}:{ports[i % len(ports)]}"
                 f"/v1/getReceipt?receipt_id={r['receipt_id']}&user_id={r['user_id']}"} for i, r in enumerate(made)]

    steps: list[Step] = []
    for n in (1, 2):
        _scale(stack, ingress=n, worker=1)
        routes = {f"getReceipt through HAProxy, {n} ingress": targets([settings.ingress_port]),
                  # Direct: the client spreads over the processes itself (round robin over their ports).
                  f"getReceipt direct, {n} ingress": targets([settings.ingress_instance_port(i + 1) for i in range(n)])}
        for route in routes.values():
            tools.vegeta_step(vegeta, "warmup", "", route, rates[0], 1)
        for rate in rates:
            for target, route in routes.items():
                step = _measured(vegeta, stack, target, route, rate, seconds)
                steps.append(step)
                say(f"  {target} at {rate}/s: p50 {step.p50_ms} ms, p99 {step.p99_ms} ms, "
                    f"{step.extra['per_ingress_cpu_s']} per ingress CPU-s")
    steps += _reuse_port(stack, vegeta, targets, rates, seconds, say)
    payment_steps: list[Step] = []
    payment_rate = max(10, rates[0] // 20)
    for workers in (1, 2):
        _scale(stack, ingress=2, worker=workers)
        time.sleep(3)  # the group's rebalance
        _, post = asyncio.run(load.paystream_payments(settings, payment_rate, seconds))
        post.target = f"payment post through HAProxy, {workers} worker(s)"
        payment_steps.append(post)
        say(f"  {post.target} at {payment_rate}/s: p50 {post.p50_ms} ms, p99 {post.p99_ms} ms, "
            f"errors {post.errors}")
    _scale(stack, ingress=1, worker=1)
    reaction = None
    if seconds >= 5:  # not in a quick run: a load step held until the autoscaler acts takes up to a minute
        reaction = _autoscaler_reaction(stack, key, seconds)
        say(f"  autoscaler: a second ingress {reaction} s after the load step began")
    return {"steps": steps, "payments": payment_steps, "p99_target_ms": P99_TARGET_MS,
            "autoscale_reaction_s": reaction}


def _autoscaler_reaction(stack: BenchStack, key: str, seconds: float) -> float | None:
    """Seconds from the start of a getReceipt load step (1 ingress) until the autoscaler has a second
    ingress serving, with its default policy but a reading every second."""
    settings = stack.settings()
    env = {**os.environ, **stack.env, "PAYSTREAM_AUTOSCALE_INTERVAL_S": "1", "PAYSTREAM_AUTOSCALE_INGRESS_MAX": "2"}
    scaler = subprocess.Popen([sys.executable, "-m", "paystream.cli", "autoscale"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    async def load(stop: asyncio.Event) -> None:
        url = f"http://{settings.ingress_host}:{settings.ingress_port}/v1/getReceipt"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
            async def one() -> None:
                while not stop.is_set():
                    async with http.get(url, params={"receipt_id": "rcpt_none", "user_id": "nobody"}) as r:
                        await r.read()
            await asyncio.gather(*(one() for _ in range(32)))

    async def step() -> float | None:
        stop = asyncio.Event()
        task = asyncio.create_task(load(stop))
        began = time.monotonic()
        try:
            while time.monotonic() - began < max(60.0, 6 * seconds):
                if instances.counts(settings)["ingress"] >= 2:
                    return round(time.monotonic() - began, 1)
                await asyncio.sleep(0.2)
            return None
        finally:
            stop.set()
            await task

    try:
        time.sleep(3)
        return asyncio.run(step())
    finally:
        scaler.terminate()
        scaler.wait(timeout=60)
        _scale(stack, ingress=1, worker=1)


def markdown(r: dict) -> list[str]:
    lines = ["", "## Scale-out: HAProxy, 1 and 2 ingress processes, 1 and 2 workers", "",
             "| target | offered/s | achieved/s | p50 ms | p99 ms | errors | ok per ingress CPU-s | HAProxy µs CPU per request |",
             "|---|---|---|---|---|---|---|---|"]
    for s in r["steps"]:
        lines.append(f"| {s.target} | {s.offered_rps:g} | {s.achieved_rps:g} | {s.p50_ms} | {s.p99_ms} | {s.errors} | "
                     f"{s.extra.get('per_ingress_cpu_s')} | {s.extra.get('haproxy_us_per_request') or '-'} |")
    lines += ["", "| payments | offered/s | achieved/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|"]
    for s in r["payments"]:
        lines.append(f"| {s.target} | {s.offered_rps:g} | {s.achieved_rps:g} | {s.p50_ms} | {s.p99_ms} | {s.errors} |")
    by = {(s.target, s.offered_rps): s for s in r["steps"]}
    rates = sorted({s.offered_rps for s in r["steps"]})
    lines.append("")
    for rate in rates:
        one, two = by.get(("getReceipt through HAProxy, 1 ingress", rate)), by.get(("getReceipt through HAProxy, 2 ingress", rate))
        direct = by.get(("getReceipt direct, 1 ingress", rate))
        if one and direct and one.p50_ms is not None and direct.p50_ms is not None:
            lines.append(f"- at {rate:g}/s HAProxy adds {one.p50_ms - direct.p50_ms:.2f} ms at p50 (1 ingress)")
        if one and two and one.extra.get("per_ingress_cpu_s") and two.extra.get("per_ingress_cpu_s"):
            ratio = two.extra["per_ingress_cpu_s"] / one.extra["per_ingress_cpu_s"]
            lines.append(f"- at {rate:g}/s, 2 ingress serve {ratio:.0%} of 1 ingress's requests per CPU-second")
    if r["autoscale_reaction_s"] is not None:
        lines.append(f"- the autoscaler had a second ingress {r['autoscale_reaction_s']} s after a load step began "
                     "(readings every second, 3 in a row above 60 % mean CPU)")
    return lines
